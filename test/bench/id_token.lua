-- id_token.lua: wrk script for make bench's id_token row. Each request
-- posts one of the id_tokens in TOKENS (one a line, minted by the fake
-- Kakao's /__id_token before the row, each for its own user, aud the
-- native app key) to POST /users/kakao/id-token as a form body. The tokens
-- are base64url and dots: nothing to escape. With the keys cached the
-- service calls Kakao for none of them. done() prints one "BENCH {json}".
local tokens_file = os.getenv("TOKENS")
local threads = {}
local tokens = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() * 1000 + tid)
   local f = assert(io.open(tokens_file, "r"), "TOKENS: cannot open " .. tostring(tokens_file))
   for line in f:lines() do
      if line ~= "" then
         table.insert(tokens, line)
      end
   end
   f:close()
   assert(#tokens > 0, "TOKENS: no id_token in " .. tokens_file)
end

function request()
   return wrk.format("POST", "/users/kakao/id-token",
      { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "id_token=" .. tokens[math.random(1, #tokens)])
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
