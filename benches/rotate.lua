-- POST one GraphQL query, rotating over the agencies listed in BENCH_TARGETS
-- (lines of "host header-name header-value"), one per request.
local targets = {}
for line in io.lines(os.getenv("BENCH_TARGETS")) do
  local host, name, value = line:match("^(%S+) (%S+) (.+)$")
  table.insert(targets, { host = host, name = name, value = value })
end
local body = os.getenv("BENCH_BODY")
local i = 0

request = function()
  i = i % #targets + 1
  local t = targets[i]
  local headers = { ["Host"] = t.host, ["Content-Type"] = "application/json" }
  headers[t.name] = t.value
  return wrk.format("POST", "/graphql", headers, body)
end

response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    io.stderr:write("bad answer: " .. status .. " " .. body:sub(1, 300) .. "\n")
  end
end
