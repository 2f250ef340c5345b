#!/usr/bin/env python3
"""kakao-login-admin backup, restore and init, and no user id reuse, ever
(issue 11, items 1 and 2).

    python3 test/backup/run.py [--build DIR]     (after make)

The service under the real spawn-fcgi + multiwatch (2 children) behind the
real nginx, with the fake Kakao (test/integration/stack.py). The suite:
  - makes users by logins, then takes `backup DIR` while a thread keeps
    logging in new and known Kakao ids: no login fails, the backup's JSON
    says how many users and that recovery ran on the copy;
  - logs in more new Kakao ids (their user ids recorded with every other
    id answered so far);
  - `restore` while the service runs: exit 5, nothing changed;
  - stops the service, restores, starts it: the users of the backup are
    there with their ids, and new Kakao ids (and those made after the
    backup, now new again) get ids none of which was answered before;
  - a fresh host (another db_home, no id mark) restores the same backup
    and the tool counts its users;
  - db_home emptied while its id mark stays (a disk not mounted): the
    service does not start (the spawn script's -t refuses; its log and
    `kakao-login -t` say why) and creates nothing there; `restore` brings
    it back, and again no id is reused.
Prints "ok - ..." / "not ok - ..." per check, "N passed, M failed" last.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import stack  # noqa: E402
from stack import LOGIN, Env, procs, request  # noqa: E402

results = []
BASE = 7_400_000_000 + (os.getpid() % 1000) * 1000
ADMIN = None


def note(text):
    print("# " + text, flush=True)


def report(ok, name, why=""):
    results.append(ok)
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)), flush=True)


def admin(conf, *args, timeout=120):
    """-> (exit code, stdout, stderr)"""
    envv = dict(os.environ)
    envv.pop("KAKAO_LOGIN_CONF", None)
    p = subprocess.run([ADMIN, "-c", conf] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=envv)
    return p.returncode, p.stdout, p.stderr


def jload(s):
    try:
        return json.loads(s)
    except ValueError:
        return {}


def login(port, k):
    try:
        st, js, _, _ = request(port, "GET", LOGIN, {"Authorization": "Bearer valid-%d" % k})
    except OSError as e:
        return None, str(e)
    return st, js


class Load(threading.Thread):
    """Logs in new and known Kakao ids until stopped; keeps every answer."""

    def __init__(self, port, known, first_new):
        super().__init__(daemon=True)
        self.port, self.known, self.next_new = port, list(known), first_new
        self.stop = threading.Event()
        self.acked, self.bad, self.n = {}, [], 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            if i % 2:
                k, self.next_new = self.next_new, self.next_new + 1
            else:
                k = self.known[i % len(self.known)]
            st, js = login(self.port, k)
            self.n += 1
            if st == 200:
                self.acked[k] = js["user"]["id"]
            elif len(self.bad) < 5:
                self.bad.append("kakao id %d: %s %s" % (k, st, js))


def logins(port, kids):
    """-> {kakao id: user id}, [failures]"""
    got, bad = {}, []
    for k in kids:
        st, js = login(port, k)
        if st == 200:
            got[k] = js["user"]["id"]
        else:
            bad.append("%d: %s %s" % (k, st, js))
    return got, bad


def readyz(port):
    try:
        st, js, _, _ = request(port, "GET", "/readyz")
    except OSError as e:
        return None, str(e)
    return st, js


def wait_ready(port, timeout=30):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if readyz(port)[0] == 200:
            return True
        time.sleep(0.3)
    return False


def fresh_host(env, backup):
    """Another db_home with no id mark restores the backup; -> users."""
    home = env.path("fresh-db")
    os.mkdir(home, 0o700)
    env.own(home)
    conf = env.path("fresh.conf")
    with open(env.conf) as f:
        text = f.read().replace("db_home = %s\n" % env.path("db"), "db_home = %s\n" % home)
    with open(conf, "w") as f:
        f.write(text)
    # The mark of a fresh host: created by its installer (stack.py's way).
    os.close(os.open(home + ".idmark", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
    env.own(home + ".idmark")
    code, out, err = admin(conf, "--json", "restore", backup)
    r = jload(out)
    code2, out2, err2 = admin(conf, "--json", "users", "count")
    return code, r, err, code2, jload(out2).get("users"), err2


def unmounted(env, port, backup, answered):
    """db_home's files gone while the mark stays (a disk not mounted): the
    start is refused, saying why; restore brings it back without reuse."""
    db = env.path("db")
    env.stop_service()
    away = env.path("db.away")
    os.rename(db, away)
    os.mkdir(db, 0o700)
    env.own(db)
    start = os.path.getsize(env.service_log)
    try:
        env.start_service()
        started = True
    except RuntimeError:
        started = False
    with open(env.service_log, errors="replace") as f:
        f.seek(start)
        log = f.read()
    report(not started and "holds no environment" in log and
           "disk mounted?" in log,
           "unmounted db_home: the service does not start, and its log says why",
           "started %s, log %r" % (started, log[-400:]))
    st, js = readyz(port)
    report(st != 200, "unmounted db_home: /readyz is not 200 (%s)" % st, "%s %s" % (st, js))
    report(not any(n.endswith(".db") for n in os.listdir(db)),
           "unmounted db_home: no database was created in it", str(os.listdir(db)))
    argv = [stack.SERVICE, "-t", "-c", env.conf] + (["-u", "nobody"] if env.root else [])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    report(r.returncode == 1 and "holds no environment" in (r.stdout + r.stderr),
           "unmounted db_home: kakao-login -t exits 1 saying why",
           "exit %d %s" % (r.returncode, (r.stdout + r.stderr)[-300:]))
    procs.stop("service")
    code, out, err = admin(env.conf, "--json", "restore", backup)
    r = jload(out)
    report(code == 0 and r.get("next_user_id", 0) > max(answered),
           "restore into the bare db_home: exit 0, ids after the mark",
           "exit %d %s %s" % (code, out, err))
    env.start_service()
    report(wait_ready(port), "the service starts on it (/readyz 200)", str(readyz(port)))
    got, bad = logins(port, range(BASE + 9100, BASE + 9130))
    reused = set(got.values()) & answered
    report(not bad and len(got) == 30 and not reused,
           "after the unmounted case: 30 new users, no id answered before",
           "bad %s reused %s" % (bad[:3], sorted(reused)[:5]))
    answered.update(got.values())
    shutil.rmtree(away, ignore_errors=True)


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
        before, bad = logins(port, range(BASE, BASE + 200))
        report(len(before) == 200, "200 users made by logins", "; ".join(bad[:3]))
        answered = set(before.values())

        # The backups go where the service's user may write (the tool,
        # run as root, works as db_home's owner).
        bdir = env.path("backups")
        os.mkdir(bdir, 0o700)
        env.own(bdir)
        backup = os.path.join(bdir, "b1")
        load = Load(port, list(before), BASE + 1000)
        load.start()
        time.sleep(0.5)
        code, out, err = admin(env.conf, "--json", "backup", backup)
        time.sleep(0.5)
        load.stop.set()
        load.join()
        b = jload(out)
        note("backup: %s" % out.strip())
        report(code == 0 and b.get("users", 0) >= 200 and b.get("recovered") is True and
               b.get("files", 0) >= 12,
               "backup DIR --json under logins: exit 0, >= 200 users, recovered copy",
               "exit %d %r %r" % (code, out, err))
        report(not load.bad and load.n > 20,
               "no login fails while the backup runs (%d logins)" % load.n, "; ".join(load.bad))
        answered.update(load.acked.values())
        code, out, err = admin(env.conf, "backup", backup)
        report(code == 2 and "not empty" in err, "backup into a directory that is not empty: "
               "exit 2", "exit %d %r" % (code, err))

        later, bad = logins(port, range(BASE + 2000, BASE + 2100))
        report(len(later) == 100, "100 more new users after the backup", "; ".join(bad[:3]))
        answered.update(later.values())
        note("ids answered before the restore: %d, highest %d" % (len(answered), max(answered)))

        code, out, err = admin(env.conf, "restore", backup)
        report(code == 5 and "stop the service" in err,
               "restore while the service runs: exit 5, says to stop it", "exit %d %r" % (code, err))
        got, _ = logins(port, [BASE + 2000])
        report(got.get(BASE + 2000) == later[BASE + 2000],
               "and the refused restore changed nothing", str(got))

        env.stop_service()
        code, out, err = admin(env.conf, "--json", "restore", backup)
        r = jload(out)
        note("restore: %s" % out.strip())
        report(code == 0 and r.get("users") == b.get("users") and
               r.get("id_mark", 0) >= max(answered) and
               r.get("next_user_id", 0) > max(answered) and r.get("old_files"),
               "restore DIR --json (service stopped): exit 0, mark >= every id answered",
               "exit %d %r %r" % (code, out, err))
        env.start_service()
        report(wait_ready(port), "the service starts on the restored environment", "")

        old, bad = logins(port, [BASE + i for i in range(0, 200, 7)])
        report(not bad and all(old[k] == before[k] for k in old),
               "the backup's users are there, with their ids", "; ".join(bad[:3]))
        new, bad = logins(port, list(range(BASE + 3000, BASE + 3100)) + list(later)[:20])
        reused = set(new.values()) & answered
        report(not bad and len(new) == 120 and not reused,
               "120 first logins after the restore (20 of them made after the backup): "
               "no id answered before", "bad %s reused %s" % (bad[:3], sorted(reused)[:5]))
        report(min(new.values()) > max(answered), "their ids are all above the highest "
               "answered before (%d)" % max(answered), str(min(new.values())))
        answered.update(new.values())

        code, r, err, code2, n, err2 = fresh_host(env, backup)
        report(code == 0 and code2 == 0 and n == b.get("users"),
               "a fresh host (other db_home, no mark) restores the backup and counts its users",
               "restore %d %r %s; count %d %r %s" % (code, r, err, code2, n, err2))

        unmounted(env, port, backup, answered)
    finally:
        procs.stop_all()
    passed = sum(1 for r in results if r)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
