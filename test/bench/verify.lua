-- verify.lua: wrk script for make bench's /auth/verify rows. Each request
-- is what nginx's auth_request sends for a protected request: GET
-- /auth/verify, no body, with one of the JWTs in JWTS (one a line: the
-- access_tokens of logins made through the service before the row, each a
-- live session) as Authorization: Bearer. A valid one is answered 204
-- (X-User-Id, X-Kakao-Id); anything else would be 401, an error in the
-- row. With URI set (e.g. /private/bench.txt) the same requests go to a
-- location protected by auth_request (etc/nginx/auth-request-example.conf):
-- nginx's subrequest to /auth/verify, then a static file, 200.
-- done() prints one "BENCH {json}" line.
local jwts_file = os.getenv("JWTS")
local uri = os.getenv("URI") or "/auth/verify"
local threads = {}
local jwts = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() * 1000 + tid)
   local f = assert(io.open(jwts_file, "r"), "JWTS: cannot open " .. tostring(jwts_file))
   for line in f:lines() do
      if line ~= "" then
         table.insert(jwts, line)
      end
   end
   f:close()
   assert(#jwts > 0, "JWTS: no JWT in " .. jwts_file)
end

function request()
   return wrk.format("GET", uri,
      { ["Authorization"] = "Bearer " .. jwts[math.random(1, #jwts)] })
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
