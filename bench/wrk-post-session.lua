-- POST /api/v1/debug-sessions: every request creates a new session from the
-- auto-approved "sandbox" template on agent BENCH_AGENT (a durable write:
-- the session row and its audit events in one transaction).
dofile(os.getenv("BENCH_DIR") .. "/wrk-common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"template":"sandbox","agent":"%s","requestedDuration":"30m","reason":"wrk benchmark"}',
  os.getenv("BENCH_AGENT"))
