#!/usr/bin/env python3
"""Start-up checks of build/kakao-login itself: what -t and the start refuse
or set up before a single request (safe defaults, files, privileges).

    python3 test/start/run.py [--build DIR]

No front server, no Kakao: the binary is run directly on files under a
temporary directory. Cases:
  - the shipped etc/kakao-login.conf (local paths swapped in) is refused by
    -t while its kakao_app_id line is commented out, accepted with it;
  - kakao_allow_other_apps = yes is accepted by -t with a warning, and the
    started service warns in its log;
  - a FIFO as jwt_secret_file is refused by -t within 2 s (no hang);
  - a log_file in a missing directory is refused by -t;
  - a log_file that is a symlink is refused at start;
  - as root with -u nobody: the log file is created by nobody (opened after
    the privilege drop) and the running process is not dumpable (its /proc
    entry belongs to root although it runs as nobody).
Prints "ok - ..." / "not ok - ..." per case and "N passed, M failed" last.
"""

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO, "etc", "kakao-login.conf")
SERVICE = os.path.join(REPO, "build", "kakao-login")

results = []


def report(ok, name, why=""):
    results.append(ok)
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)


class Dir:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kakao-login-start.")
        os.chmod(self.dir, 0o755)
        self.secret = self.path("jwt.secret")
        fd = os.open(self.secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, secrets.token_urlsafe(48).encode())
        os.close(fd)
        os.mkdir(self.path("db"), 0o700)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def config(self, lines, name="kakao-login.conf"):
        base = ["db_home = %s" % self.path("db"),
                "jwt_secret_file = %s" % self.secret,
                "threads = 2"]
        p = self.path(name)
        with open(p, "w") as f:
            f.write("\n".join(base + list(lines)) + "\n")
        return p

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def check(conf, timeout=5, args=()):
    """kakao-login -t -c conf: (exit code or None on a hang, output)."""
    try:
        r = subprocess.run([SERVICE, "-t", "-c", conf] + list(args), capture_output=True,
                           timeout=timeout, text=True, errors="replace")
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        return None, "still running after %d s" % timeout


def sample_lines(app_id_on):
    """The sample, with the keys that name local paths removed."""
    out = []
    with open(SAMPLE) as f:
        for line in f:
            line = line.rstrip("\n")
            if re.match(r"\s*(db_home|jwt_secret_file|log_file|threads)\s*=", line):
                continue
            if app_id_on and line.startswith("#kakao_app_id ="):
                line = line[1:]
            out.append(line)
    return out


def case_sample(d):
    rc, out = check(d.config(sample_lines(False), "sample-off.conf"))
    report(rc == 1 and "kakao_app_id" in out,
           "the shipped sample with kakao_app_id commented out is refused by -t",
           "exit %s: %s" % (rc, out.strip()))
    rc, out = check(d.config(sample_lines(True), "sample-on.conf"))
    report(rc == 0 and "configuration ok" in out,
           "the shipped sample with its kakao_app_id line set is accepted by -t",
           "exit %s: %s" % (rc, out.strip()))


def case_allow_other_apps_check(d):
    rc, out = check(d.config(["kakao_allow_other_apps = yes"], "allow.conf"))
    report(rc == 0 and "warning" in out and "kakao_allow_other_apps" in out,
           "kakao_allow_other_apps = yes: -t accepts it and warns",
           "exit %s: %s" % (rc, out.strip()))


def case_fifo_secret(d):
    fifo = d.path("fifo.secret")
    os.mkfifo(fifo, 0o600)
    conf = d.config(["kakao_app_id = 1", "jwt_secret_file = %s" % fifo], "fifo.conf")
    t0 = time.monotonic()
    rc, out = check(conf, timeout=2)
    report(rc == 1 and "regular" in out,
           "a FIFO as jwt_secret_file is refused by -t at once",
           "exit %s after %.1f s: %s" % (rc, time.monotonic() - t0, out.strip()))


def case_log_missing_dir(d):
    conf = d.config(["kakao_app_id = 1",
                     "log_file = %s" % d.path("no-such-dir", "kakao-login.log")], "nolog.conf")
    rc, out = check(conf)
    report(rc == 1 and "log_file" in out,
           "a log_file in a missing directory is refused by -t",
           "exit %s: %s" % (rc, out.strip()))


def start(conf, args=(), log=None):
    sock = conf + ".sock"
    err = open(log or (conf + ".stderr"), "ab")
    p = subprocess.Popen([SERVICE, "-c", conf, "-s", sock] + list(args),
                         stdout=err, stderr=err, stdin=subprocess.DEVNULL)
    err.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.poll() is None:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.close()
            return p
        except OSError:
            time.sleep(0.05)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as e:
        return str(e)


def case_allow_other_apps_warns(d):
    conf = d.config(["kakao_allow_other_apps = yes"], "allow-run.conf")
    p = start(conf)
    time.sleep(0.2)
    alive = p.poll() is None
    stop(p)
    log = read(conf + ".stderr")
    report(alive and re.search(r" warn .*kakao_allow_other_apps = yes", log) is not None,
           "kakao_allow_other_apps = yes: the service warns in its log at start",
           "alive=%s, log: %s" % (alive, log.strip()[-300:]))


def case_log_symlink(d):
    target = d.path("elsewhere.log")
    open(target, "w").close()
    link = d.path("link.log")
    os.symlink(target, link)
    conf = d.config(["kakao_app_id = 1", "log_file = %s" % link], "symlog.conf")
    p = start(conf)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass
    refused = p.poll() not in (None, 0)
    stop(p)
    report(refused and os.path.getsize(target) == 0,
           "a log_file that is a symlink is refused at start",
           "exit %s, %d bytes written through the link" % (p.returncode, os.path.getsize(target)))


def case_drop(d):
    if os.geteuid() != 0:
        report(True, "privilege drop (skipped: not root)")
        return
    nobody = pwd.getpwnam("nobody")
    logdir = d.path("logs")
    os.mkdir(logdir, 0o700)
    os.chown(logdir, nobody.pw_uid, nobody.pw_gid)
    for p in (d.path("db"), d.secret):
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    logf = os.path.join(logdir, "kakao-login.log")
    conf = d.config(["kakao_app_id = 1", "log_file = %s" % logf], "drop.conf")
    p = start(conf, ["-u", "nobody"])
    try:
        alive = p.poll() is None
        uid = proc_uid = None
        if alive:
            with open("/proc/%d/status" % p.pid) as f:
                uid = int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
            # A process that is not dumpable has its /proc entries owned by
            # root (proc(5), PR_SET_DUMPABLE), whoever it runs as.
            proc_uid = os.stat("/proc/%d/status" % p.pid).st_uid
    finally:
        stop(p)
    owner = os.stat(logf).st_uid if os.path.exists(logf) else None
    report(alive and owner == nobody.pw_uid,
           "with -u nobody the log file is opened after the drop (created by nobody)",
           "alive=%s, log owner uid %s: %s" % (alive, owner, read(conf + ".stderr").strip()[-200:]))
    report(alive and uid == nobody.pw_uid and proc_uid == 0,
           "with -u nobody the process is not dumpable after the drop",
           "alive=%s, runs as uid %s, /proc entry owned by uid %s" % (alive, uid, proc_uid))


def case_check_as_user(d):
    """-t -u USER checks as USER, as the start would: root running it must
    not refuse a log file the service's user owns (found in review)."""
    if os.geteuid() != 0:
        report(True, "-t -u nobody checks as nobody (skipped: not root)")
        return
    nobody = pwd.getpwnam("nobody")
    logdir = d.path("logs-t")
    os.mkdir(logdir, 0o700)
    logf = os.path.join(logdir, "kakao-login.log")
    with open(logf, "w"):
        pass
    for p in (logdir, logf, d.path("db"), d.secret):
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    conf = d.config(["kakao_app_id = 1", "log_file = %s" % logf], "check-user.conf")
    rc, out = check(conf, args=["-u", "nobody"])
    report(rc == 0 and "configuration ok" in out,
           "-t -u nobody accepts a log file nobody owns (run as root)",
           "exit %s: %s" % (rc, out.strip()))
    rc, out = check(conf)
    report(rc == 1 and "-u" in out,
           "-t as root refuses it, and says to run -t as the service's user or with -u",
           "exit %s: %s" % (rc, out.strip()))


def main():
    global SERVICE
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        SERVICE = os.path.join(os.path.abspath(sys.argv[2]), "kakao-login")
    elif len(sys.argv) != 1:
        sys.exit("usage: run.py [--build DIR]")
    if not os.access(SERVICE, os.X_OK):
        print("%s missing: run make first" % SERVICE, file=sys.stderr)
        return 2
    d = Dir()
    try:
        for case in (case_sample, case_allow_other_apps_check, case_fifo_secret,
                     case_log_missing_dir, case_allow_other_apps_warns,
                     case_log_symlink, case_drop, case_check_as_user):
            try:
                case(d)
            except Exception as e:   # noqa: BLE001 - one broken case, one failure
                report(False, case.__name__, "%s: %s" % (type(e).__name__, e))
    finally:
        d.remove()
    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
