-- login.lua: wrk script for make bench. Each request logs in one Kakao id:
-- with probability FRESH a never-seen id (a first login), otherwise one of
-- POP ids already in the store. PREFIX ("" or e.g. "slow50.") tells the fake
-- Kakao how long to take. done() prints one "BENCH {json}" line.
local pop = tonumber(os.getenv("POP") or "100000")
local fresh = tonumber(os.getenv("FRESH") or "0.2")
local prefix = os.getenv("PREFIX") or ""
local fresh_base = tonumber(os.getenv("FRESH_BASE") or "1000000000")
local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() * 1000 + tid)
end

function request()
   local id
   if math.random() < fresh then
      counter = counter + 1
      id = fresh_base + tid * 100000000 + counter
   else
      id = math.random(1, pop)
   end
   return wrk.format("GET", "/users/kakao/login",
      { ["Authorization"] = "Bearer " .. prefix .. "valid-" .. id })
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"seconds":%.3f,"p50":%.3f,"p99":%.3f,' ..
      '"p999":%.3f,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
      '"timeout":%d}\n',
      summary.requests, summary.duration / 1e6,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000, e.connect, e.read, e.write,
      e.status, e.timeout))
end
