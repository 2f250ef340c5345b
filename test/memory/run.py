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
    malformed FastCGI), then SIGTERM. Passes when every request was answered
    as it must be, the process exits 0, and valgrind reports no definite or
    indirect leak and no error.
(b) resident memory: the normal build (BUILD_DIR) under the real
    etc/kakao-login-spawn (2 children x 4 threads) behind the real nginx;
    wrk (Lua script: GET logins, Kakao id varying over 10,000 ids) sends
    RSS_WARMUP (20,000) requests, the workers' RSS is sampled, then the rest
    up to RSS_TOTAL (200,000), and RSS is sampled again: the end value must
    be within 5% of the warm-up value.

Prints "ok - NAME" / "not ok - NAME: WHY" and "N passed, M failed" last;
exits 1 on any failure. Stops what it started and removes its temporary
directories also on an error or Ctrl-C (KEEP_TMP=1 keeps them).
Environment: MEMCHECK_N, RSS_WARMUP, RSS_TOTAL override the counts.
Python 3 standard library, valgrind and wrk (Debian packages).
"""

import atexit
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
import fcgiclient as fc  # noqa: E402
from stack import LOGIN, Env, procs, worker_pids  # noqa: E402

SUPP = os.path.join(HERE, "valgrind.supp")
MEMCHECK_N = int(os.environ.get("MEMCHECK_N", 20000))
MEMCHECK_CONC = 8
RSS_WARMUP = int(os.environ.get("RSS_WARMUP", 20000))
RSS_TOTAL = int(os.environ.get("RSS_TOTAL", 200000))
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

# One kind of request per slot of a cycle of 40: (kind, params builder,
# expected statuses). About half are logins; the rest walk the error paths.
def _req(method="GET", uri=LOGIN, auth=None, body=b""):
    return fc.request_bytes(method, uri, auth, body)


def mix(i):
    """-> (kind, bytes, set of acceptable statuses; None = no answer expected)"""
    r = i % 40
    kid = 1_000_000 + (i * 7919) % 3000
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


def memcheck(build):
    env = Env(threads=4, extra=[])
    envs.append(env)
    env.setup()
    env.start_fake()
    env.write_config("http://127.0.0.1:%d" % env.fake_port)
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
    lock = threading.Lock()

    def worker(k):
        for i in range(k, MEMCHECK_N, MEMCHECK_CONC):
            kind, data, want = mix(i)
            try:
                if want is None:    # libfcgi drops these: half-close, see it close
                    r = fc.exchange(env.sock, data, timeout=10, until_end=(), shut_wr=True)
                else:
                    r = fc.exchange(env.sock, data, timeout=60)
            except OSError as e:    # the service is gone: stop this thread
                with lock:
                    bad.append("%s: %s" % (kind, e))
                return
            st = r.http()[0]
            with lock:
                counts[st] = counts.get(st, 0) + 1
                if want is not None and st not in want and len(bad) < 5:
                    bad.append("%s: %s" % (kind, r.summary()))
                elif want is None and r.stdout and len(bad) < 5:
                    bad.append("%s answered: %s" % (kind, r.summary()))

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
    """-> (VmRSS, RssAnon) summed over pids, in kB"""
    tot, anon = 0, 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        tot += int(ln.split()[1])
                    elif ln.startswith("RssAnon:"):
                        anon += int(ln.split()[1])
        except OSError:
            pass
    return tot, anon


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
    warm, warm_anon = rss(pids0)
    note("rss: warm-up %d requests in %.1f s; workers %s: VmRSS %d kB, RssAnon %d kB" % (
        n1, s1, pids0, warm, warm_anon))
    n2, bad2, s2 = run_wrk(port, script, RSS_TOTAL - n1, n1)
    pids1 = worker_pids()
    end, end_anon = rss(pids1)
    note("rss: then %d requests in %.1f s (%.0f/s); VmRSS %d kB, RssAnon %d kB" % (
        n2, s2, n2 / s2, end, end_anon))
    report(pids1 == pids0, "rss: the same worker processes throughout", "%s -> %s" % (pids0, pids1))
    report(bad1 + bad2 == 0, "rss: %d logins through nginx, every answer 200" % (n1 + n2),
           "%d answers not 200" % (bad1 + bad2))
    change = (end - warm) / warm if warm else 1.0
    report(abs(change) <= RSS_TOLERANCE,
           "rss: workers' RSS after %d requests within 5%% of after the %d warm-up (%d kB -> %d kB, %+.1f%%)"
           % (n1 + n2, n1, warm, end, change * 100),
           "%d kB -> %d kB (%+.1f%%); RssAnon %d -> %d kB" % (warm, end, change * 100, warm_anon, end_anon))
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
