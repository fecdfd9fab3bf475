#!/usr/bin/env python3
"""Bundle sources for benches/apply.sh, generated (no third-party data is stored here).

    corpus.py small  DIR DATABASE [N]   N small DDL files (default 300), one tier
    corpus.py shaped DIR DATABASE [N]   N migrations (default 346), one tier each, shaped
                                        like a web service's history (kratos): tables,
                                        added columns, indexes, backfills, constraints
    corpus.py inserts DIR DATABASE [N]  a schema tier, then one file of N INSERT
                                        statements (default 49,636: pagila's row count
                                        as `pg_dump --inserts` writes it) over its 15
                                        tables in pagila's proportions

Each writes DIR/bundle.toml and DIR/sql/*.sql; `all.sql` (the files concatenated, in
order) and `files.txt` (the files in order, one a line) are written beside DIR for the
psql and one-message baselines.
"""
import os
import random
import sys


def write_bundle(d, db, tiers):
    """tiers: [(tier name, [(file name, text)])]"""
    os.makedirs(os.path.join(d, "sql"), exist_ok=True)
    order = []
    with open(os.path.join(d, "bundle.toml"), "w") as t:
        t.write('[bundle]\nname = "applybench"\nversion = "1"\nsequence = 1\n\n')
        t.write('[target]\ndatabase = "%s"\n' % db)
        for name, files in tiers:
            for fname, text in files:
                with open(os.path.join(d, "sql", fname), "w") as f:
                    f.write(text)
                order.append(os.path.join(d, "sql", fname))
            t.write('\n[[tier]]\nname = "%s"\nfiles = [%s]\n'
                    % (name, ", ".join('"sql/%s"' % f for f, _ in files)))
    base = d.rstrip("/")
    with open(base + ".files.txt", "w") as f:
        f.write("\n".join(order) + "\n")
    with open(base + ".all.sql", "w") as out:
        for p in order:
            with open(p) as f:
                out.write(f.read())


def small(n):
    files = []
    for i in range(n):
        files.append(("%03d_t%d.sql" % (i, i),
                      "-- file %d\nCREATE TABLE bench_t%d (\n  id bigint PRIMARY KEY,\n"
                      "  name text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now()\n);\n"
                      "CREATE INDEX bench_t%d_name ON bench_t%d (name);\n" % (i, i, i, i)))
    return [("all", files)]


def shaped(n):
    """One migration per tier; a mix of what a service's history holds."""
    rnd = random.Random(346)
    tiers, tables = [], []
    for i in range(n):
        k = i % 7 if tables else 0
        if k in (0, 4):
            t = "svc_t%d" % i
            tables.append(t)
            sql = ("CREATE TABLE %s (\n  id uuid PRIMARY KEY,\n  nid uuid NOT NULL,\n"
                   "  state varchar(255) NOT NULL DEFAULT 'active',\n"
                   "  created_at timestamp NOT NULL,\n  updated_at timestamp NOT NULL\n);\n"
                   "CREATE INDEX %s_nid_idx ON %s (nid);\n" % (t, t, t))
        elif k == 1:
            t = rnd.choice(tables)
            sql = "ALTER TABLE %s ADD COLUMN c%d text NULL;\n" % (t, i)
        elif k == 2:
            t = rnd.choice(tables)
            sql = "CREATE INDEX %s_i%d ON %s (created_at, id);\n" % (t, i, t)
        elif k == 3:
            t = rnd.choice(tables)
            sql = ("ALTER TABLE %s ADD COLUMN f%d boolean NOT NULL DEFAULT false;\n"
                   "UPDATE %s SET f%d = true WHERE state = 'inactive';\n" % (t, i, t, i))
        elif k == 5:
            t = rnd.choice(tables)
            sql = "ALTER TABLE %s ALTER COLUMN state SET DEFAULT 'active';\n" % t
        else:
            t = rnd.choice(tables)
            sql = ("ALTER TABLE %s ADD COLUMN e%d varchar(64) NULL;\n"
                   "COMMENT ON COLUMN %s.e%d IS 'migration %d';\n" % (t, i, t, i, i))
        tiers.append(("m%04d" % i, [("%04d_m.up.sql" % i, sql)]))
    return tiers


# pagila's tables and row counts (pg_dump --inserts writes one INSERT a row), scaled to N.
PAGILA = [("actor", 200), ("category", 16), ("country", 109), ("city", 600),
          ("address", 603), ("language", 6), ("film", 1000), ("film_actor", 5462),
          ("film_category", 1000), ("store", 2), ("staff", 2), ("customer", 599),
          ("inventory", 4581), ("rental", 16044), ("payment", 16049)]


def inserts(n):
    rnd = random.Random(49636)
    total = sum(c for _, c in PAGILA)
    counts = [max(1, c * n // total) for _, c in PAGILA]
    counts[-1] += n - sum(counts)
    schema = "".join(
        "CREATE TABLE p_%s (\n  %s_id integer PRIMARY KEY,\n  ref_id integer NOT NULL,\n"
        "  label text NOT NULL,\n  amount numeric(5,2),\n  last_update timestamptz NOT NULL\n);\n"
        % (t, t) for t, _ in PAGILA)
    rows = []
    words = ["ACADEMY", "DINOSAUR", "ACE", "GOLDFINGER", "ADAPTATION", "HOLES", "AFFAIR",
             "PREJUDICE", "AGENT", "TRUMAN", "AIRPLANE", "SIERRA", "O'BRIEN"]
    for (t, _), c in zip(PAGILA, counts):
        for i in range(1, c + 1):
            w = rnd.choice(words).replace("'", "''")
            rows.append("INSERT INTO public.p_%s VALUES (%d, %d, '%s %s', %d.%02d, "
                        "'2022-02-15 09:%02d:%02d+00');\n"
                        % (t, i, rnd.randint(1, 1000), w, rnd.choice(words).replace("'", "''"),
                           rnd.randint(0, 11), rnd.randint(0, 99), i % 60, (i * 7) % 60))
    return [("schema", [("01_schema.sql", schema)]),
            ("data", [("02_data.sql", "".join(rows))])]


def main():
    kind, d, db = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else None
    gen = {"small": (small, 300), "shaped": (shaped, 346), "inserts": (inserts, 49636)}
    f, default = gen[kind]
    write_bundle(d, db, f(n or default))


if __name__ == "__main__":
    main()
