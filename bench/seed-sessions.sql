-- Seeds 100,000 sessions for the list benchmark (bench/run, section "api").
-- Run with the sqlite3 CLI on airlock.db while airlockd is stopped, after
-- airlockd created the schema, registered one agent and created one session
-- from each template: their rows give the resolved_template JSON snapshot
-- and the agent row (so the seeded data has the shapes airlockd writes).
--
-- What the data looks like (one session every 5 s, newest first, ~5.8 days,
-- inside the default 168h retention so the reaper deletes nothing):
--   * the newest 10,000 (~14 h): 5,000 Active (the stress case: the list's
--     count(*) and visibility checks walk all of them), 1,000 waiting for
--     approval, 1,000 Pending, the rest Terminated/Expired;
--   * the older 90,000: Expired 60 %, Terminated 30 %, Failed 10 %.
--   * templates sandbox 50 %, ci-debug 25 %, prod-readonly 25 %; 200
--     requesters (user000..user199, group developers); 5 % invite someone;
--     50 agents (host-00..host-49, offline); owner participant rows for the
--     Active sessions and half the ended ones; an approval for every decided
--     ci-debug/prod-readonly session (by lead00); 'created' plus one
--     'activated'/'expired'/'terminated'/'failed' audit event per session.
-- Rows go in oldest first, so that rowids follow creation time as they do
-- when airlockd writes them; the three sessions made through the API (the
-- newest) are moved behind the seeded ones for the same reason.
-- No ANALYZE: airlockd does not run one, so neither does the seed.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TEMP TABLE tpl AS SELECT template AS name, min(resolved_template) AS json
    FROM sessions GROUP BY template;
CREATE TEMP TABLE ag AS SELECT * FROM agents LIMIT 1;
CREATE TEMP TABLE api AS SELECT * FROM sessions;
DELETE FROM sessions;

INSERT INTO agents (name, labels, host_keys, version, registered_by, registered_at, last_seen_at,
                    credential_hash, online, offline_since)
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 49)
SELECT printf('host-%02d', i), labels, host_keys, version, registered_by, registered_at,
       last_seen_at, credential_hash, 0, NULL
FROM ag, c;

CREATE TEMP TABLE seed AS
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 99999),
p(now) AS (SELECT CAST(strftime('%s', 'now') AS INTEGER))
SELECT i,
       'ds-zz' || substr('abcdefghijklmnopqrstuvwxyz234567', ((i >> 35) & 31) + 1, 1)
               || substr('abcdefghijklmnopqrstuvwxyz234567', ((i >> 30) & 31) + 1, 1)
               || substr('abcdefghijklmnopqrstuvwxyz234567', ((i >> 25) & 31) + 1, 1)
               || substr('abcdefghijklmnopqrstuvwxyz234567', ((i >> 20) & 31) + 1, 1)
               || substr('abcdefghijklmnopqrstuvwxyz234567', ((i >> 15) & 31) + 1, 1)
               || substr('abcdefghijklmnopqrstuvwxyz234567', ((i >> 10) & 31) + 1, 1)
               || substr('abcdefghijklmnopqrstuvwxyz234567', ((i >> 5) & 31) + 1, 1)
               || substr('abcdefghijklmnopqrstuvwxyz234567', (i & 31) + 1, 1) AS name,
       CASE (i / 10) % 4 WHEN 2 THEN 'ci-debug' WHEN 3 THEN 'prod-readonly' ELSE 'sandbox' END
           AS template,
       printf('host-%02d', (i * 7) % 50) AS agent,
       printf('user%03d', (i * 37) % 200) AS user,
       now - 60 - i * 5 AS created,
       now,
       CASE WHEN i < 10000 THEN
           CASE WHEN i % 2 = 0 THEN 'Active'
                WHEN i % 10 = 1 AND (i / 10) % 4 >= 2 THEN 'PendingApproval'
                WHEN i % 10 IN (1, 3) THEN 'Pending'
                WHEN i % 10 IN (5, 7) THEN 'Terminated'
                ELSE 'Expired' END
       ELSE
           CASE WHEN i % 10 < 6 THEN 'Expired' WHEN i % 10 < 9 THEN 'Terminated' ELSE 'Failed' END
       END AS state
FROM c, p;

INSERT INTO sessions (name, template, agent, requested_by, requested_by_email, requested_by_name,
                      requester_groups, reason, requested_duration_s, invited, state, message,
                      created_at, starts_at, expires_at, renewal_count, approval_required,
                      resolved_template, ended_at, version)
SELECT s.name, s.template, s.agent, s.user, s.user || '@example.com', 'User ' || substr(s.user, 5),
       '["developers"]', 'investigating a flaky build, run ' || s.i, 1800,
       CASE WHEN s.i % 20 = 0
            THEN json_array(json_object('who', printf('user%03d', (s.i * 37 + 1) % 200),
                                        'role', 'participant'))
            ELSE '[]' END,
       s.state,
       CASE s.state WHEN 'Pending' THEN 'waiting for agent'
                    WHEN 'PendingApproval' THEN 'waiting for approval'
                    WHEN 'Failed' THEN 'agent gone'
                    WHEN 'Terminated' THEN 'terminated by ' || s.user
                    ELSE NULL END,
       s.created,
       CASE WHEN s.state IN ('Pending', 'PendingApproval') THEN NULL ELSE s.created + 20 END,
       CASE WHEN s.state = 'Active' THEN s.now + 3600 + s.i % 3600
            WHEN s.state IN ('Pending', 'PendingApproval') THEN NULL
            ELSE s.created + 20 + 1800 END,
       0, s.template <> 'sandbox', t.json,
       CASE WHEN s.state IN ('Active', 'Pending', 'PendingApproval') THEN NULL
            WHEN s.state = 'Expired' THEN min(s.created + 20 + 1800, s.now - 1)
            ELSE min(s.created + 600, s.now - 1) END,
       1
FROM seed s JOIN tpl t ON t.name = s.template
ORDER BY s.i DESC;
INSERT INTO sessions SELECT * FROM api;

INSERT INTO approvals (session, decision, by, at, reason)
SELECT name, 'approve', 'lead00', created + 10, NULL FROM seed
WHERE template <> 'sandbox' AND state <> 'PendingApproval'
ORDER BY i DESC;

INSERT INTO participants (session, user, email, display_name, role, joined_at, left_at,
                          ssh_public_key)
SELECT s.name, s.user, s.user || '@example.com', 'User ' || substr(s.user, 5), 'owner',
       s.created + 30, x.ended_at,
       'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBenchBenchBenchBench00 bench'
FROM seed s JOIN sessions x ON x.name = s.name
WHERE s.state = 'Active' OR (s.state IN ('Expired', 'Terminated') AND s.i % 2 = 0)
ORDER BY s.i DESC;

INSERT INTO events (session, at, actor, type, data)
SELECT name, created, user, 'created', json_object('template', template, 'agent', agent)
FROM seed ORDER BY i DESC;
INSERT INTO events (session, at, actor, type, data)
SELECT s.name, coalesce(x.ended_at, s.created + 20), s.user,
       CASE s.state WHEN 'Active' THEN 'activated' ELSE lower(s.state) END, '{}'
FROM seed s JOIN sessions x ON x.name = s.name
WHERE s.state IN ('Active', 'Expired', 'Terminated', 'Failed')
ORDER BY s.i DESC;
COMMIT;
SELECT (SELECT count(*) FROM sessions) || ' sessions, '
       || (SELECT count(*) FROM sessions WHERE state = 'Active') || ' Active, '
       || (SELECT count(*) FROM events) || ' events, '
       || (SELECT count(*) FROM agents) || ' agents';
