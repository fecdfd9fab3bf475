# -*- coding: utf-8 -*-
# Copyright: airlock maintainers
# MIT OR Apache-2.0 (see the airlock repository's LICENSE files)
"""Running the airlock binary for the airlock.postgresql modules.

Every module calls airlock with --json and reads the one JSON document it prints,
errors included; the exit code is airlock's (0 ok/READY, 1 runtime, 2 usage,
3 BLOCKED, 4 verification, 5 database state, 6 ledger refusal or lock). Nothing here
computes a fact airlock did not report: the modules render airlock's documents.
A passphrase reaches airlock through AIRLOCK_PASSPHRASE, never on its command line.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

# The ledger refusals that mean "nothing left to do" (airlock's refusal_kind): a rerun
# of a finished rollout is ok and unchanged, never a failure.
NOTHING_TO_DO = ("already-applied", "through-applied")

# The options every module shares (documentation: doc_fragments is not used, each
# module repeats them so that ansible-doc shows them in one place).
COMMON_ARGS = dict(
    db=dict(type="str", required=True),
    executable=dict(type="str", default="airlock"),
)


def airlock_path(module):
    """The airlock binary: a path as given, or a name found on PATH. A missing one
    fails the task with what to do, before anything runs."""
    exe = module.params["executable"]
    if os.sep in exe:
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            return exe
        module.fail_json(
            msg="cannot run airlock: %s is not an executable file; nothing was done" % exe,
            hint="set executable to the airlock binary's path, or put airlock on PATH",
            rc=None,
        )
    found = module.get_bin_path(exe, required=False)
    if found is None:
        module.fail_json(
            msg="cannot run airlock: no %r on PATH (%s); nothing was done"
            % (exe, os.environ.get("PATH", "")),
            hint="install airlock on the host, or set executable to its path",
            rc=None,
        )
    return found


def run(module, args, passphrase=None):
    """Run `airlock --json ARGS`; returns (exit code, document). A run that prints no
    JSON document fails the task with what airlock printed."""
    argv = [airlock_path(module), "--json"] + [str(a) for a in args]
    env = {}
    if passphrase is not None:
        env["AIRLOCK_PASSPHRASE"] = passphrase
    rc, out, err = module.run_command(
        argv, check_rc=False, environ_update=env, data=None, binary_data=False
    )
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        module.fail_json(
            msg="airlock printed no JSON document (exit %d): %s"
            % (rc, (err or out).strip()[-2000:]),
            rc=rc,
            stdout=out,
            stderr=err,
        )
    return rc, doc


def bundle_args(module, command):
    """`COMMAND BUNDLE --trust T --db DB --param K=V...` from the shared options."""
    p = module.params
    args = [command, p["bundle"], "--trust", p["trust"], "--db", p["db"]]
    for key, value in sorted((p.get("params") or {}).items()):
        args += ["--param", "%s=%s" % (key, stringify(value))]
    return args


def stringify(value):
    """A param value as airlock takes it: text; booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def failure(doc):
    """What failed, from an airlock document that is not a success: an error
    document's error and hint, or the first check of a plan that did not pass."""
    if "error" in doc:
        return doc.get("error"), doc.get("hint"), doc.get("kind")
    for check in doc.get("checks") or []:
        if check.get("verdict") in ("FAIL", "BLOCKED"):
            return (
                "%s: %s" % (check.get("check"), check.get("evidence")),
                check.get("hint"),
                "blocked" if check.get("verdict") == "BLOCKED" else check.get("check"),
            )
    # A gate document (apply --wait that ran out of time): its gates, flattened in.
    gates = doc.get("gates")
    if isinstance(gates, dict):
        gates = gates.get("gates")
    reasons = [
        "gate %s: %s" % (g.get("name"), g.get("reason"))
        for g in gates or []
        if isinstance(g, dict) and not g.get("ready")
    ]
    if reasons:
        waited = doc.get("wait") or {}
        ended = waited.get("ended")
        return (
            "BLOCKED: %s%s; nothing was changed"
            % (
                "; ".join(reasons),
                " (waited %d s over %s poll(s), %s)"
                % (waited.get("waited_ms", 0) // 1000, waited.get("polls"), ended)
                if ended
                else "",
            ),
            "the gate decides when the release may run: make it READY, or wait longer",
            "blocked",
        )
    return "airlock exited %s" % doc.get("exit_code"), None, None


def fail(module, rc, doc, **extra):
    """Fail the task with airlock's exit code, error and hint; nothing changed."""
    error, hint, kind = failure(doc)
    module.fail_json(
        msg=error,
        rc=rc,
        error=error,
        hint=hint,
        kind=kind,
        refusal_kind=doc.get("refusal_kind"),
        document=doc,
        changed=False,
        **extra
    )


def ledger_text(title, tiers):
    """One side of a diff: the bundle's tiers the ledger records as applied."""
    lines = ["%s" % title]
    lines += ["  applied: %s" % t for t in tiers] or ["  nothing applied"]
    return "\n".join(lines) + "\n"
