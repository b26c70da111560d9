-- wrk script for benchmarks/run.py.
-- WRK_MODE: "get" (the URL as given), "cold" (the URL's path followed by a node number, cycling over
-- WRK_COLD_NODES nodes, each thread half a cycle apart: more than a replica's cache holds, so every
-- read is a cache miss), "coldlist" (the same, for a list URL ending in "offset=": a page per offset),
-- "create" (POST to the URL's path with a fresh id, of type WRK_CREATE_TYPE). WRK_RATE > 0 paces the whole run at that many requests
-- per second (a schedule of send slots per thread); 0 runs flat out. done() prints one JSON line.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_usec; } bench_timeval;
  int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end

local mode = os.getenv("WRK_MODE") or "get"
local rate = tonumber(os.getenv("WRK_RATE") or "0")
local run_tag = os.getenv("WRK_TAG") or "bench"
local cold_nodes = tonumber(os.getenv("WRK_COLD_NODES") or "1")
local create_type = os.getenv("WRK_CREATE_TYPE") or "codex.note"
local threads = {}
local counter, thread_id, interval, next_slot = 0, 0, 0, 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid or 0
  if rate > 0 then  -- each thread keeps its share of the rate
    interval = 1000 * tonumber(os.getenv("WRK_THREADS") or "2") / rate
  end
end

function request()
  counter = counter + 1
  if mode == "cold" or mode == "coldlist" then
    local threads_total = tonumber(os.getenv("WRK_THREADS") or "2")
    local n = (counter + thread_id * math.floor(cold_nodes / threads_total)) % cold_nodes
    return wrk.format("GET", wrk.path .. n)
  elseif mode == "create" then
    local id = string.format("bench.%s.%d.%d", run_tag, thread_id, counter)
    local body = '{"id":"' .. id .. '","typeId":"' .. create_type .. '","title":"Bench ' .. id ..
      '","content":"Redis sessions survive outages; PostgreSQL keeps nodes and edges.","state":"water"}'
    local headers = { ["Content-Type"] = "application/json" }
    for key, value in pairs(wrk.headers) do  -- wrk.format does not merge a given table with -H headers
      headers[key] = value
    end
    return wrk.format("POST", wrk.path, headers, body)
  end
  return wrk.format()
end

function delay()
  if interval == 0 then
    return 0
  end
  local t = now_ms()
  if next_slot < t - 1000 then
    next_slot = t  -- far behind: do not burst to catch up more than a second
  end
  local wait = next_slot - t
  next_slot = next_slot + interval
  if wait < 0 then
    return 0
  end
  return wait
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
