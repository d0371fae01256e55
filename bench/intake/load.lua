-- wrk script for bench/intake: POST distinct bodies, count non-201 answers, print one JSON line.
-- env: BENCH_BODIES (file: one JSON body per line, county_no = "@@NO@@"), BENCH_PATH, BENCH_HEADERS
-- ("Name: value" pairs separated by "|"), BENCH_PREFIX (county_no prefix, unique per run),
-- BENCH_THREADS (wrk -t, so each thread takes every n-th body), BENCH_SKIP (bodies used by earlier runs).
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS"))
  bodies = {}
  -- skip the bodies earlier runs used, then take every n-th line from this thread's
  local skip = tonumber(os.getenv("BENCH_SKIP") or "0")
  local i = 0
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if i >= skip and (i - skip) % n == tid then table.insert(bodies, line) end
    i = i + 1
  end
  path = os.getenv("BENCH_PATH")
  prefix = os.getenv("BENCH_PREFIX") .. "-" .. tid .. "-"
  hdrs = {["Content-Type"] = "application/json; charset=utf-8"}
  for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
    local k, v = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
    hdrs[k] = v
  end
  sent, ok, bad, first_bad = 0, 0, 0, ""
end

function request()
  sent = sent + 1
  local body = bodies[(sent - 1) % #bodies + 1]
  body = string.gsub(body, "@@NO@@", prefix .. sent, 1)
  return wrk.format("POST", path, hdrs, body)
end

function response(status, headers, body)
  if status == 201 then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

local function jstr(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local ok_t, bad_t, sent_t, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    ok_t = ok_t + t:get("ok")
    bad_t = bad_t + t:get("bad")
    sent_t = sent_t + t:get("sent")
    if first == "" then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format('BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"ok":%d,"bad":%d,"sent":%d,'
    .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"first_bad":%s}\n',
    summary.requests, summary.duration, summary.bytes, ok_t, bad_t, sent_t, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, jstr(first)))
end
