"""A small FastCGI client (Python 3 standard library only) for tests that
talk to kakao-login's Unix socket directly, bypassing the front servers.

    rec(type, request_id, content, padding=0, version=1) -> bytes of a record
    begin(request_id=1, role=RESPONDER, keep=False)     -> FCGI_BEGIN_REQUEST
    params(pairs, request_id=1)                         -> FCGI_PARAMS records + the empty one
    stdin(body, request_id=1)                           -> FCGI_STDIN records + the empty one
    request(params) / request_bytes(...)                -> a whole responder request
    exchange(sock_path, data, ...)                      -> Reply (records, stdout, status, ...)

The records follow the FastCGI 1.0 specification: an 8-byte header
(version, type, request id, content length, padding length, reserved),
content, padding; name-value pairs with 1-byte lengths below 128, else
4-byte lengths with the top bit set.
"""

import json
import socket
import struct
import time

VERSION_1 = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR, \
    DATA, GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = range(1, 12)
RESPONDER, AUTHORIZER, FILTER = 1, 2, 3
KEEP_CONN = 1
# FCGI_END_REQUEST protocol status
REQUEST_COMPLETE, CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE = range(4)
TYPE_NAMES = {1: "BEGIN_REQUEST", 2: "ABORT_REQUEST", 3: "END_REQUEST",
              4: "PARAMS", 5: "STDIN", 6: "STDOUT", 7: "STDERR", 8: "DATA",
              9: "GET_VALUES", 10: "GET_VALUES_RESULT", 11: "UNKNOWN_TYPE"}
MAX_CONTENT = 65535


def header(type_, request_id, content_len, padding=0, version=VERSION_1):
    return struct.pack(">BBHHBB", version, type_, request_id, content_len, padding, 0)


def rec(type_, request_id, content=b"", padding=0, version=VERSION_1):
    return header(type_, request_id, len(content), padding, version) + content + b"\0" * padding


def begin(request_id=1, role=RESPONDER, keep=False):
    return rec(BEGIN_REQUEST, request_id,
               struct.pack(">HB5x", role, KEEP_CONN if keep else 0))


def enc_len(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def pair(name, value):
    name = name.encode() if isinstance(name, str) else name
    value = value.encode() if isinstance(value, str) else value
    return enc_len(len(name)) + enc_len(len(value)) + name + value


def stream(type_, data, request_id=1, eof=True):
    """data cut into records of at most 65535 bytes (8-byte aligned padding),
    then the empty record that ends the stream."""
    out = []
    for i in range(0, len(data), MAX_CONTENT):
        chunk = data[i:i + MAX_CONTENT]
        out.append(rec(type_, request_id, chunk, (-len(chunk)) % 8))
    if eof:
        out.append(rec(type_, request_id))
    return b"".join(out)


def params(pairs, request_id=1, eof=True):
    """pairs: a dict or a list of (name, value); values str or bytes."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return stream(PARAMS, b"".join(pair(n, v) for n, v in items), request_id, eof)


def stdin(body=b"", request_id=1, eof=True):
    return stream(STDIN, body, request_id, eof)


def cgi_params(method="GET", uri="/users/kakao/login", authorization=None,
               body=b"", extra=()):
    """The params nginx's snippet sends for a request, as a list of pairs."""
    path, _, query = uri.partition("?")
    p = [("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_SOFTWARE", "fcgiclient"),
         ("REQUEST_METHOD", method), ("REQUEST_URI", uri),
         ("SCRIPT_NAME", path), ("DOCUMENT_URI", path), ("QUERY_STRING", query),
         ("CONTENT_TYPE", "application/x-www-form-urlencoded" if body else ""),
         ("CONTENT_LENGTH", str(len(body)) if body else ""),
         ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"),
         ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "40000"),
         ("SERVER_ADDR", "127.0.0.1"), ("SERVER_PORT", "80"),
         ("SERVER_NAME", "localhost")]
    if authorization is not None:
        p.append(("HTTP_AUTHORIZATION", authorization))
    return p + list(extra)


def request_bytes(method="GET", uri="/users/kakao/login", authorization=None,
                  body=b"", extra=(), request_id=1, keep=False):
    return (begin(request_id, keep=keep)
            + params(cgi_params(method, uri, authorization, body, extra), request_id)
            + stdin(body, request_id))


class Reply:
    """What came back on one connection."""

    def __init__(self):
        self.records = []       # (version, type, request id, content)
        self.stdout = {}        # request id -> bytes
        self.stderr = b""
        self.end = {}           # request id -> (app status, protocol status)
        self.closed = False     # the peer closed the connection
        self.timed_out = False
        self.error = None       # OSError while talking
        self.trailing = b""     # bytes that do not make a whole record
        self.seconds = 0.0

    def types(self):
        return [TYPE_NAMES.get(r[1], str(r[1])) for r in self.records]

    def http(self, request_id=1):
        """-> (status or None, headers dict (lower-case names), body bytes)"""
        out = self.stdout.get(request_id, b"")
        head, sep, body = out.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = out.partition(b"\n\n")
        if not sep:
            return None, {}, out
        hdrs = {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            hdrs.setdefault(name.strip().lower(), value.strip())
        status = 200 if "location" not in hdrs else 302
        if "status" in hdrs:
            try:
                status = int(hdrs["status"].split()[0])
            except (ValueError, IndexError):
                status = None
        return status, hdrs, body

    def json(self, request_id=1):
        try:
            return json.loads(self.http(request_id)[2])
        except ValueError:
            return None

    def summary(self, request_id=1):
        st, _, body = self.http(request_id)
        s = "records %s" % ",".join(self.types()) if self.records else "no records"
        if st is not None or body:
            s += "; status %s body %r" % (st, body[:120])
        if self.end:
            s += "; end %r" % self.end
        s += "; closed" if self.closed else ""
        s += "; timed out" if self.timed_out else ""
        s += "; error %s" % self.error if self.error else ""
        return s


def parse(buf, reply):
    """Consumes whole records from buf into reply; returns the rest."""
    while len(buf) >= 8:
        ver, typ, rid, clen, plen, _ = struct.unpack(">BBHHBB", buf[:8])
        if len(buf) < 8 + clen + plen:
            break
        content = bytes(buf[8:8 + clen])
        buf = buf[8 + clen + plen:]
        reply.records.append((ver, typ, rid, content))
        if typ == STDOUT:
            reply.stdout[rid] = reply.stdout.get(rid, b"") + content
        elif typ == STDERR:
            reply.stderr += content
        elif typ == END_REQUEST and len(content) >= 5:
            app, proto = struct.unpack(">IB", content[:5])
            reply.end[rid] = (app, proto)
    return buf


def connect(sock_path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    return s


def exchange(sock_path, data, timeout=5.0, until_end=(1,), shut_wr=False,
             chunks=None, pause=0.0, sock=None):
    """Sends data (or each of chunks with pause seconds between them), then
    reads until every request id in until_end has its END_REQUEST, the peer
    closes, or timeout seconds pass. shut_wr: half-close after sending.
    -> Reply"""
    r = Reply()
    t0 = time.monotonic()
    s = sock or connect(sock_path, timeout)
    buf = b""
    try:
        try:
            for i, c in enumerate(chunks if chunks is not None else [data]):
                if i and pause:
                    time.sleep(pause)
                s.sendall(c)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            r.error = "send: %s" % e   # keep reading: an answer may be there
        deadline = t0 + timeout
        while True:
            if until_end and all(rid in r.end for rid in until_end):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                r.timed_out = True
                break
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                r.timed_out = True
                break
            except OSError as e:
                r.error = (r.error + "; " if r.error else "") + "recv: %s" % e
                break
            if not d:
                r.closed = True
                break
            buf = parse(buf + d, r)
    finally:
        s.close()
    r.trailing = buf
    r.seconds = time.monotonic() - t0
    return r
