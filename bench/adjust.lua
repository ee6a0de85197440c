-- wrk script: POST stock adjustments of +1 or -1 (alternating at random), either all on
-- product 1 ("hot") or spread at random over products 1..N ("spread").
-- Usage: wrk ... -s bench/adjust.lua URL -- hot|spread N   (TOKEN in the environment)
local mode, n = "hot", 10000
local token = os.getenv("TOKEN") or ""

function init(args)
  mode = args[1] or "hot"
  n = tonumber(args[2] or "10000")
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local id = 1
  if mode == "spread" then id = math.random(1, n) end
  local delta = (math.random(0, 1) == 0) and 1 or -1
  local body = '{"delta": ' .. delta .. ', "reason": "bench"}'
  return wrk.format("POST", "/api/v1/products/" .. id .. "/stock-adjustments",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
