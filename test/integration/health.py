"""Health through the real nginx and lighttpd (issue 11): GET /healthz
(liveness, no dependency) and GET /readyz (readiness: the store proves a
write, cached per process), their methods and queries, that neither calls
Kakao, that a burst of /readyz costs a bounded number of store writes, and
readiness during a broken database: db_home the service user cannot open
(while the service runs, then its worker killed, so the one multiwatch
starts cannot open it) -> /readyz 503 NOT_READY "store not open" while
/healthz stays 200, then repaired -> /readyz 200 again without a restart
(the store retries opening every second).

Called by run.py (run_all(env, t)); t carries run.py's report, expect,
request, tokens_used and restart(env, name, children=2).
"""

import concurrent.futures
import http.client
import os
import re
import shutil
import signal
import subprocess
import time

import stack
from stack import LOGIN

HEALTHZ, READYZ = "/healthz", "/readyz"


def limit(name):
    """A constant of include/kl_limits.h, so the bounds follow the code."""
    with open(os.path.join(stack.REPO, "include", "kl_limits.h")) as f:
        m = re.search(r"#define\s+%s\s+(\d+)" % name, f.read())
    return int(m.group(1))


CACHE_MS = limit("READYZ_CACHE_MS")


def fake_requests(env, t):
    st, js, data, _ = t.request(env.fake_port, "GET", "/__stats")
    if st != 200 or not isinstance(js, dict):
        raise RuntimeError("fake Kakao /__stats: %d %r" % (st, data[:100]))
    return js["requests"]


def probe_count(env):
    """The probe record's count of writes (db5.3_dump joins the live
    environment and reads it): a version byte, 7 zero bytes, 8 bytes."""
    out = subprocess.run(["db5.3_dump", "-h", env.path("db"), "probe.db"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("db5.3_dump: %s" % out.stderr.strip())
    lines = [ln.strip() for ln in out.stdout.split("HEADER=END\n", 1)[-1].splitlines()
             if ln.startswith(" ")]
    for k, v in zip(lines[0::2], lines[1::2]):
        if bytes.fromhex(k) == b"probe" and len(v) == 32:
            return int(v[16:], 16)
    return 0


def answer_is(got, status, body):
    """-> why or None: exactly this status and JSON body."""
    st, js, data, _ = got
    if st != status or js != body:
        return "status %d, body %r; want %d %r" % (st, data[:200], status, body)
    return None


def headers_of(port, method, path):
    """-> (status, headers by lower-case name)"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def run_routes(env, t):
    ok_h, ok_r = {"message": "OK"}, {"message": "READY"}
    for front, port in env.fronts.items():
        rows = [("GET /healthz", "GET", HEALTHZ, None, 200, ok_h),
                ("GET /readyz", "GET", READYZ, None, 200, ok_r),
                ("GET /healthz with a query", "GET", HEALTHZ + "?verbose=1&x", None, 200, ok_h),
                ("GET /readyz with a query", "GET", READYZ + "?full=1", None, 200, ok_r),
                ("POST /readyz", "POST", READYZ, b"", 405, {"message": "METHOD_NOT_ALLOWED"}),
                ("DELETE /healthz", "DELETE", HEALTHZ, None, 405, {"message": "METHOD_NOT_ALLOWED"})]
        for name, method, path, body, status, want in rows:
            why = answer_is(t.request(port, method, path, None, body), status, want)
            t.report(why is None, "%s: %s: %d %s" % (front, name, status, want["message"]), why or "")
        for path in (HEALTHZ, READYZ):
            st, h = headers_of(port, "GET", path)
            why = None
            if not (h.get("content-type") or "").startswith("application/json"):
                why = "Content-Type %r" % h.get("content-type")
            elif h.get("cache-control") != "no-store":
                why = "Cache-Control %r" % h.get("cache-control")
            t.report(st == 200 and why is None, "%s: %s is JSON with Cache-Control: no-store" % (front, path),
                     why or "status %d" % st)
            st, h = headers_of(port, "HEAD", path)
            t.report(st == 405 and h.get("allow") == "GET",
                     "%s: HEAD %s: 405 with Allow: GET" % (front, path),
                     "status %d, Allow %r" % (st, h.get("allow")))


def run_no_kakao(env, t):
    before = fake_requests(env, t)
    bad = []
    for i in range(20):
        for front, port in env.fronts.items():
            path = READYZ if i % 2 else HEALTHZ
            st = t.request(port, "GET", path)[0]
            if st != 200:
                bad.append("%s %s: %d" % (front, path, st))
    calls = fake_requests(env, t) - before - 1
    t.report(not bad and calls == 0, "40 /readyz and 40 /healthz through both fronts: all 200, "
             "no Kakao call", "%s; %d Kakao calls" % ("; ".join(bad[:3]), calls))


def run_burst(env, t, n=200):
    """n concurrent /readyz: all READY, and the store wrote at most one
    probe per process per READYZ_CACHE_MS (and one each to begin with)."""
    ports = list(env.fronts.values())
    time.sleep(CACHE_MS / 1000.0 + 0.2)     # the earlier probes' results expire
    before = probe_count(env)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: t.request(ports[i % len(ports)], "GET", READYZ), range(n)))
    took = time.monotonic() - t0
    bad = [(g[0], g[2][:80]) for g in got if g[0] != 200 or g[1] != {"message": "READY"}]
    writes = probe_count(env) - before
    bound = env.children * (1 + int(took * 1000 / CACHE_MS) + 1)
    t.report(not bad, "%d concurrent /readyz through both fronts: all 200 READY" % n,
             "%d not: %r" % (len(bad), bad[:3]))
    t.report(0 < writes <= bound, "%d /readyz in %.1f s cost %d probe writes (at most %d: one per "
             "process per %d ms)" % (n, took, writes, bound, CACHE_MS), "%d writes" % writes)


def break_db(env):
    """db_home the service user cannot enter."""
    db = env.path("db")
    if env.root:
        shutil.chown(db, "root", "root")
        os.chmod(db, 0o700)
    else:
        os.chmod(db, 0)


def repair_db(env):
    db = env.path("db")
    os.chmod(db, 0o700)
    env.own(db)


def wait_ready(env, t, secs):
    """Until every front answers 10 /readyz in a row READY (both
    processes). -> seconds taken or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        if all(t.request(port, "GET", READYZ)[0] == 200
               for port in env.fronts.values() for _ in range(10)):
            return time.monotonic() - t0
        time.sleep(0.2)
    return None


def kill_worker(env, t):
    """kill -9 the one worker; -> the pid multiwatch starts in its place,
    once the fronts reach it (/healthz 200)."""
    old = stack.worker_pids()
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    new = []

    def replaced():
        new[:] = [p for p in stack.worker_pids() if p not in old]
        return new and all(t.request(port, "GET", HEALTHZ, timeout=2)[0] == 200
                           for port in env.fronts.values())
    stack.wait_for(replaced, 15, "multiwatch to restart the worker")
    return old, new


def run_broken_db(env, t):
    """One worker; db_home made unopenable for the service user while it
    runs (a start would be refused by the spawn script's checks), then the
    worker killed: the one multiwatch starts in its place cannot open the
    environment, keeps running, and retries every second."""
    t.restart(env, "health (one worker, broken db_home)", children=1)
    why = answer_is(t.request(env.fronts["nginx"], "GET", READYZ), 200, {"message": "READY"})
    t.report(why is None, "one worker: /readyz 200 READY before", why or "")
    break_db(env)
    try:
        old, new = kill_worker(env, t)
        for front, port in env.fronts.items():
            got = t.request(port, "GET", READYZ)
            why = answer_is(got, 503, {"message": "NOT_READY", "reason": "store not open"})
            if why is None and env.path("db") in got[2].decode("utf-8", "replace"):
                why = "the answer names db_home"
            t.report(why is None, "%s: db_home not openable (worker %s restarted as %s): /readyz 503 "
                     "NOT_READY, reason \"store not open\"" % (front, old, new), why or "")
            why = answer_is(t.request(port, "GET", HEALTHZ), 200, {"message": "OK"})
            t.report(why is None, "%s: db_home not openable: /healthz still 200 OK" % front, why or "")
            tok = "valid-%d" % (int(time.time()) % 100000 + 7_000_000 + len(front))
            t.tokens_used.add(tok)
            why = t.expect("", t.request(port, "GET", LOGIN, {"Authorization": "Bearer " + tok}),
                           500, "INTERNAL_ERROR")
            t.report(why is None, "%s: db_home not openable: a login answers 500 INTERNAL_ERROR"
                     % front, why or "")
    finally:
        repair_db(env)
    took = wait_ready(env, t, 15)
    t.report(took is not None, "db_home repaired: /readyz 200 READY through both fronts again, "
             "without a restart (%.1f s)" % (took or 0), "not READY within 15 s")
    t.report(stack.worker_pids() == new, "db_home repaired: the same worker serves (pid %s)" % new,
             "workers now %s" % stack.worker_pids())
    tok = "valid-%d" % (int(time.time()) % 100000 + 7_100_000)
    t.tokens_used.add(tok)
    got = t.request(env.fronts["nginx"], "GET", LOGIN, {"Authorization": "Bearer " + tok})
    t.report(got[0] == 200, "db_home repaired: logins succeed again", "status %d" % got[0])


def run_all(env, t):
    t.restart(env, "health")
    run_routes(env, t)
    run_no_kakao(env, t)
    run_burst(env, t)
    run_broken_db(env, t)
