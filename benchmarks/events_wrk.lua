-- wrk script for benchmarks/events_load.py --client wrk: single-event POST /v1/events
-- with a fresh event_id per request. Arguments (after `--`): API key, run tag, users.
-- Prints one JSON line at the end: requests, acked events, non-200 answers, latencies (us).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  key, tag, users = args[1], args[2], tonumber(args[3] or "50000")
  acked, bad = 0, 0
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("%s-w%d-", tag, tid)
  headers = {["Content-Type"] = "application/json", ["X-API-Key"] = key}
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"event_id":"%s%d","user_id":"U%06d","item_id":"I%06d","type":"view"}',
    prefix, counter, math.random(0, users - 1), math.random(0, 999))
  return wrk.format("POST", "/v1/events", headers, body)
end

function response(status, hdrs, body)
  if status == 200 then
    local n = string.match(body, '"accepted":(%d+)')
    acked = acked + (tonumber(n) or 0)
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked")
    b = b + t:get("bad")
  end
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"acked":%d,"non_200":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, a, b,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
