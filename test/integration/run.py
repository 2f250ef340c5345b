#!/usr/bin/env python3
"""Integration test: kakao-login behind the real nginx and lighttpd.

    python3 test/integration/run.py [--build DIR]   (from the repository root, after make)

Starts, all under one temporary directory:
  - the fake Kakao (build/fake-kakao -p 0),
  - the service under the real etc/kakao-login-spawn (spawn-fcgi + multiwatch,
    2 children, threads = 4), with a generated config and secret,
  - nginx and lighttpd on free ports, each with a generated top-level config
    that includes etc/nginx/kakao-login.conf / etc/lighttpd/kakao-login.conf
    exactly as shipped.
Then runs every row of CASES through each front server, and the scenarios
below the table (identity, concurrency, refused connection, restart and
persistence, logs).  Prints "ok - NAME" or "not ok - NAME: WHY" per case and
"N passed, M failed" last; exits 1 on any failure.  Every process it started
is stopped on the way out, also on an error or Ctrl-C.

As root, the service children and the front servers' workers run as
nobody:nogroup, as they would in production (never as root).
Python 3 standard library only.
"""

import atexit
import base64
import http.client
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import codeflow  # noqa: E402
import health  # noqa: E402
import metrics  # noqa: E402
import sessions  # noqa: E402
import stack  # noqa: E402
from stack import (ISSUER, JWT_TTL, LOGIN,  # noqa: E402
                   Env, b64url_decode, free_port, procs, request)

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# Kakao ids: fresh per run (the database is fresh too), one range per front.
KID_BASE = random.randrange(10_000, 1_000_000) * 1000


# ---------------------------------------------------------------- the cases
#
# One row per behaviour of the HTTP contract, run through each front server.
# {k} in a header is replaced by a Kakao id unique to the row and the front.
# expect: a function (user JSON) -> error string or None, for 200 answers.
# max_s: the answer must come within this many seconds.

def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def raw(tok):
    return {"Authorization": tok}


def full_profile(u, k):
    want = {"nickname": "user%d" % k, "email": "user%d@example.com" % k,
            "email_verified": True}
    return diff(u, want)


def no_nickname(u, k):
    return diff(u, {"nickname": None})


def unverified(u, k):
    return diff(u, {"email_verified": False})


CASES = [
    # name                          method    path          headers                      body     status message               check
    ("login, raw token, GET",         "GET",    LOGIN,        raw("valid-{k}"),            None,    200, "SUCCESS",            full_profile),
    ("login, Bearer token, POST",     "POST",   LOGIN,        bearer("valid-{k}"),         b"",     200, "SUCCESS",            full_profile),
    ("login, bare profile",           "GET",    LOGIN,        bearer("bare-{k}"),          None,    200, "SUCCESS",            no_nickname),
    ("login, no nickname",            "POST",   LOGIN,        bearer("nonick-{k}"),        b"",     200, "SUCCESS",            no_nickname),
    ("login, unverified e-mail",      "GET",    LOGIN,        bearer("unverified-{k}"),    None,    200, "SUCCESS",            unverified),
    ("login, invalid e-mail",         "GET",    LOGIN,        bearer("invalidmail-{k}"),   None,    200, "SUCCESS",            unverified),
    ("token of another app",          "GET",    LOGIN,        bearer("foreign-{k}"),       None,    401, "WRONG_APP",          None),
    ("expired token",                 "GET",    LOGIN,        bearer("expired-{k}"),       None,    401, "NOT_FOUND_IN_KAKAO", None),
    ("unknown token",                 "GET",    LOGIN,        raw("no-such-token"),        None,    401, "NOT_FOUND_IN_KAKAO", None),
    ("Kakao answers garbage",         "GET",    LOGIN,        bearer("garbage-{k}"),       None,    502, "KAKAO_BAD_RESPONSE", None),
    ("Kakao answers no id",           "GET",    LOGIN,        bearer("noid-{k}"),          None,    502, "KAKAO_BAD_RESPONSE", None),
    ("Kakao id is a string",          "GET",    LOGIN,        bearer("strid-{k}"),         None,    502, "KAKAO_BAD_RESPONSE", None),
    ("Kakao id is negative",          "GET",    LOGIN,        bearer("negid-{k}"),         None,    502, "KAKAO_BAD_RESPONSE", None),
    ("Kakao id is a float",           "GET",    LOGIN,        bearer("floatid-{k}"),       None,    502, "KAKAO_BAD_RESPONSE", None),
    ("Kakao id is 2^64",              "GET",    LOGIN,        bearer("bigid-{k}"),         None,    502, "KAKAO_BAD_RESPONSE", None),
    ("Kakao id is zero",              "GET",    LOGIN,        bearer("zeroid-{k}"),        None,    502, "KAKAO_BAD_RESPONSE", None),
    ("Kakao answers 10 MB",           "GET",    LOGIN,        bearer("huge-{k}"),          None,    502, "KAKAO_BAD_RESPONSE|KAKAO_UNAVAILABLE", None),
    ("Kakao answer truncated",        "GET",    LOGIN,        bearer("truncated-{k}"),     None,    502, "KAKAO_BAD_RESPONSE|KAKAO_UNAVAILABLE", None),
    ("Kakao answers 503",             "GET",    LOGIN,        bearer("status503-{k}"),     None,    502, "KAKAO_UNAVAILABLE",  None),
    ("Kakao answers 429",             "GET",    LOGIN,        bearer("status429-{k}"),     None,    502, "KAKAO_UNAVAILABLE",  None),
    ("Kakao closes the connection",   "GET",    LOGIN,        bearer("close-{k}"),         None,    502, "KAKAO_UNAVAILABLE",  None),
    ("Kakao answers in 1.5 s",        "GET",    LOGIN,        bearer("slow1500.valid-{k}"), None,   504, "KAKAO_TIMEOUT",      None, 1.6),
    ("Kakao never answers",           "GET",    LOGIN,        bearer("hang-{k}"),          None,    504, "KAKAO_TIMEOUT",      None, 1.6),
    ("Kakao trickles its answer",     "GET",    LOGIN,        bearer("trickle-{k}"),       None,    504, "KAKAO_TIMEOUT",      None, 1.6),
    ("no Authorization",              "GET",    LOGIN,        {},                          None,    400, "INVALID_TOKEN",      None),
    ("Authorization: Basic",          "GET",    LOGIN,        {"Authorization": "Basic x"}, None,   400, "INVALID_TOKEN",      None),
    ("unknown route under /users/",   "GET",    "/users/nope", bearer("valid-{k}"),        None,    404, "NOT_FOUND",          None),
    ("DELETE",                        "DELETE", LOGIN,        bearer("valid-{k}"),         None,    405, "METHOD_NOT_ALLOWED", None),
    ("PUT",                           "PUT",    LOGIN,        bearer("valid-{k}"),         b"{}",   405, "METHOD_NOT_ALLOWED", None),
    ("20 KB body",                    "POST",   LOGIN,        bearer("valid-{k}"),         b"x" * 20480, 413, "TOO_LARGE",   None),
    ("64 KB body (front's limit)",    "POST",   LOGIN,        bearer("valid-{k}"),         b"x" * 65536, 413, None,          None),
    ("path outside /users/",          "GET",    "/nope",      bearer("valid-{k}"),         None,    404, None,                 None),
]


# ------------------------------------------------------------- bookkeeping

results = []            # (ok, name, why)
tokens_used = set()     # every Kakao token sent: must never reach a log
jwts_issued = set()


def report(ok, name, why=""):
    results.append((ok, name, why))
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)


def diff(got, want):
    for key, val in want.items():
        if key not in got:
            return "user.%s missing" % key
        if got[key] != val or type(got[key]) is not type(val):
            return "user.%s = %r, want %r" % (key, got[key], val)
    return None


# ------------------------------------------------------------- HTTP, JWT

def check_jwt(tok, secret, user_id):
    """-> error string or None"""
    parts = tok.split(".")
    if len(parts) != 3:
        return "JWT has %d parts" % len(parts)
    try:
        head = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError as e:
        return "JWT not base64url JSON: %s" % e
    if head.get("alg") != "HS256":
        return "JWT alg %r" % head.get("alg")
    mac = hmac.new(secret, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, b64url_decode(parts[2])):
        return "JWT signature does not verify with the secret"
    now = time.time()
    if claims.get("id") != user_id or type(claims.get("id")) is not int:
        return "claim id = %r, want %d" % (claims.get("id"), user_id)
    if claims.get("sub") != str(user_id):
        return "claim sub = %r, want %r" % (claims.get("sub"), str(user_id))
    if claims.get("iss") != ISSUER:
        return "claim iss = %r" % claims.get("iss")
    iat, exp = claims.get("iat"), claims.get("exp")
    if type(iat) is not int or abs(iat - now) > 60:
        return "claim iat = %r, now %d" % (iat, now)
    if type(exp) is not int or exp - iat != JWT_TTL:
        return "claim exp = %r, want iat + %d" % (exp, JWT_TTL)
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        return "claim jti = %r" % claims.get("jti")
    return None


def check_login(js, secret, kid, legacy=False):
    """Checks a 200 login answer; -> (error or None, user)"""
    if not isinstance(js, dict):
        return "body is not a JSON object", None
    if js.get("message") != "SUCCESS":
        return "message %r" % js.get("message"), None
    u = js.get("user")
    if not isinstance(u, dict):
        return "no user object", None
    tok = js.get("access_token")
    if not isinstance(tok, str):
        return "no access_token", u
    jwts_issued.add(tok)
    if legacy and js.get("acess_token") != tok:
        return "acess_token %r, want the access_token" % js.get("acess_token"), u
    if not legacy and "acess_token" in js:
        return "legacy acess_token present though legacy_acess_token is off", u
    if type(u.get("id")) is not int or u["id"] <= 0:
        return "user.id = %r" % u.get("id"), u
    if u.get("kakao_id") != kid:
        return "user.kakao_id = %r, want %d" % (u.get("kakao_id"), kid), u
    if u.get("status") != "active":
        return "user.status = %r" % u.get("status"), u
    for f in ("created_at", "updated_at", "last_login_at"):
        if not isinstance(u.get(f), str) or not ISO_Z.match(u[f]):
            return "user.%s = %r, want ISO 8601 Z" % (f, u.get(f)), u
    for f in ("nickname", "email", "profile_image"):
        if f not in u or not (u[f] is None or isinstance(u[f], str)):
            return "user.%s = %r, want string or null" % (f, u.get(f)), u
    if type(u.get("email_verified")) is not bool:
        return "user.email_verified = %r" % u.get("email_verified"), u
    if type(u.get("login_count")) is not int or u["login_count"] < 1:
        return "user.login_count = %r" % u.get("login_count"), u
    rt = js.get("refresh_token")
    if not isinstance(rt, str) or len(rt) != 43:
        return "refresh_token %r" % rt, u
    tokens_used.add(rt)     # the log search looks for it too
    return check_jwt(tok, secret, u["id"]), u


def expect(name, got, status, message, t_max=None):
    """-> error string or None for (status, js, raw, secs)"""
    st, js, data, secs = got
    if st != status:
        return "status %d, want %d; body %s" % (st, status, data[:200])
    if t_max is not None and secs >= t_max:
        return "answered in %.2f s, want < %.1f s" % (secs, t_max)
    if message is None:
        return None
    if not isinstance(js, dict) or not isinstance(js.get("message"), str):
        return "body is not {\"message\":...}: %s" % data[:200]
    if js["message"] not in message.split("|"):
        return "message %r, want %s" % (js["message"], message)
    return None


def login(port, tok, method="POST"):
    tokens_used.add(tok)
    return request(port, method, LOGIN, bearer(tok), b"" if method == "POST" else None)


# ------------------------------------------------------------- scenarios

def run_table(env):
    for fi, (front, port) in enumerate(env.fronts.items()):
        for ci, row in enumerate(CASES):
            name, method, path, headers, body, status, message, check = row[:8]
            t_max = row[8] if len(row) > 8 else None
            k = KID_BASE + fi * 100 + ci
            hdrs = {h: v.replace("{k}", str(k)) for h, v in headers.items()}
            if "Authorization" in hdrs:
                tokens_used.add(hdrs["Authorization"].split()[-1])
            label = "%s: %s" % (front, name)
            try:
                got = request(port, method, path, hdrs, body)
            except (OSError, http.client.HTTPException) as e:
                report(False, label, "request failed: %r" % e)
                continue
            why = expect(name, got, status, message, t_max)
            if why is None and status == 200:
                why, user = check_login(got[1], env.secret, k)
                if why is None and check is not None:
                    why = check(user, k)
            report(why is None, label, why)


def run_identity(env):
    """Same Kakao id -> same user, login_count counting, across both fronts."""
    k = KID_BASE + 900
    tok = "valid-%d" % k
    users = []
    for i, (front, port) in enumerate(list(env.fronts.items()) * 2):
        got = login(port, tok, "GET" if i % 2 else "POST")
        why = expect("", got, 200, "SUCCESS")
        if why is None:
            why, u = check_login(got[1], env.secret, k)
            users.append(u)
        if why:
            report(False, "same Kakao id, same user", "login %d via %s: %s" % (i + 1, front, why))
            return k, None
    ids = {u["id"] for u in users}
    counts = [u["login_count"] for u in users]
    created = {u["created_at"] for u in users}
    ok = len(ids) == 1 and counts == [1, 2, 3, 4] and len(created) == 1
    report(ok, "same Kakao id, same user, login_count 1..4 across both fronts",
           "ids %s, login_count %s, created_at %s" % (ids, counts, created))
    # different Kakao ids must get different users
    got = login(env.fronts["nginx"], "valid-%d" % (k + 1))
    other = got[1].get("user", {}).get("id") if isinstance(got[1], dict) else None
    report(got[0] == 200 and other is not None and other not in ids,
           "another Kakao id, another user", "status %d, user id %r vs %s" % (got[0], other, ids))
    return k, users[-1]


def run_concurrent(env, n=20):
    """n simultaneous first logins of one new Kakao id: one user, n logins."""
    k = KID_BASE + 950
    tok = "valid-%d" % k
    ports = list(env.fronts.values())
    barrier = threading.Barrier(n)
    out = [None] * n

    def one(i):
        try:
            barrier.wait(timeout=10)
            out[i] = login(ports[i % len(ports)], tok)
        except Exception as e:   # noqa: BLE001 - reported below
            out[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bad = [o if isinstance(o, Exception) else (o[0], o[2][:120])
           for o in out if isinstance(o, Exception) or o[0] != 200]
    if bad:
        report(False, "%d concurrent first logins of one Kakao id" % n,
               "%d failed, e.g. %r" % (len(bad), bad[0]))
        return
    ids = {o[1]["user"]["id"] for o in out}
    counts = sorted(o[1]["user"]["login_count"] for o in out)
    report(len(ids) == 1, "%d concurrent first logins of one Kakao id: one user id" % n,
           "user ids %s" % sorted(ids))
    report(counts == list(range(1, n + 1)),
           "%d concurrent logins: login_count 1..%d, none lost" % (n, n),
           "login_count values %s" % counts)


def run_consent(env):
    """A login where Kakao returns only the id, after a full one: the fields
    the user no longer shares are null in the answer (the record: test_store)."""
    for fi, (front, port) in enumerate(env.fronts.items()):
        k = KID_BASE + 1010 + fi
        name = "%s: consent withdrawn clears nickname, e-mail, image" % front
        got = login(port, "valid-%d" % k)
        why = expect("", got, 200, "SUCCESS")
        if why is None:
            why, u = check_login(got[1], env.secret, k)
        if why is None and not (u["nickname"] and u["email"] and u["profile_image"]
                                and u["email_verified"] is True):
            why = "first login has no full profile: %r" % u
        if why is None:
            first = u
            got = login(port, "bare-%d" % k)
            why = expect("", got, 200, "SUCCESS")
            if why is None:
                why, u = check_login(got[1], env.secret, k)
            if why is None:
                why = diff(u, {"nickname": None, "email": None,
                               "profile_image": None, "email_verified": False,
                               "id": first["id"], "login_count": 2})
        report(why is None, name, why)


# ------------------------------------------------------------- Kakao limits
#
# The reject cache, the cap on Kakao calls in flight and the profile_image
# filter, on one service process (each process has its own cache and cap),
# so the fake Kakao's request counter (GET /__stats) says exactly what a
# run of logins cost.

LIMIT_THREADS, LIMIT_CAP, LIMIT_CLIENTS = 8, 2, 8


def fake_requests(env):
    st, js, data, _ = request(env.fake_port, "GET", "/__stats")
    if st != 200 or not isinstance(js, dict):
        raise RuntimeError("fake Kakao /__stats: %d %r" % (st, data[:100]))
    return js["requests"]


def kakao_calls(env, fn):
    """Runs fn(); -> the Kakao calls it made (the /__stats after it is not
    one of them)."""
    before = fake_requests(env)
    fn()
    return fake_requests(env) - before - 1


def run_reject_cache(env, n=30):
    fronts = list(env.fronts.items())
    for kind, status, message in (("expired", 401, "NOT_FOUND_IN_KAKAO"),
                                  ("foreign", 401, "WRONG_APP")):
        tok = "%s-%d" % (kind, KID_BASE + 970)
        bad = []

        def burst():
            for i in range(n):
                front, port = fronts[i % len(fronts)]
                why = expect("", login(port, tok, "GET" if i % 2 else "POST"),
                             status, message)
                if why:
                    bad.append("%s #%d: %s" % (front, i + 1, why))
        calls = kakao_calls(env, burst)
        report(not bad, "%d logins of one %s token through both fronts: %d %s each"
               % (n, kind, status, message), "; ".join(bad[:3]))
        # Profile + token info at once (kakao_app_id is set): 2, once.
        report(calls == 2, "%d logins of one %s token cost 2 Kakao calls, not %d"
               % (n, kind, 2 * n), "%d Kakao calls" % calls)
    # Kakao's own trouble is not remembered: every login asks again.
    tok = "status503-%d" % (KID_BASE + 971)
    calls = kakao_calls(env, lambda: [login(env.fronts["nginx"], tok) for _ in range(3)])
    report(calls == 6, "a 503 from Kakao is not remembered: 3 logins, 6 Kakao calls",
           "%d Kakao calls" % calls)


def run_busy(env):
    """More slow logins at once than the cap: the cap's worth get 200
    after 1.5 s, the others 503 KAKAO_BUSY after the short wait."""
    for fi, (front, port) in enumerate(env.fronts.items()):
        barrier = threading.Barrier(LIMIT_CLIENTS)
        out = [None] * LIMIT_CLIENTS

        def one(i):
            tok = "slow1500.valid-%d" % (KID_BASE + 980 + fi * 10 + i)
            try:
                barrier.wait(timeout=10)
                out[i] = login(port, tok)
            except Exception as e:   # noqa: BLE001 - reported below
                out[i] = e
        threads = [threading.Thread(target=one, args=(i,)) for i in range(LIMIT_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        errors = [o for o in out if not isinstance(o, tuple)]
        ok = [o for o in out if isinstance(o, tuple) and o[0] == 200]
        busy = [o for o in out if isinstance(o, tuple) and o[0] == 503 and
                isinstance(o[1], dict) and o[1].get("message") == "KAKAO_BUSY"]
        other = [(o[0], o[2][:80]) for o in out if isinstance(o, tuple) and
                 o not in ok and o not in busy]
        report(not errors and not other and len(ok) == LIMIT_CAP and
               len(busy) == LIMIT_CLIENTS - LIMIT_CAP,
               "%s: %d slow logins at once, kakao_max_calls = %d: %d x 200, %d x 503 KAKAO_BUSY"
               % (front, LIMIT_CLIENTS, LIMIT_CAP, LIMIT_CAP, LIMIT_CLIENTS - LIMIT_CAP),
               "%d x 200, %d x 503 KAKAO_BUSY, other %r, errors %r"
               % (len(ok), len(busy), other[:2], errors[:2]))
        slow = [round(o[3], 2) for o in busy if o[3] >= 1.0]
        report(busy and not slow, "%s: KAKAO_BUSY is answered within 1 s (a 200 ms wait)" % front,
               "503s after %s s" % slow)


def run_cheap_routes(env, flood=48, secs=4.0, probes=12):
    """Kakao slow (2.5 s a call) and a flood of logins far above the cap:
    requests that never call Kakao are still answered at once, because
    only half the threads the cap leaves may wait for a Kakao slot and the
    other half never enter Kakao's code (kakao_gate_waiters). Through nginx
    only: lighttpd's shipped snippet caps 16 requests in progress per
    address, so the flood would be refused there before the app."""
    port = env.fronts["nginx"]
    stop = time.monotonic() + secs
    counts = {"200": 0, "503": 0, "other": 0}
    lock = threading.Lock()

    def flood_one(i):
        n = 0
        while time.monotonic() < stop:
            tok = "slow2500.valid-%d" % (KID_BASE + 700 + i)
            try:
                st = login(port, tok)[0]
            except OSError:
                st = 0
            key = str(st) if st in (200, 503) else "other"
            with lock:
                counts[key] += 1
            n += 1
    ts = [threading.Thread(target=flood_one, args=(i,)) for i in range(flood)]
    for t in ts:
        t.start()
    time.sleep(0.8)             # every slot and waiting place taken by now
    slow = []
    for i in range(probes):
        path = LOGIN if i % 2 == 0 else "/users/kakao/nope"
        want = (400, "INVALID_TOKEN") if i % 2 == 0 else (404, "NOT_FOUND")
        got = request(port, "GET", path, timeout=10)
        why = expect("cheap", got, want[0], want[1], t_max=1.0)
        if why:
            slow.append("%s: %s" % (path, why))
        time.sleep(0.1)
    for t in ts:
        t.join(15)
    report(counts["503"] > 0 and counts["other"] == 0,
           "nginx: a flood of %d slow logins saturates the Kakao slots (%d x 200, %d x 503 KAKAO_BUSY)"
           % (flood, counts["200"], counts["503"]), "counts %r" % counts)
    report(not slow, "nginx: with Kakao slots and waiting places all taken, %d requests "
           "that never call Kakao are each answered within 1 s" % probes, "; ".join(slow[:3]))


def run_max_calls_over_threads(env):
    conf = env.path("over.conf")
    with open(env.conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text + "threads = 4\nkakao_max_calls = 5\n")
    p = subprocess.run([stack.SERVICE, "-t", "-c", conf], capture_output=True,
                       text=True, timeout=10)
    report(p.returncode == 1 and "kakao_max_calls" in p.stderr,
           "kakao_max_calls above threads refuses to start (-t)",
           "exit %d, stderr %r" % (p.returncode, p.stderr[-200:]))


def run_image_scheme(env):
    k = KID_BASE + 975      # a Kakao id no other scenario logs in
    got = login(env.fronts["nginx"], "jsimage-%d" % k)
    why = expect("", got, 200, "SUCCESS")
    if why is None:
        why, u = check_login(got[1], env.secret, k)
        if why is None and u.get("profile_image") is not None:
            why = "profile_image = %r" % u["profile_image"]
    report(why is None, "a javascript: profile image from Kakao answers profile_image null", why)


def run_kakao_limits(env):
    saved = (env.children, env.threads, env.extra)
    env.children, env.threads = 1, LIMIT_THREADS
    env.extra = ["kakao_max_calls = %d" % LIMIT_CAP, "upstream_timeout_ms = 3000"]
    restart(env, "Kakao limits", "http://127.0.0.1:%d" % env.fake_port)
    try:
        run_reject_cache(env)
        run_busy(env)
        run_cheap_routes(env)
        run_max_calls_over_threads(env)
        run_image_scheme(env)
    finally:
        # The next restart (run_refused) brings the usual service back.
        env.children, env.threads, env.extra = saved


def restart(env, name, api_url, legacy=False):
    rc, secs = env.stop_service()
    report(rc == 0 and secs < 5, "%s: the spawn group stops on SIGTERM" % name,
           "exit status %r after %.1f s" % (rc, secs))
    env.write_config(api_url, legacy)
    env.start_service()
    env.wait_fronts()


def codeflow_setup(env):
    """The client secret file and the code flow's keys, for every start."""
    path = env.path("client.secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, codeflow.CLIENT_SECRET.encode() + b"\n")
    os.close(fd)
    env.own(path)
    tokens_used.add(codeflow.CLIENT_SECRET)
    env.codeflow_lines = codeflow.config_lines(path)
    env.extra = list(env.codeflow_lines)


def sessions_setup(env):
    """The admin key file (the fake Kakao's key) and the session keys, in
    every start from now on."""
    path = env.path("admin.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, sessions.ADMIN_KEY.encode() + b"\n")
    os.close(fd)
    env.own(path)
    tokens_used.add(sessions.ADMIN_KEY)
    env.codeflow_lines += sessions.config_lines(path)
    env.extra = list(env.codeflow_lines)


def sessions_restart_with(env, extra, children=2):
    env.children = children
    env.extra = list(env.codeflow_lines) + list(extra)
    restart(env, "sessions (%s)" % (", ".join(extra) or "as usual"),
            "http://127.0.0.1:%d" % env.fake_port)


def run_sessions(env):
    t = type("T", (), {})()
    t.report, t.expect, t.check_login = report, expect, check_login
    t.request, t.tokens_used, t.jwts_issued = request, tokens_used, jwts_issued
    t.restart_with = sessions_restart_with
    sessions.run_all(env, t)


def codeflow_restart(env, children=2, keys=True):
    env.children = children
    env.extra = list(env.codeflow_lines) if keys else []
    restart(env, "code flow (%d children%s)" % (children, "" if keys else ", no keys"),
            "http://127.0.0.1:%d" % env.fake_port)


def run_metrics(env):
    t = type("T", (), {})()
    t.report, t.request = report, request
    t.tokens_used, t.jwts_issued = tokens_used, jwts_issued
    metrics.run_all(env, t)


def run_codeflow(env):
    t = type("T", (), {})()
    t.report, t.expect, t.check_login = report, expect, check_login
    t.request, t.tokens_used, t.restart = request, tokens_used, codeflow_restart
    codeflow.run_all(env, t)


def health_restart(env, name, children=2):
    env.children = children
    env.extra = list(env.codeflow_lines)
    restart(env, name, "http://127.0.0.1:%d" % env.fake_port)


def run_health(env):
    t = type("T", (), {})()
    t.report, t.expect, t.request = report, expect, request
    t.tokens_used, t.restart = tokens_used, health_restart
    health.run_all(env, t)


def forge_jwt(secret, claims, alg="HS256"):
    """Our kind of JWT, signed with secret (or alg none, unsigned)."""
    enc = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
    head = enc({"alg": alg, "typ": "JWT"}) + "." + enc(claims)
    if alg == "none":
        return head + "."
    mac = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def run_users_me(env):
    """GET /users/me with our JWT, through both fronts."""
    for front, port in env.fronts.items():
        k = KID_BASE + 990 + (1 if front == "lighttpd" else 0)
        got = login(port, "valid-%d" % k)
        if got[0] != 200:
            report(False, "%s: /users/me: a login first" % front, "status %d" % got[0])
            continue
        jwt, user = got[1]["access_token"], got[1]["user"]
        me = request(port, "GET", "/users/me", {"Authorization": "Bearer " + jwt})
        why = expect("me", me, 200, "SUCCESS")
        if why is None and me[1].get("user") != user:
            why = "user %r, want the login's %r" % (me[1].get("user"), user)
        report(why is None, "%s: GET /users/me with our JWT answers the login's user" % front, why)
        now = int(time.time())
        claims = {"id": user["id"], "sub": str(user["id"]), "iat": now, "exp": now + 60,
                  "iss": ISSUER, "jti": "0" * 32}
        bad = [
            ("no Authorization", {}),
            ("the JWT raw, without Bearer", {"Authorization": jwt}),
            ("a Kakao-style token", {"Authorization": "Bearer valid-%d" % k}),
            ("a changed signature", {"Authorization": "Bearer " + jwt[:-2] + ("AA" if jwt[-2:] != "AA" else "BB")}),
            ("expired", {"Authorization": "Bearer " + forge_jwt(env.secret, dict(claims, iat=now - 7200, exp=now - 3600))}),
            ("alg none", {"Authorization": "Bearer " + forge_jwt(env.secret, claims, alg="none")}),
            ("another key", {"Authorization": "Bearer " + forge_jwt(b"x" * 64, claims)}),
            ("a user the store does not know", {"Authorization": "Bearer " + forge_jwt(
                env.secret, dict(claims, id=987654321, sub="987654321"))}),
        ]
        fails = []
        for name, hdrs in bad:
            got = request(port, "GET", "/users/me", hdrs)
            w = expect(name, got, 401, "INVALID_ACCESS_TOKEN")
            if w:
                fails.append("%s: %s" % (name, w))
        report(not fails, "%s: /users/me without, with a raw, forged, expired, alg-none, foreign-key "
               "or unknown user's JWT: 401 INVALID_ACCESS_TOKEN" % front, "; ".join(fails[:3]))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/users/me")
        r = c.getresponse()
        r.read()
        www = r.getheader("WWW-Authenticate") or ""
        c.close()
        report(r.status == 401 and www.startswith("Bearer"),
               "%s: a 401 from /users/me carries WWW-Authenticate: Bearer" % front,
               "status %d, WWW-Authenticate %r" % (r.status, www))
        got = request(port, "POST", "/users/me", {"Authorization": "Bearer " + jwt}, b"")
        why = expect("POST", got, 405, "METHOD_NOT_ALLOWED")
        report(why is None, "%s: POST /users/me: 405" % front, why)


def run_refused(env):
    closed = free_port()    # nothing listens there
    restart(env, "refused", "http://127.0.0.1:%d" % closed)
    for front, port in env.fronts.items():
        got = login(port, "valid-%d" % (KID_BASE + 960))
        why = expect("", got, 502, "KAKAO_UNAVAILABLE", 1.6)
        report(why is None, "%s: Kakao refuses connections" % front, why)


def run_persistence(env, k, before):
    restart(env, "persistence", "http://127.0.0.1:%d" % env.fake_port, legacy=True)
    got = login(env.fronts["lighttpd"], "valid-%d" % k)
    why = expect("", got, 200, "SUCCESS")
    u = None
    if why is None:
        why, u = check_login(got[1], env.secret, k, legacy=True)
    report(why is None, "legacy_acess_token = yes adds acess_token = access_token", why)
    if before is None or u is None:
        report(False, "user survives a restart", "no user to compare")
        return
    ok = (u["id"] == before["id"] and u["login_count"] == before["login_count"] + 1
          and u["created_at"] == before["created_at"])
    report(ok, "user survives a restart: same id, login_count continues",
           "before id %d count %d, after id %d count %d" % (
               before["id"], before["login_count"], u["id"], u["login_count"]))


def send_with_ids(port, ids):
    """GET /healthz with an X-Request-Id header per value of ids ->
    (status, the answer's X-Request-Id values)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.putrequest("GET", "/healthz")
        for v in ids:
            c.putheader("X-Request-Id", v)
        c.endheaders()
        r = c.getresponse()
        r.read()
        return r.status, r.headers.get_all("X-Request-Id") or []
    finally:
        c.close()


def log_line_with(env, needle, secs=3.0):
    """The service log's request line holding needle, waiting a little."""
    end = time.monotonic() + secs
    while True:
        with open(env.service_log, "rb") as f:
            for ln in f.read().decode("utf-8", "replace").splitlines():
                if " req " in ln and needle in ln:
                    return ln
        if time.monotonic() > end:
            return None
        time.sleep(0.05)


def run_request_ids(env):
    """Issue 11 item 6: every answer and its log line carry one request id:
    the front's X-Request-Id when it is plain, else one made here; and the
    client address as the front passed it."""
    made = re.compile(r"^[0-9a-f]{32}$")
    for name, port in sorted(env.fronts.items()):
        sent = "it-%s-%d" % (name, os.getpid())
        st, got = send_with_ids(port, [sent])
        ln = log_line_with(env, " id=%s " % sent)
        report(st == 200 and got == [sent] and ln is not None and
               (" id=%s client=127.0.0.1 method=GET path=/healthz status=200 " % sent) in ln,
               "%s: the front's X-Request-Id is answered and logged with the client address" % name,
               "%d %r, log %r" % (st, got, ln))
        seen = set()
        for ids, what in (([], "none sent"), (["a b\"c"], "one with a space and a quote"),
                          (["x" * 65], "one of 65 bytes"), (["dup-1", "dup-2"], "two sent")):
            st, got = send_with_ids(port, ids)
            rid = got[0] if len(got) == 1 else ""
            ln = log_line_with(env, " id=%s " % rid) if rid else None
            report(st == 200 and made.match(rid) is not None and rid not in seen and
                   ln is not None and not any(v in ln for v in ids),
                   "%s: X-Request-Id %s -> one made here, answered and logged" % (name, what),
                   "%d %r, log %r" % (st, got, ln))
            seen.add(rid)


def run_logs(env):
    logs = {"service": env.service_log,
            "nginx access": env.path("nginx", "access.log"),
            "nginx error": env.path("nginx", "error.log"),
            "lighttpd access": env.path("lighttpd", "access.log"),
            "lighttpd error": env.path("lighttpd", "error.log")}
    texts = {}
    for name, p in logs.items():
        try:
            with open(p, "rb") as f:
                texts[name] = f.read().decode("utf-8", "replace")
        except OSError:
            texts[name] = ""
    n = len(texts["service"].splitlines())
    report(n >= len(CASES), "the service logs one line per request", "%d lines in %s" % (n, env.service_log))
    san = re.findall(r"(?:AddressSanitizer|LeakSanitizer|runtime error:)[^\n]*",
                     texts["service"])
    report(not san, "no sanitizer report in the service log", "; ".join(san[:3]))
    secret = env.secret.decode()
    for name, text in texts.items():
        leaked = sorted(t for t in tokens_used if len(t) >= 6 and t in text)
        leaked += ["the JWT secret"] if secret in text else []
        leaked += ["an issued JWT"] if any(j in text for j in jwts_issued) else []
        report(not leaked, "%s log holds no token or secret" % name,
               "found %s" % ", ".join(leaked[:5]))


# ------------------------------------------------------------- main

def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        stack.set_build(sys.argv[2])
    elif len(sys.argv) != 1:
        sys.exit("usage: run.py [--build DIR]")
    for prog in (stack.SERVICE, stack.FAKE):
        if not os.access(prog, os.X_OK):
            print("%s missing: run make first" % prog, file=sys.stderr)
            return 2
    env = Env(fake_args=codeflow.FAKE_ARGS)
    atexit.register(procs.stop_all)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    # SIGINT too: a shell starts background jobs with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    keep = os.environ.get("KEEP_TMP")
    try:
        env.setup()
        codeflow_setup(env)
        sessions_setup(env)
        env.start_fake()
        env.write_config("http://127.0.0.1:%d" % env.fake_port)
        env.start_service()
        env.start_nginx()
        env.start_lighttpd()
        env.wait_fronts()
        run_table(env)
        k, last = run_identity(env)
        run_concurrent(env)
        run_metrics(env)
        run_consent(env)
        run_users_me(env)
        run_sessions(env)
        run_codeflow(env)
        run_kakao_limits(env)
        run_refused(env)
        run_persistence(env, k, last)
        run_health(env)
        run_request_ids(env)
        run_logs(env)
    except KeyboardInterrupt:
        report(False, "run", "interrupted")
        signal.signal(signal.SIGINT, signal.SIG_IGN)    # let cleanup finish
    except Exception as e:   # noqa: BLE001 - a broken setup is one failure
        report(False, "setup", "%s: %s (files in %s)" % (type(e).__name__, e, env.dir))
        keep = True
    finally:
        procs.stop_all()
        if keep:
            print("# kept %s" % env.dir)
        else:
            shutil.rmtree(env.dir, ignore_errors=True)
    passed = sum(1 for r in results if r[0])
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
