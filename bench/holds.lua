-- wrk script: a streaming call's billing, as pairs of requests: hold 2 tokens,
-- then settle 1 of them with the id a hold answered. A wrk thread drives many
-- connections with one Lua state, so the ids wait in a queue shared by them.
-- wrk counts requests: pairs per second are half its rate.
local token = "Bearer " .. os.getenv("BENCH_SERVICE_TOKEN")
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = token }
local hold_body = '{"account_id":"bench","tokens":2,"operation":"bench","resource":{"project":"load"}}'
local settle_body = '{"account_id":"bench","tokens":1}'
local held = {}

-- Requests are formatted per call: wrk.format needs wrk's host, which the
-- script's top level does not have yet.
request = function()
  local id = table.remove(held)
  if id then
    return wrk.format("POST", "/api/billing/credits/holds/" .. id .. "/settle", headers, settle_body)
  end
  return wrk.format("POST", "/api/billing/credits/holds", headers, hold_body)
end

response = function(status, _, body)
  -- A hold's answer has no transaction; a settlement's has one.
  if status == 201 and not body:find('"transaction"', 1, true) then
    local id = body:match('"hold":{"id":"(hold_[0-9a-f]+)"')
    if id then
      table.insert(held, id)
    end
  end
end
