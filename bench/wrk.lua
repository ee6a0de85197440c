-- wrk script for bench/run.sh.
-- BENCH_RANDOM_PREFIX set: each request is GET <prefix><random n><BENCH_RANDOM_SUFFIX>, n in
-- 1..BENCH_RANDOM_MAX (default BENCH_ROWS: a random id). The seed is fixed (plus the thread's
-- number, so two threads do not ask the same sequence), so every run asks for the same URLs.
-- Unset: GET the URL given on the command line.
-- At the end, one machine-readable line:
--   RESULT <requests> <duration us> <p50 us> <p99 us> <mean us> <non-2xx/3xx> <socket errors>
local prefix = os.getenv("BENCH_RANDOM_PREFIX") or ""
local suffix = os.getenv("BENCH_RANDOM_SUFFIX") or ""
local rows = tonumber(os.getenv("BENCH_ROWS") or "1000000")
local max = tonumber(os.getenv("BENCH_RANDOM_MAX") or "") or rows

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

if prefix ~= "" then
  init = function(args)
    math.randomseed(20261129 + (number or 0))
  end
  request = function()
    return wrk.format("GET", prefix .. math.random(1, max) .. suffix)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.1f %.1f %.1f %d %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean,
    e.status, e.connect + e.read + e.write + e.timeout))
end
