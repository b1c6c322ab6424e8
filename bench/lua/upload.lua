-- wrk script: POST a body of SIZE bytes (default 10 MiB) on every request.
-- Usage: wrk ... -s upload.lua URL -- 10485760
function init(args)
  local size = tonumber(args[1]) or 10485760
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.body = string.rep("x", size)
  req = wrk.format()
end

function request()
  return req
end
