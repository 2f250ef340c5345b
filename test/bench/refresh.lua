-- refresh.lua: wrk script for make bench's refresh row. Each request posts
-- a refresh token to POST /users/token/refresh (form body) that has never
-- been presented, so every request rotates (one write transaction, a JWT
-- issued): a token presented twice would be a repeat (no write) or a reuse
-- (401). TOKENS holds them one a line (made by build/bulkload -s); this run
-- uses lines FIRST .. LAST (1-based), thread tid (of NTHREADS) every
-- NTHREADS-th of them, so no two threads and no two runs (warm-up, row)
-- share one. A thread out of tokens sends "exhausted", which the service
-- answers 400 or 401: the row shows errors rather than quietly measuring
-- repeats. done() prints one "BENCH {json}" line, with "exhausted": the
-- requests sent without a token.
local tokens_file = os.getenv("TOKENS")
local first = tonumber(os.getenv("FIRST") or "1")
local last = tonumber(os.getenv("LAST") or "1000000000")
local nthreads = tonumber(os.getenv("NTHREADS") or "2")
local threads = {}
local tokens = {}
local next_token = 1
exhausted = 0

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   local f = assert(io.open(tokens_file, "r"), "TOKENS: cannot open " .. tostring(tokens_file))
   local n = 0
   for line in f:lines() do
      n = n + 1
      if n > last then
         break
      end
      if n >= first and (n - first) % nthreads == tid and line ~= "" then
         table.insert(tokens, line)
      end
   end
   f:close()
   assert(#tokens > 0, "TOKENS: no token for thread " .. tid .. " in " .. tokens_file)
end

function request()
   local t = tokens[next_token]
   if t then
      tokens[next_token] = nil
      next_token = next_token + 1
   else
      t = "exhausted"
      exhausted = exhausted + 1
   end
   return wrk.format("POST", "/users/token/refresh",
      { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "refresh_token=" .. t)
end

function done(summary, latency, requests)
   local e = summary.errors
   local ex = 0
   for _, t in ipairs(threads) do
      ex = ex + (t:get("exhausted") or 0)
   end
   io.write(string.format(
      'BENCH {"requests":%d,"seconds":%.3f,"p50":%.3f,"p99":%.3f,' ..
      '"p999":%.3f,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
      '"timeout":%d,"exhausted":%d}\n',
      summary.requests, summary.duration / 1e6,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000, e.connect, e.read, e.write,
      e.status, e.timeout, ex))
end
