-- Initial schema (DESIGN.md section 4). Times are Unix seconds.
CREATE TABLE sessions (
    name TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    agent TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_by_email TEXT,
    requested_by_name TEXT,
    requester_groups TEXT NOT NULL DEFAULT '[]',
    reason TEXT,
    requested_duration_s INTEGER NOT NULL,
    invited TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL,
    message TEXT,
    created_at INTEGER NOT NULL,
    starts_at INTEGER,
    expires_at INTEGER,
    renewal_count INTEGER NOT NULL DEFAULT 0,
    approval_required INTEGER NOT NULL DEFAULT 0,
    resolved_template TEXT NOT NULL,
    ended_at INTEGER,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX sessions_state ON sessions(state, created_at);
CREATE INDEX sessions_agent ON sessions(agent, state);
CREATE INDEX sessions_created ON sessions(created_at, name);
CREATE INDEX sessions_requester ON sessions(requested_by COLLATE NOCASE);

CREATE TABLE approvals (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    by TEXT NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (session)
);

CREATE TABLE participants (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    user TEXT NOT NULL,
    email TEXT,
    display_name TEXT,
    role TEXT NOT NULL CHECK (role IN ('owner', 'participant', 'viewer')),
    joined_at INTEGER NOT NULL,
    left_at INTEGER,
    ssh_public_key TEXT NOT NULL,
    PRIMARY KEY (session, user)
);

CREATE TABLE renewals (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    by TEXT NOT NULL,
    at INTEGER NOT NULL,
    extend_by_s INTEGER NOT NULL,
    old_expires_at INTEGER NOT NULL,
    new_expires_at INTEGER NOT NULL
);
CREATE INDEX renewals_session ON renewals(session);

CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL DEFAULT '{}',
    host_keys TEXT NOT NULL DEFAULT '[]',
    version TEXT,
    registered_by TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    last_seen_at INTEGER,
    credential_hash TEXT NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,
    offline_since INTEGER
);

CREATE TABLE join_tickets (
    hash TEXT PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    user TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX join_tickets_session ON join_tickets(session, user);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    session TEXT REFERENCES sessions(name) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_session ON events(session, id);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT
);
