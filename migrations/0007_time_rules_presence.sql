-- Issue 12: template time rules, presence and a truthful audit trail (timerules.c, core_activity.c).
-- activated_at: when the session became Active (startsAt moves to the first connection with
-- clockStartsAt: firstConnect). first_connect_at / last_input_at: from the agent's activity
-- reports. rules_at: when the reaper next looks at the session's time rules (NULL: no rule due).
ALTER TABLE sessions ADD COLUMN activated_at INTEGER;
ALTER TABLE sessions ADD COLUMN first_connect_at INTEGER;
ALTER TABLE sessions ADD COLUMN last_input_at INTEGER;
ALTER TABLE sessions ADD COLUMN rules_at INTEGER;
CREATE INDEX sessions_by_state_rules ON sessions(state, rules_at) WHERE rules_at IS NOT NULL;
ALTER TABLE participants ADD COLUMN first_connected_at INTEGER;
ALTER TABLE participants ADD COLUMN last_input_at INTEGER;
-- The SSH connections through the relay that the agent reports live, one row each.
CREATE TABLE live_conns (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    conn TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (session, conn)
);
