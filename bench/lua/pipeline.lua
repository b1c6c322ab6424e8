-- wrk script: every request is DEPTH GETs of the URL's path sent at once (HTTP/1.1 pipelining).
-- wrk counts each response, so req/s is responses per second. Usage: wrk ... -s pipeline.lua URL -- 16
local depth
function init(args)
  depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, wrk.path)
  end
  req = table.concat(r)
end

function request()
  return req
end
