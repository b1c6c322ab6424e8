-- wrk script: counts responses per X-Worker header value (the worker's pid) across all wrk
-- threads and prints one "WORKER <pid> <count>" line per worker at the end.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function response(status, headers, body)
  local w = headers["X-Worker"] or headers["x-worker"]
  if w == nil then
    for k, v in pairs(headers) do
      if string.lower(k) == "x-worker" then w = v end
    end
  end
  w = w or "none"
  counts[w] = (counts[w] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    if c then
      for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
    end
  end
  for k, v in pairs(total) do
    io.write(string.format("WORKER %s %d\n", k, v))
  end
end
