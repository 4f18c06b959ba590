-- Lists are ordered by insertion (rowid) newest first. An index on the filter column alone
-- keeps entries in rowid order within each value, so "state IN (...) ORDER BY rowid DESC
-- LIMIT n" walks the index instead of sorting every matching row, and count(*) is covered.
CREATE INDEX sessions_by_state ON sessions(state);
CREATE INDEX sessions_by_agent ON sessions(agent);
CREATE INDEX participants_by_user ON participants(user COLLATE NOCASE);
DROP INDEX sessions_state;
DROP INDEX sessions_agent;
