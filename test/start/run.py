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
    entry belongs to root although it runs as nobody);
  - as root without -u (or with -u root) the start and -t are refused, and
    so is the spawn script with FCGI_USER empty (exit 1, before spawn-fcgi);
  - -t refuses a db_home the user cannot write, a file in it the user cannot
    write, a missing db_home it cannot create, a log_file directory it
    cannot write, and creates nothing; an http:// Kakao URL is accepted
    with a warning (by -t and in the started service's log);
  - --help / -h (stdout, exit 0), --version / -V (the GNUmakefile's
    VERSION), usage errors (stderr, exit 2).
As root every other case runs with -u nobody (the files handed to nobody),
as the service must.
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
ROOT = os.geteuid() == 0
# The service refuses to serve requests as root: as root, every case that is
# not about that drops to nobody, as production does.
AS_USER = ["-u", "nobody"] if ROOT else []

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
        self.own(self.secret)
        self.own(self.path("db"))
        self.mark(self.path("db"))

    def mark(self, home):
        """The id mark beside home, as an installer makes it when the
        service may not create files in home's parent (this directory)."""
        p = home + ".idmark"
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
        self.own(p)

    def mkdir(self, name, mode):
        """A directory of nobody's when root (of ours otherwise)."""
        p = self.path(name)
        os.mkdir(p, mode)
        self.own(p)
        return p

    def own(self, path):
        """Hand path to nobody when root (the user the cases run as)."""
        if ROOT:
            nobody = pwd.getpwnam("nobody")
            os.chown(path, nobody.pw_uid, nobody.pw_gid)

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


def check(conf, timeout=5, args=None):
    """kakao-login -t -c conf [args, default AS_USER]: (exit code or None on
    a hang, output)."""
    args = AS_USER if args is None else args
    try:
        r = subprocess.run([SERVICE, "-t", "-c", conf] + list(args), capture_output=True,
                           timeout=timeout, text=True, errors="replace")
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        return None, "still running after %d s" % timeout


def run(argv, env=None):
    """The binary with argv, no config checks: (exit code, stdout, stderr)."""
    r = subprocess.run([SERVICE] + argv, capture_output=True, timeout=5, text=True,
                       errors="replace", env=env)
    return r.returncode, r.stdout, r.stderr


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
    d.own(fifo)
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


def start(conf, args=None, log=None):
    args = AS_USER if args is None else args
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


def run_briefly(conf):
    """Start the service on conf, stop it after 0.2 s: (alive then, its log)."""
    p = start(conf)
    time.sleep(0.2)
    alive = p.poll() is None
    stop(p)
    return alive, read(conf + ".stderr")


def case_allow_other_apps_warns(d):
    conf = d.config(["kakao_allow_other_apps = yes"], "allow-run.conf")
    alive, log = run_briefly(conf)
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
    rc, out = check(conf, args=[])
    report(rc == 1 and "as root" in out and "-u" in out,
           "-t as root without -u is refused (the service would serve requests as "
           "root), and says to give -u", "exit %s: %s" % (rc, out.strip()))


def case_root_refused(d):
    """Requests are never served as root: no -u (or -u root) stops the start
    before the socket answers, with a message; -t says so too."""
    if not ROOT:
        report(True, "as root without -u the start is refused (skipped: not root)")
        return
    conf = d.config(["kakao_app_id = 1"], "root.conf")
    for args, what in (([], "without -u"), (["-u", "root"], "with -u root")):
        p = start(conf, args, log=conf + ".stderr" + what[-4:])
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        rc = p.poll()
        stop(p)
        err = read(conf + ".stderr" + what[-4:])
        report(rc == 1 and "as root" in err and "-u" in err,
               "as root %s the start is refused (exit 1, says to give -u)" % what,
               "exit %s: %s" % (rc, err.strip()[-300:]))
    rc, out = check(conf, args=["-u", "root"])
    report(rc == 1 and "as root" in out,
           "-t -u root is refused: the service would serve requests as root",
           "exit %s: %s" % (rc, out.strip()))


def case_spawn_as_root(d):
    """The spawn script as root with FCGI_USER empty: its -t check refuses
    (the service would serve as root), so it exits 1 before spawn-fcgi."""
    if not ROOT:
        report(True, "the spawn script as root without FCGI_USER exits 1 (skipped: not root)")
        return
    conf = d.config(["kakao_app_id = 1"], "spawn-root.conf")
    env = dict(os.environ, SPAWN_FCGI_CONF=os.path.join(REPO, "spawn-fcgi.conf"),
               FCGI_SOCKET=d.path("spawn-root.sock"), FCGI_PROGRAM=SERVICE,
               KAKAO_LOGIN_CONF=conf, FCGI_USER="", FCGI_GROUP="")
    try:
        r = subprocess.run([os.path.join(REPO, "etc", "kakao-login-spawn")], env=env,
                           capture_output=True, text=True, timeout=10)
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, "still running after 10 s (spawn-fcgi started?)"
    report(rc == 1 and "as root" in err and not os.path.exists(d.path("spawn-root.sock")),
           "the spawn script as root with FCGI_USER empty exits 1, saying why, before "
           "spawn-fcgi binds", "exit %s: %s" % (rc, err.strip()[-300:]))


def case_db_home(d):
    """-t checks db_home as the service's user, without joining it."""
    def conf_for(home, name):
        return d.config(["kakao_app_id = 1", "db_home = %s" % home], name)

    ro = d.mkdir("db-ro", 0o500)
    rc, out = check(conf_for(ro, "db-ro.conf"))
    report(rc == 1 and "db_home" in out and "not writable" in out,
           "-t refuses a db_home the service's user cannot write, naming db_home",
           "exit %s: %s" % (rc, out.strip()))

    made = d.mkdir("db-file", 0o700)
    region = os.path.join(made, "__db.001")
    with open(region, "w"):
        pass
    os.chmod(region, 0o400)
    d.own(region)
    rc, out = check(conf_for(made, "db-file.conf"))
    report(rc == 1 and "db_home" in out and "__db.001" in out,
           "-t refuses a db_home holding a file the service's user cannot write, naming it",
           "exit %s: %s" % (rc, out.strip()))

    lost = d.path("no-such-parent", "db")
    rc, out = check(conf_for(lost, "db-lost.conf"))
    report(rc == 1 and "db_home" in out and "missing" in out,
           "-t refuses a missing db_home whose parent is missing too",
           "exit %s: %s" % (rc, out.strip()))

    new = os.path.join(d.mkdir("db-parent", 0o755), "db")
    rc, out = check(conf_for(new, "db-new.conf"))
    report(rc == 0 and "configuration ok" in out and not os.path.exists(new),
           "-t accepts a missing db_home the service may create, and creates nothing",
           "exit %s, exists %s: %s" % (rc, os.path.exists(new), out.strip()))

    # The id mark beside db_home: -t refuses one the user could not create.
    if ROOT:
        nomark = d.mkdir("db-nomark", 0o700)
        rc, out = check(conf_for(nomark, "db-nomark.conf"))
        report(rc == 1 and "id mark" in out and "db-nomark.idmark" in out,
               "-t refuses an id mark beside db_home the service's user could not create",
               "exit %s: %s" % (rc, out.strip()))
    else:
        report(True, "-t refuses an id mark it could not create # SKIP needs root")

    # The environment is not joined: -t on an empty db_home leaves it empty.
    empty = d.mkdir("db-empty", 0o700)
    d.mark(empty)
    rc, out = check(conf_for(empty, "db-empty.conf"))
    left = os.listdir(empty)
    report(rc == 0 and not left,
           "-t writes nothing into db_home (no environment joined, no recovery)",
           "exit %s, db_home holds %s: %s" % (rc, left, out.strip()))


def case_log_unwritable_dir(d):
    logdir = d.mkdir("logs-ro", 0o555)
    conf = d.config(["kakao_app_id = 1",
                     "log_file = %s" % os.path.join(logdir, "kakao-login.log")], "logro.conf")
    rc, out = check(conf)
    report(rc == 1 and "log_file" in out and "cannot create" in out,
           "-t refuses a log_file in a directory the service's user cannot write",
           "exit %s: %s" % (rc, out.strip()))


def case_http_warns(d):
    conf = d.config(["kakao_app_id = 1", "kakao_api_url = http://127.0.0.1:9",
                     "kakao_auth_url = http://localhost:9"], "http.conf")
    rc, out = check(conf)
    report(rc == 0 and "configuration ok" in out and
           re.search(r"warning: kakao_api_url is http://", out) is not None and
           re.search(r"warning: kakao_auth_url is http://", out) is not None,
           "an http:// kakao_api_url and kakao_auth_url (loopback): -t accepts them and warns",
           "exit %s: %s" % (rc, out.strip()))
    alive, log = run_briefly(conf)
    report(alive and re.search(r" warn .*kakao_api_url is http://", log) is not None,
           "an http:// Kakao URL: the service warns in its log at start",
           "alive=%s, log: %s" % (alive, log.strip()[-300:]))


def makefile_version():
    with open(os.path.join(REPO, "GNUmakefile")) as f:
        return re.search(r"^VERSION\s*=\s*(\S+)", f.read(), re.M).group(1)


def case_help_version(d):
    for flag in ("--help", "-h"):
        rc, out, err = run([flag])
        report(rc == 0 and out.startswith("usage: kakao-login") and "-t" in out and
               "kakao-login.conf(5)" in out and err == "",
               "%s: the usage and options on stdout, exit 0" % flag,
               "exit %s, stdout %r, stderr %r" % (rc, out[:200], err[:200]))
    want = makefile_version()
    for flag in ("--version", "-V"):
        rc, out, err = run([flag])
        report(rc == 0 and re.match(r"kakao-login %s( \(.+\))?\n$" % re.escape(want), out)
               is not None and err == "",
               "%s: prints kakao-login %s (the GNUmakefile's VERSION), exit 0" % (flag, want),
               "exit %s, stdout %r, stderr %r" % (rc, out, err))
    env = dict(os.environ)
    env.pop("KAKAO_LOGIN_CONF", None)
    conf = d.config(["kakao_app_id = 1"], "usage.conf")
    for argv, what in ((["-x"], "an unknown option"), (["--bogus"], "an unknown long option"),
                       (["-c", conf, "extra"], "an argument left over"),
                       ([], "no config named"), (["-c"], "-c without its argument")):
        rc, out, err = run(argv, env)
        report(rc == 2 and out == "" and "usage: kakao-login" in err,
               "usage error (%s): usage on stderr, nothing on stdout, exit 2" % what,
               "exit %s, stdout %r, stderr %r" % (rc, out[:200], err[:200]))


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
                     case_log_symlink, case_drop, case_check_as_user,
                     case_root_refused, case_spawn_as_root, case_db_home, case_log_unwritable_dir,
                     case_http_warns, case_help_version):
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
