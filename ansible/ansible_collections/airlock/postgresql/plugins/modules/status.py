#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: airlock maintainers
# MIT OR Apache-2.0 (see the airlock repository's LICENSE files)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: status
short_description: Read what the airlock ledger of one PostgreSQL database records
version_added: "0.1.0"
description:
  - Runs C(airlock status) on the host for the database O(db) names and returns the
    ledger's state as facts (C(airlock_status)), each release the ledger holds, its
    state (applied, partially applied, rolled back) and applied tiers, where each
    release train stands (C(trains)), the ledger rows, and whether this host's
    remembered ledger head still holds.
  - With O(bundles), each bundle is verified and shown too (C(not-applied) when the
    ledger has no row of it), with its remaining tiers; a bundle for a fleet says
    whether this database matches it.
  - Reads only; never changes the database. A broken hash chain (O(verify_chain)) or a
    ledger that lost history this host saw fails the task with airlock's exit code 5.
options:
  db:
    description:
      - The database, as a libpq connection string or a C(postgresql://) URL.
        Keep passwords out of it.
    type: str
    required: true
  bundles:
    description: Bundle files to show (verified with O(trust)).
    type: list
    elements: path
    default: []
  trust:
    description: The trust store that verifies O(bundles) (required with them).
    type: path
  verify_chain:
    description: Check the ledger's hash chain (C(--verify-chain)).
    type: bool
    default: false
  executable:
    description: The airlock binary, a path or a name on C(PATH).
    type: str
    default: airlock
notes:
  - Supports check mode (it only reads).
seealso:
  - module: airlock.postgresql.apply
  - module: airlock.postgresql.rollback
author:
  - airlock maintainers (@airlock)
"""

EXAMPLES = r"""
- name: What each tenant's ledger says of the release
  airlock.postgresql.status:
    db: "dbname={{ tenant_db }}"
    bundles:
      - /srv/releases/shop-2026.06.airlock.tar.gz
    trust: /etc/airlock/trust
    verify_chain: true

- name: Tenants still to do
  ansible.builtin.debug:
    msg: "{{ airlock_status.bundles | selectattr('state', '!=', 'applied') | list }}"
"""

RETURN = r"""
rc:
  description: airlock's exit code.
  returned: always
  type: int
  sample: 0
database:
  description: The database read.
  returned: success
  type: str
  sample: tenant_17
ledger_exists:
  description: Whether the database has an airlock ledger.
  returned: success
  type: bool
bundles:
  description:
    - Each release the ledger holds, by its latest row (every release of a train, each with its C(train) place).
    - Each bundle given, with its state and applied tiers.
  returned: success
  type: list
  elements: dict
ansible_facts:
  description: Facts.
  returned: success
  type: complex
  contains:
    airlock_status:
      description: airlock's status document for this database (C(airlock status --json)).
      type: dict
      returned: success
error:
  description: airlock's error, when the task failed.
  returned: failure
  type: str
hint:
  description: What to do next, as airlock says it.
  returned: failure, when airlock gives one
  type: str
document:
  description: The JSON document airlock printed, unchanged.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.postgresql.plugins.module_utils import airlock


def main():
    spec = dict(
        bundles=dict(type="list", elements="path", default=[]),
        trust=dict(type="path"),
        verify_chain=dict(type="bool", default=False),
    )
    spec.update(airlock.COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if p["bundles"] and not p["trust"]:
        module.fail_json(msg="bundles needs trust: the trust store that verifies them")
    args = ["status", "--db", p["db"]] + list(p["bundles"])
    if p["bundles"]:
        args += ["--trust", p["trust"]]
    if p["verify_chain"]:
        args.append("--verify-chain")
    rc, doc = airlock.run(module, args)
    if rc != 0:
        airlock.fail(module, rc, doc, database=doc.get("database"))
    module.exit_json(
        changed=False,
        failed=False,
        rc=rc,
        document=doc,
        database=doc.get("database"),
        ledger_exists=doc.get("ledger_exists"),
        bundles=doc.get("bundles") or [],
        ansible_facts=dict(airlock_status=doc),
    )


if __name__ == "__main__":
    main()
