-- wrk script: POST /v1/orders/check with unique order ids (used by load_tests/run_bench.py).
--
--   wrk -t2 -c32 -d30s --latency -s load_tests/wrk_check.lua http://127.0.0.1:PORT -- RUN_ID N_ACCOUNTS
--
-- Accounts are "bench-<RUN_ID>-w<i>", i = 0..N_ACCOUNTS-1 (run_bench.py registers them on the
-- real server; the baseline accepts any id). Order ids are "<RUN_ID>-t<thread>-<n>": unique
-- per run. Side alternates buy/sell, 0.01 lot EURUSD.
--
-- Pacing (optional): with RISKACTORS_WRK_RATE=R (checks/s, all threads) and
-- RISKACTORS_WRK_THREADS=T in the environment, each thread hands out send slots every
-- T/R seconds (wrk2-like schedule through wrk's delay() hook; delay is whole ms). Plain wrk
-- is closed loop: without the variables it sends as fast as the connections allow.
-- Latency is measured by wrk from the write of a request to its response (after the delay).
--
-- Auth (optional): with RISKACTORS_WRK_API_KEY=KEY in the environment every request carries
-- "Authorization: Bearer KEY" (a router key; load_tests/scale.py runs the server with keys).
--
-- done() prints one line "WRK_JSON {...}" with exact percentiles in microseconds.

local rate = tonumber(os.getenv("RISKACTORS_WRK_RATE") or "0") or 0
local nthreads = tonumber(os.getenv("RISKACTORS_WRK_THREADS") or "1") or 1

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("tid", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

local run_id = "wrk"
local n_accounts = 1
local counter = 0
local path = "/v1/orders/check"
local headers = {["Content-Type"] = "application/json"}
local api_key = os.getenv("RISKACTORS_WRK_API_KEY")
if api_key and api_key ~= "" then
   headers["Authorization"] = "Bearer " .. api_key
end
accepts = 0
rejects = 0
others = 0

function init(args)
   run_id = args[1] or run_id
   n_accounts = tonumber(args[2] or "1") or 1
end

function request()
   counter = counter + 1
   local side = (counter % 2 == 0) and "buy" or "sell"
   local account = string.format("bench-%s-w%d", run_id, (counter * 7 + tid) % n_accounts)
   local body = string.format(
      '{"order_id":"%s-t%d-%d","account_id":"%s","instrument":"EURUSD","side":"%s","quantity":0.01}',
      run_id, tid, counter, account, side)
   return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
   if status ~= 200 then
      others = others + 1
   elseif string.find(body, '"decision":"accept"', 1, true) then
      accepts = accepts + 1
   else
      rejects = rejects + 1
   end
end

if rate > 0 then
   local ffi = require("ffi")
   ffi.cdef[[
      typedef struct { long tv_sec; long tv_nsec; } riskactors_timespec;
      int clock_gettime(int clk_id, riskactors_timespec *tp);
   ]]
   local ts = ffi.new("riskactors_timespec")
   local function now_ms()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
   end
   local interval = 1000.0 * nthreads / rate
   local next_slot = nil

   function delay()
      local t = now_ms()
      if next_slot == nil or next_slot < t - 1000.0 then
         next_slot = t -- start, or more than 1 s behind: do not burst to catch up
      end
      local slot = next_slot
      next_slot = next_slot + interval
      local d = slot - t
      if d < 0 then d = 0 end
      return d
   end
end

function done(summary, latency, requests)
   local a, r, o = 0, 0, 0
   for _, t in ipairs(threads) do
      a = a + (t:get("accepts") or 0)
      r = r + (t:get("rejects") or 0)
      o = o + (t:get("others") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p99_9":%d},' ..
      '"decisions":{"accept":%d,"reject":%d,"non_200":%d},"rate":%g}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
      latency:percentile(99.9),
      a, r, o, rate))
end
