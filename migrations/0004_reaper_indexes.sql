-- The reaper runs its queries every second under the server's one database lock.
-- Without these indexes each pass walked every Active session's row for expires_at
-- and the whole table for ended_at: about 50 ms per second with 100,000 sessions,
-- which every API request queued behind (the list's and GET's p99 showed it).
-- (state, expires_at): "Active and expires_at <= t" is an index range.
CREATE INDEX sessions_by_state_expiry ON sessions(state, expires_at);
-- (state, agent): Active sessions of the offline agents, probed per agent.
CREATE INDEX sessions_by_state_agent ON sessions(state, agent);
-- Only ended sessions have ended_at: the retention delete reads a range of this.
CREATE INDEX sessions_by_ended ON sessions(ended_at) WHERE ended_at IS NOT NULL;
