-- wrk script for benchmarks/lookup_load.py: GET requests cycling through a file of request
-- paths (one a line; each wrk thread starts at a random line), an optional header
-- ("Name: value" in LOOKUP_HEADER), and one JSON line of totals and latencies at the end.
local paths = {}
for line in io.lines(os.getenv("LOOKUP_PATHS")) do paths[#paths + 1] = line end
local header = os.getenv("LOOKUP_HEADER") or ""
local name, value = header:match("^([^:]+):%s*(.*)$")
if name then wrk.headers[name] = value end
local i = 0
init = function(args) i = math.random(#paths) end
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"socket_errors":%d,"status_errors":%d,'
    .. '"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
