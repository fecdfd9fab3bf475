#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: airlock maintainers
# MIT OR Apache-2.0 (see the airlock repository's LICENSE files)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: apply
short_description: Apply a signed airlock release bundle to one PostgreSQL database
version_added: "0.1.0"
description:
  - Runs C(airlock apply) on the host for the database O(db) names. The bundle is
    verified against the trust store, the database must pass the bundle's name guard
    (its name equals or matches the bundle's C([target] database), a name, a list or
    a glob pattern such as C(tenant_*)), the gates must be READY, and the tiers not yet
    applied run all-or-nothing, recorded in the database's ledger.
  - Idempotent through the ledger. A bundle whose tiers are all applied (or applied
    through O(through)) is reported C(ok), unchanged; airlock's typed refusal
    (C(refusal_kind) C(already-applied) or C(through-applied)) decides, never its
    message.
  - In check mode it runs C(airlock plan), read-only, and reports C(changed) as the
    apply would (GO with tiers to run). Plan is given O(sign_receipt) (and
    O(passphrase)) too, so its receipt policy is judged with the key the apply signs
    with. The statements plan cannot predict on the data
    there now (the release creates or changes their rows first) are listed in
    RV(not_predictable), with a warning; only a rehearsal runs them
    (M(airlock.postgresql.rehearse)). With C(--diff) it shows the tiers of the bundle
    the ledger records as applied before and after.
  - A BLOCKED gate, a NO-GO plan and every failure fail the task with airlock's exit
    code, error and hint; the message ends with the hint (what to do next, such as
    fix the data first). A failure before anything committed changed nothing on that
    database. But the tiers of one transaction commit before an online tier
    (C(online = true)) runs, and each online step commits alone; when a later step
    fails, the database is left partially applied. The failed result then says exactly
    what changed (RV(changed_tiers), RV(online_steps), RV(remaining_tiers), from
    airlock's error document, and RV(state), from the ledger through C(airlock
    status)), and C(changed) is true; run the task again once
    the cause is fixed (apply continues with what is left), or roll back with
    M(airlock.postgresql.rollback).
  - Waves, canaries and stop-on-failure are Ansible's own (C(serial),
    C(max_fail_percentage)); run one database per host of the inventory.
options:
  bundle:
    description: The signed bundle file (C(NAME-VERSION.airlock.tar.gz)) on the host.
    type: path
    required: true
  trust:
    description:
      - The trust store on the host (a directory of minisign C(*.pub) keys with
        optional C(trust.toml), or one C(.pub) file).
    type: path
    required: true
  db:
    description:
      - The database, as a libpq connection string (C(host=/var/run/postgresql
        dbname=tenant_17)) or a C(postgresql://) URL. It must name the database when
        the bundle is for a fleet.
      - Keep passwords out of it (a C(.pgpass) file, or C(PGPASSWORD) in the task's
        C(environment)), as the task's arguments are logged.
    type: str
    required: true
  params:
    description: The bundle's params, each given as C(--param NAME=VALUE).
    type: dict
    default: {}
  approvals:
    description:
      - Signed approvals for a bundle with C([ratification]) (C(--approval)), a file
        written by C(airlock approve), or a directory of them.
    type: path
  through:
    description: Apply the tiers up to and including this one only (C(--through)).
    type: str
  wait:
    description:
      - Wait up to this many seconds for the gates to say READY (C(--wait
        --wait-timeout)), polling read-only, then apply. Each database waits for its
        own gates. Still BLOCKED at the end fails the task, nothing changed.
      - Check mode does not wait; a BLOCKED gate fails it.
    type: int
  poll_interval:
    description: Seconds between two polls of the gates while waiting (C(--poll-interval)).
    type: int
    default: 60
  lock_timeout:
    description:
      - How long a statement waits for a lock, and apply for the deploy lock
        (C(--lock-timeout), e.g. C(10s), C(2m)).
    type: str
  lock_retries:
    description:
      - How many times a transaction (an online step) that could not have its lock
        within O(lock_timeout) runs again (C(--lock-retries)); airlock's default 3.
    type: int
  statement_timeout:
    description: How long each statement may run (C(--statement-timeout), e.g. C(5min)); C(0) is none.
    type: str
  gate_role:
    description:
      - The role the gates and probes run as (C(--gate-role)); default airlock's
        (C(airlock_gate) if it exists). C(airlock plan) lists the grants it needs.
    type: str
  receipt_dir:
    description:
      - The directory the receipt is written to (C(--out)); its name is unique per
        database and server, so one directory can hold a whole fleet's receipts.
        Default airlock's, C(./receipts) of the module's working directory.
    type: path
  sign_receipt:
    description:
      - Sign the receipt with this secret key (C(--sign-receipt)), a key file, a
        C(pkcs11:) URI of a key on a token, or C(ssh-agent:SHA256:...).
      - A token's PIN goes in a file only airlock's user reads, named in the URI by
        C(pin-source=file:/path/to/pin); C(pin-value=) puts it on airlock's command
        line (the task warns). The option is no_log either way, so the URI never
        shows in the task's output or log.
    type: path
  passphrase:
    description:
      - The passphrase of an encrypted O(sign_receipt) key (from a vault). It reaches
        airlock in its environment (C(AIRLOCK_PASSPHRASE)), never on its command line.
    type: str
  executable:
    description: The airlock binary, a path or a name on C(PATH).
    type: str
    default: airlock
notes:
  - Runs on the host that can reach the database (often the controller, with
    C(ansible_connection=local), one inventory host per database).
  - Supports check mode and diff mode.
seealso:
  - module: airlock.postgresql.rollback
  - module: airlock.postgresql.rehearse
  - module: airlock.postgresql.status
author:
  - airlock maintainers (@airlock)
"""

EXAMPLES = r"""
- name: Apply the release to each tenant, one at a time, stopping at the first failure
  hosts: tenants
  serial: 1
  max_fail_percentage: 0
  gather_facts: false
  tasks:
    - name: Apply
      airlock.postgresql.apply:
        bundle: /srv/releases/shop-2026.06.airlock.tar.gz
        trust: /etc/airlock/trust
        db: "host=/var/run/postgresql dbname={{ tenant_db }}"
        params:
          ticket: CHG-1234
        receipt_dir: /var/lib/airlock/receipts
        sign_receipt: /etc/airlock/operator.key
        passphrase: "{{ vault_operator_passphrase }}"

- name: Sign each receipt with a key on a token, its PIN in a file (mode 0600)
  airlock.postgresql.apply:
    bundle: /srv/releases/shop-2026.06.airlock.tar.gz
    trust: /etc/airlock/trust
    db: "dbname={{ tenant_db }}"
    sign_receipt: "pkcs11:token=ops;object=receipts?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/airlock/token.pin"

- name: Wait up to an hour per tenant for its gate, then apply
  airlock.postgresql.apply:
    bundle: /srv/releases/shop-2026.06.airlock.tar.gz
    trust: /etc/airlock/trust
    db: "dbname={{ tenant_db }}"
    wait: 3600
    poll_interval: 30
"""

RETURN = r"""
rc:
  description:
    - airlock's exit code. 0 applied; 6 with RV(refusal_kind) C(already-applied) or
      C(through-applied) is no failure (the result says C(failed=false)).
  returned: always
  type: int
  sample: 0
database:
  description:
    - The database airlock connected to. On a failure whose error document names none,
      the one C(airlock status) reaches with O(db); left out (never null) when airlock
      reached none.
  returned: when airlock reached it
  type: str
  sample: tenant_17
tiers:
  description: The tiers applied now (in check mode, that the apply would run).
  returned: success
  type: list
  elements: str
  sample: [structure, data]
receipt_file:
  description:
    - Where the receipt was written (on a failed apply, the receipt of what part of the
      run committed).
  returned: when a change was applied, or committed before a failure
  type: str
  sample: /var/lib/airlock/receipts/shop-2026.06.tenant_17@7291.apply-3.receipt.json
verdict:
  description: C(APPLIED), C(ALREADY-APPLIED), or in check mode the plan's verdict (C(GO)...).
  returned: success
  type: str
  sample: APPLIED
refusal_kind:
  description: airlock's refusal, when nothing was left to do (C(already-applied), C(through-applied)).
  returned: when the ledger refused
  type: str
  sample: already-applied
error:
  description: airlock's error (or the first check that did not pass), when the task failed.
  returned: failure
  type: str
hint:
  description: What to do next, as airlock says it.
  returned: failure, when airlock gives one
  type: str
kind:
  description: airlock's kind of error (C(name-guard), C(state-check), C(blocked), C(cannot-tell), C(usage)...).
  returned: failure
  type: str
changed_tiers:
  description:
    - On a failed apply, the tiers this run committed before the failure (airlock's
      error document, C(committed)); empty when nothing of the run committed.
  returned: failure
  type: list
  elements: str
  sample: [schema, backfill]
online_steps:
  description:
    - On a failed apply, each online tier this run did steps of and how many of its
      statements it completed (each committed on its own; a rerun goes on with the
      next).
  returned: failure
  type: dict
  sample: {index: 1}
remaining_tiers:
  description: On a failed apply, the bundle's tiers not applied on this database.
  returned: failure, when known
  type: list
  elements: str
  sample: [index]
state:
  description:
    - On a failed apply, the bundle's state in the ledger afterwards
      (C(partially-applied), C(applied), C(not-applied)...), read with C(airlock status).
  returned: failure, when the ledger could be read
  type: str
  sample: partially-applied
not_predictable:
  description:
    - In check mode, each statement plan could not predict on the data there now
      (C(file:line statement on relation, then the reason)); a rehearsal runs them.
  returned: check mode, success
  type: list
  elements: str
document:
  description:
    - The JSON document airlock printed (apply's receipt, or in check mode the plan, or
      the error document), unchanged.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.postgresql.plugins.module_utils import airlock


def argument_spec():
    spec = dict(
        bundle=dict(type="path", required=True),
        trust=dict(type="path", required=True),
        params=dict(type="dict", default={}),
        approvals=dict(type="path"),
        through=dict(type="str"),
        wait=dict(type="int"),
        poll_interval=dict(type="int", default=60),
    )
    spec.update(airlock.COMMON_ARGS)
    spec.update(airlock.RUN_ARGS)
    spec.update(airlock.DEPLOY_ARGS)
    return spec


def plan(module):
    """`airlock plan`: read-only, what an apply would do now."""
    p = module.params
    args = airlock.bundle_args(module, "plan")
    if p["approvals"]:
        args += ["--approval", p["approvals"]]
    if p["through"]:
        args += ["--through", p["through"]]
    # The receipt key too: plan judges the receipt policy with it, as apply would.
    args += airlock.run_flags(module) + airlock.sign_flags(module)
    return airlock.run(module, args, passphrase=p["passphrase"])


def not_predictable(doc):
    """The statements plan did not predict on the data there now (not predictable
    here, or not in time), each as `file:line statement on relation: reason`."""
    found = (doc.get("predictions") or {}).get("predictions") or []
    return [
        "%s:%s %s on %s: %s"
        % (x.get("file"), x.get("line"), x.get("statement"), x.get("relation"), x.get("reason"))
        for x in found
        if x.get("outcome") in ("not-predictable", "timed-out")
    ]


def diff_of(doc):
    """The ledger's applied tiers of this bundle, before and after (from a plan)."""
    before = list(doc.get("already_applied") or [])
    after = before + [t.get("name") for t in doc.get("tiers") or []]
    title = "%s %s on %s" % (
        doc.get("bundle_name"),
        doc.get("bundle_version"),
        doc.get("database"),
    )
    return dict(
        before_header="ledger of %s" % doc.get("database"),
        after_header="ledger of %s" % doc.get("database"),
        before=airlock.ledger_text(title, before),
        after=airlock.ledger_text(title, after),
    )


def check_mode(module):
    rc, doc = plan(module)
    result = dict(rc=rc, document=doc, database=doc.get("database"))
    if doc.get("refusal_kind") in airlock.NOTHING_TO_DO:
        result.update(
            changed=False,
            verdict="ALREADY-APPLIED",
            refusal_kind=doc.get("refusal_kind"),
            tiers=[],
            msg=doc.get("refusal"),
        )
    elif rc == 0 and doc.get("verdict") == "GO":
        tiers = [t.get("name") for t in doc.get("tiers") or []]
        unknown = not_predictable(doc)
        msg = "GO: apply would run %s" % (", ".join(tiers) or "nothing")
        if unknown:
            msg += (
                "; %d statement(s) not predictable here (rehearse runs them:"
                " airlock.postgresql.rehearse)" % len(unknown)
            )
            module.warn(
                "%s: %d statement(s) not predictable here, GO does not cover them: %s"
                % (doc.get("database"), len(unknown), "; ".join(unknown))
            )
        result.update(
            changed=bool(tiers),
            verdict="GO",
            tiers=tiers,
            not_predictable=unknown,
            msg=msg,
        )
    else:
        airlock.fail(module, rc, doc, database=airlock.database_of(module, doc))
    if module._diff and "tiers" in doc:
        result["diff"] = diff_of(doc)
    # rc may be airlock's 6 (a refusal that means nothing to do): say it is no failure.
    module.exit_json(failed=False, **result)


def apply(module):
    p = module.params
    args = airlock.bundle_args(module, "apply")
    if p["approvals"]:
        args += ["--approval", p["approvals"]]
    if p["through"]:
        args += ["--through", p["through"]]
    args += airlock.run_flags(module) + airlock.deploy_flags(module)
    if p["wait"] is not None:
        args += [
            "--wait",
            "--wait-timeout",
            "%ds" % max(p["wait"], 1),
            "--poll-interval",
            "%ds" % max(p["poll_interval"], 1),
        ]
    # Unattended: airlock never asks off a terminal, and --wait must not stop at a
    # question when the gate opens.
    args.append("--yes")
    before = None
    if module._diff:
        rc, before = plan(module)
    rc, doc = airlock.run(module, args, passphrase=p["passphrase"])
    result = dict(rc=rc, document=doc, database=doc.get("database"))
    if rc == 6 and doc.get("refusal_kind") in airlock.NOTHING_TO_DO:
        result.update(
            changed=False,
            verdict="ALREADY-APPLIED",
            refusal_kind=doc.get("refusal_kind"),
            tiers=[],
            msg=doc.get("error"),
        )
    elif rc == 0 and doc.get("outcome") == "applied":
        result.update(
            changed=True,
            verdict="APPLIED",
            tiers=doc.get("tiers") or [],
            receipt_file=doc.get("receipt_file"),
            msg="applied %s %s on %s: %s"
            % (
                doc.get("bundle_name"),
                doc.get("bundle_version"),
                doc.get("database"),
                ", ".join(doc.get("tiers") or []),
            ),
        )
        if doc.get("receipt_warning") or doc.get("receipt_error"):
            module.warn(doc.get("receipt_warning") or doc.get("receipt_error"))
    else:
        failed(module, rc, doc)
    if before is not None and "tiers" in before:
        result["diff"] = diff_of(before)
    # rc may be airlock's 6 (a refusal that means nothing to do): say it is no failure.
    module.exit_json(failed=False, **result)


def failed(module, rc, doc):
    """Fail the task, saying exactly what the run changed on this database (airlock's
    error document's `committed`, and the ledger's state after it) and how to go on or
    back."""
    now, reason = airlock.ledger_of(module)
    truth = airlock.what_changed(doc, now, reason)
    error, hint, kind = airlock.failure(doc)
    changed = bool(truth.get("changed_tiers")) or bool(truth.get("online_steps"))
    database = doc.get("database") or (now or {}).get("database")
    if database is not None:
        truth["database"] = database
    module.fail_json(
        msg="%s; %s" % (airlock.with_hint(error, hint), truth.pop("msg")),
        rc=rc,
        error=error,
        hint=hint,
        kind=kind,
        refusal_kind=doc.get("refusal_kind"),
        document=doc,
        changed=changed,
        **truth
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if module.params["wait"] is not None and module.params["wait"] < 1:
        module.fail_json(msg="wait must be at least 1 second (leave it out not to wait)")
    if module.params["poll_interval"] < 1:
        module.fail_json(msg="poll_interval must be at least 1 second")
    if module.check_mode:
        check_mode(module)
    else:
        apply(module)


if __name__ == "__main__":
    main()
