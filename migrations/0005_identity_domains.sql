-- A person is their username within their identity domain (DESIGN.md 5): the requester's and
-- each participant's domain are recorded, so that a same-named user of another people-issuer
-- is not taken for them. Rows from before stay NULL, which matches any domain.
ALTER TABLE sessions ADD COLUMN requested_by_issuer TEXT;
ALTER TABLE participants ADD COLUMN issuer TEXT;
