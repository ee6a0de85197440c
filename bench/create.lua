-- wrk script: POST a new product with a sku no other request uses (thread number, counter and
-- a per-run prefix), so every request is a create.
-- Usage: wrk ... -s bench/create.lua URL -- PREFIX   (TOKEN in the environment)
local token = os.getenv("TOKEN") or ""
local prefix, counter = "b", 0

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

function init(args)
  prefix = (args[1] or "b") .. "-" .. (number or 0)
end

function request()
  counter = counter + 1
  local body = '{"sku": "' .. prefix .. "-" .. counter .. '", "name": "Bench product ' .. counter ..
    '", "price": "' .. (counter % 999 + 1) .. '.00", "stock": 5}'
  return wrk.format("POST", "/api/v1/products",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
