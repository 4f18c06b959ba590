-- Shared by the wrk scripts in bench/: the bearer token comes from the
-- environment (BENCH_TOKEN), and done() prints one machine-readable line
-- that bench/run parses:
--   RESULT <req/s> <p50 us> <p99 us> <requests> <non-2xx/3xx> <socket errors>
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
