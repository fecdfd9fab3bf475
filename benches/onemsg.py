#!/usr/bin/env python3
"""The sqlx-cli way of applying migrations, for benches/apply.sh, over libpq (ctypes):

    onemsg.py CONNINFO FILES_TXT

Takes the migration lock (pg_advisory_lock), makes sure its history table exists,
then for each file in FILES_TXT (one path a line): BEGIN; the whole file as one
simple-query message; a history row with the file's SHA-384; COMMIT. This is what
sqlx-cli's `migrate run` sends (one transaction per migration, each file one message),
without its process start-up: a floor for tools of that kind. Exits 1 on any error.
"""
import ctypes
import ctypes.util
import hashlib
import sys

pq = ctypes.CDLL(ctypes.util.find_library("pq") or "libpq.so.5")
pq.PQconnectdb.restype = ctypes.c_void_p
pq.PQconnectdb.argtypes = [ctypes.c_char_p]
pq.PQstatus.argtypes = [ctypes.c_void_p]
pq.PQexec.restype = ctypes.c_void_p
pq.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
pq.PQresultStatus.argtypes = [ctypes.c_void_p]
pq.PQclear.argtypes = [ctypes.c_void_p]
pq.PQerrorMessage.restype = ctypes.c_char_p
pq.PQerrorMessage.argtypes = [ctypes.c_void_p]
pq.PQfinish.argtypes = [ctypes.c_void_p]

PGRES_EMPTY_QUERY, PGRES_COMMAND_OK, PGRES_TUPLES_OK = 0, 1, 2


def run(conn, sql):
    r = pq.PQexec(conn, sql)
    # A migration of comments only is an empty query, as sqlx-cli sends it too.
    ok = pq.PQresultStatus(r) in (PGRES_EMPTY_QUERY, PGRES_COMMAND_OK, PGRES_TUPLES_OK)
    pq.PQclear(r)
    if not ok:
        sys.stderr.write(pq.PQerrorMessage(conn).decode())
        sys.exit(1)


def main():
    conn = pq.PQconnectdb(sys.argv[1].encode())
    if pq.PQstatus(conn) != 0:
        sys.stderr.write(pq.PQerrorMessage(conn).decode())
        sys.exit(1)
    run(conn, b"SELECT pg_advisory_lock(3469814238)")
    run(conn, b"CREATE TABLE IF NOT EXISTS _bench_migrations (version bigint PRIMARY KEY, "
              b"description text NOT NULL, installed_on timestamptz NOT NULL DEFAULT now(), "
              b"success boolean NOT NULL, checksum bytea NOT NULL, execution_time bigint NOT NULL)")
    with open(sys.argv[2]) as f:
        paths = [p for p in f.read().splitlines() if p]
    for version, path in enumerate(paths, 1):
        with open(path, "rb") as f:
            text = f.read()
        run(conn, b"BEGIN")
        run(conn, text)
        run(conn, b"INSERT INTO _bench_migrations (version, description, success, checksum, "
                  b"execution_time) VALUES (%d, 'm', true, '\\x%s', 0)"
            % (version, hashlib.sha384(text).hexdigest().encode()))
        run(conn, b"COMMIT")
    run(conn, b"SELECT pg_advisory_unlock(3469814238)")
    pq.PQfinish(conn)


if __name__ == "__main__":
    main()
