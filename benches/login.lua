-- POST a login mutation for the bench agency's owner.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = os.getenv("BENCH_HOST")
wrk.body = '{"query":"mutation($i: LoginInput!) { login(input: $i) { accessToken } }","variables":{"i":{"email":"owner@bench.com","password":"tundra velvet orbit 42"}}}'

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "accessToken", 1, true) then
    io.stderr:write("login failed: " .. status .. " " .. body .. "\n")
  end
end
