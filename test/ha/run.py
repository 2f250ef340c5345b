#!/usr/bin/env python3
"""make ha: three kakao-login sites as one Berkeley DB replication group.

    python3 test/ha/run.py [--build DIR] [--runs N]

Three sites on loopback, each a normal host: its own db_home, its own
spawn-fcgi + multiwatch group (etc/kakao-login-spawn) on its own Unix
socket, repl_site on its own port; one fake Kakao; one nginx per site (to
ask a site itself) and one front nginx whose upstream holds all three
sockets, with fastcgi_next_upstream on error, timeout and 503 (also for
POST: every write route is safe to retry, a login is idempotent per Kakao
id). The run:

  1. the group forms: site 1 creates it, sites 2 and 3 join through it and
     get a copy of its data (internal init), /readyz reports each role;
  2. a load of concurrent logins through the front (new and repeated
     Kakao ids) records every 200 (Kakao id -> user id);
  3. during it, kill -9 the master's whole process group: a new master is
     elected; the seconds without a successful login and the failed
     requests are measured;
  4. SIGSTOP the new master longer than the election takes, then SIGCONT:
     it steps down; at no time two sites acknowledge writes;
  5. the killed site is started again: it rejoins and catches up;
  6. at the end every acknowledged login is on every site with the same
     user id (each site is asked for each user, locally), no user id was
     given to two Kakao ids, none to one Kakao id twice;
  7. kakao-login-admin group remove: refused for this site, the master and
     a running site; a stopped replica is removed, the two left go on.

Prints "ok - NAME" / "not ok - NAME: WHY", "# ..." figures, and "N passed,
M failed" last; exits 1 on any failure. KEEP_TMP=1 keeps the directories.
Python 3 standard library only.
"""

import argparse
import collections
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import stack  # noqa: E402
import codeflow  # noqa: E402
import oidc  # noqa: E402

SITES = 3
ADMIN_KEY = "fake-admin-key-0123456789abcdef"    # the fake Kakao's default
ADMIN = os.path.join(stack.REPO, "build", "kakao-login-admin")
results = {"passed": 0, "failed": 0}


def ok(name):
    results["passed"] += 1
    print("ok - %s" % name, flush=True)


# The sites of the run in progress: a failed check prints the end of
# their logs, so that a failure in CI says what the sites did.
current_sites = []
LOG_TAIL_LINES = 12


def log_tail(site, n=LOG_TAIL_LINES):
    """The last n lines of a site's service log that are not request lines
    or the warnings every start repeats."""
    try:
        with open(site.path("kakao-login.log"),
                  errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    skip = (" req pid=", "BDB0196", "unencrypted")
    return [ln[:200] for ln in lines if not any(k in ln for k in skip)][-n:]


def not_ok(name, why):
    results["failed"] += 1
    print("not ok - %s: %s" % (name, why), flush=True)
    for s in current_sites:
        for ln in log_tail(s):
            print("#   site %d: %s" % (s.n, ln), flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        not_ok(name, why)
    return cond


def note(msg):
    print("# " + msg, flush=True)


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


class Site(stack.Env):
    """One site: a stack.Env whose service and nginx carry its number."""

    def __init__(self, n, repl_ports, fake_port=None):
        self.n = n
        self.repl_port = repl_ports[n - 1]
        peers = [] if n == 1 else ["127.0.0.1:%d" % repl_ports[0]]
        extra = ["repl_site = 127.0.0.1:%d" % repl_ports[n - 1],
                 # A stopped site blocks the master's commits up to 10
                 # times this (Berkeley DB 5.3): README.
                 "repl_ack_timeout_ms = 500"]
        if peers:
            extra.append("repl_peers = " + " ".join(peers))
        super().__init__(children=2, threads=4, durability="write_nosync",
                         extra=extra, fake_args=codeflow.FAKE_ARGS)
        self.port = None
        self.fake_port_shared = fake_port

    def start_service(self):
        return super().start_service(name="service%d" % self.n, timeout=15)

    def group(self):
        return stack.procs.procs.get("service%d" % self.n)

    def readyz(self):
        try:
            st, js, _, _ = stack.request(self.port, "GET", "/readyz",
                                         timeout=3)
        except OSError:
            return None, None
        return st, js


def role(site):
    st, js = site.readyz()
    if isinstance(js, dict):
        return js.get("role")
    return None


def wait_until(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def login(port, kid, timeout=10):
    return stack.request(port, "POST", stack.LOGIN,
                         bearer("valid-%d" % kid), b"", timeout=timeout)


class Load:
    """Client threads logging in through the front: each picks a new Kakao
    id or one already answered (a repeat must get the same user id), and
    records every answer: (start, end, kid, status, user id or None, the
    JSON message). frozen: the SIGSTOP's (start, end), once it is over."""

    def __init__(self, port, threads=8, timeout=40.0):
        self.port = port
        self.timeout = timeout
        self.lock = threading.Lock()
        self.answers = []
        self.next_kid = KID_BASE
        self.known = []
        self.stopping = threading.Event()
        self.frozen = None
        self.threads = [threading.Thread(target=self.loop, args=(i,))
                        for i in range(threads)]

    def pick(self, rnd):
        with self.lock:
            if self.known and rnd.random() < 0.4:
                return rnd.choice(self.known)
            self.next_kid += 1
            return self.next_kid

    def loop(self, i):
        import random
        rnd = random.Random(i)
        while not self.stopping.is_set():
            kid = self.pick(rnd)
            t0 = time.monotonic()
            try:
                st, js, _, _ = login(self.port, kid, timeout=self.timeout)
            except OSError as e:
                st, js = -1, {"error": str(e)}
            uid = None
            if st == 200:
                uid = js["user"]["id"]
            msg = js.get("message") if isinstance(js, dict) else None
            with self.lock:
                self.answers.append((t0, time.monotonic(), kid, st, uid, msg))
                if st == 200 and kid not in self.known:
                    self.known.append(kid)
            if st != 200:
                time.sleep(0.02)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()

    def window(self, t_from, t_to):
        """-> (longest gap in s without a 200 answered, failed requests)
        for answers that ended between t_from and t_to."""
        with self.lock:
            inw = sorted((a for a in self.answers if t_from <= a[1] <= t_to),
                         key=lambda a: a[1])
        oks = [t_from] + [a[1] for a in inw if a[3] == 200] + [t_to]
        gap = max(b - a for a, b in zip(oks, oks[1:]))
        failed = sum(1 for a in inw if a[3] != 200)
        return gap, failed


KID_BASE = 5_000_000
CATCH_UP_S = 60     # a site's catch-up, an election's settling, at most
# store_stuck_limit_ms() with repl_ack_timeout_ms = 500: 3 x 10 x 0.5 s + 2 s.
STUCK_LIMIT_S = 17


def setup(sites_n=SITES):
    repl_ports = [stack.free_port() for _ in range(sites_n)]
    sites = [Site(i + 1, repl_ports) for i in range(sites_n)]
    current_sites[:] = sites
    first = sites[0]
    for s in sites:
        s.setup()
        # One group, one set of signing keys: a token one site signs is
        # checked by the others (and the code flow's tags are keyed by it).
        if s is not first:
            s.secret = first.secret
            with open(s.path("jwt.secret"), "wb") as f:
                f.write(first.secret)
        secret = s.path("client.secret")
        key = s.path("admin.key")
        for path, text in ((secret, codeflow.CLIENT_SECRET), (key, ADMIN_KEY)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, text.encode() + b"\n")
            os.close(fd)
            s.own(path)
        s.extra += codeflow.config_lines(secret) + [
            "kakao_admin_key_file = %s" % key]
    first.start_fake()
    for s in sites:
        s.fake_port = first.fake_port
        s.write_config("http://127.0.0.1:%d" % first.fake_port)
    return sites


def admin_group(site):
    """-> kakao-login-admin --json group on the site, parsed (or None)."""
    envv = dict(os.environ)
    envv.pop("KAKAO_LOGIN_CONF", None)
    p = subprocess.run([ADMIN, "-c", site.conf, "--json", "group"],
                       capture_output=True, text=True, timeout=30, env=envv)
    if p.returncode != 0:
        return None, p.stderr.strip()
    return json.loads(p.stdout), None


def group_settled(sites):
    """Every site's view: the same one master, every site connected."""
    views = [admin_group(s)[0] for s in sites]
    if any(v is None for v in views):
        return False
    masters = set()
    for v in views:
        ms = [x["port"] for x in v["sites"] if x["role"] == "master"]
        if len(ms) != 1 or not all(x["connected"] for x in v["sites"]):
            return False
        masters.add(ms[0])
    return len(masters) == 1


def check_group(run, sites):
    """Each site's kakao-login-admin group, once the group settled (an
    election may be under way): every site, one master, all connected,
    the replicas' lag."""
    wait_until(lambda: group_settled(sites), CATCH_UP_S)
    for s in sites:
        g, why = admin_group(s)
        if g is None:
            not_ok("run %d: site %d: admin group" % (run, s.n), why)
            continue
        ss = g["sites"]
        masters = [x for x in ss if x["role"] == "master"]
        ports = sorted(x["port"] for x in ss)
        want = sorted(int(t.extra[0].rsplit(":", 1)[1]) for t in sites)
        check("run %d: site %d: admin group lists the %d sites, one master, "
              "all connected" % (run, s.n, len(sites)),
              ports == want and len(masters) == 1 and
              all(x["connected"] for x in ss) and ss[0]["this"],
              json.dumps(g))
        note("run %d: site %d sees: %s" % (run, s.n, "; ".join(
            "%d %s%s" % (x["port"], x["role"],
                         " behind %d B" % x["behind_bytes"]
                         if "behind_bytes" in x and x["role"] != "master"
                         else "") for x in ss)))


def admin(site, *args):
    """-> (exit code, stdout, stderr) of kakao-login-admin on the site."""
    envv = dict(os.environ)
    envv.pop("KAKAO_LOGIN_CONF", None)
    p = subprocess.run([ADMIN, "-c", site.conf] + list(args),
                       capture_output=True, text=True, timeout=60, env=envv)
    return p.returncode, p.stdout, p.stderr


def remove_site(run, sites, by_n, alive):
    """kakao-login-admin group remove: refused for this site, the master,
    a running site and one the group does not have; a stopped replica is
    removed through another replica (the request goes to the master), the
    two left list each other only and still take logins."""
    name = lambda what: "run %d: group remove: %s" % (run, what)  # noqa: E731
    m = master_of(sites, alive)
    reps = sorted(alive - {m})
    gone, asker = by_n[reps[0]], by_n[reps[1]]
    addr = lambda s: "127.0.0.1:%d" % s.repl_port  # noqa: E731
    for who, target, code, says, what in (
            (asker, addr(asker), 1, "is this site", "this site"),
            (asker, addr(by_n[m]), 1, "is the master", "the master"),
            (asker, addr(gone), 1, "is running", "a running site"),
            (asker, "127.0.0.1:1", 3, "not a site of the group",
             "a site the group does not have"),
            (asker, "127.0.0.1", 2, "HOST:PORT", "no port")):
        rc, _, err = admin(who, "group", "remove", target)
        check(name("%s refused (exit %d)" % (what, code)),
              rc == code and says in err, "exit %d: %s" % (rc, err.strip()))
    os.killpg(gone.group().pid, signal.SIGKILL)
    gone.group().wait()
    stack.procs.procs.pop("service%d" % gone.n, None)
    alive.discard(gone.n)
    left = [by_n[n] for n in sorted(alive)]

    def unconnected():
        g = admin_group(asker)[0]
        return g is not None and any(
            x["port"] == gone.repl_port and not x["connected"]
            for x in g["sites"])
    wait_until(unconnected, 20)
    rc, out, err = admin(asker, "--json", "group", "remove", addr(gone))
    check(name("site %d, stopped, removed from site %d" % (gone.n, asker.n)),
          rc == 0 and json.loads(out or "{}").get("removed") is True,
          "exit %d: %s%s" % (rc, out.strip(), err.strip()))
    check_group(run, left)
    for s in left:
        check(name("site %d takes a login in a group of %d" % (s.n,
                                                                len(left))),
              wait_until(lambda: login(s.port, KID_BASE + 3_000_000 + s.n)[0]
                         == 200, 20))
    # The removed site, started again on its own home, joins anew.
    t_back = time.monotonic()
    start_site(gone)
    alive.add(gone.n)
    check(name("site %d, started again, joins anew and catches up" % gone.n),
          wait_until(lambda: role(gone) == "replica" and
                     KID_BASE + 3_000_000 + asker.n in users_of(gone), 30),
          "role %r" % role(gone))
    note("run %d: the removed site rejoined in %.1f s" % (
        run, time.monotonic() - t_back))
    check_group(run, sites)


def post_form(port, path, fields, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    return stack.request(port, "POST", path, h,
                         urllib.parse.urlencode(fields).encode())


def replica_routes(run, site, sites_other, fake_port):
    """Every write route through a replica's own nginx, none of which it
    can write itself: each answers as the master would."""
    name = lambda what: "run %d: replica site %d: %s" % (run, site.n, what)  # noqa: E731
    port = site.port
    kid = KID_BASE + 800_000 + run * 100
    st, js, _, _ = login(port, kid)
    ok_ = st == 200 and "refresh_token" in js
    check(name("a token login (a new user) opens a session"), ok_,
          "%d %r" % (st, js))
    if not ok_:
        return
    uid, rt, jwt = js["user"]["id"], js["refresh_token"], js["access_token"]
    st, r1, _, _ = post_form(port, "/users/token/refresh", {"refresh_token": rt})
    check(name("refresh rotates"), st == 200 and r1["refresh_token"] != rt,
          "%d %r" % (st, r1))
    st2, r2, _, _ = post_form(port, "/users/token/refresh", {"refresh_token": rt})
    check(name("the same token again within the window: the same successor"),
          st2 == 200 and r2.get("refresh_token") == r1.get("refresh_token"),
          "%d %r" % (st2, r2))
    st, me, _, _ = stack.request(port, "GET", "/users/me", bearer(r1["access_token"]))
    check(name("/users/me reads the user locally"),
          st == 200 and me.get("user", {}).get("id") == uid, "%d %r" % (st, me))
    st, me, _, _ = stack.request(sites_other.port, "GET", "/users/me",
                                 bearer(r1["access_token"]))
    check(name("another site takes the token and knows the user"),
          st == 200 and me.get("user", {}).get("id") == uid, "%d %r" % (st, me))
    st, out, _, _ = post_form(port, "/users/logout", {},
                              bearer(r1["access_token"]))
    check(name("logout"), st == 200, "%d %r" % (st, out))
    st, r3, _, _ = post_form(port, "/users/token/refresh",
                             {"refresh_token": r1["refresh_token"]})
    check(name("after the logout the session refreshes nothing"), st == 401,
          "%d %r" % (st, r3))
    k2 = kid + 1
    verifier, challenge = oidc.pkce_pair()
    f = {"code": oidc.code("good", k2, challenge=challenge),
         "redirect_uri": codeflow.REDIRECT, "code_verifier": verifier}
    st, js2, _, _ = post_form(port, "/users/kakao/callback", f)
    check(name("the code flow (PKCE) logs in"), st == 200 and
          js2["user"]["kakao_id"] == k2, "%d %r" % (st, js2))
    st, again, _, _ = post_form(sites_other.port, "/users/kakao/callback", f)
    check(name("the same code and verifier at another replica: the first "
               "answer's user (the replay record is the group's)"),
          st == 200 and again["user"]["id"] == js2["user"]["id"],
          "%d %r" % (st, again))
    f.pop("code_verifier")
    st, again, _, _ = post_form(port, "/users/kakao/callback", f)
    check(name("the same code without the verifier: 400 INVALID_CODE"),
          st == 400 and again.get("message") == "INVALID_CODE",
          "%d %r" % (st, again))
    k3 = kid + 2
    tok = oidc.mint(fake_port, sub=str(k3), aud=codeflow.NATIVE_KEY)
    st, js3, _, _ = post_form(port, "/users/kakao/id-token", {"id_token": tok})
    check(name("an id_token logs in"), st == 200 and
          js3["user"]["kakao_id"] == k3, "%d %r" % (st, js3))
    st, d, _, _ = stack.request(port, "DELETE", "/users/me",
                                bearer(js3["access_token"]))
    check(name("DELETE /users/me deletes the account"), st == 200,
          "%d %r" % (st, d))
    # Read your writes: the replica answered the deletion only once it
    # applied it (the master's commit token).
    st, me, _, _ = stack.request(port, "GET", "/users/me", bearer(js3["access_token"]))
    check(name("right after, GET /users/me there: 401, the user gone"), st == 401,
          "%d %r" % (st, me))
    st, js4, _, _ = login(port, k3)
    check(name("the deleted Kakao id logs in again as a new user"),
          st == 200 and js4["user"]["id"] != js3["user"]["id"],
          "%d %r" % (st, js4))
    out = subprocess.run([stack.FAKE, "-U", "http://127.0.0.1:%d/users/kakao/unlink"
                          % port, "-a", ADMIN_KEY, "-A", str(stack.APP_ID),
                          "-I", str(k2), "-R", "UNLINK_FROM_APPS", "-M", "GET"],
                         capture_output=True, text=True, timeout=10)
    check(name("Kakao's unlink notice"), out.stdout.strip() == "200",
          "%r %r" % (out.stdout, out.stderr))
    st, r5, _, _ = post_form(port, "/users/token/refresh",
                             {"refresh_token": js2["refresh_token"]})
    check(name("the unlinked user's session refreshes nothing"), st == 401,
          "%d %r" % (st, r5))


def start_site(s):
    s.start_service()
    if s.port is None:
        s.port = s.start_nginx(name="nginx%d" % s.n)


def start_front(sites):
    """One nginx whose upstream holds every site's socket: a request a site
    cannot take (down, 503 NO_MASTER, timed out) goes on to the next."""
    front = sites[0]
    servers = " ".join("server unix:%s max_fails=3 fail_timeout=1s;" % s.sock
                       for s in sites)
    port = stack.free_port()
    n = front.path("front")
    os.mkdir(n, 0o755)
    os.mkdir(os.path.join(n, "tmp"), 0o755)
    front.own(os.path.join(n, "tmp"))
    conf = os.path.join(n, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""%(user)s
daemon off;
worker_processes 2;
pid %(n)s/nginx.pid;
error_log %(n)s/error.log info;
events { worker_connections 512; }
http {
    access_log %(n)s/access.log;
    client_body_temp_path %(n)s/tmp/body;
    fastcgi_temp_path %(n)s/tmp/fastcgi;
    proxy_temp_path %(n)s/tmp/proxy;
    scgi_temp_path %(n)s/tmp/scgi;
    uwsgi_temp_path %(n)s/tmp/uwsgi;
    %(zones)s
    upstream kakao_login { %(servers)s keepalive 16; }
    server {
        listen 127.0.0.1:%(port)d;
        root %(www)s;
        fastcgi_next_upstream error timeout http_503 non_idempotent;
        fastcgi_next_upstream_tries 3;
        include %(snippet)s;
    }
}
""" % {"user": "user nobody nogroup;" if front.root else "", "n": n,
            "zones": stack.UNLIMITED_ZONES, "servers": servers, "port": port,
            "www": front.path("www"), "snippet": stack.NGINX_SNIPPET})
    nginx = "/usr/sbin/nginx"
    stack.procs.start("front", [nginx, "-p", n, "-c", conf, "-e",
                                os.path.join(n, "error.log")],
                      os.path.join(n, "stderr.log"))
    stack.wait_for(lambda: stack.request(port, "GET", "/readyz",
                                         timeout=2)[0] == 200, 15,
                   "the front nginx")
    return port


def roles(sites, alive):
    return {s.n: role(s) for s in sites if s.n in alive}


def master_of(sites, alive):
    m = [n for n, r in roles(sites, alive).items() if r == "master"]
    return m[0] if len(m) == 1 else None


def users_of(site):
    """kakao id -> user id, read from the site's users.db (db5.3_dump
    joins the live environment)."""
    for attempt in range(10):
        out = subprocess.run(["db5.3_dump", "-h", site.path("db"), "users.db"],
                             capture_output=True, text=True, timeout=60)
        # A reader beside the live site can be a deadlock's victim, or
        # meet a replication lockout (a role change, a sync).
        if out.returncode == 0 or ("DEADLOCK" not in out.stderr and
                                   "LOCKOUT" not in out.stderr):
            break
        time.sleep(0.2)
    if out.returncode != 0:
        raise RuntimeError("db5.3_dump: %s" % out.stderr.strip())
    body = out.stdout.split("HEADER=END\n", 1)[1].split("DATA=END", 1)[0]
    vals = [bytes.fromhex(ln.strip()) for ln in body.splitlines()
            if ln.startswith(" ")]
    users = {}
    for k, v in zip(vals[0::2], vals[1::2]):
        users[int.from_bytes(k, "big", signed=True)] = \
            int.from_bytes(v[4:12], "big")
    return users


def lat_probe(run, s, n=40):
    """Sequential logins on one site's own nginx: new ids, then repeats;
    the median time of each (figures, not asserted)."""
    first, again, bad = [], [], []
    # A replica's processes restart once after the copy that made them
    # one (its handles died): wait for both to answer.
    wait_until(lambda: all(login(s.port, KID_BASE)[0] == 200
                           for _ in range(8)), CATCH_UP_S)
    for i in range(n):
        for kid, out in ((KID_BASE + 900_000 + s.n * 1000 + i, first),
                         (KID_BASE, again)):
            st, js, _, secs = login(s.port, kid)
            out.append(secs)
            if st != 200:
                bad.append(st)
    med = lambda v: sorted(v)[len(v) // 2] * 1000  # noqa: E731
    check("run %d: site %d (%s) answers logins itself" % (run, s.n, role(s)),
          not bad, "statuses %r" % bad[:5])
    note("run %d: site %d (%s): a first login %.1f ms, a repeated one %.1f ms "
         "(medians of %d, one client)" % (run, s.n, role(s), med(first),
                                          med(again), n))


def run_once(run):
    sites = setup()
    by_n = {s.n: s for s in sites}
    alive = set()
    name = lambda what: "run %d: %s" % (run, what)  # noqa: E731
    try:
        start_site(sites[0])
        alive.add(1)
        check(name("site 1 creates the group and becomes master"),
              wait_until(lambda: role(sites[0]) == "master", 20),
              "role %r" % role(sites[0]))
        # Both processes of the site open their store (the second may
        # answer 503 NOT_READY for a moment): a login gets through.
        check(name("a login on the lone master"),
              wait_until(lambda: login(sites[0].port, KID_BASE)[0] == 200, 20),
              "status %r" % (login(sites[0].port, KID_BASE)[:2],))
        for s in sites[1:]:
            start_site(s)
            alive.add(s.n)
        for s in sites[1:]:
            check(name("site %d joins as a replica and gets the data" % s.n),
                  wait_until(lambda: role(s) == "replica", 30) and
                  wait_until(lambda: stack.processes_ready(s, "service%d" % s.n), 30) and
                  KID_BASE in users_of(s), "role %r" % role(s))
        for s in sites:
            lat_probe(run, s)
        replica_routes(run, sites[1], sites[2], sites[0].fake_port)
        check_group(run, sites)
        front = start_front(sites)
        load = Load(front)
        load.start()
        time.sleep(3)

        # 1. kill -9 the master's whole process group.
        m = master_of(sites, alive)
        t_kill = time.monotonic()
        os.killpg(by_n[m].group().pid, signal.SIGKILL)
        by_n[m].group().wait()
        stack.procs.procs.pop("service%d" % m, None)
        alive.discard(m)
        elected = wait_until(lambda: master_of(sites, alive) is not None, 30)
        t_elected = time.monotonic()
        check(name("site %d killed: a new master is elected (site %s) in "
                   "%.1f s" % (m, master_of(sites, alive), t_elected - t_kill)),
              elected, "roles %r" % roles(sites, alive))
        time.sleep(3)
        gap, failed = load.window(t_kill, time.monotonic())
        note("run %d: kill -9 of the master: %.2f s without a successful "
             "login, %d failed requests" % (run, gap, failed))
        figures["kill"].append((gap, failed))

        # 2. the killed site comes back: it rejoins and catches up.
        t_back = time.monotonic()
        start_site(by_n[m])
        alive.add(m)
        check(name("site %d restarted: it rejoins as a replica" % m),
              wait_until(lambda: role(by_n[m]) == "replica", 30),
              "role %r" % role(by_n[m]))
        note("run %d: site %d rejoined in %.1f s" % (run, m,
                                                       time.monotonic() - t_back))
        time.sleep(2)

        # 3. SIGSTOP the master past the election; SIGCONT: it steps down.
        m2 = master_of(sites, alive)
        t_stop = time.monotonic()
        os.killpg(by_n[m2].group().pid, signal.SIGSTOP)
        others = alive - {m2}
        elected = wait_until(lambda: master_of(sites, others) is not None, 30)
        t_elected = time.monotonic()
        check(name("site %d stopped: site %s elected in %.1f s" % (
            m2, master_of(sites, others), t_elected - t_stop)), elected,
            "roles %r" % roles(sites, others))
        time.sleep(2)
        os.killpg(by_n[m2].group().pid, signal.SIGCONT)
        t_cont = time.monotonic()
        load.frozen = (t_stop, t_cont)
        check(name("site %d continued: it steps down" % m2),
              wait_until(lambda: role(by_n[m2]) in ("replica",), 30),
              "role %r" % role(by_n[m2]))
        # A site restarting after its rollback answers nothing for a
        # moment; never two answer "master" once it settled.
        one = lambda: len([n for n, r in roles(sites, alive).items()  # noqa: E731
                           if r == "master"]) == 1
        check(name("one master after the step-down"),
              wait_until(one, CATCH_UP_S), "roles %r" % roles(sites, alive))
        time.sleep(3)
        gap, failed = load.window(t_stop, time.monotonic())
        note("run %d: SIGSTOP of the master: %.2f s without a successful "
             "login, %d failed requests" % (run, gap, failed))
        figures["stop"].append((gap, failed))
        load.stop()
        for s in sites:
            if s.n != m2:
                text = open(s.path("kakao-login.log"), errors="replace").read()
                check(name("site %d called no store call stuck" % s.n),
                      "a store call in flight" not in text)
        compare(run, sites, load)
        check_group(run, sites)
        secrets_in_logs(run, sites, load)
        remove_site(run, sites, by_n, alive)
    finally:
        if os.environ.get("HA_PAUSE"):
            note("pausing %s s" % os.environ["HA_PAUSE"])
            time.sleep(float(os.environ["HA_PAUSE"]))
        for s in sites:
            g = s.group()
            if g is not None:
                try:
                    os.killpg(g.pid, signal.SIGCONT)
                except OSError:
                    pass
        stack.procs.stop_all()
        if os.environ.get("KEEP_TMP"):
            for s in sites:
                note("kept %s" % s.dir)
        else:
            for s in sites:
                shutil.rmtree(s.dir, ignore_errors=True)


figures = {"kill": [], "stop": []}


def secrets_in_logs(run, sites, load):
    """No Kakao token, JWT, refresh token or client secret in any log."""
    needles = [codeflow.CLIENT_SECRET, ADMIN_KEY, "valid-%d" % KID_BASE,
               "eyJ"]
    found = []
    for s in sites:
        for root, _, files in os.walk(s.dir):
            for f in files:
                if not (f.endswith(".log")):
                    continue
                path = os.path.join(root, f)
                if "access.log" in f:
                    continue    # nginx's own, no secrets in request lines
                with open(path, errors="replace") as fh:
                    text = fh.read()
                found += ["%s in %s" % (n[:8], path) for n in needles
                          if n in text]
    check("run %d: no token, key or secret in any log" % run, not found,
          "; ".join(found[:5]))


def compare(run, sites, load):
    """Every acknowledged login on every site, with its user id; no user id
    for two Kakao ids; no Kakao id with two user ids."""
    name = lambda what: "run %d: %s" % (run, what)  # noqa: E731
    acked = collections.defaultdict(set)     # kid -> user ids answered
    owners = collections.defaultdict(set)    # user id -> kids answered
    codes = collections.Counter()
    frozen_timeouts = 0
    for t0, t1, kid, st, uid, msg in load.answers:
        # The stopped site's Kakao calls in flight outlive their bound
        # while it is frozen: 504 KAKAO_TIMEOUT, no login acknowledged.
        if (st == 504 and msg == "KAKAO_TIMEOUT" and load.frozen and
                t0 < load.frozen[1] and t1 > load.frozen[0]):
            frozen_timeouts += 1
            continue
        codes[st] += 1
        if st == 200:
            acked[kid].add(uid)
            owners[uid].add(kid)
    note("run %d: answers by status: %s; 504 KAKAO_TIMEOUT of calls the "
         "SIGSTOP froze: %d" % (run, dict(sorted(codes.items())),
                                 frozen_timeouts))
    # A failover fails requests only in ways a client may retry: the
    # front's 502 (no site took it) and a site's 503 (no master, not
    # durable, restarting); a 500 says a store failed for good, a 504
    # outside the freeze a Kakao call that was slow for another reason.
    other = collections.Counter((st, msg) for _, _, _, st, _, msg in
                                load.answers if st not in (200, 502, 503))
    other[(504, "KAKAO_TIMEOUT")] -= frozen_timeouts
    other = {c: n for c, n in other.items() if n > 0}
    check(name("every failed login a 502 or a 503"), not other, "%r" % other)
    for s in sites if other else ():
        try:
            with open(s.service_log, errors="replace") as f:
                lines = [ln.strip() for ln in f if any(
                    " status=%d " % st in ln for st, _ in other)]
        except OSError:
            lines = []
        for ln in lines[:10]:
            note("  site %d: %s" % (s.n, ln[:300]))
    two = {k: v for k, v in acked.items() if len(v) > 1}
    check(name("no Kakao id got two user ids (%d acknowledged ids)" %
               len(acked)), not two, "%r" % dict(list(two.items())[:5]))
    shared = {u: k for u, k in owners.items() if len(k) > 1}
    check(name("no user id went to two Kakao ids"), not shared,
          "%r" % dict(list(shared.items())[:5]))
    for s in sites:
        # A quorum acknowledged each login; the other site catches up.
        users = {}
        deadline = time.monotonic() + CATCH_UP_S
        while True:
            users = users_of(s)
            if all(k in users for k in acked) or time.monotonic() > deadline:
                break
            time.sleep(1)
        missing = [k for k in acked if k not in users]
        wrong = [k for k in acked if k in users and
                 users[k] not in acked[k]]
        check(name("site %d holds every acknowledged login with its user id "
                   "(%d records, %d acknowledged)" % (s.n, len(users),
                                                      len(acked))),
              not missing and not wrong,
              "missing %r, wrong %r" % (missing[:5], wrong[:5]))


def port_taken():
    """A site whose replication port is still held when it starts (the
    replication process it replaces still exiting, or another program)
    listens once the port is free: 5.3 records a process as the site's
    replication process before it binds, and a process that failed to
    bind stayed recorded, so every later process of the site became a
    subordinate of nobody."""
    name = lambda what: "port taken: %s" % what  # noqa: E731
    sites = setup(1)
    s = sites[0]
    hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind(("127.0.0.1", s.repl_port))
        hold.listen(1)
        start_site(s)
        time.sleep(2)
        check(name("no master while another holds the port"),
              role(s) != "master", "role %r" % role(s))
        hold.close()
        check(name("the site listens once the port is free"),
              wait_until(lambda: repl_listens(s.repl_port), 20))
        check(name("and becomes the master"),
              wait_until(lambda: role(s) == "master", 20),
              "role %r" % role(s))
        check(name("a login gets 200"),
              wait_until(lambda: login(s.port, KID_BASE)[0] == 200, 20))
        text = open(s.path("kakao-login.log"), errors="replace").read()
        check(name("the log says why"), "Address already in use" in text)
        # Each process that could not listen restarts REPL_LISTEN_RESTART_MS
        # later, and its death's recovery restarts the other: the stall
        # below is watched once that is over.
        check(name("its processes stop restarting"), quiet_log(s, 3.0, 30))
        checkpoint_stall(s)
    finally:
        hold.close()
        stack.procs.stop_all()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(s.dir, ignore_errors=True)


def quiet_log(s, quiet, timeout):
    """True once the site's log has said nothing of a restart for quiet
    seconds (within timeout)."""
    marks = ("restarting", "respawn", "cannot listen")
    last_n, last_t = -1, time.monotonic()
    deadline = last_t + timeout
    while time.monotonic() < deadline:
        with open(s.path("kakao-login.log"), errors="replace") as fh:
            text = fh.read()
        n = sum(text.count(m) for m in marks)
        if n != last_n:
            last_n, last_t = n, time.monotonic()
        elif time.monotonic() - last_t >= quiet:
            return True
        time.sleep(0.2)
    return False


def checkpoint_stall(s):
    """A master's checkpoint returns: with Berkeley DB 5.3's default it
    slept 30 s holding the checkpoint mutex (DB_REP_CHECKPOINT_DELAY), and
    the stuck-call watch restarted every process of the master about 17 s
    after its first checkpoint. The lone master writes a few MB of log (a
    checkpoint each MB) and is watched past that limit."""
    name = lambda what: "checkpoint: %s" % what  # noqa: E731
    with open(s.path("kakao-login.log"), "rb") as fh:
        seen = len(fh.read())
    kids = iter(range(KID_BASE + 2_000_000, KID_BASE + 2_004_000))
    lock = threading.Lock()
    bad = []

    def worker():
        while True:
            with lock:
                kid = next(kids, None)
            if kid is None:
                return
            st = login(s.port, kid)[0]
            if st != 200:
                bad.append(st)
    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(name("4000 new users on the lone master"), not bad,
          "statuses %r" % bad[:5])
    deadline = time.monotonic() + STUCK_LIMIT_S + 3
    while time.monotonic() < deadline:
        st = login(s.port, KID_BASE)[0]
        if st != 200:
            bad.append(st)
        time.sleep(0.5)
    with open(s.path("kakao-login.log"), "rb") as fh:
        text = fh.read()[seen:].decode(errors="replace")
    check(name("no store call called stuck past %d s" % STUCK_LIMIT_S),
          "a store call in flight" not in text and "died, respawn"
          not in text, "; ".join(log_tail(s, 4)))
    check(name("logins answer throughout"), not bad, "statuses %r" % bad[:5])


def repl_listens(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    stack.set_build(a.build)
    port_taken()
    for run in range(1, a.runs + 1):
        run_once(run)
    for what, rows in figures.items():
        note("%s: %s" % (what, ", ".join("%.2f s / %d failed" % r
                                          for r in rows)))
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
