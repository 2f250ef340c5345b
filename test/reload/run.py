#!/usr/bin/env python3
"""SIGHUP reload, log rotation, a rolling restart and the spawn script's
exit status (issue 11, item 5).

    python3 test/reload/run.py [--build DIR]     (after make)

The service under the real etc/kakao-login-spawn (spawn-fcgi + multiwatch,
2 children) behind the real nginx and lighttpd, with the fake Kakao
(test/integration/stack.py), `log_file` set. While threads keep logging in
(new and known Kakao ids) and checking JWTs at /auth/verify through both
fronts, the suite sends SIGHUP to the spawn script (what the unit's
ExecReload does) and checks, each time, that the worker pids are the same,
that every worker logged the reload, and that no request failed:
  1. the config unchanged;
  2. the JWT key rotated as the README says: a new key second, then first
     -> new tokens carry the new kid, tokens issued before verify;
  3. a broken config (an unknown key) -> refused, the log says why, the
     running config stays (new tokens still carry the new kid);
  4. the log file moved away (logrotate's way) -> a new file at the path
     gets the lines, the moved one none after the reload;
  5. a rolling restart: SIGTERM to one worker at a time, waiting for its
     replacement -> no request fails, every pid changed;
  6. the spawn script exits 1 (and says why) when every worker fails at
     start, 0 after SIGTERM; a start-up failure reaches log_file.
The logs are searched for every token, JWT and key.
Prints "ok - ..." / "not ok - ..." per check, "N passed, M failed" last.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import stack  # noqa: E402
from stack import LOGIN, Env, procs, worker_pids  # noqa: E402

results = []
BASE = 7_600_000_000 + (os.getpid() % 1000) * 1000
VERIFY = "/auth/verify"
tokens_seen = set()


def note(text):
    print("# " + text, flush=True)


def report(ok, name, why=""):
    results.append(ok)
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)


def call(port, method, path, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request(method, path, headers=headers)
        r = c.getresponse()
        data = r.read()
        return r.status, data
    finally:
        c.close()


def login(port, k):
    tok = "valid-%d" % k
    tokens_seen.add(tok)
    st, data = call(port, "GET", LOGIN, {"Authorization": "Bearer " + tok})
    js = json.loads(data) if st == 200 else None
    if js:
        tokens_seen.add(js["access_token"])
        tokens_seen.add(js.get("refresh_token", ""))
    return st, js


def kid_of(jwt):
    head = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


class Load(threading.Thread):
    """Logins (half new Kakao ids) and /auth/verify of the JWTs they got,
    through one front, until stopped; every failure kept."""

    def __init__(self, name, port, slot):
        super().__init__(daemon=True)
        self.name, self.port, self.slot = name, port, slot
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bad = []
        self.n = 0
        self.jwts = []          # (kid, jwt), the latest last

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            k = BASE + self.slot * 100_000 + (i if i % 2 else i % 50)
            try:
                st, js = login(self.port, k)
                ok = st == 200
                if ok:
                    jwt = js["access_token"]
                    with self.lock:
                        self.jwts.append((kid_of(jwt), jwt))
                        del self.jwts[:-200]
                    st, _ = call(self.port, "GET", VERIFY, {"Authorization": "Bearer " + jwt})
                    ok = st == 204
                why = "status %s" % st
            except (OSError, http.client.HTTPException, ValueError) as e:
                ok, why = False, "%s: %s" % (type(e).__name__, e)
            with self.lock:
                self.n += 1
                if not ok:
                    self.bad.append("%s, Kakao id %d: %s" % (self.name, k, why))

    def mark(self):
        with self.lock:
            return self.n, len(self.bad)

    def latest_kid(self):
        with self.lock:
            return self.jwts[-1][0] if self.jwts else None


def loads_ok(loads, marks, what):
    """No failure since marks, and requests went on."""
    bad, n = [], 0
    for ld, (n0, b0) in zip(loads, marks):
        n1, _ = ld.mark()
        n += n1 - n0
        bad += ld.bad[b0:]
    report(not bad and n > 20, "%s: no request failed (%d requests meanwhile)" % (what, n),
           "; ".join(bad[:4]))


def log_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def hup(env, log, what, expect="reload"):
    """SIGHUP to the spawn script; waits until every worker logged either
    its start in place or the refusal. -> the new log text since."""
    before = len(log_text(log))
    os.kill(procs.procs["service"].pid, signal.SIGHUP)
    pat = "started:" if expect == "reload" else "refused, the running config stays"
    end = time.monotonic() + 20
    while time.monotonic() < end:
        new = log_text(log)[before:]
        if new.count(pat) >= env.children:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    new = log_text(log)[before:]
    report(new.count(pat) == env.children,
           "%s: each of the %d workers logged %r" % (what, env.children, pat),
           "log since: %s" % new[-600:])
    return new


def write_keys(env, keys):
    """jwt_secret_file as kid:base64 lines, replaced in one rename."""
    tmp = env.path("jwt.secret.new")
    with open(tmp, "w") as f:
        f.write("".join(key_line(k, v) for k, v in keys))
    os.chmod(tmp, 0o600)
    env.own(tmp)
    os.rename(tmp, env.path("jwt.secret"))


def key_line(kid, key):
    return "%s:%s\n" % (kid, base64.b64encode(key).decode())


def legacy_kid(key):
    return "k" + hashlib.sha256(key).hexdigest()[:8]


def run_reloads(env, log, loads):
    pids = worker_pids()
    # 1. unchanged
    marks = [ld.mark() for ld in loads]
    hup(env, log, "SIGHUP, config unchanged")
    time.sleep(1.0)
    report(worker_pids() == pids, "SIGHUP, config unchanged: the same worker pids",
           "%s -> %s" % (pids, worker_pids()))
    loads_ok(loads, marks, "SIGHUP, config unchanged")

    # 2. key rotation
    old_kid = loads[0].latest_kid()
    report(old_kid == legacy_kid(env.secret), "before the rotation, tokens carry the one key's kid",
           "%s, want %s" % (old_kid, legacy_kid(env.secret)))
    with loads[0].lock:
        old_jwts = [j for k, j in loads[0].jwts if k == old_kid][-5:]
    env.new_secret = os.urandom(48)
    marks = [ld.mark() for ld in loads]
    # The README's way: the new key second (every worker verifies it), then
    # first (every worker signs with it), so no worker meets a kid it lacks.
    old_key, new_key = (old_kid, env.secret), ("k2026b", env.new_secret)
    write_keys(env, [old_key, new_key])
    hup(env, log, "SIGHUP, a new key second")
    time.sleep(1.0)
    kids = {ld.name: ld.latest_kid() for ld in loads}
    report(all(k == old_kid for k in kids.values()),
           "with the new key second, tokens still carry the old kid", str(kids))
    write_keys(env, [new_key, old_key])
    hup(env, log, "SIGHUP, the new key first")
    time.sleep(1.0)
    kids = {ld.name: ld.latest_kid() for ld in loads}
    report(all(k == "k2026b" for k in kids.values()), "after the rotation, new tokens carry the new kid",
           str(kids))
    port = loads[0].port
    sts = [call(port, "GET", VERIFY, {"Authorization": "Bearer " + j})[0] for j in old_jwts]
    report(old_jwts and all(s == 204 for s in sts),
           "tokens signed by the old key before the reload still verify (%d)" % len(old_jwts), str(sts))
    report(worker_pids() == pids, "SIGHUP, key rotated: the same worker pids",
           "%s -> %s" % (pids, worker_pids()))
    loads_ok(loads, marks, "SIGHUP, key rotated")

    # 3. a broken config
    with open(env.conf) as f:
        good = f.read()
    with open(env.conf, "a") as f:
        f.write("no_such_key = 1\n")
    marks = [ld.mark() for ld in loads]
    new = hup(env, log, "SIGHUP, an unknown key in the config", expect="refused")
    report("no_such_key" in new, "the refusal names what is wrong", new[-400:])
    time.sleep(0.5)
    report(worker_pids() == pids, "SIGHUP, broken config: the same worker pids",
           "%s -> %s" % (pids, worker_pids()))
    kids = {ld.name: ld.latest_kid() for ld in loads}
    report(all(k == "k2026b" for k in kids.values()), "the running config stays (new tokens: the new kid)",
           str(kids))
    loads_ok(loads, marks, "SIGHUP, broken config")
    with open(env.conf, "w") as f:
        f.write(good)

    # 4. log rotation: moved away, then SIGHUP
    rotated = log + ".1"
    os.rename(log, rotated)
    marks = [ld.mark() for ld in loads]
    hup(env, log, "SIGHUP after the log file was moved")
    size1 = os.path.getsize(rotated)
    time.sleep(1.5)
    report(os.path.getsize(rotated) == size1, "the moved log file gets no line after the reload",
           "%d -> %d bytes" % (size1, os.path.getsize(rotated)))
    reqs = [ln for ln in log_text(log).splitlines() if " req " in ln]
    report(len(reqs) > 10, "a new log file at the path gets the request lines (%d)" % len(reqs))
    report(worker_pids() == pids, "SIGHUP, log moved: the same worker pids",
           "%s -> %s" % (pids, worker_pids()))
    loads_ok(loads, marks, "SIGHUP, log moved")
    return pids


def run_rolling(env, loads, pids):
    marks = [ld.mark() for ld in loads]
    cur = list(pids)
    for old in pids:
        os.kill(old, signal.SIGTERM)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            now = worker_pids()
            if old not in now and len(now) == env.children:
                break
            time.sleep(0.05)
        cur = worker_pids()
        time.sleep(1.0)        # the new one open and accepting
    report(len(cur) == env.children and not set(cur) & set(pids),
           "rolling restart: every worker replaced, one at a time", "%s -> %s" % (pids, cur))
    loads_ok(loads, marks, "rolling restart (SIGTERM one worker at a time)")


def run_group_fails(env):
    """The spawn script with a program that passes -t but cannot start."""
    wrapper = env.path("bin", "kakao-login")
    os.makedirs(os.path.dirname(wrapper), 0o755)
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n# passes -t, fails every start\n"
                "case \" $* \" in *\" -t \"*) exec %s \"$@\" ;; esac\n"
                "echo 'kakao-login (test): cannot start' >&2\nexit 1\n" % stack.SERVICE)
    os.chmod(wrapper, 0o755)
    sock = env.path("fail.sock")
    e = dict(os.environ, SPAWN_FCGI_CONF=stack.SPAWN_CONF, FCGI_SOCKET=sock, FCGI_PROGRAM=wrapper,
             KAKAO_LOGIN_CONF=env.conf, FCGI_CHILDREN="2", FCGI_USER="nobody",
             FCGI_GROUP="nogroup", FCGI_SOCKET_USER="", FCGI_SOCKET_GROUP="nogroup",
             FCGI_EXTRA_OPTIONS="")
    t0 = time.monotonic()
    try:
        p = subprocess.run([stack.SPAWN], env=e, capture_output=True, text=True, timeout=90,
                           start_new_session=True)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, "still running after 90 s"
    report(rc == 1 and "ended by itself" in err,
           "spawn script: every worker failing at start -> exit 1, saying so (%.1f s)" % (time.monotonic() - t0),
           "exit %r: %s" % (rc, err[-300:]))


def run_startup_log(env):
    """A start-up failure after the log opens also reaches log_file."""
    conf = env.path("broken.conf")
    logf = env.path("logs", "broken.log")
    with open(env.conf) as f:
        text = f.read()
    text = re.sub(r"(?m)^log_file = .*$", "log_file = %s" % logf, text)
    text = re.sub(r"(?m)^jwt_secret_file = .*$", "jwt_secret_file = %s" % env.path("missing.secret"), text)
    with open(conf, "w") as f:
        f.write(text)
    argv = [stack.SERVICE, "-c", conf, "-s", env.path("broken.sock")]
    if env.root:
        argv += ["-u", "nobody"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    logged = log_text(logf)
    report(p.returncode == 1 and "cannot start:" in logged and "missing.secret" in logged,
           "a start-up failure (an unreadable key file) is in log_file too",
           "exit %d, log %r, stderr %r" % (p.returncode, logged[-300:], p.stderr[-200:]))


def run_logs(env, paths):
    secrets = [env.secret.decode("latin-1"), base64.b64encode(env.secret).decode(),
               base64.b64encode(getattr(env, "new_secret", b"-")).decode()]
    for p in paths:
        text = log_text(p)
        leaked = sorted(t for t in tokens_seen if len(t) >= 8 and t in text)
        leaked += ["a JWT key"] if any(s in text for s in secrets) else []
        report(not leaked, "%s holds no token or key" % os.path.basename(p), ", ".join(leaked[:4]))


def main():
    args = [a for a in sys.argv[1:] if a != "--build"]
    stack.set_build(os.path.abspath(args[0] if args else "build"))
    if not os.access(stack.SERVICE, os.X_OK):
        print("%s missing: run make first" % stack.SERVICE, file=sys.stderr)
        return 2
    env = Env(children=2, threads=8, durability="sync")
    loads = []
    try:
        env.setup()
        os.mkdir(env.path("logs"), 0o755)
        env.own(env.path("logs"))
        log = env.path("logs", "kakao-login.log")
        env.extra = ["log_file = %s" % log]
        env.start_fake()
        env.write_config("http://127.0.0.1:%d" % env.fake_port)
        env.start_service()
        env.start_nginx()
        env.start_lighttpd()
        env.wait_fronts()
        for i, (name, port) in enumerate(sorted(env.fronts.items())):
            for j in range(2):
                loads.append(Load(name, port, 2 * i + j))
        for ld in loads:
            ld.start()
        time.sleep(1.5)
        pids = run_reloads(env, log, loads)
        run_rolling(env, loads, pids)
        for ld in loads:
            ld.stop.set()
        for ld in loads:
            ld.join(20)
        total = sum(ld.n for ld in loads)
        bad = [b for ld in loads for b in ld.bad]
        report(not bad and total > 200, "through it all, %d requests through nginx and lighttpd, none failed"
               % total, "; ".join(bad[:5]))
        rc, secs = env.stop_service()
        report(rc == 0, "spawn script: exit 0 after SIGTERM (%.1f s)" % secs, "exit %r" % rc)
        run_group_fails(env)
        run_startup_log(env)
        run_logs(env, [log, log + ".1", env.service_log, env.path("nginx", "error.log"),
                       env.path("lighttpd", "error.log")])
    except Exception as e:     # noqa: BLE001 - a broken setup is one failure
        report(False, "setup", "%s: %s (files in %s)" % (type(e).__name__, e, env.dir))
    finally:
        for ld in loads:
            ld.stop.set()
        procs.stop_all()
        if os.environ.get("KEEP_TMP"):
            print("# kept %s" % env.dir)
        else:
            shutil.rmtree(env.dir, ignore_errors=True)
    passed = sum(1 for r in results if r)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 1 if len(results) != passed else 0


if __name__ == "__main__":
    sys.exit(main())
