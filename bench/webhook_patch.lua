-- wrk script: PATCH the price of a random product among 1..N, each one a product.updated event.
-- Usage: wrk ... -s bench/webhook_patch.lua URL -- N PAUSE_MS   (TOKEN in the environment)
-- PAUSE_MS paces each connection (connections x 1000 / PAUSE_MS requests per second at most).
local token = os.getenv("TOKEN") or ""
local n, pause = 100, 0

function init(args)
  n = tonumber(args[1] or "100")
  pause = tonumber(args[2] or "0")
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function delay()
  return pause
end

function request()
  local id = math.random(1, n)
  local body = '{"price": "' .. math.random(1, 999) .. '.00"}'
  return wrk.format("PATCH", "/api/v1/products/" .. id,
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
