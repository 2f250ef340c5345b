-- code.lua: wrk script for make bench's code-flow row. Each request posts
-- a fresh authorization code to POST /users/kakao/callback (form body):
-- the fake Kakao's codes work once, so every code is
-- "good-<id>.u<run>t<thread>n<counter>" (wrk's request() has no handle on
-- the connection, so the counter is per thread, which is as unique). Ids
-- are drawn like login.lua's: with probability FRESH a never-seen id,
-- otherwise one of POP ids already in the store. Every second request
-- carries a PKCE verifier: its S256 challenge goes into the code as
-- ".s<challenge>" (the fake then demands the verifier). wrk's LuaJIT has
-- no SHA-256, so bench.py computes the pairs beforehand and hands them
-- over in PAIRS, one "verifier challenge" line each. RUN makes this run's
-- codes differ from every other run's. done() prints one "BENCH {json}".
local pop = tonumber(os.getenv("POP") or "100000")
local fresh = tonumber(os.getenv("FRESH") or "0.2")
local fresh_base = tonumber(os.getenv("FRESH_BASE") or "1000000000")
local run = os.getenv("RUN") or "0"
local pairs_file = os.getenv("PAIRS")
-- https://app.example/callback, one of the service's redirect_uris
local redirect = os.getenv("REDIRECT_ENC") or "https%3A%2F%2Fapp.example%2Fcallback"
local threads = {}
local verifiers, challenges = {}, {}
local counter = 0

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() * 1000 + tid)
   local f = assert(io.open(pairs_file, "r"), "PAIRS: cannot open " .. tostring(pairs_file))
   for line in f:lines() do
      local v, c = line:match("^(%S+) (%S+)$")
      if v then
         table.insert(verifiers, v)
         table.insert(challenges, c)
      end
   end
   f:close()
   assert(#verifiers > 0, "PAIRS: no verifier/challenge pair in " .. pairs_file)
end

function request()
   local id
   counter = counter + 1
   if math.random() < fresh then
      id = fresh_base + tid * 100000000 + counter
   else
      id = math.random(1, pop)
   end
   local code = "good-" .. id .. ".u" .. run .. "t" .. tid .. "n" .. counter
   local body
   if counter % 2 == 0 then
      local k = (counter / 2) % #verifiers + 1
      body = "code=" .. code .. ".s" .. challenges[k] .. "&redirect_uri=" .. redirect ..
         "&code_verifier=" .. verifiers[k]
   else
      body = "code=" .. code .. "&redirect_uri=" .. redirect
   end
   return wrk.format("POST", "/users/kakao/callback",
      { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
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
