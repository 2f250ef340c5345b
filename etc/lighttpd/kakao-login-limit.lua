-- kakao-login-limit.lua: kakao-login's per-client limit for lighttpd
-- (mod_magnet, Debian package lighttpd-modules-lua), run by
-- etc/lighttpd/kakao-login.conf for every request under /users/.
--
-- lighttpd 1.4.69 has no request-rate limiter (mod_evasive, a per-address
-- connection cap, was removed in 1.4.68 in favour of mod_magnet scripts
-- like this one), so this is the equivalent of nginx's limit_req: at most
-- MAX_PER_ADDR requests in progress per client address. One more is
-- answered 429 {"message":"TOO_MANY_REQUESTS"} at once, without reaching
-- the app. A request is in progress from its headers to its answer: a
-- client that holds connections open (slow bodies) counts too. It bounds
-- what one address can have in flight, not a rate: with Kakao answering in
-- 50 ms, 16 in flight is at most about 300 logins a second.
-- Behind carrier-grade NAT (mobile networks) many users share one
-- address: raise MAX_PER_ADDR if you serve them. Behind a load balancer
-- use mod_extforward first, so the address is the client's.

local MAX_PER_ADDR = 16

local r = lighty.r
local addr = r.req_attr["request.remote-addr"]
local n = 0

for other in lighty.server.irequests() do
  if other.req_attr["request.remote-addr"] == addr then
    n = n + 1    -- this request included
    if n > MAX_PER_ADDR then
      r.resp_header["Content-Type"] = "application/json"
      r.resp_header["Cache-Control"] = "no-store"
      r.resp_header["Retry-After"] = "1"
      r.resp_body:set({ '{"message":"TOO_MANY_REQUESTS"}' })
      return 429
    end
  end
end
return 0
