-- Session recordings (docs/recording.md). A recording's id is its session's rowid, so the view
-- cache's update hook drops that session's view when the recording changes. The file itself is
-- dataDir/recordings/<session>.cast; each accepted chunk is a row with its place in the file, its
-- own SHA-256 and the chain after it (chain_n = sha256(chain_{n-1} || chunk_n)).
CREATE TABLE recordings (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL UNIQUE REFERENCES sessions(name) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN ('recording', 'finished', 'stopped', 'failed')),
    bytes INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    chain TEXT NOT NULL DEFAULT '',
    integrity TEXT NOT NULL DEFAULT 'intact',
    reason TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX recordings_open ON recordings (state) WHERE state = 'recording';
CREATE TABLE recording_chunks (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    chain TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (session, seq)
) WITHOUT ROWID;
