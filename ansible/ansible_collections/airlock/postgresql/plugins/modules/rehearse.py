#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: airlock maintainers
# MIT OR Apache-2.0 (see the airlock repository's LICENSE files)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rehearse
short_description: Rehearse an airlock release on a throw-away clone of one PostgreSQL database
version_added: "0.1.0"
description:
  - Runs C(airlock rehearse) on the host for the database O(db) names. airlock clones
    the database on its server, applies the bundle to the clone, checks it, rolls it
    back and checks the round trip, then drops the clone; the database itself is never
    changed (the task is never C(changed)).
  - It runs what C(airlock plan) cannot predict on the data there now (statements on
    tables the release creates or fills first); the check mode of
    M(airlock.postgresql.apply) lists those in its C(not_predictable) result.
  - A rehearsal that fails (a statement that fails on the clone, a probe that does not
    hold, a round trip that does not return) fails the task with airlock's exit code,
    error and the failing step; the database is unchanged.
  - Cloning needs the server's room for a second copy of the database and the
    connecting role's right to create databases.
options:
  bundle:
    description: The signed bundle file (C(NAME-VERSION.airlock.tar.gz)) on the host.
    type: path
    required: true
  trust:
    description: The trust store on the host (a directory of C(*.pub) keys, or one C(.pub) file).
    type: path
    required: true
  db:
    description:
      - The database to rehearse on a clone of, as a libpq connection string or a
        C(postgresql://) URL. Keep passwords out of it.
    type: str
    required: true
  params:
    description: The bundle's params, each given as C(--param NAME=VALUE).
    type: dict
    default: {}
  approvals:
    description: Signed approvals for a bundle with C([ratification]) (C(--approval)).
    type: path
  require_ready:
    description:
      - Stop at a BLOCKED gate (C(--require-ready)) instead of rehearsing past it on
        the clone (airlock's default before ratification).
    type: bool
    default: false
  clone_strategy:
    description: How the clone is made (C(--clone-strategy)).
    type: str
    choices: [auto, wal_log, file_copy, dump]
    default: auto
  gate_role:
    description: The role the gates and probes run as (C(--gate-role)).
    type: str
  statement_timeout:
    description: How long each statement may run (C(--statement-timeout)).
    type: str
  executable:
    description: The airlock binary, a path or a name on C(PATH).
    type: str
    default: airlock
notes:
  - Supports check mode (it changes nothing on the database either way; it does make
    and drop a clone on its server).
seealso:
  - module: airlock.postgresql.apply
author:
  - airlock maintainers (@airlock)
"""

EXAMPLES = r"""
- name: Rehearse on the canary's clone before the rollout
  airlock.postgresql.rehearse:
    bundle: /srv/releases/shop-2026.06.airlock.tar.gz
    trust: /etc/airlock/trust
    db: "dbname={{ tenant_db }}"
    params:
      ticket: CHG-1234
"""

RETURN = r"""
rc:
  description: airlock's exit code (0 the rehearsal passed).
  returned: always
  type: int
  sample: 0
verdict:
  description: C(PASS) or C(FAIL).
  returned: always
  type: str
  sample: PASS
steps:
  description: Each step of the rehearsal as C(step verdict detail).
  returned: when airlock ran the rehearsal
  type: list
  elements: str
gates_assumed:
  description: The gate was BLOCKED and the rehearsal went past it on the clone only.
  returned: when airlock ran the rehearsal
  type: bool
error:
  description: airlock's error (or the failing step), when the task failed.
  returned: failure
  type: str
hint:
  description: What to do next, as airlock says it.
  returned: failure, when airlock gives one
  type: str
document:
  description: The JSON document airlock printed (the rehearsal report or the error), unchanged.
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
        require_ready=dict(type="bool", default=False),
        clone_strategy=dict(
            type="str", default="auto", choices=["auto", "wal_log", "file_copy", "dump"]
        ),
    )
    spec.update(airlock.COMMON_ARGS)
    spec.update(airlock.RUN_ARGS)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    args = airlock.bundle_args(module, "rehearse") + airlock.run_flags(module)
    if p["approvals"]:
        args += ["--approval", p["approvals"]]
    if p["require_ready"]:
        args.append("--require-ready")
    args += ["--clone-strategy", p["clone_strategy"]]
    rc, doc = airlock.run(module, args)
    steps = [
        "%s %s %s" % (s.get("step"), s.get("verdict"), s.get("detail"))
        for s in doc.get("steps") or []
    ]
    verdict = "PASS" if rc == 0 and doc.get("ok") else "FAIL"
    if verdict == "FAIL":
        failing = [s for s in doc.get("steps") or [] if s.get("verdict") == "FAIL"]
        error, hint, kind = airlock.failure(doc)
        if failing and "error" not in doc:
            error = "rehearsal FAIL at %s: %s" % (
                failing[0].get("step"),
                failing[0].get("detail"),
            )
        module.fail_json(
            msg="%s; the database itself is unchanged (only its clone ran the release)" % error,
            rc=rc,
            verdict=verdict,
            error=error,
            hint=hint,
            kind=kind,
            steps=steps,
            document=doc,
            changed=False,
        )
    module.exit_json(
        changed=False,
        failed=False,
        rc=rc,
        verdict=verdict,
        steps=steps,
        gates_assumed=bool(doc.get("gates_assumed")),
        document=doc,
        msg="rehearsal PASS on a clone of %s" % doc.get("target"),
    )


if __name__ == "__main__":
    main()
