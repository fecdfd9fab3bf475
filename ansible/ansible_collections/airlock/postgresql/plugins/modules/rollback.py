#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: airlock maintainers
# MIT OR Apache-2.0 (see the airlock repository's LICENSE files)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollback
short_description: Roll an airlock release bundle back on one PostgreSQL database
version_added: "0.1.0"
description:
  - Runs C(airlock rollback) on the host for the database O(db) names. The bundle is
    verified, the name guard passes (the database equals or matches the bundle's
    C([target] database)), and the bundle's rollback files run in one transaction,
    checked by its rollback probe and recorded in the ledger.
  - Idempotent. A bundle the ledger holds no applied tier of is C(ok), unchanged
    (airlock's C(nothing-to-roll-back) outcome).
  - In check mode it reads the ledger (C(airlock status BUNDLE)) and reports
    C(changed) when tiers of the bundle are applied; with C(--diff) it shows them
    before and after.
  - Every failure fails the task with airlock's exit code, error and hint. A
    transactional rollback that fails changed nothing; an online rollback
    (C([rollback] online = true)) commits each step alone, so the failed result says
    what the ledger records now (RV(state), RV(applied_tiers)), and C(changed) is true
    when the run rolled tiers back before it failed.
options:
  bundle:
    description: The signed bundle file on the host.
    type: path
    required: true
  trust:
    description: The trust store on the host (a directory of C(*.pub) keys, or one C(.pub)).
    type: path
    required: true
  db:
    description:
      - The database, as a libpq connection string or a C(postgresql://) URL; it must
        name the database when the bundle is for a fleet. Keep passwords out of it.
    type: str
    required: true
  params:
    description: The bundle's params, each given as C(--param NAME=VALUE).
    type: dict
    default: {}
  lock_timeout:
    description: How long to wait for locks (C(--lock-timeout), e.g. C(10s)).
    type: str
  lock_retries:
    description: How many times a transaction that could not have its lock runs again (C(--lock-retries)).
    type: int
  statement_timeout:
    description: How long each statement may run (C(--statement-timeout), e.g. C(5min)).
    type: str
  gate_role:
    description: The role the rollback probe runs as (C(--gate-role)).
    type: str
  receipt_dir:
    description: The directory the receipt is written to (C(--out)).
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
      - The passphrase of an encrypted O(sign_receipt) key (from a vault), given to
        airlock in C(AIRLOCK_PASSPHRASE), never on its command line.
    type: str
  executable:
    description: The airlock binary, a path or a name on C(PATH).
    type: str
    default: airlock
notes:
  - Supports check mode and diff mode.
seealso:
  - module: airlock.postgresql.apply
  - module: airlock.postgresql.status
author:
  - airlock maintainers (@airlock)
"""

EXAMPLES = r"""
- name: Roll the release back on every tenant, one at a time
  hosts: tenants
  serial: 1
  max_fail_percentage: 0
  gather_facts: false
  tasks:
    - name: Roll back
      airlock.postgresql.rollback:
        bundle: /srv/releases/shop-2026.06.airlock.tar.gz
        trust: /etc/airlock/trust
        db: "dbname={{ tenant_db }}"
        receipt_dir: /var/lib/airlock/receipts
"""

RETURN = r"""
rc:
  description: airlock's exit code.
  returned: always
  type: int
  sample: 0
database:
  description: The database airlock connected to.
  returned: when airlock reached it
  type: str
  sample: tenant_17
tiers:
  description: The tiers rolled back (in check mode, the tiers applied now).
  returned: success
  type: list
  elements: str
  sample: [structure]
outcome:
  description: C(rolled-back) or C(nothing-to-roll-back) (check mode, C(would-roll-back) or C(nothing-to-roll-back)).
  returned: success
  type: str
  sample: rolled-back
receipt_file:
  description: Where the receipt was written.
  returned: when a change was rolled back
  type: str
error:
  description: airlock's error, when the task failed.
  returned: failure
  type: str
hint:
  description: What to do next, as airlock says it.
  returned: failure, when airlock gives one
  type: str
kind:
  description: airlock's kind of error.
  returned: failure
  type: str
state:
  description: On a failure, the bundle's state in the ledger afterwards.
  returned: failure, when the ledger could be read
  type: str
applied_tiers:
  description: On a failure, the bundle's tiers the ledger records as applied afterwards.
  returned: failure, when the ledger could be read
  type: list
  elements: str
document:
  description: The JSON document airlock printed (the receipt, the status, or the error), unchanged.
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
    )
    spec.update(airlock.COMMON_ARGS)
    spec.update(airlock.RUN_ARGS)
    spec.update(airlock.DEPLOY_ARGS)
    return spec


def applied_now(module):
    """The bundle's tiers the ledger holds as applied, from `airlock status BUNDLE`."""
    p = module.params
    rc, doc = airlock.run(
        module,
        ["status", p["bundle"], "--trust", p["trust"], "--db", p["db"]],
    )
    if rc != 0:
        airlock.fail(module, rc, doc)
    given = [b for b in doc.get("bundles") or [] if b.get("given")]
    applied = []
    if given and given[0].get("state") not in ("not-applied", "rolled-back"):
        applied = list(given[0].get("applied_tiers") or [])
    return rc, doc, applied


def check_mode(module):
    rc, doc, applied = applied_now(module)
    result = dict(
        rc=rc,
        document=doc,
        database=doc.get("database"),
        changed=bool(applied),
        tiers=applied,
        outcome="would-roll-back" if applied else "nothing-to-roll-back",
        msg=("would roll back %s" % ", ".join(applied)) if applied else "nothing to roll back",
    )
    if module._diff:
        title = "on %s" % doc.get("database")
        result["diff"] = dict(
            before=airlock.ledger_text(title, applied),
            after=airlock.ledger_text(title, []),
        )
    # The result says it is no failure (Ansible would judge by rc otherwise).
    module.exit_json(failed=False, **result)


def rollback(module):
    p = module.params
    args = airlock.bundle_args(module, "rollback") + ["--yes"]
    args += airlock.run_flags(module) + airlock.deploy_flags(module)
    had = airlock.ledger_of(module)[0]
    rc, doc = airlock.run(module, args, passphrase=p["passphrase"])
    if rc != 0:
        now = airlock.ledger_of(module)[0]
        truth = {}
        if now is not None:
            truth = dict(state=now["state"], applied_tiers=now["applied_tiers"])
        before = set((had or {}).get("applied_tiers") or [])
        after = set(truth["applied_tiers"]) if "applied_tiers" in truth else before
        undone = sorted(before - after)
        airlock.fail(
            module,
            rc,
            doc,
            database=doc.get("database") or (now or {}).get("database"),
            changed=bool(undone),
            **truth
        )
    outcome = doc.get("outcome")
    tiers = doc.get("tiers") or []
    result = dict(
        rc=rc,
        document=doc,
        database=doc.get("database"),
        outcome=outcome,
        changed=outcome == "rolled-back",
        tiers=tiers,
        receipt_file=doc.get("receipt_file"),
        msg=(
            "rolled back %s" % ", ".join(tiers)
            if outcome == "rolled-back"
            else "nothing to roll back"
        ),
    )
    if module._diff:
        title = "on %s" % doc.get("database")
        result["diff"] = dict(
            before=airlock.ledger_text(title, tiers),
            after=airlock.ledger_text(title, []),
        )
    # The result says it is no failure (Ansible would judge by rc otherwise).
    module.exit_json(failed=False, **result)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if module.check_mode:
        check_mode(module)
    else:
        rollback(module)


if __name__ == "__main__":
    main()
