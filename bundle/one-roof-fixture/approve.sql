-- DEMO STAND-IN for human ratification. In production only a person, through the
-- L2/L4 ratification process, creates this row. `airlock demo` inserts it so the
-- gate can be seen turning from BLOCKED to READY on a throw-away database.
INSERT INTO governance.os_proposal_approvals (proposal, approver)
VALUES ('APR-BOOT-AUTHMODEL-1', 'demo stand-in (not a real ratification)');
