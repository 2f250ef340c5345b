"""Sessions through the real nginx and lighttpd (issue 10): refresh with
rotation, repeats and reuse, logout, account deletion with the unlink sent
or queued, Kakao's unlink callback, /auth/verify and the shipped nginx
auth_request example, verify_revocation, key rotation.

Called by run.py (run_all(env, t)); t carries run.py's report, expect,
check_login, request, tokens_used and restart_with(env, extra, children).
"""

import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import random
import subprocess
import time
import urllib.parse

import stack
from stack import ISSUER, JWT_TTL, LOGIN, b64url_decode

KID_BASE = random.randrange(10_000, 1_000_000) * 1000 + 500
ADMIN_KEY = "fake-admin-key-0123456789abcdef"    # the fake Kakao's default
REUSE_WINDOW = 2        # refresh_reuse_window of these runs
RETRY = 1               # unlink_retry_interval
REFRESH = "/users/token/refresh"
LOGOUT = "/users/logout"
ME = "/users/me"
VERIFY = "/auth/verify"
UNLINK = "/users/kakao/unlink"


def config_lines(admin_path):
    return ["kakao_admin_key_file = %s" % admin_path,
            "refresh_reuse_window = %d" % REUSE_WINDOW,
            "unlink_retry_interval = %d" % RETRY]


class Ctx:
    def __init__(self, env, t):
        self.env, self.t = env, t
        self.next_id = KID_BASE

    def kid(self):
        self.next_id += 1
        return self.next_id

    def report(self, ok, name, why=None):
        self.t.report(ok, name, why or "")


def form(**fields):
    return urllib.parse.urlencode(fields).encode()


def post_form(c, port, path, fields, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    for v in fields.values():
        c.t.tokens_used.add(v)
    return c.t.request(port, "POST", path, h, form(**fields))


def bearer(jwt):
    return {"Authorization": "Bearer " + jwt}


def login(c, port, k, secret=None):
    """A token login; -> (answer, error or None). secret: the key the JWT
    must be signed with (the legacy one-key file's by default)."""
    tok = "valid-%d" % k
    c.t.tokens_used.add(tok)
    got = c.t.request(port, "POST", LOGIN, {"Authorization": "Bearer " + tok}, b"")
    if got[0] != 200:
        return None, "login status %d: %s" % (got[0], got[2][:200])
    why, u = c.t.check_login(got[1], secret or c.env.secret, k)
    return got[1], why


def refresh(c, port, rt):
    got = post_form(c, port, REFRESH, {"refresh_token": rt})
    if got[0] == 200 and isinstance(got[1], dict):
        for key in ("access_token", "refresh_token"):
            if isinstance(got[1].get(key), str):
                c.t.tokens_used.add(got[1][key])
                c.t.jwts_issued.add(got[1][key])
    return got


def claims_of(jwt):
    head, body = jwt.split(".")[:2]
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


def refresh_records(env):
    """How many token records refresh.db holds (db5.3_dump joins the live
    environment and reads it)."""
    out = subprocess.run(["db5.3_dump", "-h", env.path("db"), "refresh.db"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("db5.3_dump: %s" % out.stderr.strip())
    body = out.stdout.split("HEADER=END\n", 1)[-1]
    return sum(1 for line in body.splitlines() if line.startswith(" ")) // 2


def fake_get(env, path):
    conn = http.client.HTTPConnection("127.0.0.1", env.fake_port, timeout=5)
    conn.request("GET", path)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return json.loads(data) if data else None


def unlinked(env, k):
    js = fake_get(env, "/__unlinked?id=%d" % k)
    return js is not None and js.get("unlinked") is True


# ------------------------------------------------------------ the login answer

def run_login_answer(c):
    for front, port in c.env.fronts.items():
        k = c.kid()
        js, why = login(c, port, k)
        if why is None:
            rt = js.get("refresh_token")
            if not isinstance(rt, str) or len(rt) != 43 or \
                    rt.strip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"):
                why = "refresh_token %r, want 43 base64url characters" % rt
            elif js.get("expires_in") != JWT_TTL:
                why = "expires_in %r, want %d" % (js.get("expires_in"), JWT_TTL)
            else:
                head, cl = claims_of(js["access_token"])
                if not isinstance(head.get("kid"), str) or not head["kid"]:
                    why = "JWT header has no kid: %r" % head
                elif not isinstance(cl.get("sid"), str) or len(cl["sid"]) != 32:
                    why = "JWT sid %r" % cl.get("sid")
                elif cl.get("kakao_id") != k:
                    why = "JWT kakao_id %r, want %d" % (cl.get("kakao_id"), k)
        c.report(why is None, "%s: a login answers refresh_token (256 bits, base64url), "
                 "expires_in, and a JWT with kid, sid and kakao_id" % front, why)


# ------------------------------------------------------------ refresh

def run_rotation(c):
    for front, port in c.env.fronts.items():
        k = c.kid()
        js, why = login(c, port, k)
        if why:
            c.report(False, "%s: refresh rotation" % front, why)
            continue
        sid = claims_of(js["access_token"])[1]["sid"]
        r1 = refresh(c, port, js["refresh_token"])
        why = c.t.expect("first refresh", r1, 200, "SUCCESS")
        if why is None:
            a = r1[1]
            if a.get("refresh_token") == js["refresh_token"]:
                why = "the refresh token did not rotate"
            elif a.get("expires_in") != JWT_TTL or "user" in a:
                why = "answer %r" % sorted(a)
            elif claims_of(a["access_token"])[1].get("sid") != sid:
                why = "the new JWT names another session"
            elif claims_of(a["access_token"])[1].get("id") != js["user"]["id"]:
                why = "the new JWT names another user"
        c.report(why is None, "%s: POST /users/token/refresh rotates: a new access token "
                 "of the same session and user, a new refresh token" % front, why)
        if why:
            continue
        r2 = refresh(c, port, js["refresh_token"])
        why = c.t.expect("repeat", r2, 200, "SUCCESS")
        if why is None and r2[1].get("refresh_token") != r1[1]["refresh_token"]:
            why = "a repeat within the window got another successor"
        c.report(why is None, "%s: the rotated token again within refresh_reuse_window: "
                 "the same successor (two tabs, a lost answer)" % front, why)
        r3 = refresh(c, port, r1[1]["refresh_token"])
        why = c.t.expect("successor", r3, 200, "SUCCESS")
        c.report(why is None, "%s: the successor refreshes in turn" % front, why)
        if why:
            continue
        time.sleep(REUSE_WINDOW + 1.2)
        r4 = refresh(c, port, js["refresh_token"])
        why = c.t.expect("reuse", r4, 401, "REFRESH_REUSED")
        c.report(why is None, "%s: a token rotated more than the window ago: 401 "
                 "REFRESH_REUSED" % front, why)
        r5 = refresh(c, port, r3[1]["refresh_token"])
        why = c.t.expect("newest after reuse", r5, 401, "INVALID_REFRESH_TOKEN")
        c.report(why is None, "%s: after a reuse the whole family is revoked, the newest "
                 "token too" % front, why)


def run_refresh_errors(c):
    for front, port in c.env.fronts.items():
        bad = [("unknown", {"refresh_token": base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")}),
               ("too short", {"refresh_token": "abc"}),
               ("padded", {"refresh_token": base64.urlsafe_b64encode(os.urandom(32)).decode()}),
               ("not base64url", {"refresh_token": "!" * 43}),
               ("missing", {"other": "x"})]
        fails = []
        for name, fields in bad:
            got = post_form(c, port, REFRESH, fields)
            w = c.t.expect(name, got, 401, "INVALID_REFRESH_TOKEN")
            if w:
                fails.append("%s: %s" % (name, w))
        got = c.t.request(port, "POST", REFRESH, {"Content-Type": "application/json"},
                          b'{"refresh_token":' + b'"' + b"A" * 43 + b'"}')
        w = c.t.expect("JSON body", got, 401, "INVALID_REFRESH_TOKEN")
        if w:
            fails.append("JSON: %s" % w)
        got = c.t.request(port, "GET", REFRESH)
        w = c.t.expect("GET", got, 405, "METHOD_NOT_ALLOWED")
        if w:
            fails.append("GET: %s" % w)
        c.report(not fails, "%s: refresh with an unknown, short, padded, foreign or missing "
                 "token: 401 INVALID_REFRESH_TOKEN; GET: 405" % front, "; ".join(fails[:3]))


def run_concurrent_refresh(c, n=20):
    """n refreshes of one token at once, spread over the processes: one
    successor for all, and one rotation recorded."""
    port = c.env.fronts["nginx"]
    js, why = login(c, port, c.kid())
    if why:
        c.report(False, "concurrent refreshes", why)
        return
    before = refresh_records(c.env)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        got = list(pool.map(lambda i: refresh(c, list(c.env.fronts.values())[i % 2],
                                              js["refresh_token"]), range(n)))
    after = refresh_records(c.env)
    statuses = sorted(set(g[0] for g in got))
    succ = set(g[1].get("refresh_token") for g in got if g[0] == 200)
    why = None
    if statuses != [200]:
        why = "statuses %r" % statuses
    elif len(succ) != 1:
        why = "%d different successors" % len(succ)
    elif after - before != 1:
        why = "%d token records added, want 1 (one rotation)" % (after - before)
    c.report(why is None, "%d concurrent refreshes of one token through both fronts and "
             "2 processes: all 200 with one successor, exactly one rotation recorded" % n, why)


# ------------------------------------------------------------ logout

def run_logout(c):
    for front, port in c.env.fronts.items():
        k = c.kid()
        a, w1 = login(c, port, k)
        b, w2 = login(c, port, k)
        d, w3 = login(c, port, k)
        if w1 or w2 or w3:
            c.report(False, "%s: logout" % front, w1 or w2 or w3)
            continue
        got = post_form(c, port, LOGOUT, {}, bearer(a["access_token"]))
        why = c.t.expect("logout", got, 200, "SUCCESS")
        if why is None:
            why = c.t.expect("refresh after logout", refresh(c, port, a["refresh_token"]),
                             401, "INVALID_REFRESH_TOKEN")
        if why is None:
            why = c.t.expect("other session", refresh(c, port, b["refresh_token"]), 200, "SUCCESS")
        c.report(why is None, "%s: logout revokes its session (no refresh after), not the "
                 "user's others" % front, why)
        got = c.t.request(port, "POST", LOGOUT, bearer(d["access_token"]))
        why = c.t.expect("logout, no body", got, 200, "SUCCESS")
        c.report(why is None, "%s: logout without a body" % front, why)
        e, _ = login(c, port, k)
        f, _ = login(c, port, k)
        got = post_form(c, port, LOGOUT, {"all": "1"}, bearer(e["access_token"]))
        why = c.t.expect("logout all", got, 200, "SUCCESS")
        for name, rt in (("this", e["refresh_token"]), ("another", f["refresh_token"])):
            why = why or c.t.expect(name, refresh(c, port, rt), 401, "INVALID_REFRESH_TOKEN")
        c.report(why is None, "%s: logout with all=1 revokes every session of the user" % front, why)
        fails = []
        for name, hdrs, fields, st, msg in (
                ("no JWT", {}, {}, 401, "INVALID_ACCESS_TOKEN"),
                ("a refresh token as JWT", bearer(f["refresh_token"]), {}, 401, "INVALID_ACCESS_TOKEN"),
                ("all=2", bearer(f["access_token"]), {"all": "2"}, 400, "BAD_REQUEST")):
            w = c.t.expect(name, post_form(c, port, LOGOUT, fields, hdrs), st, msg)
            if w:
                fails.append("%s: %s" % (name, w))
        c.report(not fails, "%s: logout without a JWT or with a refresh token: 401; all=2: 400"
                 % front, "; ".join(fails))


# ------------------------------------------------------------ /auth/verify

def run_verify(c):
    with open(c.env.path("www", "private", "hello.txt"), "w") as f:
        f.write("hello\n")
    for front, port in c.env.fronts.items():
        k = c.kid()
        js, why = login(c, port, k)
        if why:
            c.report(False, "%s: /auth/verify" % front, why)
            continue
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", VERIFY, headers=bearer(js["access_token"]))
        r = conn.getresponse()
        body = r.read()
        hdr = (r.getheader("X-User-Id"), r.getheader("X-Kakao-Id"))
        conn.close()
        ok = r.status == 204 and body == b"" and hdr == (str(js["user"]["id"]), str(k))
        c.report(ok, "%s: GET /auth/verify with our JWT: 204, X-User-Id and X-Kakao-Id" % front,
                 "status %d, headers %r, body %r" % (r.status, hdr, body[:80]))
        fails = []
        for name, h in (("none", {}), ("forged", bearer(js["access_token"][:-3] + "AAA")),
                        ("Kakao's", bearer("valid-%d" % k))):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", VERIFY, headers=h)
            r = conn.getresponse()
            r.read()
            www = r.getheader("WWW-Authenticate") or ""
            conn.close()
            if r.status != 401 or not www.startswith("Bearer"):
                fails.append("%s: status %d, WWW-Authenticate %r" % (name, r.status, www))
        c.report(not fails, "%s: /auth/verify without, with a forged or a Kakao token: 401 "
                 "with WWW-Authenticate: Bearer" % front, "; ".join(fails))
    port = c.env.fronts["nginx"]
    js, why = login(c, port, c.kid())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/private/hello.txt", headers=bearer(js["access_token"]))
    r = conn.getresponse()
    body = r.read()
    uid = r.getheader("X-User-Id")
    conn.close()
    c.report(r.status == 200 and body == b"hello\n" and uid == str(js["user"]["id"]),
             "the shipped auth_request example lets our JWT through to /private/ with X-User-Id",
             "status %d, X-User-Id %r, body %r" % (r.status, uid, body[:80]))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/private/hello.txt", headers=bearer(js["access_token"][:-3] + "AAA"))
    r = conn.getresponse()
    body = r.read()
    www = r.getheader("WWW-Authenticate") or ""
    conn.close()
    c.report(r.status == 401 and b"INVALID_ACCESS_TOKEN" in body and www.startswith("Bearer")
             and b"hello" not in body,
             "the shipped auth_request example refuses a forged JWT: 401 JSON with "
             "WWW-Authenticate, no file", "status %d, %r, body %r" % (r.status, www, body[:80]))


def run_revocation(c):
    """verify_revocation = yes: logged-out sessions refused by /users/me
    and /auth/verify; without it they pass until exp (as documented)."""
    port = c.env.fronts["lighttpd"]
    js, why = login(c, port, c.kid())
    post_form(c, port, LOGOUT, {}, bearer(js["access_token"]))
    got = c.t.request(port, "GET", ME, bearer(js["access_token"]))
    c.report(got[0] == 200, "verify_revocation = no: a logged-out JWT still reads /users/me "
             "until its exp", "status %d" % got[0])
    c.t.restart_with(c.env, ["verify_revocation = yes"], 2)
    for front, port in c.env.fronts.items():
        a, why = login(c, port, c.kid())
        fails = []
        for path, st in ((ME, 200), (VERIFY, 204)):
            got = c.t.request(port, "GET", path, bearer(a["access_token"]))
            if got[0] != st:
                fails.append("%s before logout: %d" % (path, got[0]))
        post_form(c, port, LOGOUT, {}, bearer(a["access_token"]))
        for path in (ME, VERIFY):
            got = c.t.request(port, "GET", path, bearer(a["access_token"]))
            if got[0] != 401:
                fails.append("%s after logout: %d" % (path, got[0]))
        c.report(not fails, "%s: verify_revocation = yes: /users/me and /auth/verify refuse "
                 "the JWT of a logged-out session" % front, "; ".join(fails))
    c.t.restart_with(c.env, [], 2)


# ------------------------------------------------------------ deletion

def run_delete(c):
    for front, port in c.env.fronts.items():
        k = c.kid()
        js, why = login(c, port, k)
        if why:
            c.report(False, "%s: deletion" % front, why)
            continue
        got = c.t.request(port, "DELETE", ME, bearer(js["access_token"]))
        why = c.t.expect("delete", got, 200, "SUCCESS")
        if why is None and not unlinked(c.env, k):
            why = "the fake Kakao saw no unlink of %d" % k
        if why is None:
            why = c.t.expect("me after", c.t.request(port, "GET", ME, bearer(js["access_token"])),
                             401, "INVALID_ACCESS_TOKEN")
        if why is None:
            why = c.t.expect("refresh after", refresh(c, port, js["refresh_token"]),
                             401, "INVALID_REFRESH_TOKEN")
        c.report(why is None, "%s: DELETE /users/me: 200, unlinked at Kakao, the user gone, its "
                 "sessions revoked" % front, why)
        again, why = login(c, port, k)
        if why is None and again["user"]["id"] == js["user"]["id"]:
            why = "the deleted id %d was given out again" % js["user"]["id"]
        if why is None and again["user"]["login_count"] != 1:
            why = "login_count %d: the old record survived" % again["user"]["login_count"]
        c.report(why is None, "%s: a deleted account's Kakao user logging in again is a new "
                 "user; the old id stays retired" % front, why)


def wait_unlinked(c, k, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if unlinked(c.env, k):
            return True
        time.sleep(0.25)
    return False


def run_delete_kakao_down(c):
    port = c.env.fronts["nginx"]
    k1, k2 = c.kid(), c.kid()
    a, w1 = login(c, port, k1)
    b, w2 = login(c, port, k2)
    fake_get(c.env, "/__admin?fail=1")
    try:
        g1 = c.t.request(port, "DELETE", ME, bearer(a["access_token"]))
        g2 = c.t.request(port, "DELETE", ME, bearer(b["access_token"]))
        why = w1 or w2 or c.t.expect("delete", g1, 200, "SUCCESS") or \
            c.t.expect("delete", g2, 200, "SUCCESS")
        if why is None and (unlinked(c.env, k1) or unlinked(c.env, k2)):
            why = "unlinked though Kakao is down"
        c.report(why is None, "DELETE /users/me with Kakao down: 200 all the same, the unlink "
                 "queued", why)
        time.sleep(RETRY + 0.5)
    finally:
        fake_get(c.env, "/__admin?fail=0")
    c.report(wait_unlinked(c, k1, 8), "the queued unlink is sent once Kakao is back",
             "no unlink of %d within 8 s" % k1)
    # The second one across a restart: down again, stop, back, start.
    k3 = c.kid()
    d, why = login(c, port, k3)
    fake_get(c.env, "/__admin?fail=1")
    try:
        why = why or c.t.expect("delete", c.t.request(port, "DELETE", ME, bearer(d["access_token"])),
                                200, "SUCCESS")
        c.env.stop_service()
    finally:
        fake_get(c.env, "/__admin?fail=0")
    c.env.start_service()
    c.env.wait_fronts()
    c.report(why is None and wait_unlinked(c, k3, 10),
             "a queued unlink survives a restart and is sent after it",
             why or "no unlink of %d within 10 s of the restart" % k3)


# ------------------------------------------------------------ unlink callback

def send_unlink(c, port, path=UNLINK, key=ADMIN_KEY, app=stack.APP_ID, uid=1, method="GET",
                referrer="UNLINK_FROM_APPS"):
    out = subprocess.run([stack.FAKE, "-U", "http://127.0.0.1:%d%s" % (port, path), "-a", key,
                          "-A", str(app), "-I", str(uid), "-R", referrer, "-M", method],
                         capture_output=True, text=True, timeout=10)
    try:
        return int(out.stdout.strip())
    except ValueError:
        return -1


def run_unlink_callback(c):
    for front, port in c.env.fronts.items():
        k = c.kid()
        js, why = login(c, port, k)
        if why:
            c.report(False, "%s: unlink callback" % front, why)
            continue
        for method in ("GET", "POST"):
            t0 = time.monotonic()
            st = send_unlink(c, port, uid=k, method=method)
            secs = time.monotonic() - t0
            why = None if st == 200 and secs < 3 else "status %d in %.2f s" % (st, secs)
            c.report(why is None, "%s: Kakao's unlink callback by %s: 200 within 3 s" % (front, method), why)
        me = c.t.request(port, "GET", ME, bearer(js["access_token"]))
        u = me[1].get("user", {}) if isinstance(me[1], dict) else {}
        why = None
        if me[0] != 200 or u.get("status") != "unlinked" or u.get("nickname") is not None \
                or u.get("email") is not None:
            why = "status %d, user %r" % (me[0], u)
        if why is None:
            why = c.t.expect("refresh", refresh(c, port, js["refresh_token"]), 401,
                             "INVALID_REFRESH_TOKEN")
        c.report(why is None, "%s: after the callback the user is unlinked, personal data "
                 "cleared, sessions revoked" % front, why)
        fails = []
        for name, kw, want in (("wrong key", {"key": ADMIN_KEY[:-1] + "x"}, 401),
                               ("wrong app", {"app": stack.APP_ID + 1}, 401),
                               ("unknown user", {"uid": k + 77_000}, 200),
                               ("repeat", {}, 200)):
            st = send_unlink(c, port, **dict({"uid": k}, **kw))
            if st != want:
                fails.append("%s: %d, want %d" % (name, st, want))
        got = c.t.request(port, "GET", UNLINK + "?app_id=%d&user_id=%d" % (stack.APP_ID, k))
        w = c.t.expect("no key", got, 401, "UNAUTHORIZED")
        if w:
            fails.append("no Authorization: " + w)
        c.report(not fails, "%s: unlink callback with a wrong key or app: 401; an unknown user "
                 "or a repeat: 200" % front, "; ".join(fails))
        again, why = login(c, port, k)
        if why is None and (again["user"]["id"] != js["user"]["id"] or
                            again["user"]["status"] != "active"):
            why = "user %r, want id %d active" % (again["user"], js["user"]["id"])
        c.report(why is None, "%s: an unlinked user who logs in again is active with the same "
                 "user id" % front, why)


# ------------------------------------------------------------ key rotation

def keyed_file(c, name, keys):
    path = c.env.path(name)
    with open(path, "w") as f:
        for kid, key in keys:
            f.write("%s:%s\n" % (kid, base64.b64encode(key).decode()))
    os.chmod(path, 0o600)
    c.env.own(path)
    return path


def run_key_rotation(c):
    port = c.env.fronts["nginx"]
    old, why = login(c, port, c.kid())
    new_key = os.urandom(48)
    path = keyed_file(c, "jwt.keys", [("new", new_key), ("old", c.env.secret)])
    c.t.restart_with(c.env, ["jwt_secret_file = %s" % path], 2)
    fails = []
    for front, p in c.env.fronts.items():
        got = c.t.request(p, "GET", ME, bearer(old["access_token"]))
        if got[0] != 200:
            fails.append("%s: old JWT %d" % (front, got[0]))
    got = refresh(c, port, old["refresh_token"])
    if got[0] != 200:
        fails.append("old refresh token: %d" % got[0])
    else:
        head, _ = claims_of(got[1]["access_token"])
        if head.get("kid") != "new":
            fails.append("new JWT kid %r, want new" % head.get("kid"))
        mac = hmac.new(new_key, got[1]["access_token"].rsplit(".", 1)[0].encode(),
                       hashlib.sha256).digest()
        if not hmac.compare_digest(mac, b64url_decode(got[1]["access_token"].rsplit(".", 1)[1])):
            fails.append("the new JWT is not signed by the first key")
    fresh, w = login(c, port, c.kid(), secret=new_key)
    if w:
        fails.append(w)
    c.report(not fails, "key rotation: with kid:base64 lines the first key signs, a JWT and "
             "a refresh token of the old key still work", "; ".join(fails))
    path2 = keyed_file(c, "jwt.keys2", [("new", new_key)])
    c.t.restart_with(c.env, ["jwt_secret_file = %s" % path2], 2)
    fails = []
    got = c.t.request(port, "GET", ME, bearer(old["access_token"]))
    if got[0] != 401:
        fails.append("JWT of the removed key: %d" % got[0])
    if fresh is not None:
        got = c.t.request(port, "GET", ME, bearer(fresh["access_token"]))
        if got[0] != 200:
            fails.append("JWT of the kept key: %d" % got[0])
    c.report(not fails, "key rotation: a JWT signed by a removed key no longer verifies, one "
             "of a kept key does", "; ".join(fails))
    c.t.restart_with(c.env, [], 2)


def run_all(env, t):
    c = Ctx(env, t)
    run_login_answer(c)
    run_rotation(c)
    run_refresh_errors(c)
    run_concurrent_refresh(c)
    run_logout(c)
    run_verify(c)
    run_unlink_callback(c)
    run_delete(c)
    run_delete_kakao_down(c)
    run_revocation(c)
    run_key_rotation(c)
