PREFIX = "w00b"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
local function unique_key()
  counter = counter + 1
  return string.format("%s%02d%010d", PREFIX, tid, counter)
end
request = function()
  return wrk.format(nil, nil, nil, '{"key":"' .. unique_key() .. '","value":"dg=="}')
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('VSETCD {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
local shown = 0
response = function(status, headers, body)
  if shown < 3 then shown = shown + 1; io.write(status .. " " .. body .. "\n") end
end
