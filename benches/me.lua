-- POST `{ me { id email } }` with the bench owner's access token.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = os.getenv("BENCH_HOST")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.body = '{"query":"{ me { id email } }"}'

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "email", 1, true) then
    io.stderr:write("me failed: " .. status .. " " .. body .. "\n")
  end
end
