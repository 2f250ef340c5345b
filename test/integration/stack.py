"""The test stack: the fake Kakao, the service under the real
etc/kakao-login-spawn (spawn-fcgi + multiwatch), and the real nginx and
lighttpd including the etc/ snippets as shipped, all under one temporary
directory. Used by test/integration/run.py and the other suites that need
the whole stack. Python 3 standard library only.

As root, the service children and the front servers' workers run as
nobody:nogroup, as they would in production (never as root).
"""

import base64
import http.client
import json
import os
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
SERVICE = os.path.join(REPO, "build", "kakao-login")
FAKE = os.path.join(REPO, "build", "fake-kakao")


def set_build(build_dir):
    """Use the binaries in build_dir (build/ by default, build/san/ for SAN=1)."""
    global SERVICE, FAKE
    SERVICE = os.path.join(os.path.abspath(build_dir), "kakao-login")
    FAKE = os.path.join(os.path.abspath(build_dir), "fake-kakao")
# The suites' fake Kakao is http:// on loopback, which every start warns
# about (README: Configuration): checks for unexpected warnings in the
# service log leave these lines aside.
HTTP_KAKAO_WARNING = re.compile(r"\bwarn(?:ing:)? .*kakao_(?:api|auth)_url is http://")
SPAWN = os.path.join(REPO, "etc", "kakao-login-spawn")
SPAWN_CONF = os.path.join(REPO, "spawn-fcgi.conf")
NGINX_SNIPPET = os.path.join(REPO, "etc", "nginx", "kakao-login.conf")
NGINX_ZONES = os.path.join(REPO, "etc", "nginx", "kakao-login-zones.conf")
NGINX_AUTH_EXAMPLE = os.path.join(REPO, "etc", "nginx", "auth-request-example.conf")
# The upstream's kept connections, as etc/nginx/site-example.conf ships it.
NGINX_KEEPALIVE = 64
LIGHTTPD_SNIPPET = os.path.join(REPO, "etc", "lighttpd", "kakao-login.conf")
LIGHTTPD_LIMIT = os.path.join(REPO, "etc", "lighttpd", "kakao-login-limit.lua")

# The suites (and make bench) send far more from 127.0.0.1 than the shipped
# per-client limit allows: their nginx keys the snippet's zone on an empty
# value, which nginx never counts. test/hostile checks the shipped zone.
UNLIMITED_ZONES = """map $host $kakao_login_no_limit { default ""; }
    limit_req_zone $kakao_login_no_limit zone=kakao_login:1m rate=1r/s;"""

APP_ID = 424242
ISSUER = "kakao-login-test"
JWT_TTL = 3600
UPSTREAM_TIMEOUT_MS = 1000
LOGIN = "/users/kakao/login"


# ------------------------------------------------------------- processes

class Procs:
    """Processes we started, each in its own session (process group)."""

    def __init__(self):
        self.procs = {}     # name -> Popen
        self.logs = []

    def start(self, name, argv, log, env=None):
        f = open(log, "ab")
        self.logs.append(f)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        self.procs[name] = p
        return p

    def stop(self, name, grace=10.0):
        """SIGTERM the leader, wait, then SIGKILL the whole group.
        Returns (exit status or None, seconds taken)."""
        p = self.procs.pop(name, None)
        if p is None:
            return None, 0.0
        t0 = time.monotonic()
        rc = None
        try:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)    # stragglers (children)
        except (ProcessLookupError, PermissionError):
            pass
        if rc is None:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return rc, time.monotonic() - t0

    def stop_all(self):
        for name in list(self.procs)[::-1]:
            self.stop(name, grace=5.0)
        for f in self.logs:
            f.close()
        self.logs = []


procs = Procs()


def _children(ppid):
    """[(pid, comm)] of the live children of ppid (from /proc/PID/stat,
    readable even for a non-dumpable process)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        st = rest.split()
        if int(st[1]) == ppid and st[0] != "Z":
            out.append((int(p), head.split("(", 1)[1]))
    return out


def multiwatch_pid(name="service"):
    """The spawn script's multiwatch (spawn-fcgi -n became it), its child."""
    for pid, comm in _children(procs.procs[name].pid):
        if comm == "multiwatch":
            return pid
    return None


def worker_pids(name="service"):
    """Live children of the spawn group's multiwatch: the service's worker
    processes."""
    mw = multiwatch_pid(name)
    return sorted(pid for pid, _ in _children(mw)) if mw else []


READYZ_200 = re.compile(r" pid=(\d+) .*path=/readyz status=200 ")


def processes_ready(env, name="service"):
    """Every worker process of the spawn group name has answered /readyz
    200 (a joining replica's second process can take seconds to open its
    store, answering 503 NOT_READY meanwhile): one more /readyz on a new
    connection straight to env's socket, which any of them may take, then
    env's service log."""
    sys.path.insert(0, os.path.join(REPO, "test", "hostile"))
    import fcgiclient as fc
    pids = set(worker_pids(name))
    s = fc.connect(env.sock, timeout=3)
    try:
        s.sendall(fc.request_bytes("GET", "/readyz"))
        while s.recv(65536):
            pass
    finally:
        s.close()
    with open(env.service_log, errors="replace") as f:
        seen = {int(m.group(1)) for m in READYZ_200.finditer(f.read())}
    return bool(pids) and pids <= seen


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


# ------------------------------------------------------------- HTTP

def request(port, method, path, headers=None, body=None, timeout=15):
    """-> (status, parsed JSON or None, raw body, seconds)"""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        status = r.status
    finally:
        c.close()
    secs = time.monotonic() - t0
    try:
        js = json.loads(data)
    except ValueError:
        js = None
    return status, js, data, secs


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ------------------------------------------------------------- the setup

class Env:
    """One stack under a fresh temporary directory. children, threads,
    durability and extra (config lines) shape the service; fake_args are
    added to the fake Kakao's command line."""

    def __init__(self, children=2, threads=4, durability="write_nosync",
                 extra=(), fake_args=(), dir=None):
        self.children = children
        self.threads = threads
        self.durability = durability
        self.extra = list(extra)
        self.fake_args = list(fake_args)
        # dir: a new directory of the caller's (removed with its parent).
        if dir is not None:
            os.mkdir(dir, 0o700)
        self.dir = dir or tempfile.mkdtemp(prefix="kakao-login-it.")
        self.root = os.geteuid() == 0
        self.secret = secrets.token_urlsafe(48).encode()     # 64 chars, no newline
        self.sock = os.path.join(self.dir, "kakao-login.sock")
        self.conf = os.path.join(self.dir, "kakao-login.conf")
        self.service_log = os.path.join(self.dir, "kakao-login.log")
        self.fake_port = None
        self.fronts = {}    # name -> port

    def own(self, path):
        """Hand a path to the unprivileged user the children run as."""
        if self.root:
            shutil.chown(path, "nobody", "nogroup")

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def setup(self):
        if self.root:
            os.chmod(self.dir, 0o711)
        os.mkdir(self.path("db"), 0o700)
        self.own(self.path("db"))
        # The user id mark beside db_home (README: Backup and restore):
        # made by the installer when db_home's parent is not the service's,
        # as self.dir is not when root runs the suites.
        os.close(os.open(self.path("db.idmark"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
        self.own(self.path("db.idmark"))
        fd = os.open(self.path("jwt.secret"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, self.secret)
        os.close(fd)
        self.own(self.path("jwt.secret"))
        for d in ("nginx", "nginx/tmp", "lighttpd", "lighttpd/tmp", "www", "www/private"):
            os.mkdir(self.path(d), 0o755)
        self.own(self.path("nginx", "tmp"))
        self.own(self.path("lighttpd"))
        self.own(self.path("lighttpd", "tmp"))

    def write_config(self, api_url, legacy=False):
        lines = [
            "# generated by test/integration/stack.py",
            "db_home = %s" % self.path("db"),
            "db_durability = %s" % self.durability,
            "jwt_secret_file = %s" % self.path("jwt.secret"),
            "jwt_issuer = %s" % ISSUER,
            "jwt_ttl = %d" % JWT_TTL,
            "kakao_api_url = %s" % api_url,
            "kakao_auth_url = %s" % api_url,
            "kakao_app_id = %d" % APP_ID,
            "upstream_timeout_ms = %d" % UPSTREAM_TIMEOUT_MS,
            "upstream_connect_timeout_ms = 500",
        ]
        if self.threads is not None:        # None: the service's default
            lines.append("threads = %d" % self.threads)
        if legacy:
            lines.append("legacy_acess_token = yes")
        lines += self.extra                 # later lines win
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start_fake(self):
        log = self.path("fake-kakao.log")
        procs.start("fake-kakao", [FAKE, "-p", "0", "-a", str(APP_ID)] + self.fake_args, log)

        def listening():
            with open(log) as f:
                m = re.match(r"fake-kakao listening on [\d.]+:(\d+)", f.readline())
            if m:
                self.fake_port = int(m.group(1))
            return m is not None
        wait_for(listening, 5, "the fake Kakao")

    def start_service(self, name="service", timeout=10):
        """The service under the spawn script, as procs' name. -> Popen."""
        env = dict(os.environ,
                   SPAWN_FCGI_CONF=SPAWN_CONF,
                   FCGI_SOCKET=self.sock, FCGI_PROGRAM=SERVICE,
                   KAKAO_LOGIN_CONF=self.conf, FCGI_CHILDREN=str(self.children),
                   FCGI_USER="nobody", FCGI_GROUP="nogroup",
                   FCGI_SOCKET_USER="", FCGI_SOCKET_GROUP="nogroup",
                   FCGI_EXTRA_OPTIONS="")
        env.pop("KAKAO_LOGIN_OPTIONS", None)
        p = procs.start(name, [SPAWN], self.service_log, env=env)
        wait_for(lambda: p.poll() is None and os.path.exists(self.sock) and
                 self.socket_answers(), timeout, "the %s socket" % name)
        if p.poll() is not None:
            raise RuntimeError("the service exited with %s; see %s" % (p.returncode, self.service_log))
        return p

    def socket_answers(self):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.sock)
            return True
        finally:
            s.close()

    def stop_service(self):
        return procs.stop("service")

    def start_nginx(self, worker_connections=256, zones=None, name="nginx",
                    keepalive=NGINX_KEEPALIVE, server_extra="", port=None):
        """zones: the http-level lines defining the limit_req zone;
        default UNLIMITED_ZONES. name: the process's name in procs and its
        directory; only "nginx" becomes one of self.fronts (another nginx
        beside it is for one test). keepalive: the upstream's pool of kept
        connections, as etc/nginx/site-example.conf has it; 0: none, a
        connection per request. server_extra: more lines in the server
        block (test/browser: a location serving etc/www). port: the one
        to listen on (default: a free one). Returns the port."""
        port = port or free_port()
        n = self.path(name)
        if not os.path.isdir(n):
            os.mkdir(n, 0o755)
            os.mkdir(os.path.join(n, "tmp"), 0o755)
            self.own(os.path.join(n, "tmp"))
        conf = os.path.join(n, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""# generated by test/integration/stack.py
%(user)s
daemon off;
worker_processes 2;
pid %(n)s/nginx.pid;
error_log %(n)s/error.log info;
events { worker_connections %(wc)d; }
http {
    access_log %(n)s/access.log;
    client_body_temp_path %(n)s/tmp/body;
    fastcgi_temp_path %(n)s/tmp/fastcgi;
    proxy_temp_path %(n)s/tmp/proxy;
    scgi_temp_path %(n)s/tmp/scgi;
    uwsgi_temp_path %(n)s/tmp/uwsgi;
    %(zones)s
    upstream kakao_login { server unix:%(sock)s; %(keepalive)s}
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        root %(www)s;
        include %(snippet)s;
        include %(authreq)s;
%(server_extra)s
    }
}
""" % {"user": "user nobody nogroup;" if self.root else "", "n": n,
                "server_extra": server_extra,
                "sock": self.sock, "port": port, "snippet": NGINX_SNIPPET,
                "www": self.path("www"), "authreq": NGINX_AUTH_EXAMPLE,
                "wc": worker_connections,
                "keepalive": "keepalive %d; " % keepalive if keepalive else "",
                "zones": UNLIMITED_ZONES if zones is None else zones})
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        procs.start(name, [nginx, "-p", n, "-c", conf, "-e", os.path.join(n, "error.log")],
                    os.path.join(n, "stderr.log"))
        if name == "nginx":
            self.fronts[name] = port
        return port

    def start_lighttpd(self):
        port = free_port()
        d = self.path("lighttpd")
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write("""# generated by test/integration/stack.py
server.document-root = "%(www)s"
server.bind = "127.0.0.1"
server.port = %(port)d
%(user)s
server.errorlog = "%(d)s/error.log"
server.upload-dirs = ( "%(d)s/tmp" )
server.modules = ( "mod_accesslog" )
accesslog.filename = "%(d)s/access.log"
var.kakao_login_socket = "%(sock)s"
var.kakao_login_limit_lua = "%(limit)s"
include "%(snippet)s"
""" % {"www": self.path("www"), "port": port, "d": d, "sock": self.sock,
                "snippet": LIGHTTPD_SNIPPET, "limit": LIGHTTPD_LIMIT,
                "user": 'server.username = "nobody"\nserver.groupname = "nogroup"'
                if self.root else ""})
        lighttpd = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        procs.start("lighttpd", [lighttpd, "-D", "-f", conf], os.path.join(d, "stderr.log"))
        self.fronts["lighttpd"] = port

    def wait_fronts(self):
        """Until each front passes a request to the app (400 for no token)."""
        for name, port in self.fronts.items():
            wait_for(lambda: request(port, "GET", LOGIN, timeout=2)[0] == 400, 15,
                     "%s to reach the service" % name)
