-- An approval records its approver's identity domain (DESIGN.md 5), as sessions and participants
-- do since 0005: a same-named user of another people-issuer must not see the sessions that
-- approver decided. Rows from before stay NULL, which matches any domain.
ALTER TABLE approvals ADD COLUMN by_issuer TEXT;
