#!/usr/bin/env python3
"""Records the FastCGI byte streams the real nginx and lighttpd send through
the shipped etc/nginx/kakao-login.conf and etc/lighttpd/kakao-login.conf,
as seeds of fuzz_fcgi_diff (and as the evidence for the record grammar in
include/fcgi_guard.h).

    python3 test/fuzz/capture_fcgi.py [OUTDIR]   (from the repository root)

Starts both fronts as test/integration/stack.py does, with a listener of
our own on the service's socket in place of the service: it reads each
connection up to the empty FCGI_STDIN record, answers a tiny 200, and
writes what it read to OUTDIR/<front>-<request>.bin (default
test/fuzz/corpus/fuzz_fcgi_diff). Then it prints, per stream, the record
sequence (type:id:length), and fails if a stream holds anything but
BEGIN_REQUEST, PARAMS, STDIN of one non-zero id, in that order. The token
sent is a made-up one. Python 3 standard library only.
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
        data = b""
        conn.settimeout(5)
        try:
            while not complete(data):
                d = conn.recv(65536)
                if not d:
                    break
                data += d
        except OSError:
            pass
        # Kept before the answer: the front's client may read the answer
        # and take() before this thread runs again.
        with self.lock:
            self.streams.append(data)
        try:
            recs, _ = records(data)
            if recs:
                answer(conn, recs[0][1])
        except OSError:
            pass
        finally:
            conn.close()

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
            for name, method, target, headers, body in REQUESTS:
                st = stack.request(port, method, target, headers, body)[0]
                streams = lst.take()
                if len(streams) != 1:
                    print("not ok - %s %s: %d streams (status %s)" % (front, name, len(streams), st))
                    bad += 1
                    continue
                data = streams[0]
                path = os.path.join(out, "%s-%s.bin" % (front, name))
                with open(path, "wb") as f:
                    f.write(data)
                recs, _ = records(data)
                ok = grammar_ok(data)
                bad += not ok
                print("%s - %s %s: %d bytes, %s" % (
                    "ok" if ok else "not ok", front, name, len(data),
                    " ".join("%s:%d:%d" % (fc.TYPE_NAMES.get(t, t), i, n) for t, i, n in recs)))
    finally:
        stack.procs.stop_all()
        shutil.rmtree(env.dir, ignore_errors=True)
    print("%d passed, %d failed" % (2 * len(REQUESTS) - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
