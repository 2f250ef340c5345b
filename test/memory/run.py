#!/usr/bin/env python3
"""Memory test of kakao-login.

    python3 test/memory/run.py [BUILD_DIR]      (from the repository root, after make)

(a) memcheck: ONE service process, BUILD_DIR/kakao-login -s SOCKET with
    threads = 4, run directly under
        valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
                 --error-exitcode=99 --suppressions=test/memory/valgrind.supp
    against the fake Kakao, driven straight on its Unix socket by the
    FastCGI client of test/hostile/fcgiclient.py from 8 threads: MEMCHECK_N
    (20,000) requests of mixed good and bad input (logins of ~3,000 Kakao
    ids, bad and missing tokens, Kakao errors, time-outs, 404, 405, 413,
    malformed FastCGI; and issue 9's routes: codes with and without PKCE,
    their repeats, OpenID Connect codes, KOE errors, redirect mismatches,
    bad bodies, good and bad id_tokens, an id_token with an access token),
    then SIGTERM. Passes when every request was answered as it must be, the
    process exits 0, and valgrind reports no definite or indirect leak and
    no error.
(b) resident memory: the normal build (BUILD_DIR) under the real
    etc/kakao-login-spawn (2 children x 4 threads) behind the real nginx;
    wrk (Lua script: GET logins, Kakao id varying over 10,000 ids) sends
    RSS_WARMUP (150,000) requests, the workers' RSS is sampled, then the rest
    up to RSS_TOTAL (400,000), and RSS is sampled again: the workers'
    private memory (RssAnon: heap, stacks) must be within 5% of the
    warm-up value. Their file-backed pages (RssFile) are the Berkeley DB
    regions every worker maps (cache, locks, log: fixed sizes set at open);
    they fill as every login adds a session to a growing database, so they
    are reported, and checked only against the regions' size, not for
    flatness. The warm-up is long enough for the private memory to settle:
    measured over 500,000 logins, the two workers' RssAnon was 5,444 kB
    after 20,000, 5,796 after 80,000, 5,944 after 140,000, 5,960 after
    200,000 and 6,000 after 500,000 (a plateau, not a slope).

Prints "ok - NAME" / "not ok - NAME: WHY" and "N passed, M failed" last;
exits 1 on any failure. Stops what it started and removes its temporary
directories also on an error or Ctrl-C (KEEP_TMP=1 keeps them).
Environment: MEMCHECK_N, RSS_WARMUP, RSS_TOTAL override the counts.
Python 3 standard library, valgrind and wrk (Debian packages).
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
TEST = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TEST, "integration"))
sys.path.insert(0, os.path.join(TEST, "hostile"))
import stack  # noqa: E402
import codeflow  # noqa: E402
import oidc  # noqa: E402
import fcgiclient as fc  # noqa: E402
from stack import LOGIN, Env, procs, worker_pids  # noqa: E402

SUPP = os.path.join(HERE, "valgrind.supp")
MEMCHECK_N = int(os.environ.get("MEMCHECK_N", 20000))
MEMCHECK_CONC = 8
RSS_WARMUP = int(os.environ.get("RSS_WARMUP", 150000))
RSS_TOTAL = int(os.environ.get("RSS_TOTAL", 400000))
RSS_IDS = 10000
RSS_TOLERANCE = 0.05

results = []
envs = []


def report(ok, name, why=""):
    results.append((ok, name, why))
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)


def note(text):
    print("# " + text, flush=True)


# ------------------------------------------------------------- (a) memcheck

# One kind of request per slot of a cycle of CYCLE: (kind, params builder,
# expected statuses). Slots 0-39 are the token login, about half of them
# good; slots 40-63 are issue 9's routes (see mix_codeflow), about half good;
# slots 64-71 issue 10's (see mix_sessions). A step's bytes may be a function
# of the answers so far (a refresh needs the login's refresh token).
CYCLE = 72
CALLBACK, ID_TOKEN = codeflow.CALLBACK, codeflow.ID_TOKEN
FORM = "application/x-www-form-urlencoded"


def _req(method="GET", uri=LOGIN, auth=None, body=b""):
    return fc.request_bytes(method, uri, auth, body)


def _post(uri, body, ctype=FORM):
    """A POST with this body and Content-Type (None: no Content-Type)."""
    if isinstance(body, dict):
        body = codeflow.form(**body)
    pairs = [(n, (ctype or "") if n == "CONTENT_TYPE" else v)
             for n, v in fc.cgi_params("POST", uri, None, body)]
    return fc.begin() + fc.params(pairs) + fc.stdin(body)


class Tokens:
    """id_tokens minted by the fake before the run (minting is an RSA
    signature in the fake: not per request), and forged ones."""
    IDS = 100

    def __init__(self, fake_port):
        native, rest = codeflow.NATIVE_KEY, codeflow.REST_KEY
        now = int(time.time())
        self.ids = [1_000_000 + j * 30 for j in range(self.IDS)]
        self.native = [oidc.mint(fake_port, sub=str(k), aud=native,
                                 nickname="mc-%d" % k) for k in self.ids]
        self.rest = [oidc.mint(fake_port, sub=str(k), aud=rest) for k in self.ids[:10]]
        self.nonce = [oidc.mint(fake_port, sub=str(k), aud=native, nonce="mc-nonce")
                      for k in self.ids[:10]]
        good, k = self.native[0], self.ids[0]
        self.bad = [
            ("a wrong aud", oidc.mint(fake_port, sub=str(k), aud="someone-elses-app")),
            ("a wrong iss", oidc.mint(fake_port, sub=str(k), aud=native, iss="https://evil.example")),
            ("expired", oidc.mint(fake_port, sub=str(k), aud=native, iat=now - 7200,
                                  exp=now - 600)),
            ("alg none", oidc.forge_alg_none(good)),
            ("HS256 with the public key",
             oidc.forge_hs256_with_public_key(good, oidc.public_pem(fake_port))),
            ("an unknown kid", oidc.mint(fake_port, sub=str(k), aud=native, kid="unknown")),
            ("a tampered payload", oidc.tamper_payload(good)),
            ("claims changed", oidc.set_claims(good, sub=str(k + 1))),
            ("not a JWT", "not.a.jwt"),
            ("not base64", "e30.%%%.x"),
        ]


TOKENS = None           # set by memcheck() once the fake is up


def _code(kind, kid, i, n=0, **kw):
    """A code of the fake unique to request i (and step n)."""
    return oidc.code(kind, kid, tag="m%dx%d" % (i, n), **kw)


def mix_codeflow(r, i, kid):
    """Slots 40..63: -> (kind, [(bytes, statuses), ...]); the steps of one
    slot go in order, on one thread (a repeat follows its first post)."""
    redirect, dev = codeflow.REDIRECT, codeflow.REDIRECT_DEV
    verifier, challenge = oidc.pkce_pair()
    pkce = _code("good", kid, i, challenge=challenge)
    plain = _code("good", kid, i)
    tk = TOKENS
    j = i // CYCLE
    t = j % tk.IDS
    tkid = tk.ids[t]
    bad_body = [
        ("no code", {"redirect_uri": redirect}),
        ("a bad escape", b"code=%zz&redirect_uri=x"),
        ("code twice", ("code=%s&code=%s&redirect_uri=%s" % (
            plain, plain, "https%3A%2F%2Fapp.example%2Fcallback")).encode()),
        ("a short verifier", {"code": plain, "redirect_uri": redirect, "code_verifier": "short"}),
        ("no redirect_uri", {"code": plain}),
        ("an empty body", b""),
    ][j % 6]
    table = {
        40: ("code", [(_post(CALLBACK, {"code": plain, "redirect_uri": redirect}), {200})]),
        41: ("code, PKCE", [(_post(CALLBACK, {"code": pkce, "redirect_uri": redirect,
                                             "code_verifier": verifier}), {200})]),
        42: ("code, PKCE, posted again with its verifier (no Kakao call)",
             [(_post(CALLBACK, {"code": pkce, "redirect_uri": redirect,
                                "code_verifier": verifier}), {200})] * 2),
        43: ("code, PKCE, again without and with another verifier",
             [(_post(CALLBACK, {"code": pkce, "redirect_uri": redirect,
                                "code_verifier": verifier}), {200}),
              (_post(CALLBACK, {"code": pkce, "redirect_uri": redirect}), {400}),
              (_post(CALLBACK, {"code": pkce, "redirect_uri": redirect,
                                "code_verifier": oidc.pkce_pair()[0]}), {400})]),
        44: ("code without PKCE, posted again",
             [(_post(CALLBACK, {"code": plain, "redirect_uri": redirect}), {200}),
              (_post(CALLBACK, {"code": plain, "redirect_uri": redirect}), {400})]),
        45: ("code as JSON, second redirect URI",
             [(_post(CALLBACK, json.dumps({"code": plain, "redirect_uri": dev}).encode(),
                     "application/json"), {200})]),
        46: ("OpenID Connect code, nonce matching",
             [(_post(CALLBACK, {"code": _code("oidc", kid, i, nonce="mcn%d" % i),
                                "redirect_uri": redirect, "nonce": "mcn%d" % i}), {200})]),
        47: ("OpenID Connect code, another nonce",
             [(_post(CALLBACK, {"code": _code("oidc", kid, i, nonce="mcn%d" % i),
                                "redirect_uri": redirect, "nonce": "other"}), {401})]),
        48: ("code: KOE320", [(_post(CALLBACK, {"code": _code("koe320", kid, i),
                                               "redirect_uri": redirect}), {400})]),
        49: ("code: KOE303 / KOE010 / KOE101",
             [(_post(CALLBACK, {"code": _code(("koe303", "koe010", "koe101")[j % 3], kid, i),
                                "redirect_uri": redirect}), {502})]),
        # "close" on a kept-alive connection: libcurl resends the request on
        # a new one, whose exchange of the now used code Kakao refuses.
        50: ("code: Kakao 503 / garbage / truncated / closes",
             [(_post(CALLBACK, {"code": _code(("status503", "garbage", "truncated", "close")[j % 4],
                                              kid, i), "redirect_uri": redirect}),
               {502, 400} if j % 4 == 3 else {502})]),
        51: ("code: redirect URI mismatch",
             [(_post(CALLBACK, {"code": plain, "redirect_uri": redirect + "/"}), {400})]),
        52: ("code: bad body, " + bad_body[0], [(_post(CALLBACK, bad_body[1]), {400})]),
        53: ("code: text/plain", [(_post(CALLBACK, {"code": plain, "redirect_uri": redirect},
                                         "text/plain"), {400})]),
        54: ("id_token, native app key", [(_post(ID_TOKEN, {"id_token": tk.native[t]}), {200})]),
        55: ("id_token, native app key, again", [(_post(ID_TOKEN, {"id_token": tk.native[-1 - t]}),
                                                  {200})]),
        56: ("id_token, REST API key", [(_post(ID_TOKEN, {"id_token": tk.rest[j % 10]}), {200})]),
        57: ("id_token, its nonce", [(_post(ID_TOKEN, {"id_token": tk.nonce[j % 10],
                                                      "nonce": "mc-nonce"}), {200})]),
        58: ("id_token with the user's access_token",
             [(_post(ID_TOKEN, {"id_token": tk.native[t], "access_token": "valid-%d" % tkid}),
               {200})]),
        59: ("id_token: " + tk.bad[j % len(tk.bad)][0],
             [(_post(ID_TOKEN, {"id_token": tk.bad[j % len(tk.bad)][1]}), {401})]),
        60: ("id_token: a wrong nonce", [(_post(ID_TOKEN, {"id_token": tk.nonce[j % 10],
                                                           "nonce": "wrong"}), {401})]),
        61: ("id_token with another user's access_token",
             [(_post(ID_TOKEN, {"id_token": tk.native[t],
                                "access_token": "valid-%d" % (tkid + 1)}), {401})]),
        62: ("id_token: no id_token field", [(_post(ID_TOKEN, {"nonce": "x"}), {400})]),
        63: ("id_token: JSON body", [(_post(ID_TOKEN, json.dumps({"id_token": tk.native[t]}).encode(),
                                           "application/json"), {200})]),
    }
    return table[r]


ADMIN_KEY = "fake-admin-key-0123456789abcdef"     # the fake's -a default


def _answer(rs, n, key):
    """The JSON field key of step n's answer (rs: the replies so far)."""
    try:
        return rs[n].json()[key]
    except (KeyError, TypeError, ValueError, IndexError):
        return "none"


def _bearer_req(method, uri, jwt, body=b""):
    return _req(method, uri=uri, auth="Bearer " + jwt, body=body)


def mix_sessions(r, i, kid):
    """Slots 64..71: refresh, logout, /users/me (GET, DELETE), /auth/verify,
    the unlink callback: -> (kind, [(bytes or fn(replies), statuses)])."""
    login = _req(auth="Bearer valid-%d" % (kid + 5000))
    rt = lambda n: (lambda rs: _post(REFRESH, {"refresh_token": _answer(rs, n, "refresh_token")}))
    at = lambda n, method, uri, body=b"": (
        lambda rs: _bearer_req(method, uri, _answer(rs, n, "access_token"), body))
    unlink = lambda key, app: (
        fc.begin() + fc.params(fc.cgi_params(
            "GET", UNLINK + "?app_id=%d&user_id=%d&referrer_type=UNLINK_FROM_APPS" % (app, kid),
            "KakaoAK " + key)) + fc.stdin())
    table = {
        64: ("session: login, refresh, the same again (repeat), the successor",
             [(login, {200}), (rt(0), {200}), (rt(0), {200}), (rt(1), {200})]),
        65: ("session: login, /users/me, /auth/verify, logout, refresh after it",
             [(login, {200}), (at(0, "GET", "/users/me"), {200}),
              (at(0, "GET", VERIFY), {204}), (at(0, "POST", LOGOUT), {200}),
              (rt(0), {401})]),
        66: ("session: login, logout all=1 (form body)",
             [(login, {200}), (lambda rs: fc.begin() + fc.params(
                 [(n, FORM if n == "CONTENT_TYPE" else v) for n, v in fc.cgi_params(
                     "POST", LOGOUT, "Bearer " + _answer(rs, 0, "access_token"), b"all=1")])
                 + fc.stdin(b"all=1"), {200}), (rt(0), {401})]),
        67: ("session: refresh with unknown, short, missing tokens",
             [(_post(REFRESH, {"refresh_token": "A" * 43}), {401}),
              (_post(REFRESH, {"refresh_token": "short"}), {401}),
              (_post(REFRESH, {"other": "x"}), {401}),
              (_post(REFRESH, b"refresh_token=%zz"), {400})]),
        68: ("session: /auth/verify and /users/me with bad JWTs",
             [(_req(uri=VERIFY), {401}), (_bearer_req("GET", VERIFY, "a.b.c"), {401}),
              (_bearer_req("GET", "/users/me", "valid-%d" % kid), {401}),
              (_req("PUT", uri=VERIFY), {405})]),
        69: ("session: login, DELETE /users/me, /users/me after",
             [(_req(auth="Bearer valid-%d" % (3_000_000 + i)), {200}),
              (at(0, "DELETE", "/users/me"), {200}), (at(0, "GET", "/users/me"), {401})]),
        70: ("session: the unlink callback, right and wrong keys",
             [(unlink(ADMIN_KEY, stack.APP_ID), {200}), (unlink(ADMIN_KEY[:-1], stack.APP_ID), {401}),
              (unlink(ADMIN_KEY, stack.APP_ID + 1), {401})]),
        71: ("session: login, refresh by JSON",
             [(login, {200}), (lambda rs: _post(REFRESH, json.dumps(
                 {"refresh_token": _answer(rs, 0, "refresh_token")}).encode(),
                 "application/json"), {200})]),
    }
    return table[r]


REFRESH, LOGOUT, VERIFY, UNLINK = ("/users/token/refresh", "/users/logout", "/auth/verify",
                                   "/users/kakao/unlink")


def mix(i):
    """-> (kind, bytes, set of acceptable statuses; None = no answer expected)"""
    r = i % CYCLE
    kid = 1_000_000 + (i * 7919) % 3000
    if r >= 64:
        return mix_sessions(r, i, kid)
    if r >= 40:
        return mix_codeflow(r, i, kid)
    if r < 18:
        return "login", _req(auth="Bearer valid-%d" % kid), {200}
    if r < 20:
        return "login raw POST", _req("POST", auth="valid-%d" % kid, body=b"a=b"), {200}
    table = {
        20: ("login, bare profile", _req(auth="Bearer bare-%d" % kid), {200}),
        21: ("login, long nickname", _req(auth="Bearer longnick-%d" % kid), {200}),
        22: ("no token", _req(), {400}),
        23: ("Basic", _req(auth="Basic dXNlcjpwYXNz"), {400}),
        24: ("token too long", _req(auth="Bearer " + "t" * 1100), {400}),
        25: ("expired", _req(auth="Bearer expired-%d" % kid), {401}),
        26: ("foreign app", _req(auth="Bearer foreign-%d" % kid), {401}),
        27: ("Kakao 503", _req(auth="Bearer status503-%d" % kid), {502}),
        28: ("Kakao garbage", _req(auth="Bearer garbage-%d" % kid), {502}),
        29: ("Kakao no id", _req(auth="Bearer noid-%d" % kid), {502}),
        30: ("Kakao closes", _req(auth="Bearer close-%d" % kid), {502}),
        31: ("Kakao truncated", _req(auth="Bearer truncated-%d" % kid), {502}),
        32: ("unknown path", _req(uri="/users/nope", auth="Bearer valid-1"), {404}),
        33: ("DELETE", _req("DELETE", auth="Bearer valid-1"), {405}),
        34: ("17 KB body", _req("POST", auth="Bearer valid-1", body=b"x" * 17000), {413}),
        35: ("duplicated Authorization",
             fc.begin() + fc.params(fc.cgi_params(authorization="Bearer valid-1",
                                                  extra=[("HTTP_AUTHORIZATION", "x")])) + fc.stdin(), {400}),
        36: ("bad CONTENT_LENGTH",
             fc.begin() + fc.params([(n, "x" if n == "CONTENT_LENGTH" else v)
                                     for n, v in fc.cgi_params("POST", authorization="Bearer valid-1")])
             + fc.stdin(), {400}),
        37: ("wrong FastCGI version", fc.rec(fc.BEGIN_REQUEST, 1, b"\0\1\0\0\0\0\0\0", version=2), None),
        38: ("half a record, then close", fc.begin() + fc.header(fc.PARAMS, 1, 300) + b"\x0e\x03", None),
        # Refused by the guard before libfcgi reads it (default deny).
        39: ("unknown record type", fc.begin() + fc.rec(99, 1, b"12345678") + fc.params([]) + fc.stdin(), None),
    }
    return table[r]


# A few Kakao time-outs, Kakao answers over the 256 KB cap, and the worker
# busy at SIGTERM are covered apart from the cycle (they are slow).
SLOW = [("Kakao hangs (time-out)", "Bearer hang-%d", {504}),
        ("Kakao answers 10 MB", "Bearer huge-%d", {502})]


def codeflow_keys(env):
    """The client secret file and issue 9's config lines (as in
    test/integration/run.py; the fake runs with codeflow.FAKE_ARGS)."""
    path = env.path("client.secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, codeflow.CLIENT_SECRET.encode() + b"\n")
    os.close(fd)
    env.own(path)
    return codeflow.config_lines(path)


def admin_key(env):
    """The admin key file (the fake's key): deletion and the unlink callback."""
    path = env.path("admin.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, ADMIN_KEY.encode() + b"\n")
    os.close(fd)
    env.own(path)
    return ["kakao_admin_key_file = %s" % path]


def memcheck(build):
    global TOKENS
    env = Env(threads=4, extra=[], fake_args=codeflow.FAKE_ARGS)
    envs.append(env)
    env.setup()
    # Every worker may call Kakao at once: under valgrind a Kakao exchange
    # is 20-50x slower, so the gate's 200 ms wait for a slot (tested at
    # native speed in test/integration and test/faults) would be a few ms
    # of native time, and a login beside a Kakao time-out could get 503.
    env.extra = codeflow_keys(env) + admin_key(env) + ["kakao_max_calls = 4"]
    env.start_fake()
    env.write_config("http://127.0.0.1:%d" % env.fake_port)
    TOKENS = Tokens(env.fake_port)
    vlog = env.path("valgrind.log")
    argv = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99", "--suppressions=" + SUPP, "--vgdb=no", "--num-callers=30",
            "--log-file=" + vlog, os.path.join(build, "kakao-login"), "-c", env.conf, "-s", env.sock]
    if env.root:
        argv += ["-u", "nobody"]
    t0 = time.monotonic()
    p = procs.start("valgrind", argv, env.service_log)
    stack.wait_for(lambda: p.poll() is None and os.path.exists(env.sock) and env.socket_answers(),
                   60, "the service under valgrind")
    if p.poll() is not None:
        raise RuntimeError("valgrind exited %s; see %s" % (p.returncode, vlog))

    counts, bad = {}, []
    routes = {}     # requests of issue 9's routes, by route
    lock = threading.Lock()

    def worker(k):
        for i in range(k, MEMCHECK_N, MEMCHECK_CONC):
            m = mix(i)
            kind, steps = (m[0], m[1]) if len(m) == 2 else (m[0], [(m[1], m[2])])
            replies = []
            for n, (data, want) in enumerate(steps):
                if callable(data):
                    data = data(replies)
                try:
                    if want is None:    # libfcgi drops these: half-close, see it close
                        r = fc.exchange(env.sock, data, timeout=10, until_end=(), shut_wr=True)
                    else:
                        r = fc.exchange(env.sock, data, timeout=60)
                except OSError as e:    # the service is gone: stop this thread
                    with lock:
                        bad.append("%s: %s" % (kind, e))
                    return
                replies.append(r)
                st = r.http()[0]
                step = kind if len(steps) == 1 else "%s (step %d)" % (kind, n + 1)
                with lock:
                    counts[st] = counts.get(st, 0) + 1
                    if i % CYCLE >= 64:
                        routes["sessions"] = routes.get("sessions", 0) + 1
                    elif i % CYCLE >= 40:
                        route = "id-token" if kind.startswith("id_token") else "callback"
                        routes[route] = routes.get(route, 0) + 1
                    if want is not None and st not in want and len(bad) < 5:
                        bad.append("%s: %s" % (step, r.summary()))
                    elif want is None and r.stdout and len(bad) < 5:
                        bad.append("%s answered: %s" % (step, r.summary()))

    def slow():
        for j in range(3):
            for kind, fmt, want in SLOW:
                try:
                    r = fc.exchange(env.sock, _req(auth=fmt % (2_000_000 + j)), timeout=60)
                except OSError as e:
                    with lock:
                        bad.append("%s: %s" % (kind, e))
                    return
                st = r.http()[0]
                with lock:
                    counts[st] = counts.get(st, 0) + 1
                    if st not in want:
                        bad.append("%s: %s" % (kind, r.summary()))
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(MEMCHECK_CONC)]
    threads.append(threading.Thread(target=slow, daemon=True))
    t1 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t1
    total = sum(counts.values())
    report(not bad, "memcheck: %d requests of mixed input answered as they must be" % total,
           "; ".join(bad))
    note("memcheck: %d requests in %.1f s (%.0f/s) under valgrind; statuses %s" % (
        total, secs, total / secs, dict(sorted(counts.items(), key=lambda kv: str(kv[0])))))
    note("memcheck: of them, issue 9's routes: %d to %s, %d to %s; issue 10's: %d" % (
        routes.get("callback", 0), CALLBACK, routes.get("id-token", 0), ID_TOKEN,
        routes.get("sessions", 0)))

    # A request in flight at SIGTERM is finished, then the process exits.
    inflight = {}

    def last():
        inflight["r"] = fc.exchange(env.sock, _req(auth="Bearer slow300.valid-3000001"), timeout=60)
    t = threading.Thread(target=last, daemon=True)
    t.start()
    time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        rc = None
    t.join(10)
    procs.procs.pop("valgrind", None)
    note("memcheck: start to exit %.1f s" % (time.monotonic() - t0))
    r = inflight.get("r")
    report(r is not None and r.http()[0] == 200, "memcheck: the request in flight at SIGTERM is answered",
           r.summary() if r else "no reply")
    try:
        with open(vlog, errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""

    def num(pattern):
        m = re.search(pattern, text)
        return int(m.group(1).replace(",", "")) if m else None
    definite = num(r"definitely lost: ([\d,]+) bytes")
    indirect = num(r"indirectly lost: ([\d,]+) bytes")
    errors = num(r"ERROR SUMMARY: ([\d,]+) errors")
    first = first_error(text)
    report(rc == 0, "memcheck: exits 0 after SIGTERM (valgrind's exit code)",
           "exit code %r (99: valgrind found errors or leaks); %s" % (rc, first))
    report(definite == 0, "memcheck: no definitely lost bytes",
           "definitely lost: %r bytes; %s; see %s" % (definite, first, vlog))
    report(indirect == 0, "memcheck: no indirectly lost bytes", "indirectly lost: %r bytes" % indirect)
    report(errors == 0, "memcheck: no memcheck errors (ERROR SUMMARY)", "%r errors; %s" % (errors, first))
    m = re.search(r"suppressed: ([\d,]+) bytes in ([\d,]+) blocks", text)
    s = re.search(r"ERROR SUMMARY: .*\(suppressed: ([\d,]+) from", text)
    note("memcheck: suppressed: %s leaked bytes, %s errors (test/memory/valgrind.supp)" % (
        m.group(1) if m else "?", s.group(1) if s else "?"))
    procs.stop_all()


def first_error(text):
    """The first error or loss record of a valgrind log, on one line."""
    blocks = re.split(r"\n==\d+== \n", text)
    for b in blocks:
        if re.search(r"(Invalid|uninitialised|definitely lost in|indirectly lost in|Mismatched|"
                     r"overlap|Syscall param)", b):
            lines = [re.sub(r"^==\d+==\s+", "", ln) for ln in b.splitlines()]
            return " | ".join(ln for ln in lines if ln)[:600]
    return "no error record"


# ------------------------------------------------------------- (b) RSS

WRK_LUA = r"""
-- wrk script of test/memory/run.py: GET logins, the Kakao id varies over
-- `ids` ids from `base`.  One thread (-t1): after `limit` answers it prints
-- its counts and exits the process (wrk itself only stops on -d).
local limit, base, ids = 0, 0, 0
local n, bad, i = 0, 0, 0
function init(args)
   limit = tonumber(args[1]); base = tonumber(args[2])
   ids = tonumber(args[3]); i = tonumber(args[4])
end
function request()
   i = i + 1
   local id = base + (i * 7919) % ids
   return wrk.format("GET", "/users/kakao/login",
                     { ["Authorization"] = "Bearer valid-" .. id }, nil)
end
function response(status, headers, body)
   n = n + 1
   if status ~= 200 then bad = bad + 1 end
   if n >= limit then
      io.write(string.format("answers=%d non200=%d\n", n, bad))
      io.flush()
      os.exit(0)
   end
end
"""


def run_wrk(port, script, limit, offset):
    """-> (answers, non-200 answers, seconds)"""
    argv = ["wrk", "-t1", "-c8", "-d300s", "--timeout", "10s", "-s", script,
            "http://127.0.0.1:%d%s" % (port, LOGIN), "--", str(limit), "5000000", str(RSS_IDS), str(offset)]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=400)
    secs = time.monotonic() - t0
    m = re.search(r"answers=(\d+) non200=(\d+)", p.stdout)
    if not m:
        raise RuntimeError("wrk did not finish %d requests: %s %s" % (limit, p.stdout[-300:], p.stderr[-300:]))
    return int(m.group(1)), int(m.group(2)), secs


def rss(pids):
    """-> {"VmRSS": kB, "RssAnon": kB, "RssFile": kB} summed over pids"""
    tot = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for ln in f:
                    key = ln.split(":")[0]
                    if key in tot:
                        tot[key] += int(ln.split()[1])
        except OSError:
            pass
    return tot


def region_kb(home):
    """The size of the Berkeley DB region files (__db.001 ...) in kB."""
    return sum(os.path.getsize(os.path.join(home, n)) for n in os.listdir(home)
               if re.fullmatch(r"__db\.\d+", n)) // 1024


def rss_flat(build):
    if not shutil.which("wrk"):
        report(False, "rss: wrk is installed", "no wrk in PATH (Debian package wrk)")
        return
    stack.set_build(build)
    env = Env(children=2, threads=4, durability="write_nosync")
    envs.append(env)
    env.setup()
    env.start_fake()
    env.write_config("http://127.0.0.1:%d" % env.fake_port)
    env.start_service()
    env.start_nginx()
    env.wait_fronts()
    script = env.path("vary-id.lua")
    with open(script, "w") as f:
        f.write(WRK_LUA)
    port = env.fronts["nginx"]
    pids0 = worker_pids()
    n1, bad1, s1 = run_wrk(port, script, RSS_WARMUP, 0)
    warm = rss(pids0)
    note("rss: warm-up %d requests in %.1f s; workers %s: VmRSS %d kB, RssAnon %d kB, RssFile %d kB" % (
        n1, s1, pids0, warm["VmRSS"], warm["RssAnon"], warm["RssFile"]))
    n2, bad2, s2 = run_wrk(port, script, RSS_TOTAL - n1, n1)
    pids1 = worker_pids()
    end = rss(pids1)
    regions = region_kb(env.path("db"))
    note("rss: then %d requests in %.1f s (%.0f/s); VmRSS %d kB, RssAnon %d kB, RssFile %d kB; "
         "Berkeley DB regions %d kB" % (n2, s2, n2 / s2, end["VmRSS"], end["RssAnon"],
                                        end["RssFile"], regions))
    report(pids1 == pids0, "rss: the same worker processes throughout", "%s -> %s" % (pids0, pids1))
    report(bad1 + bad2 == 0, "rss: %d logins through nginx, every answer 200" % (n1 + n2),
           "%d answers not 200" % (bad1 + bad2))
    a0, a1 = warm["RssAnon"], end["RssAnon"]
    change = (a1 - a0) / a0 if a0 else 1.0
    report(abs(change) <= RSS_TOLERANCE,
           "rss: workers' private memory (RssAnon) after %d requests within 5%% of after the %d "
           "warm-up (%d kB -> %d kB, %+.1f%%)" % (n1 + n2, n1, a0, a1, change * 100),
           "%d kB -> %d kB (%+.1f%%); VmRSS %d -> %d kB" % (a0, a1, change * 100, warm["VmRSS"],
                                                            end["VmRSS"]))
    grow = end["RssFile"] - warm["RssFile"]
    report(grow <= regions * len(pids1),
           "rss: the growth of file-backed pages (%+d kB) is within the workers' Berkeley DB "
           "regions (%d x %d kB)" % (grow, len(pids1), regions),
           "RssFile %d -> %d kB" % (warm["RssFile"], end["RssFile"]))
    procs.stop_all()


# ------------------------------------------------------------- main

def main():
    args = [a for a in sys.argv[1:] if a != "--build"]
    if len(args) > 1:
        sys.exit("usage: run.py [BUILD_DIR]")
    build = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(TEST), "build"))
    stack.set_build(build)
    for prog in (stack.SERVICE, stack.FAKE):
        if not os.access(prog, os.X_OK):
            print("%s missing: run make first" % prog, file=sys.stderr)
            return 2
    with open(stack.SERVICE, "rb") as f:
        if b"libasan.so" in f.read():
            print("%s is an AddressSanitizer build, which cannot run under valgrind "
                  "(and whose RSS says nothing): use the normal build" % stack.SERVICE, file=sys.stderr)
            return 2
    if not shutil.which("valgrind"):
        print("valgrind missing (Debian package valgrind)", file=sys.stderr)
        return 2
    atexit.register(procs.stop_all)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    keep = os.environ.get("KEEP_TMP")
    t0 = time.monotonic()
    try:
        for part in (memcheck, rss_flat):
            try:
                part(build)
            except KeyboardInterrupt:
                raise
            except Exception as e:   # noqa: BLE001 - one failure, go on
                report(False, part.__name__, "%s: %s (files in %s)" % (
                    type(e).__name__, e, envs[-1].dir if envs else "?"))
                keep = True
                procs.stop_all()
    except KeyboardInterrupt:
        report(False, "run", "interrupted")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)      # let the cleanup finish
    finally:
        procs.stop_all()
        for env in envs:
            if keep:
                print("# kept %s" % env.dir)
            else:
                shutil.rmtree(env.dir, ignore_errors=True)
    note("%.1f s" % (time.monotonic() - t0))
    passed = sum(1 for r in results if r[0])
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
