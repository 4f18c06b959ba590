-- Invitations as rows, so that "sessions I am invited to" is an index probe instead of
-- parsing every session's invited JSON (the list's visibility filter did that per row).
-- sessions.invited (JSON, with roles) stays the source of truth; this table mirrors its names.
CREATE TABLE session_invites (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    who TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (session, who)
);
CREATE INDEX session_invites_who ON session_invites(who);
INSERT OR IGNORE INTO session_invites (session, who)
    SELECT s.name, json_extract(j.value, '$.who') FROM sessions s, json_each(s.invited) j
    WHERE json_extract(j.value, '$.who') IS NOT NULL;
CREATE INDEX sessions_by_template ON sessions(template);
CREATE INDEX approvals_by ON approvals(by COLLATE NOCASE);
CREATE INDEX sessions_requester_email ON sessions(requested_by_email COLLATE NOCASE);
CREATE INDEX participants_by_email ON participants(email COLLATE NOCASE);
-- (state, template) lets the list test an approver's templates from the index alone.
CREATE INDEX sessions_by_state_template ON sessions(state, template);
