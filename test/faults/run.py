#!/usr/bin/env python3
"""Fault tests: kakao-login under killed processes, a misbehaving Kakao, a
failing disk and a graceful stop, through the real nginx.

    python3 test/faults/run.py [--build DIR]   (from the repository root, after make)

Reuses test/integration/stack.py (fake Kakao, the service under the real
etc/kakao-login-spawn = spawn-fcgi + multiwatch, nginx with the shipped
snippet).  Every case builds a fresh stack under its own temporary directory
and tears it down again.  Cases:

  1. workers killed under load   kill -9 one worker every 2 s for 10 s while
                                 16 keep-alive clients log in; multiwatch
                                 restarts it, no 200 is lost or wrong
  2. everything killed           kill -9 multiwatch and every worker during a
                                 load, restart the group; sync and
                                 write_nosync lose nothing, nosync is reported
  3. Kakao misbehaving           every fault of the fake Kakao, a refused
                                 connection and a connect time-out, each
                                 answered as documented within
                                 upstream_timeout_ms + 100 ms; then 1,000
                                 concurrent logins all succeed
  4. disk trouble (root only)    db_home on a tmpfs that fills up, and on an
                                 ext4 loop filesystem forced read-only, during
                                 a load: 500 INTERNAL_ERROR, answered quickly,
                                 and 200 again once the disk is back; and
                                 read-only without a load: /readyz 503
                                 within READYZ_CACHE_MS, 200 after repair
  5. graceful stop               SIGTERM while slow logins are in flight:
                                 all get 200, exit 0, clean environment
  6. refresh storm, kills        50 sessions, each refreshed 3 at once by
                                 its own client and chained to the
                                 successor, while a worker is kill -9'd
                                 every 2 s: the 3 get one successor, no
                                 acknowledged rotation is lost (no 401), and
                                 the store (db5.3_dump) holds exactly one
                                 current token per family, the chain's last,
                                 its generation the rotations acknowledged

Prints "ok - NAME" or "not ok - NAME: WHY" per case, "# ..." notes, and
"N passed, M failed" last; exits 1 on any failure.  Everything it started
(processes, mounts, temporary directories) is removed on the way out, also
on an error or Ctrl-C.  KEEP_TMP=1 keeps the directories (not the mounts).
Python 3 standard library only.
"""

import atexit
import collections
import concurrent.futures
import errno
import hashlib
import hmac
import http.client
import json
import os
import pwd
import grp
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import stack  # noqa: E402
from stack import LOGIN, Env, free_port, procs, request  # noqa: E402

UPSTREAM_MS = stack.UPSTREAM_TIMEOUT_MS         # 1000, connect 500 (stack's config)
BOUND_S = (UPSTREAM_MS + 100) / 1000.0          # "within upstream_timeout_ms + 100 ms"
ROOT = os.geteuid() == 0
KID_BASE = random.randrange(10_000, 1_000_000) * 1000

results = []            # (ok, name, why)
cleanups = []           # callables run last-in first-out on the way out


def report(ok, name, why=""):
    results.append((ok, name, why))
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)
    return ok


def note(text):
    for line in str(text).splitlines():
        print("# " + line, flush=True)


# ------------------------------------------------------------- the stack

class Stack:
    """A fresh Env with the fake Kakao, the service and nginx; removed on
    exit from the with block (or by the global cleanup)."""

    def __init__(self, children=2, threads=8, durability="sync", extra=(),
                 before_service=None, worker_connections=256):
        self.env = Env(children=children, threads=threads, durability=durability,
                       extra=extra)
        self.before_service = before_service
        self.worker_connections = worker_connections
        self.mounts = []

    def __enter__(self):
        env = self.env
        cleanups.append(self.close)
        env.setup()
        if self.before_service:
            self.before_service(self)
        env.start_fake()
        env.write_config(self.fake_url())
        env.start_service()
        env.start_nginx(worker_connections=self.worker_connections)
        env.wait_fronts()
        return self

    def fake_url(self):
        return "http://127.0.0.1:%d" % self.env.fake_port

    @property
    def port(self):
        return self.env.fronts["nginx"]

    def close(self):
        procs.stop_all()
        for m in self.mounts[::-1]:
            umount(m)
        self.mounts = []
        if os.environ.get("KEEP_TMP"):
            note("kept %s" % self.env.dir)
        elif os.path.isdir(self.env.dir):
            if any(os.path.ismount(os.path.join(r, d))
                   for r, ds, _ in os.walk(self.env.dir) for d in ds):
                note("still mounted under %s: not removed" % self.env.dir)
            else:
                shutil.rmtree(self.env.dir, ignore_errors=True)

    def __exit__(self, *exc):
        if self.close in cleanups:
            cleanups.remove(self.close)
        self.close()
        return False

    def restart(self, api_url=None):
        """SIGTERM the spawn group, rewrite the config, start it again."""
        rc = self.env.stop_service()
        self.env.write_config(api_url or self.fake_url())
        self.env.start_service()
        self.env.wait_fronts()
        return rc

    # processes -------------------------------------------------------

    def leader(self):
        """pid of multiwatch (spawn-fcgi -n became it), the spawn script's
        child."""
        p = procs.procs.get("service")
        return stack.multiwatch_pid() if p is not None and p.poll() is None else None

    def workers(self):
        """Live kakao-login children of multiwatch, found through /proc."""
        lead = self.leader()
        return children_of(lead, stack.SERVICE) if lead else []

    def log_tail(self, start=0, pattern=None, n=12):
        with open(self.env.service_log, "rb") as f:
            f.seek(start)
            lines = f.read().decode("utf-8", "replace").splitlines()
        if pattern:
            lines = [l for l in lines if re.search(pattern, l)]
        return lines[-n:] if n else lines

    def log_size(self):
        return os.path.getsize(self.env.service_log)


def children_of(ppid, exe):
    exe = os.path.realpath(exe)
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[1]) != ppid or fields[0] == "Z":
                continue
            # The command name, not /proc/PID/exe: the service makes
            # itself non-dumpable, which hides exe from its own user.
            comm = st[st.index("(") + 1:st.rindex(")")]
            if comm != os.path.basename(exe)[:15]:
                continue        # forked, not yet exec()ed
        except (OSError, ValueError):
            continue
        out.append(int(d))
    return sorted(out)


def umount(path):
    if subprocess.run(["umount", path], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True)


def wait_until(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(step)
    return None


# ------------------------------------------------------------- HTTP

def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def login(port, tok, timeout=15):
    return request(port, "POST", LOGIN, bearer(tok), b"", timeout=timeout)


def check_user(js, kid):
    """-> error or None for a 200 body."""
    if not isinstance(js, dict) or js.get("message") != "SUCCESS":
        return "body %r" % (js,)
    u = js.get("user")
    if not isinstance(u, dict):
        return "no user"
    if u.get("kakao_id") != kid:
        return "user.kakao_id %r, want %d" % (u.get("kakao_id"), kid)
    if type(u.get("id")) is not int or u["id"] <= 0:
        return "user.id %r" % u.get("id")
    if type(u.get("login_count")) is not int or u["login_count"] < 1:
        return "user.login_count %r" % u.get("login_count")
    if not isinstance(js.get("access_token"), str):
        return "no access_token"
    return None


class Load:
    """n client threads with keep-alive http.client connections, logging
    in random Kakao ids valid-<kid> through one front port until stop().
    Records every answer; a 200 is checked (kakao_id, one user id per Kakao
    id, one Kakao id per user id)."""

    def __init__(self, port, kids, nthreads=16, timeout=10.0, prefix="valid-"):
        self.port, self.kids, self.n, self.timeout = port, list(kids), nthreads, timeout
        self.prefix = prefix
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ok = collections.Counter()         # kid -> 200s seen
        self.uid = {}                           # kid -> user id
        self.owner = {}                         # user id -> kid
        self.wrong = []                         # wrong answers
        self.fail = collections.Counter()       # (status, message) -> n
        self.noanswer = collections.Counter()   # exception text -> n
        self.log = []                           # (t_sent, t_done, status, message)
        self.threads = []

    def start(self):
        for i in range(self.n):
            t = threading.Thread(target=self.run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        """-> number of client threads still waiting for an answer."""
        self.stopping.set()
        deadline = time.monotonic() + self.timeout + 2
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return sum(1 for t in self.threads if t.is_alive())

    def run(self, i):
        rnd = random.Random(i * 7919 + KID_BASE)
        conn = None
        while not self.stopping.is_set():
            kid = rnd.choice(self.kids)
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                conn.request("POST", LOGIN, body=b"", headers=bearer(self.prefix + str(kid)))
                r = conn.getresponse()
                data = r.read()
                status = r.status
                if r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                with self.lock:
                    self.noanswer[type(e).__name__ + ": " + str(e)[:60]] += 1
                    self.log.append((t0, time.monotonic(), 0, "no answer"))
                time.sleep(0.02)
                continue
            t1 = time.monotonic()
            try:
                js = json.loads(data)
            except ValueError:
                js = None
            msg = js.get("message") if isinstance(js, dict) else None
            with self.lock:
                self.log.append((t0, t1, status, msg))
                if status == 200:
                    why = check_user(js, kid)
                    if why is None:
                        uid = js["user"]["id"]
                        if self.uid.setdefault(kid, uid) != uid:
                            why = "Kakao id %d got user %d, earlier %d" % (kid, uid, self.uid[kid])
                        elif self.owner.setdefault(uid, kid) != kid:
                            why = "user %d given to Kakao ids %d and %d" % (uid, self.owner[uid], kid)
                    if why:
                        self.wrong.append(why)
                    else:
                        self.ok[kid] += 1
                else:
                    self.fail[(status, msg)] += 1
                    if not (500 <= status <= 599 and isinstance(msg, str)):
                        self.wrong.append("status %d body %r" % (status, data[:100]))
            if status != 200:
                time.sleep(0.02)    # do not spin while the service is down

    # summaries ---------------------------------------------------------

    def counts(self):
        with self.lock:
            n = len(self.log)
            n200 = sum(1 for e in self.log if e[2] == 200)
        return n, n200, n - n200

    def summary(self):
        n, n200, nfail = self.counts()
        fails = ", ".join("%s %s x%d" % (s, m, c) for (s, m), c in sorted(self.fail.items(), key=str))
        na = ", ".join("%s x%d" % (k, c) for k, c in self.noanswer.items())
        return "%d requests, %d x 200, %d failed%s%s" % (
            n, n200, nfail, (" (" + fails + ")") if fails else "",
            ("; no answer: " + na) if na else "")

    def first_200_after(self, t):
        with self.lock:
            done = [e[1] for e in self.log if e[2] == 200 and e[0] >= t]
        return min(done) - t if done else None

    def max_latency(self, since=0.0):
        with self.lock:
            lat = [e[1] - e[0] for e in self.log if e[0] >= since]
        return max(lat) if lat else 0.0


def verify(port, load, nthreads=8, limit_s=45):
    """Log every Kakao id of the load in once more.  -> (lost, bad) lists:
    lost = acknowledged logins that are not in the store any more (another
    user id, or login_count below the 200s the clients saw), bad = ids that
    could not be checked.  Bounded: gives up after limit_s, or at once when
    the service does not answer a probe in 3 tries."""
    kids = list(load.kids)
    lost, bad = [], []
    # Tried as each id is below: a process whose store was panicked by
    # another's recovery answers 500 until its watch restarts it (up to a
    # tick), and the probe may land there just after the disk came back.
    for attempt in range(3):
        try:
            probe = login(port, "valid-%d" % kids[0], timeout=5)[0]
        except (OSError, http.client.HTTPException) as e:
            probe = repr(e)
        if probe == 200:
            break
        time.sleep(0.5)
    if probe != 200:
        return [], ["the service does not answer a login in 3 tries (%s): nothing checked" % probe]
    deadline = time.monotonic() + limit_s
    seen_uid = {}
    lock = threading.Lock()

    def one(kid):
        got = None
        for attempt in range(3):
            try:
                got = login(port, "valid-%d" % kid, timeout=5)
            except (OSError, http.client.HTTPException) as e:
                got = (0, None, str(e).encode(), 0)
            if got[0] == 200 or not (got[0] == 0 or got[0] >= 500):
                break
            time.sleep(0.5)
        st, js = got[0], got[1]
        with lock:
            if st != 200 or check_user(js, kid):
                bad.append("Kakao id %d: status %d %s" % (kid, st, got[2][:80]))
                return
            u = js["user"]
            if seen_uid.setdefault(u["id"], kid) != kid:
                bad.append("user %d answered for Kakao ids %d and %d" % (u["id"], seen_uid[u["id"]], kid))
            want_uid = load.uid.get(kid)
            if want_uid is not None and u["id"] != want_uid:
                lost.append("Kakao id %d: user %d, acknowledged as %d" % (kid, u["id"], want_uid))
            elif u["login_count"] < load.ok[kid] + 1:
                lost.append("Kakao id %d: login_count %d after %d acknowledged logins + this one"
                            % (kid, u["login_count"], load.ok[kid]))

    def worker(part):
        for kid in part:
            if time.monotonic() > deadline:
                with lock:
                    bad.append("Kakao id %d: not checked, verification over %d s" % (kid, limit_s))
                continue
            one(kid)
    parts = [kids[i::nthreads] for i in range(nthreads)]
    ts = [threading.Thread(target=worker, args=(p,), daemon=True) for p in parts]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(0.0, deadline + 45 - time.monotonic()))
    if any(t.is_alive() for t in ts):
        bad.append("verification threads still waiting for answers")
    return lost, bad


def kill9(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def kill_a_worker(st, timeout=5.0):
    """SIGKILLs one live worker; returns its pid, or None when none was
    found for timeout seconds. A kill makes the next worker run recovery and
    the others restart (store.c), so for a moment there may be none, or the
    one picked may be exiting on its own: then look again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws = st.workers()
        if ws:
            pid = random.choice(ws)
            if kill9(pid):
                return pid
        time.sleep(0.05)
    return None


def store_stuck_s():
    """The stuck-call watchdog's limit (STORE_STUCK_MS), in seconds."""
    with open(os.path.join(stack.REPO, "include", "kl_limits.h")) as f:
        return int(re.search(r"#define\s+STORE_STUCK_MS\s+(\d+)", f.read()).group(1)) / 1000.0


# ------------------------------------------------------------- 1. workers killed

def case_workers_killed():
    children, threads = 2, 8
    kids = [KID_BASE + 100_000 + i for i in range(300)]
    with Stack(children, threads, "sync") as st:
        load = Load(st.port, kids, 16).start()
        time.sleep(1.0)
        kills = []          # (time, pid)
        for _ in range(5):
            pid = kill_a_worker(st)
            if pid:
                kills.append((time.monotonic(), pid))
            time.sleep(2.0)
        # A killed worker may leave a Berkeley DB latch held: the other
        # process's requests caught on it wait for its stuck-call watchdog
        # (STORE_STUCK_MS) and its exit (the README's known limit). So the
        # end is judged once the last kill is past that bound.
        stuck_s = store_stuck_s()
        time.sleep(max(2.0, kills[-1][0] + stuck_s + 3.0 - time.monotonic()) if kills else 2.0)
        back = wait_until(lambda: len(st.workers()) == children and
                          not set(st.workers()) & {p for _, p in kills}, 10)
        time.sleep(1.0)
        t_end = time.monotonic()
        hung = load.stop()
        n, n200, nfail = load.counts()
        note("workers killed: %s" % load.summary())
        # The README's bound for kills: nothing waits more than 10 s.
        with load.lock:
            slow = [e for e in load.log if e[1] - e[0] >= 5.0]
        watchdog = bool(st.log_tail(0, r"a store call in flight for", 1))
        report(all(e[2] >= 500 and e[1] - e[0] < 10.0 for e in slow),
               "under kills every answer comes within 10 s, those over 5 s a 5xx "
               "(%d such, %s; the watchdog %s)" % (
                   len(slow), sorted(set((e[2], e[3]) for e in slow)),
                   "fired" if watchdog else "did not fire"),
               "%d requests over 5 s: %s; the watchdog %s" % (
                   len(slow), [(round(e[1] - e[0], 2), e[2], e[3]) for e in slow[:5]],
                   "fired" if watchdog else "did not fire"))
        last = load.first_200_after(t_end - 3.0)
        report(last is not None and not hung,
               "the service still answers at the end (a 200 in the last 3 s of the load)",
               "no 200 answered for requests sent in the last 3 s; %d client threads stuck "
               "waiting; workers %s; service log: %s" % (
                   hung, st.workers(), st.log_tail(0, r"warn|died|Spawning|started", 10)))
        report(len(kills) == 5, "5 workers killed with SIGKILL, one every 2 s",
               "only %d kills (workers found: %s)" % (len(kills), st.workers()))
        report(bool(back), "multiwatch restarts the killed workers: %d children again" % children,
               "after 10 s: children %s (leader %s); multiwatch said: %s" % (
                   st.workers(), st.leader(),
                   st.log_tail(0, r"died to often|Spawning", 4)))
        gaps = [load.first_200_after(t) for t, _ in kills]
        slow = [(i + 1, g) for i, g in enumerate(gaps) if g is None or g > 3.0]
        report(not slow, "a login succeeds within 3 s after each kill (%s s)" %
               ", ".join("%.2f" % g if g is not None else "never" for g in gaps),
               "kills without a 200 within 3 s: %s" % slow)
        report(not load.wrong and not hung,
               "under kills every answer is a correct 200 or a 5xx with a JSON message",
               "%d wrong: %s; %d client threads hung" % (len(load.wrong), load.wrong[:3], hung))
        report(not load.noanswer, "under kills every request is answered (no reset, no time-out)",
               "%s" % dict(load.noanswer))
        limit = max(10, n // 20)
        report(n200 > 0 and nfail <= limit,
               "failures are few: %d of %d requests failed (limit 5%%: %d)" % (nfail, n, limit),
               load.summary())
        lost, bad = verify(st.port, load)
        report(not lost and not bad,
               "after the kills every acknowledged login is stored (%d Kakao ids, %d x 200)"
               % (len(load.uid), n200),
               "%d lost, %d unchecked: %s" % (len(lost), len(bad), (lost + bad)[:4]))


# ------------------------------------------------------------- 2. everything killed

def kill_everything(st):
    lead = st.leader()
    ws = st.workers()
    if lead:
        kill9(lead)             # multiwatch first, so it restarts nothing
    for w in ws:
        kill9(w)
    try:
        os.killpg(lead, signal.SIGKILL)     # anything else of the group
    except (ProcessLookupError, PermissionError, TypeError):
        pass
    return lead, ws


def case_everything_killed():
    children, threads = 2, 8
    with Stack(children, threads, "sync") as st:
        for phase, dur in enumerate(("sync", "write_nosync", "nosync")):
            name = "everything killed, db_durability = %s" % dur
            if dur != st.env.durability:
                st.env.durability = dur
                st.restart()
            kids = [KID_BASE + 200_000 + phase * 1000 + i for i in range(300)]
            load = Load(st.port, kids, 16).start()
            time.sleep(2.0)
            lead, ws = kill_everything(st)
            t_kill = time.monotonic()
            gone = wait_until(lambda: all(not os.path.exists("/proc/%d" % p) or
                                          open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0] == "Z"
                                          for p in ws), 5)
            n_before = load.counts()
            rc, _ = st.env.stop_service()     # reaps the killed leader
            time.sleep(0.5)
            try:
                st.env.start_service()
                came_back = True
                why = ""
            except RuntimeError as e:
                came_back = False
                why = "%s; log: %s" % (e, st.log_tail(0, None, 8))
            up = came_back and wait_until(lambda: login(st.port, "valid-%d" % kids[0], 5)[0] == 200, 10)
            t_up = time.monotonic() - t_kill
            time.sleep(2.0)
            hung = load.stop()
            n, n200, nfail = load.counts()
            note("%s: %s (%d requests before the kill); killed multiwatch %s and workers %s"
                 % (name, load.summary(), n_before[0], lead, ws))
            report(bool(gone) and bool(up),
                   "%s: the restarted group answers 200 again (%.1f s after the kill)" % (name, t_up),
                   "workers gone %s, started %s, 200 %s: %s" % (bool(gone), came_back, bool(up), why))
            report(not load.wrong and not hung,
                   "%s: every answer is a correct 200 or a 5xx with a JSON message" % name,
                   "%d wrong: %s; %d client threads hung" % (len(load.wrong), load.wrong[:3], hung))
            if not up:
                continue
            # Whatever the durability, a user id once handed out (and put in
            # a token) is never handed out again: new users after the crash
            # get ids above every id acknowledged before it.
            top = max(load.uid.values()) if load.uid else 0
            fresh = []
            for i in range(20):
                status, js, _, _ = login(st.port, "valid-%d" % (KID_BASE + 900_000 + phase * 100 + i), 5)
                if status == 200 and isinstance(js, dict):
                    fresh.append(js.get("user", {}).get("id", 0))
            report(len(fresh) == 20 and min(fresh) > top,
                   "%s: user ids are not handed out again after the crash" % name,
                   "highest acknowledged id %d; new users got %s" % (top, sorted(fresh)[:5]))
            lost, bad = verify(st.port, load)
            if dur == "nosync":
                note("%s: %d of %d acknowledged Kakao ids lost or behind (%s)"
                     % (name, len(lost), len(load.uid), "; ".join(lost[:3]) or "none"))
                report(not bad, "%s: the service comes back and answers every Kakao id" % name,
                       "%d unchecked: %s" % (len(bad), bad[:4]))
            else:
                report(not lost and not bad,
                       "%s: no acknowledged login lost (%d Kakao ids, %d x 200)"
                       % (name, len(load.uid), n200),
                       "%d lost, %d unchecked: %s" % (len(lost), len(bad), (lost + bad)[:4]))


# ------------------------------------------------------------- 3. Kakao misbehaving

KAKAO_FAULTS = [
    # name                                token                  status message
    ("slow headers (1.5 s)",              "slow1500.valid-1",    504, "KAKAO_TIMEOUT"),
    ("trickling body",                    "trickle-1",           504, "KAKAO_TIMEOUT"),
    ("never answers",                     "hang-1",              504, "KAKAO_TIMEOUT"),
    ("closes the connection",             "close-1",             502, "KAKAO_UNAVAILABLE"),
    ("HTTP 500",                          "status500-1",         502, "KAKAO_UNAVAILABLE"),
    ("HTTP 503 maintenance",              "status503-1",         502, "KAKAO_UNAVAILABLE"),
    ("HTTP 429 quota",                    "status429-1",         502, "KAKAO_UNAVAILABLE"),
    ("truncated body",                    "truncated-1",         502, "KAKAO_BAD_RESPONSE"),
    ("10 MB body",                        "huge-1",              502, "KAKAO_BAD_RESPONSE"),
    ("not JSON",                          "garbage-1",           502, "KAKAO_BAD_RESPONSE"),
    ("id missing",                        "noid-1",              502, "KAKAO_BAD_RESPONSE"),
    ("id negative",                       "negid-1",             502, "KAKAO_BAD_RESPONSE"),
    ("id a string",                       "strid-1",             502, "KAKAO_BAD_RESPONSE"),
    ("id a float",                        "floatid-1",           502, "KAKAO_BAD_RESPONSE"),
    ("id above 2^63",                     "bigid-1",             502, "KAKAO_BAD_RESPONSE"),
    ("id zero",                           "zeroid-1",            502, "KAKAO_BAD_RESPONSE"),
    ("nickname not UTF-8",                "badutf8-1",           502, "KAKAO_BAD_RESPONSE"),
    ("nickname of 10,000 chars",          "longnick-1",          200, "SUCCESS"),
]


def fake_nickname(fake_port, tok):
    c = http.client.HTTPConnection("127.0.0.1", fake_port, timeout=5)
    try:
        c.request("GET", "/v2/user/me", headers=bearer(tok))
        js = json.loads(c.getresponse().read())
    finally:
        c.close()
    return js["kakao_account"]["profile"]["nickname"]


def expect(got, status, message, bound):
    st, js, data, secs = got
    if st != status:
        return "status %d, want %d; body %s" % (st, status, data[:120])
    msg = js.get("message") if isinstance(js, dict) else None
    if msg != message:
        return "message %r, want %s; body %s" % (msg, message, data[:120])
    if secs >= bound:
        return "answered in %.3f s, want < %.3f s" % (secs, bound)
    return None


def blackhole():
    """A listening socket on 127.0.0.1 that never accepts, its queue full:
    a connect to it gets no SYN-ACK.  -> (port, sockets to close)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    socks = [ls]
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        socks.append(c)
        c.connect_ex(("127.0.0.1", port))
    time.sleep(0.1)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        ok = False
    except socket.timeout:
        ok = True
    except OSError:
        ok = False
    finally:
        probe.close()
    return port, socks, ok


def case_kakao_faults():
    with Stack(2, 4, "write_nosync") as st:
        for name, tok, status, message in KAKAO_FAULTS:
            label = "Kakao %s (%s) -> %d %s within %.1f s" % (name, tok, status, message, BOUND_S)
            try:
                got = login(st.port, tok)
            except (OSError, http.client.HTTPException) as e:
                report(False, label, "no answer: %r" % e)
                continue
            why = expect(got, status, message, BOUND_S)
            if why is None and status == 200:
                why = check_user(got[1], 1)
                if why is None:
                    nick = got[1]["user"].get("nickname")
                    sent = fake_nickname(st.env.fake_port, tok)
                    nb = len(nick.encode()) if isinstance(nick, str) else -1
                    if not isinstance(nick, str) or not sent.startswith(nick) or not 253 <= nb <= 256:
                        why = "nickname %r (%d bytes): want a prefix of Kakao's %d chars, 253..256 bytes" % (
                            (nick or "")[:20], nb, len(sent))
                    else:
                        label += " (nickname cut to %d bytes)" % nb
            report(why is None, label, why)

        # No worker thread is stuck after all that: 1,000 concurrent logins.
        kids = [KID_BASE + 300_000 + i for i in range(1000)]
        out = collections.Counter()
        errs = []
        lock = threading.Lock()
        t0 = time.monotonic()

        def worker(part):
            conn = None
            for kid in part:
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
                    conn.request("POST", LOGIN, body=b"", headers=bearer("valid-%d" % kid))
                    r = conn.getresponse()
                    data = r.read()
                    why = None if r.status == 200 else "status %d %s" % (r.status, data[:80])
                    if why is None:
                        why = check_user(json.loads(data), kid)
                except (OSError, http.client.HTTPException, ValueError) as e:
                    why = "no answer: %r" % e
                    if conn is not None:
                        conn.close()
                    conn = None
                with lock:
                    out["ok" if why is None else "bad"] += 1
                    if why:
                        errs.append(why)
        ts = [threading.Thread(target=worker, args=(kids[i::16],), daemon=True) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        secs = time.monotonic() - t0
        report(out["ok"] == 1000,
               "after the faults 1,000 logins from 16 client threads all succeed (%.1f s)" % secs,
               "%d ok, %d failed, e.g. %s" % (out["ok"], out["bad"], errs[:3]))

        # Refused connection: the API URL at a closed port.
        st.restart("http://127.0.0.1:%d" % free_port())
        for i in range(3):
            got = login(st.port, "valid-%d" % (KID_BASE + 310_000 + i))
            why = expect(got, 502, "KAKAO_UNAVAILABLE", BOUND_S)
            if why:
                break
        report(why is None, "Kakao refuses connections -> 502 KAKAO_UNAVAILABLE within %.1f s" % BOUND_S, why)

        # Connect time-out: a listener that never completes a handshake.
        port, socks, ok = blackhole()
        try:
            if not ok:
                report(False, "Kakao connect times out", "could not make a listener that never "
                       "answers SYN on 127.0.0.1 (the test's setup, not the service)")
            else:
                # The four may all reach one process (nginx's kept
                # connections are served by their own process): under
                # the default cap of 3 calls there, the fourth would wait
                # its 200 ms and answer 503 KAKAO_BUSY, as designed (seen
                # in CI). This case is about the connect time-out, so
                # every thread may call Kakao.
                st.env.extra.append("kakao_max_calls = 4")
                st.restart("http://127.0.0.1:%d" % port)
                res = [None] * 4

                def one(i):
                    try:
                        res[i] = login(st.port, "valid-%d" % (KID_BASE + 320_000 + i))
                    except (OSError, http.client.HTTPException) as e:
                        res[i] = (0, None, repr(e).encode(), 99)
                ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(30)
                whys = [expect(r, 502, "KAKAO_UNAVAILABLE", BOUND_S) for r in res]
                report(not any(whys), "Kakao connect times out (SYN never answered) -> 502 "
                       "KAKAO_UNAVAILABLE within %.1f s, 4 at once" % BOUND_S,
                       "; ".join(w for w in whys if w))
        finally:
            for s in socks:
                s.close()


# ------------------------------------------------------------- 4. disk trouble

def disk_phase(st, label, break_disk, fix_disk, ro=False):
    """Load; break the disk; expect quick 500 INTERNAL_ERROR; fix it;
    expect 200 again."""
    kids = [KID_BASE + 400_000 + (1000 if ro else 0) + i for i in range(200)]
    log0 = st.log_size()
    load = Load(st.port, kids, 8).start()
    time.sleep(1.5)
    t_break = time.monotonic()
    what = break_disk()
    time.sleep(4.0)
    n_broken = load.counts()
    with load.lock:
        during = [e for e in load.log if e[0] >= t_break + 1.0]
    fails = collections.Counter((e[2], e[3]) for e in during if e[2] != 200)
    n500 = fails.get((500, "INTERNAL_ERROR"), 0)
    t_fix = time.monotonic()
    fix_what = fix_disk()
    # serving again: 20 consecutive 200s answered after the fix
    def serving():
        with load.lock:
            tail = [e for e in load.log if e[0] >= t_fix][-20:]
        return len(tail) == 20 and all(e[2] == 200 for e in tail)
    back = wait_until(serving, 20, 0.2)
    t_back = time.monotonic() - t_fix
    hung = load.stop()
    note("%s: %s; %s; then %s" % (label, load.summary(), what, fix_what))
    note("%s: while broken (from 1 s after): %d requests, %s" % (
        label, len(during), ", ".join("%s %s x%d" % (s, m, c) for (s, m), c in fails.items()) or "no failures"))
    maxlat = load.max_latency(t_break)
    # A process that exits on the full disk can leave a Berkeley DB latch
    # held, as a kill -9 does: requests of the other process caught on it
    # wait for its stuck-call watchdog (STORE_STUCK_MS), whose exit the
    # front answers 502 (the README's known limit; seen here about once in
    # ten runs). Those, and only those, may take longer than 5 s, and never
    # longer than the watchdog and the exit.
    stuck_s = store_stuck_s()
    with load.lock:
        slow = [e for e in load.log if e[0] >= t_break and e[1] - e[0] >= 5.0]
    watchdog = bool(st.log_tail(log0, r"a store call in flight for", 1))
    slow_ok = all(e[2] == 502 and e[1] - e[0] < stuck_s + 3.0 for e in slow) and (watchdog or not slow)
    if slow:
        note("%s: %d requests over 5 s (the slowest %.2f s), all %s, the watchdog %s" % (
            label, len(slow), maxlat, sorted(set(e[2] for e in slow)), "fired" if watchdog else "did not fire"))
    report(n500 > 0 and not hung and slow_ok and not load.noanswer,
           "%s: logins answer 500 INTERNAL_ERROR, each within 5 s but those the stuck-call watchdog "
           "ends (502, within STORE_STUCK_MS + 3 s) (slowest %.2f s)" % (label, maxlat),
           "%d x 500 INTERNAL_ERROR among %d requests while broken; %d hung; no answer %s; "
           "workers now %s, multiwatch %s; service log: %s" % (
               n500, len(during), hung, dict(load.noanswer), st.workers(), st.leader(),
                                st.log_tail(log0, r"PANIC|unable to join|died to often|needs recovery|busy|Read-only|No space", 6)))
    report(not load.wrong, "%s: no wrong answer (only 200 or 5xx JSON)" % label,
           "%s" % load.wrong[:3])
    report(bool(back), "%s: 200 again once the disk is back (%.1f s)" % (label, t_back),
           "no run of 20 x 200 within 20 s; workers %s, leader %s; service log: %s" % (
               st.workers(), st.leader(), st.log_tail(log0, r"PANIC|unable to join|died to often|needs recovery|busy|Read-only|No space|started|stopped", 6)))
    if back:
        lost, bad = verify(st.port, load)
        if ro:
            # A filesystem that failed under us: commits written just before
            # the error can be lost with it (the kernel may answer a sync on
            # a file system remounted read-only after an error as done, and
            # the "repair" here is an e2fsck'd copy). Runs lost 0 to 7 of
            # 200 ids' last login. So this is measured, not asserted; every
            # id must still log in.
            note("%s: %d of %d acknowledged Kakao ids behind after the repair (%s)"
                 % (label, len(lost), len(load.uid), "; ".join(lost[:2]) or "none"))
            report(not bad, "%s: afterwards every Kakao id logs in" % label,
                   "%d unchecked: %s" % (len(bad), bad[:4]))
        else:
            report(not lost and not bad, "%s: afterwards no acknowledged login lost" % label,
                   "%d lost, %d unchecked: %s" % (len(lost), len(bad), (lost + bad)[:4]))
    return n_broken


def readyz_phase(st, label, break_disk, fix_disk):
    """No load: /readyz is 200; the disk breaks under the idle service;
    /readyz turns 503 NOT_READY within READYZ_CACHE_MS (plus a second of
    slack for the two processes' caches and the probe), the first reason
    "store not writable" (the probe's own write found it), and stays 503;
    the disk comes back: /readyz 200 again, while /healthz stays 200."""
    with open(os.path.join(stack.REPO, "include", "kl_limits.h")) as f:
        cache_ms = int(re.search(r"#define\s+READYZ_CACHE_MS\s+(\d+)", f.read()).group(1))
    ready = [request(st.port, "GET", "/readyz")[0] for _ in range(10)]
    report(ready == [200] * 10, "%s: /readyz 200 READY before" % label, "statuses %s" % ready)
    t_break = time.monotonic()
    what = break_disk()
    seen, first, healthz = [], None, set()
    while time.monotonic() - t_break < cache_ms / 1000.0 + 3.0:
        got = request(st.port, "GET", "/readyz", timeout=5)
        healthz.add(request(st.port, "GET", "/healthz", timeout=5)[0])
        reason = got[1].get("reason") if isinstance(got[1], dict) else None
        if got[0] == 503 and first is None:
            first = (time.monotonic() - t_break, got[1])
        if first is not None:
            seen.append((got[0], reason))
        time.sleep(0.05)
    note("%s: %s; the first 503 after %s s; /readyz answers from then: %s" % (
        label, what, "%.2f" % first[0] if first else "-", dict(collections.Counter(seen))))
    report(first is not None and first[0] <= cache_ms / 1000.0 + 1.0 and
           first[1] == {"message": "NOT_READY", "reason": "store not writable"},
           "%s: /readyz 503 NOT_READY \"store not writable\" within %d ms + 1 s of the disk "
           "going read-only, with no login to notice it" % (label, cache_ms),
           "first 503: %r" % (first,))
    late = [x for x in seen[-20:] if x[0] != 503]
    report(first is not None and len(seen) >= 20 and not late,
           "%s: /readyz stays 503 while read-only (reasons %s)" % (
               label, sorted({r for _, r in seen})), "%d answers, not 503: %r" % (len(seen), late[:3]))
    report(healthz == {200}, "%s: /healthz 200 throughout" % label, "statuses %s" % sorted(healthz))
    t_fix = time.monotonic()
    fix_what = fix_disk()

    def ready_again():
        return all(request(st.port, "GET", "/readyz", timeout=5)[0] == 200 for _ in range(20))
    back = wait_until(ready_again, 20, 0.2)
    report(bool(back), "%s: /readyz 200 READY again once the disk is back (%.1f s; %s)" % (
        label, time.monotonic() - t_fix, fix_what),
        "not READY within 20 s; workers %s; service log: %s" % (
            st.workers(), st.log_tail(0, r"store|Read-only|started", 6)))


def nobody_ids():
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def unmounted_phase(st, db, remount):
    label = "db_home unmounted, mount point writable"
    ids = [login(st.port, "valid-%d" % (KID_BASE + 700_000 + i))[1]["user"]["id"]
           for i in range(20)]
    st.env.stop_service()
    umount(db)
    st.mounts.remove(db)
    start = st.log_size()
    try:
        st.env.start_service()
        started = True
    except RuntimeError:
        started = False
    lines = st.log_tail(start, r"holds no environment", 2)
    report(not started and lines and "disk mounted?" in lines[-1] and
           not any(n.endswith(".db") for n in os.listdir(db)),
           "%s: the start is refused, the log says the mark's ids have no environment, "
           "nothing created" % label,
           "started %s, log %s, files %s" % (started, lines, os.listdir(db)))
    procs.stop("service")
    remount()
    st.env.start_service()
    r = login(st.port, "valid-%d" % (KID_BASE + 700_100))
    report(r[0] == 200 and r[1]["user"]["id"] > max(ids),
           "%s: mounted again, the service starts and ids go on (%s > %d)" % (
               label, r[1].get("user", {}).get("id") if r[0] == 200 else r[0], max(ids)), str(r[:2]))


def case_disk():
    if not ROOT:
        report(True, "disk trouble # SKIP needs root (mounts)")
        return
    uid, gid = nobody_ids()

    # Full: db_home on a 48 MB tmpfs, filled by a file, then the file removed.
    def mount_tmpfs(st):
        db = st.env.path("db")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700,uid=%d,gid=%d" % (uid, gid),
                            "kl-faults", db], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("mount tmpfs: %s" % r.stderr.strip())
        st.mounts.append(db)
    with Stack(2, 4, "sync", before_service=mount_tmpfs) as st:
        filler = st.env.path("db", "filler")

        def fill():
            n = 0
            with open(filler, "wb") as f:
                try:
                    while True:
                        n += f.write(b"\0" * (1 << 20))
                        f.flush()
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
            return "filled the tmpfs with %d MB" % (n >> 20)

        def unfill():
            os.unlink(filler)
            return "removed the filler"
        disk_phase(st, "db_home on a full tmpfs", fill, unfill)

    # Read-only: a tmpfs cannot be remounted read-only while the service
    # holds its files open for writing (EBUSY), so db_home goes on an ext4
    # loop filesystem mounted errors=remount-ro, and an ext4 error is
    # triggered: the kernel turns it read-only under the writers (EROFS),
    # as after a real I/O error.  The disk "comes back" as an operator would
    # bring it back: lazy unmount, e2fsck, mount again at the same place.
    img = {}

    def mount_ext4(st, careful=True):
        db = st.env.path("db")
        img["path"] = st.env.path("db.img")
        with open(img["path"], "wb") as f:
            f.truncate(64 << 20)
        r = subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "root_owner=%d:%d" % (uid, gid), img["path"]],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("mkfs.ext4: %s" % r.stderr.strip())
        # The mount point itself is root's and not writable by the service,
        # as on a host set up with care: while the disk is unmounted (the
        # repair below), a worker that restarts then cannot create a fresh,
        # empty environment in the bare directory (seen in CI: users
        # created anew from id 1 in the gap, then hidden by the mount).
        if careful:
            os.chown(db, 0, 0)
            os.chmod(db, 0o755)
        mount_img(st, db, img["path"])

    def mount_img(st, db, image):
        r = subprocess.run(["mount", "-o", "loop,errors=remount-ro", image, db],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("mount -o loop: %s" % r.stderr.strip())
        st.mounts.append(db)
        os.chmod(db, 0o700)
        dev = subprocess.run(["findmnt", "-n", "-o", "SOURCE", db], capture_output=True,
                             text=True).stdout.strip().splitlines()[-1]
        img["dev"] = os.path.basename(dev)

    try:
        with Stack(2, 4, "sync", before_service=mount_ext4) as st:
            db = st.env.path("db")

            def make_ro():
                with open("/sys/fs/ext4/%s/trigger_fs_error" % img["dev"], "w") as f:
                    f.write("kakao-login fault test\n")
                try:
                    fd = os.open(os.path.join(db, "probe"), os.O_WRONLY | os.O_CREAT, 0o600)
                    os.close(fd)
                    return "ext4 error triggered on %s, but it is still writable" % img["dev"]
                except OSError as e:
                    return "ext4 error triggered on %s: writes now fail with %s" % (
                        img["dev"], errno.errorcode.get(e.errno, e.errno))

            def bring_back():
                # The old filesystem stays alive while the service holds
                # its files, so the "repaired disk" is a copy of the image
                # (a new loop device, a new superblock) at the same place.
                subprocess.run(["umount", "-l", db], capture_output=True)
                st.mounts.remove(db)
                fixed = st.env.path("db-fixed.img")
                shutil.copyfile(img["path"], fixed)
                r = subprocess.run(["e2fsck", "-fy", fixed], capture_output=True, text=True)
                mount_img(st, db, fixed)
                return "lazy umount, e2fsck of a copy (rc %d), copy mounted at db_home as %s" % (
                    r.returncode, img["dev"])
            disk_phase(st, "db_home on ext4 forced read-only", make_ro, bring_back, ro=True)
        # Readiness alone, on a fresh stack: nothing but /readyz notices.
        with Stack(2, 4, "sync", before_service=mount_ext4) as st:
            db = st.env.path("db")
            readyz_phase(st, "readiness, db_home on ext4 forced read-only", make_ro, bring_back)
        # Unmounted, on a careless host (the mount point the service's
        # own): the id mark beside db_home still keeps the service from
        # creating an environment from id 1 in the bare directory.
        with Stack(2, 4, "sync", before_service=lambda s: mount_ext4(s, careful=False)) as st:
            unmounted_phase(st, st.env.path("db"), lambda: mount_img(st, st.env.path("db"),
                                                                     img["path"]))
    except RuntimeError as e:
        report(False, "db_home on ext4 forced read-only", "setup: %s" % e)


# ------------------------------------------------------------- 5. graceful stop

def case_graceful_stop():
    children, threads = 2, 8
    n = 12                  # below children * threads: all in the app at once
    kids = [KID_BASE + 500_000 + i for i in range(n)]
    # Every thread may wait on Kakao here: the processes need not share the
    # 12 logins evenly, and the default cap keeps one thread in 32 (at
    # least one) free of Kakao, which would answer the 8th 503 KAKAO_BUSY.
    with Stack(children, threads, "sync",
               extra=("kakao_max_calls = %d" % threads,)) as st:
        res = [None] * n
        sent = [None] * n

        def one(i):
            c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=15)
            try:
                c.putrequest("POST", LOGIN)
                c.putheader("Authorization", "Bearer slow300.valid-%d" % kids[i])
                c.putheader("Content-Length", "0")
                c.endheaders()
                sent[i] = time.monotonic()
                r = c.getresponse()
                res[i] = (r.status, r.read())
            except (OSError, http.client.HTTPException) as e:
                res[i] = (0, repr(e).encode())
            finally:
                c.close()
        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        wait_until(lambda: all(s is not None for s in sent), 5, 0.01)
        time.sleep(0.1)         # in nginx -> the app -> the slow fake Kakao
        log0 = st.log_size()
        t_term = time.monotonic()
        rc, secs = st.env.stop_service()
        for t in ts:
            t.join(20)
        before = [i for i in range(n) if sent[i] is not None and sent[i] < t_term]
        bad = []
        for i in before:
            st_, data = res[i] or (0, b"no result")
            why = "status %d %s" % (st_, data[:80]) if st_ != 200 else check_user(json.loads(data), kids[i])
            if why:
                bad.append("Kakao id %d: %s" % (kids[i], why))
        report(len(before) == n and not bad,
               "SIGTERM with %d slow logins in flight: every one answered 200" % n,
               "%d sent before SIGTERM, %d bad: %s" % (len(before), len(bad), bad[:3]))
        report(rc == 0 and secs < 5,
               "the spawn group exits 0 within 5 s of SIGTERM (%.2f s)" % secs,
               "exit status %r after %.2f s" % (rc, secs))
        stop_log = st.log_tail(log0, None, 0)
        stopped = [l for l in stop_log if " stopped" in l]
        alarming = [l for l in stop_log if re.search(r"warn|PANIC|recover|still busy", l, re.I) and
                    not stack.HTTP_KAKAO_WARNING.search(l)]
        report(len(stopped) == children and not alarming,
               "each worker closes the environment cleanly (%d x 'stopped', no warning)" % len(stopped),
               "stopped lines %d; warnings: %s" % (len(stopped), alarming[:4]))
        log1 = st.log_size()
        st.env.start_service()
        st.env.wait_fronts()
        uids = {}
        bad = []
        for i, kid in enumerate(kids):
            got = login(st.port, "valid-%d" % kid)
            why = expect(got, 200, "SUCCESS", 15) or check_user(got[1], kid)
            if why is None:
                u = got[1]["user"]
                if u["login_count"] != 2:
                    why = "login_count %d, want 2" % u["login_count"]
                first = res[i]
                try:
                    first_uid = json.loads(first[1])["user"]["id"]
                except (ValueError, KeyError, TypeError):
                    first_uid = None
                if first_uid is not None and u["id"] != first_uid:
                    why = "user %d, was %d before the stop" % (u["id"], first_uid)
                uids[kid] = u["id"]
            if why:
                bad.append("Kakao id %d: %s" % (kid, why))
        report(not bad, "after the restart the %d users are there (same id, login_count 2)" % n,
               "%s" % bad[:3])
        start_log = st.log_tail(log1, None, 0)
        alarming = [l for l in start_log if re.search(r"warn|PANIC|recover", l, re.I) and
                    not stack.HTTP_KAKAO_WARNING.search(l)]
        report(not alarming, "the restart logs no recovery, panic or warning",
               "%s" % alarming[:4])


# ------------------------------------------------------------- 6. refresh storm

REFRESH = "/users/token/refresh"
STORM_SESSIONS = 50
STORM_AT_ONCE = 3           # refreshes of one token sent together
STORM_WINDOW = 60           # refresh_reuse_window: retries stay inside it
SESSION_REC = 8 + 16 + 6 * 8       # store_session.h's layouts
TOKEN_REC = 8 + 16 + 3 * 8 + 32


def refresh_tag(secret, token):
    """The store's key for a refresh token: token_tag(ctx, "refresh", ...)
    = HMAC-SHA256 under HMAC-SHA256(key, "kakao-login tag refresh")."""
    key = hmac.new(secret, b"kakao-login tag refresh", hashlib.sha256).digest()
    return hmac.new(key, token.encode(), hashlib.sha256).digest()


def jwt_claims(jwt):
    return json.loads(stack.b64url_decode(jwt.split(".")[1]))


def db_dump(env, name):
    """-> [(key bytes, value bytes)] of a database of the live environment."""
    out = subprocess.run(["db5.3_dump", "-h", env.path("db"), name],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("db5.3_dump %s: %s" % (name, out.stderr.strip()))
    body = out.stdout.split("HEADER=END\n", 1)[1].split("DATA=END", 1)[0]
    vals = [bytes.fromhex(l.strip()) for l in body.splitlines() if l.startswith(" ")]
    return list(zip(vals[0::2], vals[1::2]))


def decode_token_rec(v):
    """store_session.h: version, state, pad (2), generation, sid, issued,
    rotated, expires, successor."""
    if len(v) != TOKEN_REC:
        raise ValueError("token record of %d bytes" % len(v))
    return {"version": v[0], "state": v[1], "generation": int.from_bytes(v[4:8], "big"),
            "sid": v[8:24].hex(), "successor": v[48:80]}


def decode_session_rec(v):
    """store_session.h: version, status, reason, pad, generation, sid, user
    id, kakao id, created, last used, expires, revoked at."""
    if len(v) != SESSION_REC:
        raise ValueError("session record of %d bytes" % len(v))
    return {"version": v[0], "status": v[1], "reason": v[2],
            "generation": int.from_bytes(v[4:8], "big"), "sid": v[8:24].hex(),
            "user_id": int.from_bytes(v[24:32], "big")}


class Chain:
    """One session refreshed by its own client: STORM_AT_ONCE refreshes of
    the current token at once, then on to the successor they were given.
    A step without a 200 (killed worker, 502) is sent again with the same
    token, which the reuse window answers with the same successor."""

    def __init__(self, kid, js):
        self.kid = kid
        self.token = js["refresh_token"]
        self.sid = jwt_claims(js["access_token"]).get("sid")
        self.rotations = 0
        self.bad = []           # violations: 401s, two successors, wrong bodies
        self.answers = collections.Counter()    # (status, message) -> n

    def one(self, port, token):
        try:
            st, js, raw, _ = request(port, "POST", REFRESH, None,
                                     ("refresh_token=" + token).encode(), timeout=10)
        except (OSError, http.client.HTTPException) as e:
            return 0, None, type(e).__name__.encode()
        return st, js, raw

    def step(self, pool, port):
        futs = [pool.submit(self.one, port, self.token) for _ in range(STORM_AT_ONCE)]
        got = [f.result() for f in futs]
        succ = set()
        for st, js, raw in got:
            msg = js.get("message") if isinstance(js, dict) else None
            self.answers[(st, msg if st else raw.decode())] += 1
            if st == 200:
                rt = js.get("refresh_token") if isinstance(js, dict) else None
                at = js.get("access_token") if isinstance(js, dict) else None
                if not isinstance(rt, str) or len(rt) != 43 or not isinstance(at, str):
                    self.bad.append("200 without tokens: %r" % raw[:120])
                elif jwt_claims(at).get("sid") != self.sid:
                    self.bad.append("200 with a JWT of another session")
                else:
                    succ.add(rt)
            elif st == 0 or (st >= 500 and isinstance(msg, str)):
                pass            # a killed worker: sent again
            else:
                self.bad.append("generation %d: status %d %r" % (
                    self.rotations, st, raw[:100]))
        if len(succ) > 1:
            self.bad.append("generation %d: %d different successors for one token"
                            % (self.rotations, len(succ)))
        if len(succ) == 1:
            self.token = succ.pop()
            self.rotations += 1
            return True
        return False

    def run(self, pool, port, stopping):
        while not stopping.is_set() and len(self.bad) < 5:
            if not self.step(pool, port):
                time.sleep(0.05)


def case_refresh_storm():
    children, threads = 2, 8
    kids = [KID_BASE + 600_000 + i for i in range(STORM_SESSIONS)]
    # 150 clients at once, each also an upstream connection: nginx's
    # default 256 per worker would drop some (a fault of the test's nginx).
    with Stack(children, threads, "sync",
               extra=("refresh_reuse_window = %d" % STORM_WINDOW,),
               worker_connections=1024) as st:
        chains = []
        for kid in kids:
            status, js, raw, _ = login(st.port, "valid-%d" % kid)
            if status != 200 or not isinstance(js, dict) or \
                    not isinstance(js.get("refresh_token"), str):
                report(False, "refresh storm: logins", "status %d %r" % (status, raw[:200]))
                return
            chains.append(Chain(kid, js))
        stopping = threading.Event()
        pool = concurrent.futures.ThreadPoolExecutor(STORM_SESSIONS * STORM_AT_ONCE)
        ts = [threading.Thread(target=c.run, args=(pool, st.port, stopping), daemon=True)
              for c in chains]
        for t in ts:
            t.start()
        time.sleep(1.0)
        kills = []
        for _ in range(5):
            if kill_a_worker(st):
                kills.append(time.monotonic())
            time.sleep(2.0)
        back = wait_until(lambda: len(st.workers()) == children, 10)
        time.sleep(1.0)
        stopping.set()
        for t in ts:
            t.join(30)
        hung = sum(1 for t in ts if t.is_alive())
        pool.shutdown(wait=False)
        answers = collections.Counter()
        for c in chains:
            answers.update(c.answers)
        rots = [c.rotations for c in chains]
        note("refresh storm: %d rotations acknowledged (per session %d .. %d); answers %s"
             % (sum(rots), min(rots), max(rots),
                ", ".join("%s %s x%d" % (s, m, n) for (s, m), n in sorted(answers.items(), key=str))))
        bad = [(c.kid, b) for c in chains for b in c.bad]
        report(len(kills) == 5 and bool(back) and not hung,
               "refresh storm: 5 workers killed, restarted, no client stuck",
               "%d kills, workers %s, %d chains stuck" % (len(kills), st.workers(), hung))
        report(not bad, "refresh storm: concurrent refreshes of a token get one successor, "
               "no acknowledged token refused (401), only 200 or 5xx JSON",
               "%d violations: %s" % (len(bad), bad[:4]))
        noanswer = sum(n for (s, _), n in answers.items() if s == 0)
        report(not noanswer, "refresh storm: every request is answered (no reset, no time-out)",
               "%d without an answer" % noanswer)
        report(min(rots) >= 3, "refresh storm: every session kept rotating (at least 3 "
               "rotations each, %d in all)" % sum(rots), "rotations per session: %s" % rots)

        # The store, after the storm: one current token per family.
        try:
            tokens = [(k, decode_token_rec(v)) for k, v in db_dump(st.env, "refresh.db")]
            sessions = {r["sid"]: r for r in
                        (decode_session_rec(v) for _, v in db_dump(st.env, "sessions.db"))}
            by_sid = db_dump(st.env, "refresh_by_sid.db")
        except (RuntimeError, ValueError, IndexError) as e:
            report(False, "refresh storm: the store dumps and decodes", str(e))
            return
        current = collections.defaultdict(list)
        for tag, r in tokens:
            if r["state"] == 1:         # STORE_TOKEN_CURRENT
                current[r["sid"]].append(tag)
        two = {sid: len(t) for sid, t in current.items() if len(t) > 1}
        report(not two, "refresh storm: no family has two current tokens (%d token "
               "records, %d families)" % (len(tokens), len(sessions)),
               "families with several: %s" % list(two.items())[:4])
        index = sorted((k.hex(), v.hex()) for k, v in by_sid)
        primary = sorted((r["sid"], tag.hex()) for tag, r in tokens)
        report(index == primary, "refresh storm: refresh_by_sid indexes exactly the token records",
               "%d index entries, %d records" % (len(index), len(primary)))
        wrong = []
        secret = st.env.secret
        for c in chains:
            s = sessions.get(c.sid)
            cur = current.get(c.sid, [])
            if s is None:
                wrong.append("Kakao id %d: no family %s" % (c.kid, c.sid))
            elif s["status"] != 1 or s["generation"] != c.rotations:
                wrong.append("Kakao id %d: family status %d, generation %d, %d rotations "
                             "acknowledged" % (c.kid, s["status"], s["generation"], c.rotations))
            elif cur != [refresh_tag(secret, c.token)]:
                wrong.append("Kakao id %d: the current record is not the last acknowledged "
                             "token's" % c.kid)
        report(not wrong, "refresh storm: per family the current token is the last one "
               "acknowledged, its generation the rotations acknowledged",
               "%d wrong: %s" % (len(wrong), wrong[:3]))

        # Without kills, every chain's last token still refreshes.
        lost = []
        for c in chains:
            status, js, raw = c.one(st.port, c.token)
            if status != 200 or not isinstance(js, dict) or \
                    js.get("refresh_token") in (None, c.token):
                lost.append("Kakao id %d: %d %r" % (c.kid, status, raw[:80]))
        report(not lost, "refresh storm: afterwards every session's last acknowledged "
               "token refreshes (%d)" % len(chains), "%d refused: %s" % (len(lost), lost[:3]))


# ------------------------------------------------------------- main

CASES = [
    ("workers killed under load", case_workers_killed),
    ("everything killed", case_everything_killed),
    ("Kakao misbehaving", case_kakao_faults),
    ("disk trouble", case_disk),
    ("graceful stop", case_graceful_stop),
    ("refresh storm", case_refresh_storm),
]


def cleanup():
    while cleanups:
        fn = cleanups.pop()
        try:
            fn()
        except Exception as e:   # noqa: BLE001 - keep cleaning
            note("cleanup: %r" % e)
    procs.stop_all()


def main():
    args = sys.argv[1:]
    only = None
    while args:
        if args[0] == "--build" and len(args) >= 2:
            stack.set_build(args[1])
            args = args[2:]
        elif args[0] == "--only" and len(args) >= 2:     # for debugging one case
            only = args[1]
            args = args[2:]
        else:
            sys.exit("usage: run.py [--build DIR] [--only NAME]")
    for prog in (stack.SERVICE, stack.FAKE):
        if not os.access(prog, os.X_OK):
            print("%s missing: run make first" % prog, file=sys.stderr)
            return 2
    atexit.register(cleanup)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    t0 = time.monotonic()
    try:
        for name, fn in CASES:
            if only and only not in name:
                continue
            try:
                fn()
            except KeyboardInterrupt:
                raise
            except Exception as e:   # noqa: BLE001 - a broken case is one failure
                report(False, name, "%s: %s" % (type(e).__name__, e))
            finally:
                cleanup()
    except KeyboardInterrupt:
        report(False, "run", "interrupted")
        signal.signal(signal.SIGINT, signal.SIG_IGN)    # let cleanup finish
    finally:
        cleanup()
    passed = sum(1 for r in results if r[0])
    failed = len(results) - passed
    note("%.0f s" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
