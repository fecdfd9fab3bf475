-- Gate: the Tier-3 ownership seed asserts sovereign accountability, so it may only
-- run after a human ratified the authorization model (os_proposal_approvals >= 1).
SELECT count(*) >= 1 AS ready,
       CASE WHEN count(*) >= 1
            THEN 'os_proposal_approvals = ' || count(*) || ' (ratified)'
            ELSE 'os_proposal_approvals = 0 (< 1): human L2/L4 ratification required'
       END AS reason
  FROM governance.os_proposal_approvals;
