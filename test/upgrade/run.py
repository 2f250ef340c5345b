#!/usr/bin/env python3
"""Upgrade in place: the new kakao-login on a store written by the released
one.

    python3 test/upgrade/run.py [--build DIR]   (after make; needs db5.3-util)

test/data/store-v1/ holds every database of an environment the released
code (the commit in its users.json) wrote, as db5.3_dump text, and the
users that code acknowledged (made by test/upgrade/mkfixture.py). This
test db5.3_loads the dumps into a fresh db_home, starts the NEW service on
it (test/integration/stack.py: spawn-fcgi + multiwatch, the fake Kakao,
nginx) and checks:
  - every old Kakao id logs in with its old user id, its old created_at,
    and login_count + 1;
  - a new Kakao id gets a user id above every old one (the sequence
    survived);
  - the session databases were created on open: the login answers a
    refresh_token, which refreshes, and its successor too;
  - /users/me with the new access_token answers the old user;
  - a JWT in the released format (no kid, no sid, no kakao_id; minted
    here with the same key, as the old token_issue signed it) still works
    on /users/me and /auth/verify until it expires, and is refused once
    verify_revocation = yes (it names no session);
  - the environment holds the new databases afterwards, and the service
    logged no recovery, panic or warning.
What it does not do: run the OLD binary beside the new one (a rolling
restart); building the released tree takes too long for make test. The
fixture is what the old binary wrote, which is what a restart meets.
Prints "ok - ..." / "not ok - ..." per check, "N passed, M failed" last.
"""

import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import stack  # noqa: E402
from stack import LOGIN, Env, procs, request  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(HERE), "data", "store-v1")
REFRESH = "/users/token/refresh"
ME = "/users/me"
# The fake Kakao's kinds the fixture logged in with, per Kakao id.
KINDS = {"7001": "valid", "7002": "valid", "7003": "nonick",
         "7004": "unverified", "7005": "bare", "7006": "unicode"}
NEW_KAKAO_ID = 7100

results = []


def report(ok, name, why=""):
    results.append(ok)
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)
    return ok


def load_fixture(env):
    """db5.3_load every dump into the env's db_home. -> names loaded."""
    db = env.path("db")
    names = []
    for dump in sorted(glob.glob(os.path.join(FIXTURE, "*.dump"))):
        name = os.path.basename(dump)[:-5] + ".db"
        subprocess.run(["db5.3_load", "-h", db, "-f", dump, name], check=True,
                       capture_output=True)
        names.append(name)
    for p in [db] + glob.glob(os.path.join(db, "*")):
        env.own(p)
    return names


def login(port, tok):
    return request(port, "POST", LOGIN, {"Authorization": "Bearer " + tok}, b"")


def check_old_users(port, old):
    """Every old user logs in again. -> {kakao id: login answer}."""
    answers = {}
    for kid, was in sorted(old.items()):
        status, js, raw, _ = login(port, "%s-%s" % (KINDS[kid], kid))
        u = js.get("user") if isinstance(js, dict) else None
        why = None
        if status != 200 or not isinstance(u, dict):
            why = "status %d %r" % (status, raw[:200])
        elif u.get("id") != was["id"]:
            why = "user id %r, was %d" % (u.get("id"), was["id"])
        elif u.get("login_count") != was["login_count"] + 1:
            why = "login_count %r, was %d" % (u.get("login_count"), was["login_count"])
        elif u.get("created_at") != was["created_at"]:
            why = "created_at %r, was %r" % (u.get("created_at"), was["created_at"])
        elif u.get("kakao_id") != int(kid):
            why = "kakao_id %r" % u.get("kakao_id")
        report(why is None, "old Kakao id %s (%s) logs in as user %d, login_count %d -> %d"
               % (kid, KINDS[kid], was["id"], was["login_count"], was["login_count"] + 1),
               why)
        if why is None:
            answers[kid] = js
    return answers


def check_refresh(port, kid, js):
    rt = js.get("refresh_token")
    if not isinstance(rt, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", rt):
        return report(False, "an old user's login answers a refresh_token",
                      "refresh_token %r" % (rt,))
    chain = []
    for step in range(2):
        status, got, raw, _ = request(
            port, "POST", REFRESH, {"Content-Type": "application/x-www-form-urlencoded"},
            ("refresh_token=" + rt).encode())
        if status != 200 or not isinstance(got, dict) or \
                not isinstance(got.get("refresh_token"), str) or \
                got["refresh_token"] == rt or not isinstance(got.get("access_token"), str):
            return report(False, "the old user %s's refresh_token refreshes, and its successor"
                          % kid, "step %d: status %d %r" % (step + 1, status, raw[:200]))
        chain.append(got)
        rt = got["refresh_token"]
    status, me, raw, _ = request(port, "GET", ME,
                                 {"Authorization": "Bearer " + chain[-1]["access_token"]})
    report(True, "the old user %s's refresh_token refreshes, and its successor" % kid)
    u = me.get("user") if isinstance(me, dict) else None
    return report(status == 200 and isinstance(u, dict) and u.get("id") == js["user"]["id"],
                  "/users/me with the refreshed access_token answers old user %d"
                  % js["user"]["id"], "status %d %r" % (status, raw[:200]))


def old_jwt(secret, user_id):
    """A JWT as 7aa131f's token_issue made them: HS256 under the whole key
    file, claims id, sub, iat, exp, iss, jti; no kid in the header."""
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps({"id": user_id, "sub": str(user_id), "iat": now,
                           "exp": now + stack.JWT_TTL, "iss": stack.ISSUER,
                           "jti": secrets.token_hex(16)}, separators=(",", ":")).encode())
    mac = hmac.new(secret, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64(mac))


def auth_verify(port, jwt):
    """-> (status, X-User-Id)"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/auth/verify", headers={"Authorization": "Bearer " + jwt})
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("X-User-Id")
    finally:
        c.close()


def check_old_jwt(env, port, user_id):
    jwt = old_jwt(env.secret, user_id)
    status, me, raw, _ = request(port, "GET", ME, {"Authorization": "Bearer " + jwt})
    u = me.get("user") if isinstance(me, dict) else None
    report(status == 200 and isinstance(u, dict) and u.get("id") == user_id,
           "a JWT of the released format (no kid, no sid) still answers /users/me",
           "status %d %r" % (status, raw[:200]))
    got = auth_verify(port, jwt)
    report(got == (204, str(user_id)),
           "a JWT of the released format passes /auth/verify (204, X-User-Id %d)" % user_id,
           "status, X-User-Id: %r" % (got,))
    return jwt


def main():
    args = sys.argv[1:]
    if args[:1] == ["--build"] and len(args) == 2:
        stack.set_build(args[1])
    elif args:
        sys.exit("usage: run.py [--build DIR]")
    with open(os.path.join(FIXTURE, "users.json")) as f:
        fixture = json.load(f)
    old = fixture["users"]
    print("# store-v1: %d users written by %s" % (len(old), fixture["commit"][:12]))
    env = Env(children=2, threads=4, durability="sync")
    try:
        env.setup()
        names = load_fixture(env)
        print("# loaded %s" % ", ".join(names))
        env.start_fake()
        env.write_config("http://127.0.0.1:%d" % env.fake_port)
        env.start_service()
        env.start_nginx()
        env.wait_fronts()
        port = env.fronts["nginx"]

        answers = check_old_users(port, old)

        top = max(u["id"] for u in old.values())
        status, js, raw, _ = login(port, "valid-%d" % NEW_KAKAO_ID)
        uid = js.get("user", {}).get("id") if isinstance(js, dict) else None
        report(status == 200 and isinstance(uid, int) and uid > top and
               js["user"].get("login_count") == 1,
               "a new Kakao id gets a user id above every old one (> %d)" % top,
               "status %d, user id %r: %r" % (status, uid, raw[:200]))

        if "7001" in answers:
            check_refresh(port, "7001", answers["7001"])
            status, me, raw, _ = request(
                port, "GET", ME, {"Authorization": "Bearer " + answers["7001"]["access_token"]})
            u = me.get("user") if isinstance(me, dict) else None
            report(status == 200 and isinstance(u, dict) and u.get("id") == old["7001"]["id"]
                   and u.get("login_count") == old["7001"]["login_count"] + 1,
                   "/users/me answers the old user with the login's access_token",
                   "status %d %r" % (status, raw[:200]))
        else:
            report(False, "refresh and /users/me for an old user", "its login failed")

        jwt = check_old_jwt(env, port, old["7001"]["id"])

        # What store.c opens beside the users must exist now.
        want = ("sessions.db", "sessions_by_user.db", "refresh.db", "refresh_by_sid.db", "probe.db")
        have = set(os.listdir(env.path("db")))
        report(all(w in have for w in want), "the session databases were created on open",
               "missing: %s" % [w for w in want if w not in have])
        env.stop_service()
        env.extra.append("verify_revocation = yes")
        env.write_config("http://127.0.0.1:%d" % env.fake_port)
        env.start_service()
        env.wait_fronts()
        got = auth_verify(port, jwt)
        status = request(port, "GET", ME, {"Authorization": "Bearer " + jwt})[0]
        report(got[0] == 401 and status == 401,
               "with verify_revocation = yes the released JWT (no session) is refused",
               "/auth/verify %d, /users/me %d" % (got[0], status))
        env.stop_service()
        with open(env.service_log, errors="replace") as f:
            alarming = [l.strip() for l in f if re.search(r"warn|PANIC|recover|error", l, re.I)
                        and not stack.HTTP_KAKAO_WARNING.search(l)]
        report(not alarming, "the upgraded service logs no recovery, panic, warning or error",
               "%s" % alarming[:4])
    finally:
        procs.stop_all()
        if not os.environ.get("KEEP_TMP"):
            subprocess.run(["rm", "-rf", env.dir])
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
