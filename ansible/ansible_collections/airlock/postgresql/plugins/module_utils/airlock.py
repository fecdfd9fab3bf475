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

# The options of the commands that run a bundle's gates and probes on the database
# (plan, apply, rehearse, rollback), each one of airlock's own flags.
RUN_ARGS = dict(
    gate_role=dict(type="str"),
    statement_timeout=dict(type="str"),
)

# The options of the commands that change the database (apply, rollback).
DEPLOY_ARGS = dict(
    lock_timeout=dict(type="str"),
    lock_retries=dict(type="int"),
    receipt_dir=dict(type="path"),
    # A key file's path, or a pkcs11: URI that may hold the token's PIN (pin-value=):
    # a secret of the task, never shown (-vvv, the module's syslog line, its result).
    sign_receipt=dict(type="path", no_log=True),
    passphrase=dict(type="str", no_log=True),
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


def run_flags(module):
    """The flags of RUN_ARGS the task sets."""
    p = module.params
    args = []
    if p.get("gate_role"):
        args += ["--gate-role", p["gate_role"]]
    if p.get("statement_timeout"):
        args += ["--statement-timeout", p["statement_timeout"]]
    return args


def deploy_flags(module):
    """The flags of DEPLOY_ARGS the task sets (the passphrase goes in the environment)."""
    p = module.params
    args = []
    if p.get("lock_timeout"):
        args += ["--lock-timeout", p["lock_timeout"]]
    if p.get("lock_retries") is not None:
        args += ["--lock-retries", str(p["lock_retries"])]
    if p.get("receipt_dir"):
        args += ["--out", p["receipt_dir"]]
    if p.get("sign_receipt") and "pin-value=" in p["sign_receipt"]:
        module.warn(
            "sign_receipt holds the token's PIN (pin-value=), which is on airlock's"
            " command line while it runs (ps shows it to the host's users): give it"
            " in a file only the user reads instead, pin-source=file:/path/to/pin"
        )
    return args + sign_flags(module)


def sign_flags(module):
    """`--sign-receipt KEY` when the task signs its receipts: apply signs with it, and
    plan (check mode) judges the receipt policy with the same key, as apply would."""
    key = module.params.get("sign_receipt")
    return ["--sign-receipt", key] if key else []


def ledger_of(module):
    """What the database's ledger records of the task's bundle (`airlock status
    BUNDLE`): a dict with state, applied_tiers, remaining_tiers, online_steps,
    undelivered, or None with the reason when it could not be read."""
    p = module.params
    argv = [airlock_path(module), "--json", "status", p["bundle"], "--trust", p["trust"],
            "--db", p["db"]]
    rc, out, err = module.run_command(argv, check_rc=False)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if rc != 0 or not isinstance(doc, dict):
        reason = doc.get("error") if isinstance(doc, dict) else (err or out).strip()[-500:]
        return None, reason
    given = [b for b in doc.get("bundles") or [] if b.get("given")]
    if not given:
        return None, "airlock status did not show the bundle"
    b = given[0]
    applied = b.get("applied_tiers") or []
    if b.get("state") in ("not-applied", "rolled-back"):
        applied = []
    return dict(
        database=doc.get("database"),
        state=b.get("state"),
        applied_tiers=list(applied),
        remaining_tiers=list(b.get("remaining_tiers") or []),
        online_steps=dict(b.get("online_steps") or {}),
        undelivered=list(b.get("undelivered") or []),
    ), None


def what_changed(doc, after, reason):
    """The truth about a database after a run that failed, from airlock's error
    document: `committed` (present when part of the run committed: its tiers, its
    online steps, what is left, its receipt) or, absent, nothing of this run stayed.
    `after` (from ledger_of, read after the failure; None with `reason`) adds the
    ledger's state."""
    committed = doc.get("committed")
    out = dict(changed_tiers=[], online_steps={})
    if after is not None:
        out.update(state=after["state"], remaining_tiers=after["remaining_tiers"])
    if committed is None:
        out["msg"] = (
            "nothing changed on this database: nothing of this run committed (airlock"
            " rolled its transaction back)"
        )
        return out
    steps = {}
    for step in committed.get("online_steps") or []:
        steps[step.get("tier")] = steps.get(step.get("tier"), 0) + 1
    left = list(committed.get("remaining_tiers") or [])
    out.update(
        changed_tiers=list(committed.get("tiers") or []),
        online_steps=steps,
        remaining_tiers=left,
        receipt_file=committed.get("receipt_file"),
    )
    done = []
    if out["changed_tiers"]:
        done.append("committed tier(s) %s" % ", ".join(out["changed_tiers"]))
    for tier, k in sorted(steps.items()):
        done.append("online tier %s: %d step(s) done" % (tier, k))
    state = out.get("state") or (
        "partially-applied (the ledger could not be read after the failure: %s)" % reason
    )
    out["msg"] = (
        "this database CHANGED and is %s: %s; not applied: %s; the receipt of what"
        " committed: %s. To continue, fix the cause and run the task again (apply goes on"
        " with %s); to undo, run airlock.postgresql.rollback on this host"
        % (
            state,
            "; ".join(done) or "part of the run committed",
            ", ".join(left) or "nothing",
            committed.get("receipt_file") or "not written",
            left[0] if left else "what is left",
        )
    )
    return out


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
        verdict = check.get("verdict")
        if verdict in ("FAIL", "BLOCKED", "CANNOT-TELL"):
            kind = {"BLOCKED": "blocked", "CANNOT-TELL": "cannot-tell"}.get(verdict)
            return (
                "%s%s: %s"
                % ("CANNOT TELL: " if verdict == "CANNOT-TELL" else "", check.get("check"), check.get("evidence")),
                check.get("hint"),
                kind or check.get("check"),
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


def database_of(module, doc):
    """The database a failed run was about: airlock's document's, else the one
    `airlock status` connects to with the task's db; None when neither reached it."""
    if doc.get("database"):
        return doc["database"]
    now, dummy = ledger_of(module)
    return (now or {}).get("database")


def with_hint(error, hint):
    """The task's message: airlock's error, then what to do next (its hint), so that
    Ansible's human output says both, not only the result's `hint` field."""
    if not hint:
        return error
    return "%s; to do: %s" % (error, hint)


def fail(module, rc, doc, **extra):
    """Fail the task with airlock's exit code, error and hint (in `msg` too);
    `changed` is False unless `extra` says otherwise (what the caller read from the
    ledger); `database` is left out, never null, when no document names one."""
    error, hint, kind = failure(doc)
    extra.setdefault("changed", False)
    if extra.get("database") is None:
        extra.pop("database", None)
    module.fail_json(
        msg=with_hint(error, hint),
        rc=rc,
        error=error,
        hint=hint,
        kind=kind,
        refusal_kind=doc.get("refusal_kind"),
        document=doc,
        **extra
    )


def ledger_text(title, tiers):
    """One side of a diff: the bundle's tiers the ledger records as applied."""
    lines = ["%s" % title]
    lines += ["  applied: %s" % t for t in tiers] or ["  nothing applied"]
    return "\n".join(lines) + "\n"
