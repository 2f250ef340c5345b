#!/usr/bin/env python3
"""kakao-login-admin on the live environment (issue 11, the admin tool).

    python3 test/admin/run.py [--build DIR]     (after make)

The service under the real spawn-fcgi + multiwatch (2 children) behind the
real nginx, with the fake Kakao (test/integration/stack.py). Users are made
by logins; then, while a thread keeps logging in new and known Kakao ids,
the tool runs each of its commands again and again on the same environment
and the suite checks:
  - no login fails while the tool works, and the workers are the same
    processes afterwards (the tool made no worker restart);
  - users show (by user id and by Kakao id), users list (pages with --after
    and --limit), users count and stats agree with what the logins
    answered, in text and with --json (one JSON value per line);
  - exit codes: 3 for an unknown user, 2 for usage errors (bad id, unknown
    command, no config), 1 for a config that does not load, 0 otherwise;
  - run as root, the tool works as db_home's owner: after a checkpoint no
    file in db_home belongs to root;
  - while the same logins run: users deactivate (login 403
    USER_DEACTIVATED, refresh 401, sessions revoked, users activate undoes
    it), users delete (the user gone, its id retired: a new login of the
    Kakao id gets a new id; refresh 401; the unlink reaches the fake Kakao,
    sent by the service), sessions list (sid and times, never a token) and
    sessions revoke by sid and --user, verify, users export and a re-import
    of it (nothing imported, nothing refused);
  - the service logged no recovery, panic or warning;
  - a tool killed with SIGINT in the middle of a long list (blocked on a
    full pipe) closes the store: the next tool runs at once;
  - a tool killed with SIGKILL in the same place: logins go on; the next
    opener of the environment finds the dead registration and recovery
    runs without a hand (the next tool exits 1 saying so, the workers
    restart and recover); within 30 s a tool joins again and counts the
    same users, and logins answer 200.
  - verify finds a record that does not decode (exit 1 and the report);
  - on a fresh environment under a fresh service: users import of the
    export reproduces every user byte for byte (users export, users show
    --json), a second import changes nothing and says so; conflicting
    lines (a Kakao id under another id, a retired id, an id the sequence
    handed out) are refused with their line numbers, exit 4; a tool killed
    with SIGKILL mid-import leaves the service serving and a second import
    completes it; a later new login gets an id above every imported one.
Prints "ok - ..." / "not ok - ..." per check, "N passed, M failed" last.
"""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import stack  # noqa: E402
from stack import LOGIN, Env, b64url_decode, procs, request, worker_pids  # noqa: E402

results = []
BASE = 7_300_000_000 + (os.getpid() % 1000) * 1_000_000
SPECIAL = BASE + 600_000        # users the tool deactivates, deletes, revokes
ADMIN = None
ADMIN_KEY = "fake-admin-key-0123456789abcdef"    # the fake Kakao's default
REFRESH = "/users/token/refresh"


def note(text):
    print("# " + text, flush=True)


def report(ok, name, why=""):
    results.append(ok)
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)


def admin(env, *args, conf=True, timeout=60):
    """-> (exit code, stdout, stderr)"""
    argv = [ADMIN] + (["-c", env.conf] if conf else []) + list(args)
    envv = dict(os.environ)
    envv.pop("KAKAO_LOGIN_CONF", None)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=envv)
    return p.returncode, p.stdout, p.stderr


def login(port, k):
    st, js, raw, _ = request(port, "GET", LOGIN, {"Authorization": "Bearer valid-%d" % k})
    return st, js


def refresh(port, rt):
    st, js, _, _ = request(port, "POST", REFRESH,
                           {"Content-Type": "application/x-www-form-urlencoded"},
                           ("refresh_token=%s" % rt).encode())
    return st, js


def sid_of(jwt):
    return json.loads(b64url_decode(jwt.split(".")[1]))["sid"]


def jlines(out):
    """Every line of out as JSON, or None when one is not."""
    try:
        return [json.loads(ln) for ln in out.splitlines()]
    except ValueError:
        return None


def jone(out):
    rows = jlines(out)
    return rows[0] if rows and len(rows) == 1 else {}


def fake_unlinked(env, k):
    st, js, _, _ = request(env.fake_port, "GET", "/__unlinked?id=%d" % k)
    return st == 200 and isinstance(js, dict) and js.get("unlinked") is True


class Load(threading.Thread):
    """Logs in new and known Kakao ids until stopped; keeps every answer."""

    def __init__(self, port, known):
        super().__init__(daemon=True)
        self.port, self.known = port, list(known)
        self.stop = threading.Event()
        self.acked = {}        # kakao id -> user id
        self.bad = []
        self.n = 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            k = BASE + 500 + i if i % 2 else self.known[i % len(self.known)]
            try:
                st, js = login(self.port, k)
            except OSError as e:
                st, js = None, str(e)
            self.n += 1
            if st == 200:
                self.acked[k] = js["user"]["id"]
            elif len(self.bad) < 5:
                self.bad.append("kakao id %d: %s %s" % (k, st, js))


def check_show(env, kid, uid):
    code, out, err = admin(env, "--json", "users", "show", str(uid))
    try:
        u = json.loads(out)
    except ValueError:
        u = {}
    report(code == 0 and u.get("user_id") == uid and u.get("kakao_id") == kid and
           u.get("status") == "active" and u.get("login_count", 0) >= 1,
           "users show ID --json: the user the login answered",
           "exit %d, %r %r" % (code, out[:300], err[:200]))
    code2, out2, _ = admin(env, "--json", "users", "show", "--kakao", str(kid))
    report(code2 == 0 and json.loads(out2 or "{}").get("user_id") == uid,
           "users show --kakao KAKAO_ID: the same user", "exit %d %r" % (code2, out2[:200]))
    code3, out3, _ = admin(env, "users", "show", str(uid))
    report(code3 == 0 and ("user_id:        %d\n" % uid) in out3 and
           ("kakao_id:       %d\n" % kid) in out3 and "status:         active" in out3,
           "users show ID (text): labelled lines", out3[:300])


def list_all(env, page):
    """Every user id through users list pages of `page`."""
    ids, after = [], 0
    while True:
        code, out, err = admin(env, "--json", "users", "list", "--after", str(after),
                               "--limit", str(page))
        if code != 0:
            raise RuntimeError("users list: exit %d %s" % (code, err))
        rows = [json.loads(ln) for ln in out.splitlines()]
        ids += [r["user_id"] for r in rows]
        if len(rows) < page:
            return ids
        after = rows[-1]["user_id"]


def exit_codes(env):
    cases = [
        (("users", "show", "999999999999"), 3, "an unknown user id"),
        (("users", "show", "--kakao", "1"), 3, "an unknown Kakao id"),
        (("users", "show", "abc"), 2, "a user id that is not a number"),
        (("users", "show", "0"), 2, "user id 0"),
        (("users", "list", "--limit", "0"), 2, "--limit 0"),
        (("users", "list", "--bogus"), 2, "an unknown option of users list"),
        (("users", "frobnicate"), 2, "an unknown verb"),
        (("nonsense",), 2, "an unknown command"),
        ((), 2, "no command"),
        (("users", "count", "extra"), 2, "an extra argument"),
    ]
    for args, want, what in cases:
        code, out, err = admin(env, *args)
        report(code == want and out == "" and err.strip() != "",
               "exit %d for %s (message on stderr, nothing on stdout)" % (want, what),
               "exit %d, out %r, err %r" % (code, out[:100], err[:200]))
    code, out, err = admin(env, "users", "count", conf=False)
    report(code == 2 and "config" in err, "exit 2 without a config", "exit %d %r" % (code, err))
    bad = env.path("bad.conf")
    with open(bad, "w") as f:
        f.write("db_home = %s\nno_such_key = 1\n" % env.path("db"))
    p = subprocess.run([ADMIN, "-c", bad, "users", "count"], capture_output=True, text=True)
    report(p.returncode == 1 and "no_such_key" in p.stderr,
           "exit 1 for a config that does not load, naming the line", p.stderr[:200])
    code, out, _ = admin(env, "--help")
    report(code == 0 and "users show" in out, "--help: usage on stdout, exit 0", out[:100])


def no_root_files(env):
    if not env.root:
        report(True, "files in db_home: not run as root, nothing to check")
        return
    code, out, err = admin(env, "checkpoint")
    root = [n for n in os.listdir(env.path("db"))
            if os.stat(env.path("db", n)).st_uid == 0]
    report(code == 0 and out.strip() == "checkpoint done" and not root,
           "checkpoint as root: done, and no file in db_home belongs to root",
           "exit %d %r %r root-owned %s" % (code, out, err, root))


def interrupted(env, sig):
    """Start a long list into a pipe nobody reads; signal it when blocked.
    -> (exit code, stderr)"""
    envv = dict(os.environ)
    envv.pop("KAKAO_LOGIN_CONF", None)
    p = subprocess.Popen([ADMIN, "-c", env.conf, "--json", "users", "list", "--limit", "1000000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=envv)
    # The signal lands in a write to the full pipe (64 KB), and the write
    # sees it before the pipe is read: it fails with EINTR (found in make
    # test, where the tool then exited 1 without saying it was
    # interrupted).
    t0 = time.monotonic()
    buf = bytearray(4)
    while time.monotonic() - t0 < 10:
        fcntl.ioctl(p.stdout.fileno(), termios.FIONREAD, buf)
        if int.from_bytes(buf, sys.byteorder) >= 65536:
            break
        time.sleep(0.05)
    time.sleep(0.2)             # blocked in that write by now
    p.send_signal(sig)
    if sig != signal.SIGKILL:
        time.sleep(0.2)
        # unblock the write so the flag is seen between batches
        os.set_blocking(p.stdout.fileno(), False)
        try:
            while p.stdout.read(65536):
                pass
        except (BlockingIOError, TypeError):
            pass
    try:
        _, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        return None, b"did not exit"
    return p.returncode, err


def specials(env, port):
    """Users of the tool's writes, made by logins, kept out of the load:
    Kakao id -> the login's answer."""
    out = {}
    for j in range(8):
        k = SPECIAL + j
        st, js = login(port, k)
        if st == 200:
            out[k] = js
    # One more session of the revoke user, so there are two.
    st, js = login(port, SPECIAL + 2)
    if st == 200:
        out[SPECIAL + 102] = js
    return out


def check_deactivate(env, port, sp):
    k = SPECIAL + 0
    uid = sp[k]["user"]["id"]
    code, out, err = admin(env, "--json", "users", "deactivate", str(uid))
    r = jone(out)
    report(code == 0 and r.get("user_id") == uid and r.get("status") == "deactivated" and
           r.get("sessions_revoked") == 1,
           "users deactivate --json: deactivated, its one session revoked",
           "exit %d %r %r" % (code, out, err))
    st, js = login(port, k)
    report(st == 403 and js == {"message": "USER_DEACTIVATED"},
           "a deactivated user's login: 403 USER_DEACTIVATED", "%s %r" % (st, js))
    st, js = refresh(port, sp[k]["refresh_token"])
    report(st == 401 and js == {"message": "INVALID_REFRESH_TOKEN"},
           "a deactivated user's refresh token: 401 INVALID_REFRESH_TOKEN", "%s %r" % (st, js))
    code, out, _ = admin(env, "--json", "users", "show", str(uid))
    report(code == 0 and jone(out).get("status") == "deactivated" and
           jone(out).get("login_count") == 1,
           "users show: status deactivated, the refused login not counted", out[:300])
    code, out, _ = admin(env, "--json", "sessions", "list", str(uid))
    rows = jlines(out) or []
    report(code == 0 and len(rows) == 1 and rows[0].get("status") == "revoked" and
           rows[0].get("reason") == "admin",
           "sessions list: its session revoked, reason admin", out[:300])
    code, out, _ = admin(env, "users", "deactivate", str(uid))
    report(code == 0 and "deactivated, 0 sessions revoked" in out,
           "users deactivate again: no change, exit 0", out)
    code, out, _ = admin(env, "--json", "users", "activate", str(uid))
    st, js = login(port, k)
    report(code == 0 and jone(out).get("status") == "active" and st == 200 and
           js["user"]["id"] == uid and js["user"]["status"] == "active",
           "users activate: the same user logs in again (200, same id)",
           "exit %d %r; login %s %r" % (code, out, st, js))


def check_delete(env, port, sp):
    k = SPECIAL + 1
    uid = sp[k]["user"]["id"]
    nokey = env.path("nokey.conf")
    with open(env.conf) as f, open(nokey, "w") as g:
        g.writelines(ln for ln in f if not ln.startswith("kakao_admin_key_file"))
    p = subprocess.run([ADMIN, "-c", nokey, "users", "delete", str(uid)],
                       capture_output=True, text=True, timeout=60)
    report(p.returncode == 1 and "kakao_admin_key_file" in p.stderr,
           "users delete without kakao_admin_key_file: refused, exit 1", p.stderr)
    code, out, err = admin(env, "--json", "users", "delete", str(uid))
    r = jone(out)
    report(code == 0 and r.get("user_id") == uid and r.get("kakao_id") == k and
           r.get("status") == "deleted",
           "users delete --json: deleted", "exit %d %r %r" % (code, out, err))
    code, out, err = admin(env, "users", "show", str(uid))
    code2, _, _ = admin(env, "users", "show", "--kakao", str(k))
    report(code == 3 and code2 == 3, "the deleted user is gone (users show: exit 3 by id and "
           "by Kakao id)", "%d %d %s" % (code, code2, err))
    code, out, err = admin(env, "users", "delete", str(uid))
    report(code == 3, "users delete of a deleted user: exit 3", "exit %d %s" % (code, err))
    st, js = refresh(port, sp[k]["refresh_token"])
    report(st == 401, "the deleted user's refresh token: 401", "%s %r" % (st, js))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15 and not fake_unlinked(env, k):
        time.sleep(0.2)
    report(fake_unlinked(env, k), "the unlink reached the fake Kakao (sent by the service) "
           "within %.1f s" % (time.monotonic() - t0))
    st, js = login(port, k)
    report(st == 200 and js["user"]["id"] != uid and js["user"]["id"] > uid,
           "the id is retired: a new login of the Kakao id is a new user with a new id",
           "%s %r (was %d)" % (st, js, uid))
    return uid, (js["user"]["id"] if st == 200 else None)


def check_sessions(env, port, sp):
    a, b = sp[SPECIAL + 2], sp[SPECIAL + 102]
    uid = a["user"]["id"]
    code, out, _ = admin(env, "--json", "sessions", "list", str(uid))
    rows = jlines(out) or []
    sids = {sid_of(a["access_token"]), sid_of(b["access_token"])}
    report(code == 0 and {r.get("sid") for r in rows} == sids and
           all(r.get("status") == "active" and r.get("user_id") == uid for r in rows) and
           all(set(r) == {"sid", "user_id", "status", "reason", "created", "last_used",
                          "expires", "revoked_at", "rotations"} for r in rows),
           "sessions list --json: the user's two sessions, sid and times", out[:400])
    secrets = [a["refresh_token"], b["refresh_token"], a["access_token"], b["access_token"]]
    code2, text, _ = admin(env, "sessions", "list", str(uid))
    report(not any(t in out or t in text for t in secrets) and
           len(text.splitlines()) == 2 and all(ln.split("\t")[0] in sids
                                                for ln in text.splitlines()),
           "sessions list never shows a token (text: one line per sid)", text[:300])
    code, out, err = admin(env, "--json", "sessions", "revoke", sid_of(a["access_token"]))
    st1, _ = refresh(port, a["refresh_token"])
    st2, js2 = refresh(port, b["refresh_token"])
    report(code == 0 and jone(out).get("sessions_revoked") == 1 and st1 == 401 and st2 == 200,
           "sessions revoke SID: that session refused (401), the other refreshes (200)",
           "exit %d %r %r; %s %s" % (code, out, err, st1, st2))
    code, out, err = admin(env, "--json", "sessions", "revoke", "--user", str(uid))
    st3, _ = refresh(port, js2["refresh_token"]) if st2 == 200 else (None, None)
    report(code == 0 and jone(out).get("sessions_revoked") == 1 and st3 == 401,
           "sessions revoke --user: the rest revoked, refresh 401",
           "exit %d %r %r; %s" % (code, out, err, st3))
    code, out, err = admin(env, "sessions", "revoke", "0" * 32)
    report(code == 3 and out == "", "sessions revoke of an unknown sid: exit 3", err)


def usage_errors(env):
    cases = [
        ("users", "deactivate"), ("users", "deactivate", "x"), ("users", "delete", "0"),
        ("users", "delete", "1", "2"), ("users", "activate"),
        ("sessions", "list"), ("sessions", "list", "abc"), ("sessions", "revoke"),
        ("sessions", "revoke", "xyz"), ("sessions", "revoke", "g" * 32),
        ("sessions", "revoke", "--user", "0"), ("sessions", "frob"),
        ("users", "export", "file"), ("users", "import", "a", "b"), ("verify", "x"),
        ("group", "remove"), ("group", "remove", "127.0.0.1"), ("group", "remove", "127.0.0.1:0"),
        ("group", "remove", "127.0.0.1:70000"), ("group", "remove", "-x:1"),
        ("group", "remove", "127.0.0.1:1", "127.0.0.1:2"), ("group", "frob"),
    ]
    bad = []
    for args in cases:
        code, out, err = admin(env, *args)
        if not (code == 2 and out == "" and "kakao-login-admin: " in err and "usage:" in err):
            bad.append("%s: exit %d %r" % (" ".join(args), code, err[:120]))
    report(not bad, "usage errors of the new commands: exit 2, the reason and the usage on "
           "stderr (%d cases)" % len(cases), "; ".join(bad))
    code, out, err = admin(env, "group", "remove", "127.0.0.1:7001")
    report(code == 1 and "single site" in err and out == "",
           "group remove on a single site: exit 1, it says why", "exit %d %r" % (code, err))
    code, out, err = admin(env, "users", "import", env.path("no-such-file"))
    report(code == 1 and "no-such-file" in err, "users import of a missing file: exit 1", err)


def export_to(env, path):
    code, out, err = admin(env, "users", "export", timeout=120)
    with open(path, "w") as f:
        f.write(out)
    return code, out, err


def corrupt_and_verify(env):
    """The service stopped: a record that does not decode loaded into
    users.db beside the service's writes (db5.3_load, no index)."""
    dump = env.path("bad.dump")
    with open(dump, "w") as f:
        f.write("\\00\\00\\00\\00\\00\\00\\00\\01\nnot a record\n")
    os.chmod(dump, 0o644)
    # As the service's user: no file in db_home may become root's.
    run_as = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if env.root else []
    p = subprocess.run(run_as + ["db5.3_load", "-h", env.path("db"), "-T", "-t", "btree",
                                 "-f", dump, "users.db"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        report(False, "db5.3_load of a bad record", p.stderr)
        return
    code, out, err = admin(env, "--json", "verify", timeout=120)
    r = jone(out)
    report(code == 1 and r.get("ok") is False and r.get("problems", 0) >= 1 and
           any("does not decode" in x for x in r.get("first_problems", [])),
           "verify finds a record that does not decode: exit 1 and the problem", out[:400])
    code, out, err = admin(env, "verify", timeout=120)
    report(code == 1 and "problem: users.db: a record that does not decode" in out and
           "PROBLEMS" in out, "verify (text): the problem line, exit 1", out[:400])


def fresh_import(env1, exported):
    """Imports exported (users export of env1) into a fresh environment
    under a fresh service."""
    env = Env(children=2, threads=4, durability="sync", extra=env1.extra)
    env.setup()
    env.fake_port = env1.fake_port
    env.write_config("http://127.0.0.1:%d" % env.fake_port)
    env.start_service()
    port = env.start_nginx()
    env.wait_fronts()
    src = env.path("export.jsonl")
    with open(src, "w") as f:
        f.write(exported)
    os.chmod(src, 0o644)
    n = len(exported.splitlines())
    code, out, err = admin(env, "--json", "users", "import", src, timeout=300)
    r = jone(out)
    report(code == 0 and r == {"lines": n, "imported": n, "unchanged": 0, "kept": 0,
                               "refused": 0},
           "users import into a fresh environment: %d users imported" % n,
           "exit %d %r %r" % (code, out, err[-300:]))
    top_id = max((json.loads(ln)["user_id"] for ln in exported.splitlines()), default=0)
    with open(env.path("db") + ".idmark") as f:
        mark = int(f.read().strip() or 0)
    report(mark >= top_id, "the import raised the id mark past every imported id (%d >= %d)"
           % (mark, top_id), "mark %d" % mark)
    code, again, _ = admin(env, "users", "export", timeout=120)
    report(code == 0 and again == exported,
           "users export of the imported environment: byte for byte the export", 
           "%d vs %d bytes" % (len(again), len(exported)))
    rows = jlines(exported) or []
    bad = []
    for u in rows[::max(1, len(rows) // 20)]:
        c1, o1, _ = admin(env1, "--json", "users", "show", str(u["user_id"]))
        c2, o2, _ = admin(env, "--json", "users", "show", str(u["user_id"]))
        if c1 != 0 or c2 != 0 or o1 != o2:
            bad.append("%d: %r vs %r" % (u["user_id"], o1, o2))
    report(not bad, "users show --json: the same bytes in both environments (%d users)" %
           len(rows[::max(1, len(rows) // 20)]), "; ".join(bad[:3]))
    code, out, err = admin(env, "--json", "users", "import", src, timeout=300)
    report(code == 0 and jone(out) == {"lines": n, "imported": 0, "unchanged": n, "kept": 0,
                                       "refused": 0},
           "the same import again: nothing changes, and the counts say so", out + err[-200:])
    code, out, _ = admin(env, "users", "import", src, timeout=300)
    report(code == 0 and out.strip() == "%d lines: 0 imported, %d unchanged, 0 kept (changed "
           "since), 0 refused" % (n, n), "users import (text): the counts", out)

    # Conflicts, each reported with its line number.
    first = rows[0]
    victim = rows[1]
    code, out, err = admin(env, "users", "delete", str(victim["user_id"]))
    top = max(u["user_id"] for u in rows)
    lines = [json.dumps(first),
             json.dumps(dict(first, user_id=top + 5000)),        # Kakao id under another id
             json.dumps(victim),                                 # retired here now
             "not json",
             json.dumps(dict(first, kakao_id=first["kakao_id"] + 10**9)),   # id taken
             json.dumps(dict(first, user_id=top + 6000, kakao_id=first["kakao_id"] + 2 * 10**9,
                             status="gone"))]
    conf = env.path("conflicts.jsonl")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(conf, 0o644)
    code, out, err = admin(env, "--json", "users", "import", conf)
    want = ["line 2: ", "line 3: ", "line 4: ", "line 5: ", "line 6: "]
    report(code == 4 and jone(out) == {"lines": 6, "imported": 0, "unchanged": 1, "kept": 0,
                                       "refused": 5} and
           all(w in err for w in want) and "line 1:" not in err and
           "its Kakao id is another user id here" in err and "retired" in err and
           "another Kakao id's here" in err,
           "conflicting lines refused with their line numbers, exit 4",
           "exit %d %r %r" % (code, out, err))

    # Killed mid-import: the service serves on, a second import finishes.
    big = env.path("big.jsonl")
    nbig = 150_000
    base_id = top + 100_000
    with open(big, "w") as f:
        for i in range(nbig):
            f.write(json.dumps(dict(first, user_id=base_id + i,
                                    kakao_id=BASE + 800_000 + i, nickname="bulk%d" % i)) + "\n")
    os.chmod(big, 0o644)
    envv = dict(os.environ)
    envv.pop("KAKAO_LOGIN_CONF", None)
    p = subprocess.Popen([ADMIN, "-c", env.conf, "--json", "users", "import", big],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=envv)
    time.sleep(1.0)
    p.kill()
    p.communicate()
    # A known user: a new one would take ids from the sequence that the
    # unfinished batch had not reserved, which the import then refuses.
    # A login may wait on a mutex the tool held when it died: the watchdog
    # ends its process within STORE_STUCK_MS (8 s), and the front server
    # answers 502; no answer within the request's 15 s is a hang.
    t0, ok, hung = time.monotonic(), False, None
    while time.monotonic() - t0 < 30 and not ok and hung is None:
        t1 = time.monotonic()
        try:
            ok = login(port, first["kakao_id"])[0] == 200
        except OSError as e:
            hung = "%r after %.1f s" % (e, time.monotonic() - t1)
        if not ok:
            time.sleep(0.5)
    report(hung is None, "after the tool was killed mid-import no login hangs", hung or "")
    report(ok, "after the tool was killed mid-import the service serves (a login 200 within "
           "%.1f s)" % (time.monotonic() - t0))
    t0, code = time.monotonic(), None
    while time.monotonic() - t0 < 30:
        code, out, err = admin(env, "--json", "users", "import", big, timeout=300)
        if not (code == 1 and "needs recovery" in err):
            break
        time.sleep(0.5)
    r = jone(out)
    note("the killed import had written %s of %d users" % (r.get("unchanged"), nbig))
    report(code == 0 and r.get("lines") == nbig and r.get("refused") == 0 and
           r.get("imported", 0) + r.get("unchanged", 0) == nbig and r.get("imported", 0) < nbig,
           "a second import completes it (%s)" % out.strip(), "exit %d %r %r" % (code, out, err[-300:]))
    st, js = login(port, BASE + 700_001)
    report(st == 200 and js["user"]["id"] > base_id + nbig - 1,
           "a new login after the import gets an id above every imported one",
           "%s %r" % (st, js))
    st, js = login(port, rows[2]["kakao_id"])
    report(st == 200 and js["user"]["id"] == rows[2]["user_id"],
           "an imported user logs in with its imported id", "%s %r" % (st, js))
    low = env.path("low.jsonl")
    with open(low, "w") as f:
        f.write(json.dumps(dict(first, user_id=base_id - 1, kakao_id=BASE + 970_000)) + "\n")
    os.chmod(low, 0o644)
    code, out, err = admin(env, "users", "import", low)
    report(code == 4 and "line 1: " in err and "handed out" in err,
           "an unused id the sequence already handed out: refused, exit 4", err)
    code, out, err = admin(env, "--json", "verify", timeout=120)
    report(code == 0 and jone(out).get("ok") is True,
           "verify of the imported environment: ok", out[:300] + err)


def main():
    global ADMIN
    args = [a for a in sys.argv[1:] if a != "--build"]
    build = os.path.abspath(args[0] if args else "build")
    stack.set_build(build)
    ADMIN = os.path.join(build, "kakao-login-admin")
    if not os.access(ADMIN, os.X_OK):
        print("%s missing: run make first" % ADMIN, file=sys.stderr)
        return 2
    env = Env(children=2, threads=4, durability="sync")
    try:
        env.setup()
        env.start_fake()
        key = env.path("admin.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, ADMIN_KEY.encode() + b"\n")
        os.close(fd)
        env.own(key)
        env.extra = ["kakao_admin_key_file = %s" % key, "unlink_retry_interval = 1"]
        env.write_config("http://127.0.0.1:%d" % env.fake_port)
        env.start_service()
        env.start_nginx()
        env.wait_fronts()
        port = env.fronts["nginx"]
        made = {}
        for i in range(300):
            st, js = login(port, BASE + i)
            if st == 200:
                made[BASE + i] = js["user"]["id"]
        report(len(made) == 300, "300 users made by logins", "%d of 300" % len(made))
        sp = specials(env, port)
        report(len(sp) == 9, "the tool's own users made by logins", "%d of 9" % len(sp))
        pids = worker_pids()

        load = Load(port, list(made))
        load.start()
        runs = {"count": 0, "list": 0, "show": 0, "stats": 0, "checkpoint": 0,
                "sessions": 0, "verify": 0, "export+import": 0}
        fails = []
        exp = env.path("live-export.jsonl")
        t_end = time.monotonic() + 8
        while time.monotonic() < t_end:
            for name, a in (("count", ("users", "count")),
                            ("list", ("users", "list", "--limit", "1000")),
                            ("show", ("users", "show", str(made[BASE + 7]))),
                            ("stats", ("--json", "stats")),
                            ("checkpoint", ("checkpoint",)),
                            ("sessions", ("--json", "sessions", "list", str(made[BASE + 7]))),
                            ("verify", ("--json", "verify"))):
                code, out, err = admin(env, *a)
                runs[name] += 1
                if code != 0 and len(fails) < 5:
                    fails.append("%s: exit %d %s %s" % (name, code, out[:200], err.strip()))
            code, out, err = export_to(env, exp)
            os.chmod(exp, 0o644)
            c2, o2, e2 = admin(env, "--json", "users", "import", exp)
            r = jone(o2)
            runs["export+import"] += 1
            if (code != 0 or c2 != 0 or r.get("imported") != 0 or r.get("refused") != 0 or
                    r.get("lines") != len(out.splitlines())) and len(fails) < 5:
                fails.append("export+import: exit %d/%d %r %s" % (code, c2, o2, e2[-200:]))
        report(not fails, "every command exits 0 while logins run (%s)" % runs, "; ".join(fails))
        report(runs["export+import"] > 0,
               "users export, then users import of it while logins run: nothing imported, "
               "nothing refused (the users there, changed or not)")
        # The writes, still under the same logins.
        check_deactivate(env, port, sp)
        deleted, renewed = check_delete(env, port, sp)
        check_sessions(env, port, sp)
        usage_errors(env)
        load.stop.set()
        load.join()
        report(not load.bad and load.n > 50,
               "no login fails while the tool works (%d logins)" % load.n, "; ".join(load.bad))
        report(worker_pids() == pids, "the same worker processes throughout (no restart)",
               "%s -> %s" % (pids, worker_pids()))

        made.update(load.acked)
        everyone = set(made.values()) | {js["user"]["id"] for k, js in sp.items()
                                         if k < SPECIAL + 100}
        everyone = (everyone - {deleted}) | {renewed}
        k7 = BASE + 7
        check_show(env, k7, made[k7])
        ids = list_all(env, 64)
        report(sorted(ids) == ids and len(set(ids)) == len(ids),
               "users list pages (--after, --limit 64): ascending, no repeat", str(ids[:10]))
        report(set(ids) == everyone,
               "users list: exactly the %d users the logins answered" % len(everyone),
               "%d listed, %d answered" % (len(ids), len(everyone)))
        code, out, _ = admin(env, "users", "count")
        report(code == 0 and out.strip() == str(len(everyone)), "users count: %d" % len(everyone),
               out)
        code, out, _ = admin(env, "--json", "users", "count")
        report(code == 0 and json.loads(out) == {"users": len(everyone)}, "users count --json", out)
        code, out, _ = admin(env, "--json", "stats")
        s = json.loads(out) if code == 0 else {}
        report(s.get("users", {}).get("total") == len(everyone) and
               s["users"]["active"] == len(everyone) and s["users"]["unlinked"] == 0 and
               s["users"]["deactivated"] == 0 and
               s.get("highest_user_id") == max(everyone) and
               s["databases"]["files"] >= 10 and s["databases"]["bytes"] > 0 and
               s["logs"]["files"] >= 1 and s["logs"]["bytes"] > 0,
               "stats --json: users by status, highest id, database and log sizes", out[:300])
        code, out, _ = admin(env, "stats")
        report(code == 0 and ("users.total      %d\n" % len(everyone)) in out, "stats (text)",
               out[:200])
        code, out, _ = admin(env, "--json", "verify")
        v = jone(out)
        report(code == 0 and v.get("ok") is True and v["checked"]["users"] == len(everyone) and
               v["checked"]["users_by_id"] == len(everyone) and v["checked"]["retired"] >= 1 and
               v["checked"]["active_sessions"] >= 1,
               "verify --json: ok, every user and index entry walked", out[:400])
        code, out, _ = admin(env, "users", "list", "--limit", "3")
        rows = [ln.split("\t") for ln in out.splitlines()]
        report(code == 0 and len(rows) == 3 and all(len(r) == 6 for r in rows),
               "users list (text): one tab-separated line per user", out[:300])
        exit_codes(env)
        no_root_files(env)
        code, err = interrupted(env, signal.SIGINT)
        report(code == 1 and b"interrupted" in err,
               "SIGINT during a long list: stops between batches, exit 1", "%s %r" % (code, err[-200:]))
        code, out, err = admin(env, "users", "count")
        report(code == 0, "the next tool joins at once after an interrupted one", err)
        with open(env.service_log, errors="replace") as f:
            log = f.read()
        bad = [ln for ln in log.splitlines()
               if any(w in ln.lower() for w in ("recover", "panic", "warn"))
               and not stack.HTTP_KAKAO_WARNING.search(ln)]
        report(not bad, "the service logged no recovery, panic or warning", "; ".join(bad[:3]))

        code, out, _ = admin(env, "users", "count")
        before = out.strip()
        code, err = interrupted(env, signal.SIGKILL)
        report(code == -signal.SIGKILL, "SIGKILL during a long list", str(code))
        ok = sum(1 for i in range(50) if login(port, BASE + i)[0] == 200)
        report(ok == 50, "logins go on after a tool was killed", "%d of 50" % ok)
        # The dead registration makes the next opener of the environment
        # recover it: the next tool exits 1 ("needs recovery") and the
        # workers restart and run recovery on their own.
        code, out, err = admin(env, "users", "count")
        note("after SIGKILL the next tool: exit %d %s" % (code, err.strip().splitlines()[-1:]))
        report(code == 0 or (code == 1 and "needs recovery" in err),
               "the next tool joins, or exits 1 saying recovery is needed (never a hang)",
               "exit %d %s" % (code, err.strip()))
        t0, joined = time.monotonic(), None
        while time.monotonic() - t0 < 30 and joined is None:
            c2, o2, _ = admin(env, "users", "count")
            if c2 == 0:
                joined = o2.strip()
            else:
                time.sleep(0.5)
        note("a tool joined again %.1f s later" % (time.monotonic() - t0))
        report(joined == before, "with no hand: within 30 s a tool joins again and counts the same "
               "users (%s)" % before, "%r -> %r" % (before, joined))
        ok = sum(1 for i in range(50) if login(port, BASE + i)[0] == 200)
        report(ok == 50, "and logins answer 200 again", "%d of 50" % ok)

        code, exported, err = admin(env, "users", "export", timeout=120)
        report(code == 0 and len(exported.splitlines()) == len(everyone),
               "users export: one JSON line per user (%d)" % len(everyone),
               "exit %d, %d lines %s" % (code, len(exported.splitlines()), err))
        procs.stop("nginx")
        env.stop_service()
        corrupt_and_verify(env)
        fresh_import(env, exported)
    finally:
        procs.stop_all()
    passed = sum(1 for r in results if r)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
