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
  - the service logged no recovery, panic or warning;
  - a tool killed with SIGINT in the middle of a long list (blocked on a
    full pipe) closes the store: the next tool runs at once;
  - a tool killed with SIGKILL in the same place: logins go on; the next
    opener of the environment finds the dead registration and recovery
    runs without a hand (the next tool exits 1 saying so, the workers
    restart and recover); within 30 s a tool joins again and counts the
    same users, and logins answer 200.
Prints "ok - ..." / "not ok - ..." per check, "N passed, M failed" last.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import stack  # noqa: E402
from stack import LOGIN, Env, procs, request, worker_pids  # noqa: E402

results = []
BASE = 7_300_000_000 + (os.getpid() % 1000) * 1000
ADMIN = None


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
    time.sleep(1.0)             # the pipe (64 KB) is full long before
    p.send_signal(sig)
    if sig != signal.SIGKILL:
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
        pids = worker_pids()

        load = Load(port, list(made))
        load.start()
        runs = {"count": 0, "list": 0, "show": 0, "stats": 0, "checkpoint": 0}
        fails = []
        t_end = time.monotonic() + 8
        while time.monotonic() < t_end:
            for name, a in (("count", ("users", "count")),
                            ("list", ("users", "list", "--limit", "1000")),
                            ("show", ("users", "show", str(made[BASE + 7]))),
                            ("stats", ("--json", "stats")),
                            ("checkpoint", ("checkpoint",))):
                code, out, err = admin(env, *a)
                runs[name] += 1
                if code != 0 and len(fails) < 5:
                    fails.append("%s: exit %d %s" % (name, code, err.strip()))
        load.stop.set()
        load.join()
        report(not fails, "every command exits 0 while logins run (%s)" % runs, "; ".join(fails))
        report(not load.bad and load.n > 50,
               "no login fails while the tool works (%d logins)" % load.n, "; ".join(load.bad))
        report(worker_pids() == pids, "the same worker processes throughout (no restart)",
               "%s -> %s" % (pids, worker_pids()))

        made.update(load.acked)
        k7 = BASE + 7
        check_show(env, k7, made[k7])
        ids = list_all(env, 64)
        report(sorted(ids) == ids and len(set(ids)) == len(ids),
               "users list pages (--after, --limit 64): ascending, no repeat", str(ids[:10]))
        report(set(ids) == set(made.values()),
               "users list: exactly the %d users the logins answered" % len(made),
               "%d listed, %d answered" % (len(ids), len(made)))
        code, out, _ = admin(env, "users", "count")
        report(code == 0 and out.strip() == str(len(made)), "users count: %d" % len(made), out)
        code, out, _ = admin(env, "--json", "users", "count")
        report(code == 0 and json.loads(out) == {"users": len(made)}, "users count --json", out)
        code, out, _ = admin(env, "--json", "stats")
        s = json.loads(out) if code == 0 else {}
        report(s.get("users", {}).get("total") == len(made) and
               s["users"]["active"] == len(made) and s["users"]["unlinked"] == 0 and
               s.get("highest_user_id") == max(made.values()) and
               s["databases"]["files"] >= 10 and s["databases"]["bytes"] > 0 and
               s["logs"]["files"] >= 1 and s["logs"]["bytes"] > 0,
               "stats --json: users by status, highest id, database and log sizes", out[:300])
        code, out, _ = admin(env, "stats")
        report(code == 0 and ("users.total      %d\n" % len(made)) in out, "stats (text)", out[:200])
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
    finally:
        procs.stop_all()
    passed = sum(1 for r in results if r)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
