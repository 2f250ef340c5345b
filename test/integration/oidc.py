"""oidc.py: helpers for issue 9's integration tests (code flow, PKCE,
OpenID Connect id_tokens) against build/fake-kakao.

Owns nothing but talking to the fake's test routes (/__id_token,
/__public.pem, /__rotate, /__jwks, /__stats, /.well-known/jwks.json) and
building or forging tokens locally; it never starts processes or touches the
service.  Pure Python 3.11 standard library.  Thread-safe: no state beyond a
proxy-free urllib opener.

Codes follow the fake's grammar
    [slow<ms>.]<kind>-<id>[.u<tag>][.s<challenge>][.n<nonce>]
and every code works once (the fake answers a second exchange KOE320), so
code() adds a random .u tag by default: each call is a fresh code; post the
same string twice to test a replay.

Run `python3 oidc.py PORT` against a running fake to check these helpers.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TIMEOUT = 15


def b64url(data):
    """bytes -> base64url text without padding (JWT and PKCE encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s):
    """base64url text (padding optional) -> bytes."""
    if isinstance(s, str):
        s = s.encode("ascii")
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


def _json_b64(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


# ---- PKCE and codes ----

def pkce_pair():
    """-> (verifier, challenge): a 43-character verifier and its S256
    challenge, base64url(SHA-256(verifier)) without padding."""
    verifier = b64url(os.urandom(32))
    return verifier, b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def code(kind, kakao_id, challenge=None, nonce=None, slow_ms=None, tag=None):
    """-> a code for the fake's /oauth/token.

    kind: good, oidc, koe320, koe303, koe006, koe010, koe101, status<NNN>,
    garbage, ctlgarbage, huge, truncated, trickle, hang, close (see
    code_kinds[] in fake_kakao.c).  challenge: demand a PKCE verifier whose
    S256 is this.  nonce: put into the id_token (oidc).  slow_ms: answer this
    late.  tag: the .u part that makes the code unique; None draws a random
    one, "" leaves it out."""
    s = "%s-%d" % (kind, kakao_id)
    if slow_ms is not None:
        s = "slow%d.%s" % (slow_ms, s)
    if tag is None:
        tag = os.urandom(6).hex()
    if tag:
        s += ".u" + tag
    if challenge is not None:
        s += ".s" + challenge
    if nonce is not None:
        s += ".n" + nonce
    return s


# ---- the fake's routes ----

def _call(port, method, path, query=None):
    url = "http://127.0.0.1:%d%s" % (port, path)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, method=method,
                                 data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _ok(port, method, path, query=None):
    status, body = _call(port, method, path, query)
    if status != 200:
        raise RuntimeError("fake Kakao %s %s: %d %r"
                           % (method, path, status, body[:200]))
    return body


def _claim_text(v):
    if v is None:
        return ""                   # the fake leaves the claim out
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def mint(fake_port, **claims):
    """-> an id_token minted by the fake's /__id_token, signed by its
    current key.  Claims: sub, aud, iss, iat, exp, auth_time, nonce,
    nickname, picture, email, email_verified (bool); kid picks the key
    ("unknown": a key never in the JWKS).  Defaults: aud the fake's REST API
    key, iss its issuer, iat now, exp now + 21599; None leaves a claim out."""
    query = {k: _claim_text(v) for k, v in claims.items()}
    return _ok(fake_port, "GET", "/__id_token", query).decode("ascii")


def public_pem(fake_port, kid=None):
    """-> the signing key's (or kid's) SubjectPublicKeyInfo PEM, as text."""
    query = {"kid": kid} if kid is not None else None
    return _ok(fake_port, "GET", "/__public.pem", query).decode("ascii")


def jwks(fake_port):
    """-> the JWKS the fake serves now, as a dict (raises while failing)."""
    return json.loads(_ok(fake_port, "GET", "/.well-known/jwks.json"))


def stats(fake_port):
    """-> the fake's counters: requests, connections, open, token_calls,
    jwks_calls."""
    return json.loads(_ok(fake_port, "GET", "/__stats"))


def rotate(fake_port, keep=False):
    """Make the fake sign with a new key; keep=False: the JWKS serves only
    it (the old kid becomes unknown).  -> {"kid": new, "jwks": [kids]}."""
    return json.loads(_ok(fake_port, "POST", "/__rotate",
                          {"keep": "1" if keep else "0"}))


def jwks_fail(fake_port, on):
    """Make the fake's JWKS answer 503 (on) or serve again (not on)."""
    _ok(fake_port, "POST", "/__jwks", {"fail": "1" if on else "0"})


# ---- reading and forging tokens ----

def decode(token):
    """-> (header, payload) dicts of a JWT, unverified."""
    h, p = token.split(".")[:2]
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))


def forge_alg_none(token):
    """The same header (alg "none") and payload, no signature."""
    header, payload = decode(token)
    header["alg"] = "none"
    return "%s.%s." % (_json_b64(header), _json_b64(payload))


def forge_hs256_with_public_key(token, pem):
    """The same claims, alg HS256, HMAC-signed with the public key's PEM
    text as the secret: a verifier that trusts the header's alg accepts
    it."""
    header, payload = decode(token)
    header["alg"] = "HS256"
    signing_input = "%s.%s" % (_json_b64(header), _json_b64(payload))
    if isinstance(pem, str):
        pem = pem.encode("ascii")
    mac = hmac.new(pem, signing_input.encode("ascii"), hashlib.sha256)
    return signing_input + "." + b64url(mac.digest())


def tamper_payload(token):
    """One byte of the payload changed (the last digit of sub, else of
    exp), the header and signature kept: must fail verification."""
    h, p, s = token.split(".")
    raw = b64url_decode(p)
    claims = json.loads(raw)
    for name in ("sub", "exp", "iat"):
        value = claims.get(name)
        text = json.dumps(value, separators=(",", ":")).encode("utf-8")
        needle = b'"%s":%s' % (name.encode("ascii"), text)
        at = raw.find(needle)
        digits = text.strip(b'"')
        if isinstance(value, bool) or at == -1 or not digits.isdigit():
            continue
        last = at + len(needle) - (2 if text.endswith(b'"') else 1)
        digit = (raw[last] - ord("0") + 1) % 10
        raw = raw[:last] + bytes([ord("0") + digit]) + raw[last + 1:]
        return "%s.%s.%s" % (h, b64url(raw), s)
    raise ValueError("tamper_payload: no numeric sub, exp or iat")


def set_claims(token, **claims):
    """The payload re-encoded with these claims set (None removes one),
    the old header and signature kept: must fail verification."""
    h, p, s = token.split(".")
    payload = json.loads(b64url_decode(p))
    for k, v in claims.items():
        if v is None:
            payload.pop(k, None)
        else:
            payload[k] = v
    return "%s.%s.%s" % (h, _json_b64(payload), s)


def verify_rs256(token, key_set):
    """True when token is RS256, its kid is in key_set (a JWKS dict) and
    the PKCS#1 v1.5 SHA-256 signature checks.  For testing the fake and
    these helpers, not a verifier to copy: it checks no claims."""
    h, p, s = token.split(".")
    header = json.loads(b64url_decode(h))
    if header.get("alg") != "RS256":
        return False
    keys = [k for k in key_set.get("keys", [])
            if k.get("kid") == header.get("kid")]
    if len(keys) != 1:
        return False
    n = int.from_bytes(b64url_decode(keys[0]["n"]), "big")
    e = int.from_bytes(b64url_decode(keys[0]["e"]), "big")
    size = (n.bit_length() + 7) // 8
    sig = b64url_decode(s)
    if len(sig) != size:
        return False
    em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(size, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
    signed = ("%s.%s" % (h, p)).encode("ascii")
    t = digest_info + hashlib.sha256(signed).digest()
    want = b"\x00\x01" + b"\xff" * (size - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, want)


# ---- self-check against a running fake ----

def _selftest(port):
    failures = []

    def check(name, got, want):
        print("%s %s" % ("ok  " if got == want else "FAIL", name)
              + ("" if got == want else ": got %r want %r" % (got, want)))
        if got != want:
            failures.append(name)

    v, c = pkce_pair()
    check("pkce: verifier length", len(v), 43)
    check("pkce: challenge is S256",
          c, b64url(hashlib.sha256(v.encode()).digest()))
    check("code: grammar",
          code("oidc", 7, challenge="abc", nonce="n1", slow_ms=5, tag="t"),
          "slow5.oidc-7.ut.sabc.nn1")
    check("code: fresh each call", code("good", 1) != code("good", 1), True)

    keys = jwks(port)
    tok = mint(port, sub="42", nonce="xyz", email_verified=True)
    header, claims = decode(tok)
    check("mint: verifies", verify_rs256(tok, keys), True)
    check("mint: kid is served", header["kid"] in
          [k["kid"] for k in keys["keys"]], True)
    check("mint: claims", (claims["sub"], claims["nonce"],
                           claims["email_verified"]), ("42", "xyz", True))
    check("mint: exp - iat", claims["exp"] - claims["iat"], 21599)
    check("mint: None leaves out", "iss" in decode(mint(port, sub="1",
                                                        iss=None))[1], False)
    check("forge alg none: refused", verify_rs256(forge_alg_none(tok), keys),
          False)
    none = forge_alg_none(tok)
    check("forge alg none: alg, kid, claims and no signature",
          (decode(none)[0]["alg"], decode(none)[0]["kid"], decode(none)[1],
           none.endswith(".")), ("none", header["kid"], claims, True))
    pem = public_pem(port)
    hs = forge_hs256_with_public_key(tok, pem)
    check("forge hs256: refused as RS256", verify_rs256(hs, keys), False)
    check("forge hs256: alg, kid and claims",
          (decode(hs)[0]["alg"], decode(hs)[0]["kid"], decode(hs)[1]),
          ("HS256", header["kid"], claims))
    h, p, s = hs.split(".")
    check("forge hs256: HMAC-SHA256 keyed with the PEM text",
          b64url_decode(s), hmac.digest(pem.encode(), (h + "." + p).encode(),
                                        "sha256"))
    t2 = tamper_payload(tok)
    check("tamper: sub changed", decode(t2)[1]["sub"], "43")
    check("tamper: refused", verify_rs256(t2, keys), False)
    t3 = set_claims(tok, aud="other", nonce=None)
    check("set_claims: set and removed",
          (decode(t3)[1]["aud"], "nonce" in decode(t3)[1]), ("other", False))
    check("set_claims: refused", verify_rs256(t3, keys), False)
    check("unknown kid: not in the JWKS",
          verify_rs256(mint(port, sub="1", kid="unknown"), keys), False)

    before = stats(port)
    jwks_fail(port, True)
    status, _ = _call(port, "GET", "/.well-known/jwks.json")
    check("jwks_fail on: 503", status, 503)
    jwks_fail(port, False)
    check("jwks_fail off: serves", len(jwks(port)["keys"]) >= 1, True)
    check("stats: jwks_calls counted",
          stats(port)["jwks_calls"] - before["jwks_calls"], 2)
    state = rotate(port, keep=True)
    check("rotate keep: old and new served", len(state["jwks"]) >= 2, True)
    state = rotate(port)
    check("rotate: only the new served", state["jwks"], [state["kid"]])
    check("rotate: old token's kid unknown", verify_rs256(tok, jwks(port)),
          False)
    check("rotate: new token verifies",
          verify_rs256(mint(port, sub="1"), jwks(port)), True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: oidc.py FAKE_PORT")
    sys.exit(_selftest(int(sys.argv[1])))
