#!/usr/bin/env python3
"""Records the FastCGI byte streams the real nginx and lighttpd send through
the shipped etc/nginx/kakao-login.conf and etc/lighttpd/kakao-login.conf,
as seeds of fuzz_fcgi_diff (and as the evidence for the record grammar in
include/fcgi_guard.h).

    python3 test/fuzz/capture_fcgi.py [OUTDIR]   (from the repository root)

Starts both fronts as test/integration/stack.py does, with a listener of
our own on the service's socket in place of the service: it reads each
connection up to the empty FCGI_STDIN record, answers a tiny 200 (and
reads the next request on the connection when it asked to keep it, as the
service does), and writes what it read to OUTDIR/<front>-<request>.bin
(default test/fuzz/corpus/fuzz_fcgi_diff), plus kept-nginx-two.bin: two
requests as nginx sends them on one kept connection. Then it prints, per
stream, the record sequence (type:id:length), and fails if a stream holds
anything but BEGIN_REQUEST, PARAMS, STDIN of one non-zero id, in that
order, or if nginx opened a connection per request (the shipped upstream
keeps them). The token sent is a made-up one. Python 3 standard library
only.
"""

import os
import shutil
import socket
import struct
import sys
import threading

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "hostile"))
import stack  # noqa: E402
import fcgiclient as fc  # noqa: E402

LOGIN = stack.LOGIN
REQUESTS = [
    ("login-get", "GET", LOGIN, {"Authorization": "Bearer capture-token-0123456789"}, None),
    ("login-post", "POST", LOGIN, {"Authorization": "Bearer capture-token-0123456789"},
     b"grant=kakao&state=abc"),
    ("login-post-16k", "POST", LOGIN, {"Authorization": "Bearer x"}, b"b" * 16384),
    ("query", "GET", LOGIN + "?next=/a&x=1", {"Authorization": "Bearer x"}, None),
    ("no-auth-404", "GET", "/users/nope", {}, None),
    ("many-headers", "GET", LOGIN, dict([("Authorization", "Bearer x")] +
                                        [("X-H%d" % i, "v" * 40) for i in range(40)]), None),
    ("head", "HEAD", LOGIN, {"Authorization": "Bearer x"}, None),
]
ANSWER = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok"


def records(data):
    """-> [(type, id, content length)], the bytes left over."""
    out = []
    while len(data) >= 8:
        _, typ, rid, clen, plen, _ = struct.unpack(">BBHHBB", data[:8])
        if len(data) < 8 + clen + plen:
            break
        out.append((typ, rid, clen))
        data = data[8 + clen + plen:]
    return out, data


def complete(data):
    recs, _ = records(data)
    return any(t == fc.STDIN and n == 0 for t, _, n in recs)


def keeps(data):
    """The BEGIN_REQUEST asks for FCGI_KEEP_CONN."""
    return len(data) >= 16 and data[1] == fc.BEGIN_REQUEST and data[10] & 1 == 1


def answer(conn, rid):
    out = fc.rec(fc.STDOUT, rid, ANSWER) + fc.rec(fc.STDOUT, rid)
    out += fc.rec(fc.END_REQUEST, rid, struct.pack(">IB3x", 0, fc.REQUEST_COMPLETE))
    conn.sendall(out)


class Listener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)       # the fronts' workers may run as nobody
        self.sock.listen(16)
        self.streams = []
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with self.lock:
            self.connections += 1
        conn.settimeout(30)
        try:
            while self.serve_one(conn):
                pass
        finally:
            conn.close()

    def serve_one(self, conn):
        """One request; True when the connection is kept for the next."""
        data = b""
        try:
            while not complete(data):
                d = conn.recv(65536)
                if not d:
                    break
                data += d
        except OSError:
            pass
        if not data:
            return False
        # Kept before the answer: the front's client may read the answer
        # and take() before this thread runs again.
        with self.lock:
            self.streams.append(data)
        recs, _ = records(data)
        try:
            if recs:
                answer(conn, recs[0][1])
        except OSError:
            return False
        return complete(data) and keeps(data)

    def take(self):
        with self.lock:
            s, self.streams = self.streams, []
        return s


def grammar_ok(data):
    """The grammar of include/fcgi_guard.h, as a front sends it."""
    recs, rest = records(data)
    if rest or not recs or recs[0][0] != fc.BEGIN_REQUEST or recs[0][1] == 0:
        return False
    rid, phase = recs[0][1], fc.PARAMS
    for t, i, n in recs[1:]:
        if i != rid or t != phase:
            return False
        if n == 0:
            phase = fc.STDIN if phase == fc.PARAMS else None
    return phase is None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "fuzz_fcgi_diff")
    os.makedirs(out, exist_ok=True)
    env = stack.Env()
    bad = 0
    try:
        env.setup()
        lst = Listener(env.sock)
        env.start_nginx()
        env.start_lighttpd()
        for front, port in env.fronts.items():
            stack.wait_for(lambda: stack.request(port, "GET", LOGIN, timeout=2)[0] == 200, 15, front)
            lst.take()
            conns0, seen = lst.connections, {}
            for name, method, target, headers, body in REQUESTS:
                st = stack.request(port, method, target, headers, body)[0]
                streams = lst.take()
                if len(streams) != 1:
                    print("not ok - %s %s: %d streams (status %s)" % (front, name, len(streams), st))
                    bad += 1
                    continue
                data = streams[0]
                seen[name] = data
                path = os.path.join(out, "%s-%s.bin" % (front, name))
                with open(path, "wb") as f:
                    f.write(data)
                recs, _ = records(data)
                ok = grammar_ok(data)
                bad += not ok
                print("%s - %s %s: %d bytes, %s" % (
                    "ok" if ok else "not ok", front, name, len(data),
                    " ".join("%s:%d:%d" % (fc.TYPE_NAMES.get(t, t), i, n) for t, i, n in recs)))
            if front == "nginx":
                # nginx's two workers each keep a connection or two.
                opened = lst.connections - conns0
                ok = keeps(seen.get("login-get", b"")) and opened <= 4
                bad += not ok
                print("%s - nginx keeps its upstream connections: %d requests on %d new "
                      "connections, FCGI_KEEP_CONN %s" % (
                          "ok" if ok else "not ok", len(REQUESTS), opened,
                          "set" if keeps(seen.get("login-get", b"")) else "not set"))
                with open(os.path.join(out, "kept-nginx-two.bin"), "wb") as f:
                    f.write(seen.get("login-get", b"") + seen.get("login-post", b""))
    finally:
        stack.procs.stop_all()
        shutil.rmtree(env.dir, ignore_errors=True)
    print("%d passed, %d failed" % (2 * len(REQUESTS) + 1 - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
