"""Issue 9's integration cases: the code flow (POST /users/kakao/callback,
with PKCE, the double submit, Kakao's KOE errors, the redirect URI check)
and the id_token sign-in (POST /users/kakao/id-token: every check an
id_token must pass, the JWKS cache, key rotation, JWKS unreachable),
through the real nginx and lighttpd against the fake Kakao.

run.py calls run_all(env, t) with t its helpers (report, expect,
check_login, request, tokens_used); the service's config has the keys
of CONFIG_LINES and the fake was started with FAKE_ARGS. Standard library
only.
"""

import http.client
import json
import os
import random
import threading
import time
import urllib.parse

import oidc

CALLBACK = "/users/kakao/callback"
ID_TOKEN = "/users/kakao/id-token"
REST_KEY = "fake-rest-api-key"
NATIVE_KEY = "native-key-for-tests"
JS_KEY = "javascript-key-for-tests"
CLIENT_SECRET = "fake-client-secret-0123456789abcdef"
REDIRECT = "https://app.example/callback"
REDIRECT_DEV = "http://localhost:3000/cb?app=1"
KID_BASE = random.randrange(10_000, 1_000_000) * 1000 + 900

FAKE_ARGS = ["-k", REST_KEY, "-s", CLIENT_SECRET]


def config_lines(secret_path):
    return ["kakao_rest_api_key = %s" % REST_KEY,
            "kakao_client_secret_file = %s" % secret_path,
            "redirect_uris = %s %s" % (REDIRECT, REDIRECT_DEV),
            "kakao_native_app_keys = %s" % NATIVE_KEY,
            "kakao_javascript_key = %s" % JS_KEY]


class Ctx:
    def __init__(self, env, t):
        self.env, self.t = env, t
        self.fronts = list(env.fronts.items())
        self.next_id = KID_BASE

    def kid(self):
        self.next_id += 1
        return self.next_id

    def stats(self):
        return oidc.stats(self.env.fake_port)


def form(**fields):
    return urllib.parse.urlencode(fields).encode()


def post(t, port, path, fields=None, body=None, ctype="application/x-www-form-urlencoded",
         extra=None):
    """POSTs fields (urlencoded, or JSON when ctype says so) or a raw body."""
    for v in (fields or {}).values():
        if isinstance(v, str) and len(v) >= 6:
            t.tokens_used.add(v)
    if body is None:
        body = (json.dumps(fields).encode() if "json" in ctype else form(**fields))
    hdrs = {"Content-Type": ctype} if ctype is not None else {}
    hdrs.update(extra or {})
    return t.request(port, "POST", path, hdrs, body)


def post_no_type(port, path, body):
    """A POST with a body and no Content-Type at all."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        r = conn.getresponse()
        data, st = r.read(), r.status
    finally:
        conn.close()
    try:
        js = json.loads(data)
    except ValueError:
        js = None
    return st, js, data, time.monotonic() - t0


def calls(c, fn):
    """-> (fn's result, the fake's token_calls, jwks_calls and kapi requests during it)"""
    a = c.stats()
    out = fn()
    b = c.stats()
    # b's own /__stats request is counted in b.
    return out, b["token_calls"] - a["token_calls"], b["jwks_calls"] - a["jwks_calls"], \
        (b["requests"] - a["requests"] - 1) - (b["token_calls"] - a["token_calls"]) - \
        (b["jwks_calls"] - a["jwks_calls"])


def ok_login(c, name, got, kid):
    t = c.t
    why = t.expect(name, got, 200, "SUCCESS")
    user = None
    if why is None:
        why, user = t.check_login(got[1], c.env.secret, kid)
    return why, user


# ------------------------------------------------------------- the code flow

def run_code_good(c):
    for front, port in c.fronts:
        k = c.kid()
        code = oidc.code("good", k)
        (got, n_tok, _, n_kapi) = calls(c, lambda: post(
            c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT}))
        why, user = ok_login(c, "good code", got, k)
        c.t.report(why is None and n_tok == 1,
                   "%s: a good code (form) logs in: one exchange, the login answer" % front,
                   why or "%d token calls" % n_tok)
        # The token login of the same Kakao user finds the same user.
        got2 = c.t.request(port, "POST", "/users/kakao/login",
                           {"Authorization": "Bearer valid-%d" % k}, b"")
        c.t.tokens_used.add("valid-%d" % k)
        same = got2[0] == 200 and user is not None and got2[1]["user"]["id"] == user["id"]
        c.t.report(same, "%s: the code flow and the token login map one Kakao id to one user" % front,
                   "token login %d %r" % (got2[0], got2[2][:100]))
        k = c.kid()
        code = oidc.code("good", k)
        got = post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT_DEV},
                   ctype="application/json")
        why, _ = ok_login(c, "json", got, k)
        c.t.report(why is None, "%s: a good code as JSON, second redirect URI, logs in" % front, why)


def run_code_pkce_repeat(c):
    for front, port in c.fronts:
        k = c.kid()
        verifier, challenge = oidc.pkce_pair()
        c.t.tokens_used.add(verifier)
        code = oidc.code("good", k, challenge=challenge)
        f = {"code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        got, n1, _, _ = calls(c, lambda: post(c.t, port, CALLBACK, f))
        why, first = ok_login(c, "pkce", got, k)
        c.t.report(why is None and n1 == 1, "%s: a PKCE code with its verifier logs in" % front,
                   why or "%d token calls" % n1)
        got, n2, _, n2k = calls(c, lambda: post(c.t, port, CALLBACK, f))
        why, again = ok_login(c, "repeat", got, k)
        fresh = why is None and first is not None and again["id"] == first["id"] and \
            got[1]["access_token"] not in (None,)
        c.t.report(fresh and n2 == 0 and n2k == 0,
                   "%s: the same code and verifier again within 60 s: same user, a fresh token, "
                   "no Kakao call" % front, why or "token calls %d, kapi %d" % (n2, n2k))
        for name, extra in (("without the verifier", {}),
                            ("with another verifier", {"code_verifier": oidc.pkce_pair()[0]})):
            g = {"code": code, "redirect_uri": REDIRECT}
            g.update(extra)
            got, n3, _, _ = calls(c, lambda: post(c.t, port, CALLBACK, g))
            why = c.t.expect(name, got, 400, "INVALID_CODE")
            c.t.report(why is None and n3 == 0,
                       "%s: the same code again %s: 400 INVALID_CODE, no Kakao call" % (front, name),
                       why or "%d token calls" % n3)
        # No PKCE at all: a repeat proves nothing, so it is refused.
        k = c.kid()
        code = oidc.code("good", k)
        f = {"code": code, "redirect_uri": REDIRECT}
        post(c.t, port, CALLBACK, f)
        got, n4, _, _ = calls(c, lambda: post(c.t, port, CALLBACK, f))
        why = c.t.expect("no pkce", got, 400, "INVALID_CODE")
        c.t.report(why is None and n4 == 0,
                   "%s: a code without PKCE posted again: 400 INVALID_CODE, no Kakao call" % front,
                   why or "%d token calls" % n4)


def run_code_concurrent(c, n=2, rounds=3):
    """n submits of one code at once (React StrictMode's double submit; the
    fronts spread them over both processes): all logged in as one user, one
    Kakao exchange between them. More duplicates than a process's waiting
    places (threads - kakao_max_calls: 1 here) would be refused 503."""
    for front, port in [f for f in c.fronts for _ in range(rounds)]:
        k = c.kid()
        verifier, challenge = oidc.pkce_pair()
        c.t.tokens_used.add(verifier)
        code = oidc.code("good", k, challenge=challenge, slow_ms=400)
        f = {"code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        out = [None] * n
        barrier = threading.Barrier(n)

        def one(i):
            barrier.wait(10)
            out[i] = post(c.t, port, CALLBACK, f)

        def all_of_them():
            ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for th in ts:
                th.start()
            for th in ts:
                th.join(20)
        _, n_tok, _, _ = calls(c, all_of_them)
        ids = set()
        bad = []
        for o in out:
            if o is None:
                bad.append("no answer")
                continue
            why, u = ok_login(c, "concurrent", o, k)
            if why:
                bad.append(why)
            else:
                ids.add(u["id"])
        c.t.report(not bad and len(ids) == 1 and n_tok == 1,
                   "%s: %d concurrent submits of one code: all 200, one user, one Kakao exchange"
                   % (front, n), "bad %r, ids %r, %d token calls" % (bad[:2], ids, n_tok))


KOE_CASES = [
    ("koe320", 400, "INVALID_CODE"),
    ("koe303", 502, "KAKAO_CONFIG_ERROR"),
    ("koe006", 502, "KAKAO_CONFIG_ERROR"),
    ("koe010", 502, "KAKAO_CONFIG_ERROR"),
    ("koe101", 502, "KAKAO_CONFIG_ERROR"),
    ("status503", 502, "KAKAO_UNAVAILABLE"),
    ("garbage", 502, "KAKAO_BAD_RESPONSE"),
]


def run_code_errors(c):
    for front, port in c.fronts:
        for kind, st, msg in KOE_CASES:
            code = oidc.code(kind, c.kid())
            got = post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT})
            why = c.t.expect(kind, got, st, msg)
            c.t.report(why is None, "%s: Kakao answers %s: %d %s" % (front, kind, st, msg), why)
        code = oidc.code("good", c.kid(), slow_ms=1500)
        got = post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT})
        why = c.t.expect("slow", got, 504, "KAKAO_TIMEOUT")
        c.t.report(why is None, "%s: kauth slower than upstream_timeout_ms: 504 KAKAO_TIMEOUT" % front,
                   why)
        # A failed exchange is forgotten: the same code again asks Kakao,
        # which now says it was used.
        code = oidc.code("status503", c.kid())
        post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT})
        got, n, _, _ = calls(c, lambda: post(c.t, port, CALLBACK,
                                             {"code": code, "redirect_uri": REDIRECT}))
        why = c.t.expect("after 503", got, 400, "INVALID_CODE")
        c.t.report(why is None and n == 1,
                   "%s: a code whose exchange failed is asked again (Kakao: used)" % front,
                   why or "%d token calls" % n)


REDIRECT_VARIANTS = [
    ("a trailing slash", REDIRECT + "/"),
    ("another case", "https://App.example/callback"),
    ("an explicit port", "https://app.example:443/callback"),
    ("a query", REDIRECT + "?x=1"),
    ("a prefix", "https://app.example/call"),
    ("http for https", "http://app.example/callback"),
    ("a percent-encoding", "https://app.example/%63allback"),
]


def run_redirect_mismatch(c):
    for front, port in c.fronts:
        bad = []
        for name, uri in REDIRECT_VARIANTS:
            code = oidc.code("good", c.kid())
            got, n, _, _ = calls(c, lambda: post(c.t, port, CALLBACK,
                                                 {"code": code, "redirect_uri": uri}))
            why = c.t.expect(name, got, 400, "REDIRECT_URI_MISMATCH")
            if why or n:
                bad.append("%s: %s, %d token calls" % (name, why, n))
        c.t.report(not bad, "%s: a redirect URI differing by a slash, case, port, query, prefix, "
                   "scheme or escape: 400 REDIRECT_URI_MISMATCH, no Kakao call" % front,
                   "; ".join(bad[:3]))


def run_bad_bodies(c):
    for front, port in c.fronts:
        code = oidc.code("good", c.kid())
        cases = [
            ("text/plain", post(c.t, port, CALLBACK, body=form(code=code, redirect_uri=REDIRECT),
                                ctype="text/plain")),
            ("no Content-Type", post_no_type(port, CALLBACK,
                                             form(code=code, redirect_uri=REDIRECT))),
            ("no code", post(c.t, port, CALLBACK, {"redirect_uri": REDIRECT})),
            ("no redirect_uri", post(c.t, port, CALLBACK, {"code": code})),
            ("code twice", post(c.t, port, CALLBACK,
                                body=("code=%s&code=%s&redirect_uri=%s" % (
                                    code, code, urllib.parse.quote(REDIRECT, safe=""))).encode())),
            ("a bad escape", post(c.t, port, CALLBACK, body=b"code=%zz&redirect_uri=x")),
            ("JSON with a number", post(c.t, port, CALLBACK, body=b'{"code":1,"redirect_uri":"x"}',
                                        ctype="application/json")),
            ("JSON not an object", post(c.t, port, CALLBACK, body=b'["code"]',
                                        ctype="application/json")),
            ("a short verifier", post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT,
                                                             "code_verifier": "short"})),
        ]
        bad = [name + ": " + why for name, got in cases
               for why in [c.t.expect(name, got, 400, "BAD_REQUEST")] if why]
        c.t.report(not bad, "%s: unparseable bodies, wrong content types, missing, duplicated or "
                   "malformed fields: 400 BAD_REQUEST" % front, "; ".join(bad[:3]))
        got = c.t.request(port, "GET", CALLBACK)
        why = c.t.expect("GET", got, 405, "METHOD_NOT_ALLOWED")
        c.t.report(why is None, "%s: GET %s: 405" % (front, CALLBACK), why)


def run_code_oidc(c):
    for front, port in c.fronts:
        k = c.kid()
        nonce = "n" + os.urandom(8).hex()
        code = oidc.code("oidc", k, nonce=nonce)
        got = post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT, "nonce": nonce})
        why, _ = ok_login(c, "oidc code", got, k)
        c.t.report(why is None, "%s: a code whose answer has an id_token (nonce matching) logs in"
                   % front, why)
        code = oidc.code("oidc", c.kid(), nonce=nonce)
        got = post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT,
                                         "nonce": nonce + "x"})
        why = c.t.expect("wrong nonce", got, 401, "INVALID_ID_TOKEN")
        c.t.report(why is None, "%s: the code's id_token with another nonce: 401 INVALID_ID_TOKEN"
                   % front, why)
        # A repeat must match the first request's nonce as well as its verifier.
        k = c.kid()
        verifier, challenge = oidc.pkce_pair()
        c.t.tokens_used.add(verifier)
        code = oidc.code("oidc", k, challenge=challenge, nonce=nonce)
        f = {"code": code, "redirect_uri": REDIRECT, "code_verifier": verifier, "nonce": nonce}
        first = post(c.t, port, CALLBACK, f)
        again, n_again, _, _ = calls(c, lambda: post(c.t, port, CALLBACK, f))
        g = dict(f, nonce=nonce + "y")
        other, n_other, _, _ = calls(c, lambda: post(c.t, port, CALLBACK, g))
        why = ok_login(c, "oidc pkce", first, k)[0] or ok_login(c, "repeat", again, k)[0] or \
            c.t.expect("other nonce", other, 400, "INVALID_CODE")
        c.t.report(why is None and n_again == 0 and n_other == 0,
                   "%s: an OpenID code repeated with its verifier and nonce: the same user; "
                   "with another nonce: 400 INVALID_CODE; no Kakao call for either" % front,
                   why or "token calls %d, %d" % (n_again, n_other))
        code = oidc.code("good", c.kid())
        got = post(c.t, port, CALLBACK, {"code": code, "redirect_uri": REDIRECT, "nonce": nonce})
        why = c.t.expect("nonce, no id_token", got, 401, "INVALID_ID_TOKEN")
        c.t.report(why is None, "%s: a nonce sent but no id_token in Kakao's answer: 401" % front, why)


# ------------------------------------------------------------- id_tokens

def mint(c, **claims):
    tok = oidc.mint(c.env.fake_port, **claims)
    c.t.tokens_used.add(tok)
    return tok


def post_id(c, port, **fields):
    return post(c.t, port, ID_TOKEN, fields)


def run_id_token_good(c):
    for front, port in c.fronts:
        k = c.kid()
        for aud in (NATIVE_KEY, REST_KEY, JS_KEY):
            tok = mint(c, sub=str(k), aud=aud, nickname="idtok-%d" % k)
            post_id(c, port, id_token=tok)          # the keys are cached after the first
            got, n_tok, n_jwks, n_kapi = calls(c, lambda: post_id(c, port, id_token=tok))
            why, u = ok_login(c, "id_token", got, k)
            if why is None and u.get("nickname") != "idtok-%d" % k:
                why = "nickname %r, want the id_token's" % u.get("nickname")
            c.t.report(why is None and n_tok + n_jwks + n_kapi == 0,
                       "%s: an id_token for the %s logs in with no call to Kakao at all"
                       % (front, "native app key" if aud == NATIVE_KEY else
                          "REST API key" if aud == REST_KEY else "JavaScript key"),
                       why or "calls: token %d, jwks %d, kapi %d" % (n_tok, n_jwks, n_kapi))
        # With an access token, the profile comes from /v2/user/me.
        k = c.kid()
        tok = mint(c, sub=str(k), aud=NATIVE_KEY)
        c.t.tokens_used.add("valid-%d" % k)
        got, _, _, n_kapi = calls(c, lambda: post_id(c, port, id_token=tok,
                                                     access_token="valid-%d" % k))
        why, u = ok_login(c, "with access token", got, k)
        c.t.report(why is None and n_kapi >= 1,
                   "%s: an id_token with the user's access_token: profile from /v2/user/me" % front,
                   why or "%d kapi calls" % n_kapi)
        got = post_id(c, port, id_token=tok, access_token="valid-%d" % (k + 1))
        why = c.t.expect("other user's access token", got, 401, "INVALID_ID_TOKEN")
        c.t.report(why is None, "%s: an id_token with another user's access_token: 401" % front, why)


def bad_id_tokens(c, k):
    now = int(time.time())
    good = mint(c, sub=str(k), aud=NATIVE_KEY)
    pem = oidc.public_pem(c.env.fake_port)
    with_nonce = mint(c, sub=str(k), aud=NATIVE_KEY, nonce="right-nonce")
    return [
        ("a wrong aud", {"id_token": mint(c, sub=str(k), aud="someone-elses-app")}),
        ("a wrong iss", {"id_token": mint(c, sub=str(k), aud=NATIVE_KEY,
                                          iss="https://evil.example")}),
        ("expired", {"id_token": mint(c, sub=str(k), aud=NATIVE_KEY, iat=now - 7200,
                                      exp=now - 600)}),
        ("issued in the future", {"id_token": mint(c, sub=str(k), aud=NATIVE_KEY,
                                                   iat=now + 3600, exp=now + 7200)}),
        ("alg none", {"id_token": oidc.forge_alg_none(good)}),
        ("HS256 signed with the public key", {"id_token": oidc.forge_hs256_with_public_key(good, pem)}),
        ("an unknown kid", {"id_token": mint(c, sub=str(k), aud=NATIVE_KEY, kid="unknown")}),
        ("a tampered payload", {"id_token": oidc.tamper_payload(good)}),
        ("claims changed, old signature", {"id_token": oidc.set_claims(good, sub=str(k + 1))}),
        ("a wrong nonce", {"id_token": with_nonce, "nonce": "wrong-nonce"}),
        ("its nonce not sent", {"id_token": with_nonce}),
        ("a nonce sent, none in the token", {"id_token": good, "nonce": "right-nonce"}),
        ("not a JWT", {"id_token": "not.a.jwt"}),
    ]


def run_id_token_bad(c):
    for front, port in c.fronts:
        k = c.kid()
        bad = []
        for name, fields in bad_id_tokens(c, k):
            got = post_id(c, port, **fields)
            why = c.t.expect(name, got, 401, "INVALID_ID_TOKEN")
            if why:
                bad.append("%s: %s" % (name, why))
        c.t.report(not bad, "%s: id_tokens with a wrong aud or iss, expired, from the future, alg "
                   "none, HS256 with the public key, an unknown kid, a tampered payload, changed "
                   "claims, a wrong or missing nonce: 401 INVALID_ID_TOKEN" % front,
                   "; ".join(bad[:3]))
        got = post(c.t, port, ID_TOKEN, {"nonce": "x"})
        why = c.t.expect("no id_token", got, 400, "BAD_REQUEST")
        c.t.report(why is None, "%s: no id_token field: 400 BAD_REQUEST" % front, why)


def run_id_token_audience_log(c):
    """The operator learns which audience was seen and which are
    configured, without the token or whole keys."""
    port = c.fronts[0][1]
    tok = mint(c, sub=str(c.kid()), aud="supabase-style-rest-key")
    size = os.path.getsize(c.env.service_log)
    post_id(c, port, id_token=tok)
    time.sleep(0.2)
    with open(c.env.service_log, "rb") as f:
        f.seek(size)
        text = f.read().decode("utf-8", "replace")
    line = next((ln for ln in text.splitlines() if ID_TOKEN in ln and "INVALID_ID_TOKEN" in ln), "")
    ok = "supaba" in line and "native" in line and NATIVE_KEY not in line and tok not in line \
        and REST_KEY not in line
    c.t.report(ok, "a wrong audience is logged as the seen and configured keys' first characters, "
               "never whole", "log line %r" % line[:300])


def run_jwks_rotation_early(c):
    """Kakao rotated its key less than a minute after our last fetch: the
    new kid is refused until the minute is over (Kakao blocks clients that
    fetch too often), and unknown kids fetch nothing meanwhile."""
    fake = c.env.fake_port
    port = c.fronts[0][1]
    k = c.kid()
    c.old_token = mint(c, sub=str(k), aud=NATIVE_KEY)
    oidc.rotate(fake)
    c.new_token = mint(c, sub=str(k), aud=NATIVE_KEY)
    got, _, n_jwks, _ = calls(c, lambda: [post_id(c, port, id_token=t) for t in (
        c.new_token, mint(c, sub=str(k), aud=NATIVE_KEY, kid="unknown"))][0])
    why = c.t.expect("new kid early", got, 401, "INVALID_ID_TOKEN")
    c.t.report(why is None and n_jwks == 0,
               "a key Kakao rotated in within a minute of our last JWKS fetch: refused, no "
               "refetch yet", why or "%d JWKS fetches" % n_jwks)


def run_jwks_rotation_late(c):
    """A minute after the last fetch: an unknown kid refetches once."""
    fake = c.env.fake_port
    port = c.fronts[0][1]
    k = int(oidc.decode(c.new_token)[1]["sub"])
    got, _, n_jwks, _ = calls(c, lambda: post_id(c, port, id_token=c.new_token))
    why, _ = ok_login(c, "rotated", got, k)
    c.t.report(why is None and n_jwks == 1,
               "after the minute, the new kid refetches the JWKS once and logs in",
               why or "%d JWKS fetches" % n_jwks)
    got, _, n_jwks, _ = calls(c, lambda: [post_id(c, port, id_token=c.old_token)
                                          for _ in range(3)][-1])
    why = c.t.expect("old kid", got, 401, "INVALID_ID_TOKEN")
    c.t.report(why is None and n_jwks == 0,
               "a token of the retired kid: 401 INVALID_ID_TOKEN, no refetch",
               why or "%d JWKS fetches" % n_jwks)
    oidc.jwks_fail(fake, True)
    try:
        cur = mint(c, sub=str(k), aud=NATIVE_KEY)
        bad = []
        for front, p in c.fronts:
            got = post_id(c, p, id_token=cur)
            why, _ = ok_login(c, "cached", got, k)
            if why:
                bad.append("%s: %s" % (front, why))
        c.t.report(not bad, "JWKS unreachable, keys cached: id_tokens still log in",
                   "; ".join(bad))
        # A fresh service has no keys: it cannot verify, and says Kakao is down.
        c.t.restart(c.env, children=1)
        got = post_id(c, port, id_token=cur)
        why = c.t.expect("no keys", got, 502, "KAKAO_UNAVAILABLE")
        c.t.report(why is None, "JWKS unreachable, no keys cached: 502 KAKAO_UNAVAILABLE", why)
    finally:
        oidc.jwks_fail(fake, False)


def run_not_configured(c):
    """A service without the keys answers the new routes 501."""
    c.t.restart(c.env, children=1, keys=False)
    port = c.fronts[0][1]
    got = post(c.t, port, CALLBACK, {"code": oidc.code("good", c.kid()), "redirect_uri": REDIRECT})
    why = c.t.expect("callback", got, 501, "NOT_CONFIGURED")
    c.t.report(why is None, "no kakao_rest_api_key / redirect_uris: callback 501 NOT_CONFIGURED", why)
    got = post_id(c, port, id_token=mint(c, sub=str(c.kid()), aud=NATIVE_KEY))
    why = c.t.expect("id-token", got, 501, "NOT_CONFIGURED")
    c.t.report(why is None, "no app key at all: id-token 501 NOT_CONFIGURED", why)


def start_replay_after_window(c):
    """A PKCE login now; its replay after the window is checked at the end."""
    port = c.fronts[0][1]
    k = c.kid()
    verifier, challenge = oidc.pkce_pair()
    c.t.tokens_used.add(verifier)
    code = oidc.code("good", k, challenge=challenge)
    f = {"code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    got = post(c.t, port, CALLBACK, f)
    return (time.monotonic(), f, got[0])


def wait_until(t0, secs, why):
    left = secs - (time.monotonic() - t0)
    if left > 0:
        print("# waiting %.0f s: %s" % (left, why), flush=True)
        time.sleep(left)


def finish_replay_after_window(c, started):
    t0, f, st = started
    left = 61 - (time.monotonic() - t0)
    if left > 0:
        print("# waiting %.0f s for the 60 s replay window to pass" % left, flush=True)
        time.sleep(left)
    port = c.fronts[0][1]
    got, n, _, _ = calls(c, lambda: post(c.t, port, CALLBACK, f))
    why = c.t.expect("after window", got, 400, "INVALID_CODE")
    c.t.report(st == 200 and why is None and n == 1,
               "the same code and verifier after the 60 s window: asked again, Kakao says used: "
               "400 INVALID_CODE", why or "first %d, %d token calls" % (st, n))


def run_all(env, t):
    """Two processes for the code flow (concurrent submits meet in
    different processes), then one for the id_token cases, whose JWKS
    fetch counts must be one process's."""
    c = Ctx(env, t)
    started = start_replay_after_window(c)
    run_code_good(c)
    run_code_pkce_repeat(c)
    run_code_concurrent(c)
    run_code_errors(c)
    run_redirect_mismatch(c)
    run_bad_bodies(c)
    run_code_oidc(c)
    t.restart(env, children=1)
    port = c.fronts[0][1]
    t_fetch = time.monotonic()          # the fresh process's first JWKS fetch
    post_id(c, port, id_token=mint(c, sub=str(c.kid()), aud=NATIVE_KEY))
    run_id_token_good(c)
    run_id_token_bad(c)
    run_id_token_audience_log(c)
    run_jwks_rotation_early(c)
    wait_until(t_fetch, 62, "a minute after the last JWKS fetch")
    run_jwks_rotation_late(c)
    finish_replay_after_window(c, started)
    run_not_configured(c)
    t.restart(env, children=2)
