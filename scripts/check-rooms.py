#!/usr/bin/env python3
"""The rooms of a Rust folder (its direct subfolders and files) stand in one order, and
a room imports only rooms below it (README, "Architecture"; issue 78).

Usage: check-rooms.py DIR PREFIX [DIR PREFIX ...]
  DIR     a folder of rooms: a crate's src/, or src/commands
  PREFIX  the path that names a room from inside: `crate`, or `crate::commands`

The order is written in the folder's lib.rs (or mod.rs) doc, one line:
  //! Room order, lowest first: `a` < `b`, `c` < `d`.
Rooms at one level (`b`, `c`) import neither each other nor anything above. Every room
of the folder is named in the order; a room that is not, or a name that is no room,
fails. An import is any path through PREFIX (`crate::b::x`, `crate::{b::x, c}`), through
a name the folder's lib.rs/mod.rs re-exports from a room (`pub use b::x;` makes
`crate::x` an import of `b`), or through `super::` climbing out of the room. Code after
a file's first `#[cfg(test)]`, and files named tests.rs, are not looked at (tests may
reach anywhere). Exits 1 and
names file, line and both rooms for each import that goes up or sideways.
"""
import os
import re
import sys

ORDER = re.compile(r"^//! Room order, lowest first: (.*)$", re.M)


def rooms_of(src):
    """Room name -> its paths: `x.rs` and the folder `x/` are one room."""
    rooms = {}
    for name in sorted(os.listdir(src)):
        p = os.path.join(src, name)
        if name in ("lib.rs", "main.rs", "mod.rs"):
            continue
        if os.path.isdir(p):
            rooms.setdefault(name, []).append(p)
        elif name.endswith(".rs"):
            rooms.setdefault(name[:-3], []).append(p)
    return rooms


def head_file(src):
    for n in ("lib.rs", "mod.rs", "main.rs"):
        p = os.path.join(src, n)
        if os.path.exists(p):
            return p
    return None


def code(path):
    text = open(path, encoding="utf-8").read()
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]


def aliases(head, rooms):
    """Names the head file re-exports from a room: `pub use room::{a, b as c};`."""
    out = {}
    for m in re.finditer(r"pub(?:\([\w:]+\))?\s+use\s+(\w+)::([^;]+);", code(head)):
        room, rest = m.group(1), m.group(2)
        if room not in rooms:
            continue
        rest = rest.strip()
        names = rest[1:-1].split(",") if rest.startswith("{") else [rest]
        for n in names:
            n = n.strip()
            if not n:
                continue
            alias = n.split(" as ")[-1].strip().split("::")[-1]
            out[alias] = room
    return out


def first_names(brace_body):
    depth, part, parts = 0, "", []
    for ch in brace_body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    parts.append(part)
    return [re.match(r"\s*(\w*)", p).group(1) for p in parts]


def brace_body(text, start):
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return ""


def targets(text, prefix, module, depth_in_room):
    """(offset, first name) of every path out of this file toward the folder's rooms."""
    for m in re.finditer(r"(?<![\w:])" + re.escape(prefix) + r"::(\{|\w+)", text):
        if m.group(1) == "{":
            for n in first_names(brace_body(text, m.end() - 1)):
                yield m.start(), n
        else:
            yield m.start(), m.group(1)
    # `super::` climbing past the room's own module names a sibling room.
    for m in re.finditer(r"(?<![\w:])((?:super::)+)(\{|\w+)", text):
        ups = m.group(1).count("super")
        if ups != depth_in_room:
            continue
        if m.group(2) == "{":
            for n in first_names(brace_body(text, m.end() - 1)):
                yield m.start(), n
        else:
            yield m.start(), m.group(2)


def depth(room_path, file):
    """How many `super::` take this file's module to the folder's module."""
    if os.path.isfile(room_path):
        return 1
    rel = os.path.relpath(file, room_path).split(os.sep)
    if rel[-1] == "mod.rs":
        rel = rel[:-1]
    else:
        rel[-1] = rel[-1][:-3]
    return 1 + len(rel)


def check(src, prefix):
    rooms = rooms_of(src)
    head = head_file(src)
    found = ORDER.search(open(head, encoding="utf-8").read()) if head else None
    if not found:
        print(f"check-rooms: {head or src} states no `//! Room order, lowest first:` line")
        return 1
    level, bad = {}, 0
    for i, group in enumerate(found.group(1).rstrip(".").split("<")):
        for name in group.split(","):
            name = name.strip().strip("`")
            if name not in rooms:
                print(f"check-rooms: {head}: the order names `{name}`, which is no room of {src}")
                bad = 1
            level[name] = i
    for r in rooms:
        if r not in level:
            print(f"check-rooms: {head}: room `{r}` of {src} is not in the order")
            bad = 1
    alias = aliases(head, rooms)
    for r, paths in rooms.items():
        files = []
        for p in paths:
            files += [(p, p)] if os.path.isfile(p) else [
                (p, os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs if f.endswith(".rs")
            ]
        for p, f in sorted(files):
            if os.path.basename(f) == "tests.rs":
                continue  # a `#[cfg(test)] mod tests;` file: tests may reach anywhere
            text = code(f)
            for off, name in targets(text, prefix, None, depth(p, f)):
                t = name if name in rooms else alias.get(name)
                if t is None or t == r or level.get(t, -1) < level.get(r, -1):
                    continue
                line = text.count("\n", 0, off) + 1
                way = "sideways to" if level.get(t) == level.get(r) else "up to"
                print(f"{f}:{line}: room `{r}` imports `{t}` ({way} a room it may not use)")
                bad = 1
    return bad


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__)
        return 2
    bad = 0
    for i in range(0, len(argv), 2):
        bad |= check(argv[i], argv[i + 1])
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
