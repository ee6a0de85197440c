-- wrk script for bench/run.sh.
-- BENCH_RANDOM_PREFIX set: each request is GET <prefix><random id in 1..BENCH_ROWS> (a fixed
-- seed, so every run asks for the same ids). Unset: GET the URL given on the command line.
-- At the end, one machine-readable line:
--   RESULT <requests> <duration us> <p50 us> <p99 us> <mean us> <non-2xx/3xx> <socket errors>
local prefix = os.getenv("BENCH_RANDOM_PREFIX") or ""
local rows = tonumber(os.getenv("BENCH_ROWS") or "1000000")

if prefix ~= "" then
  math.randomseed(20261129)
  request = function()
    return wrk.format("GET", prefix .. math.random(1, rows))
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.1f %.1f %.1f %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean,
    e.status, e.connect + e.read + e.write + e.timeout))
end
