#!/usr/bin/env python3
"""make_cases.py: writes the JWKS parser cases of test/unit/test_token_oidc.c.

Each case is one file: jwks-<N>-<what>.json must parse to N keys,
jwks-bad-<what>.* must be refused (KL_KAKAO_BAD_RESPONSE). The RSA moduli
come from keys `openssl genpkey` makes once, when this script runs; the
files are committed, so the suite needs no key generation for them.
Run from anywhere: python3 test/data/id_token/make_cases.py
"""
import base64, json, os, re, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def modulus(bits):
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                          "-pkeyopt", "rsa_keygen_bits:%d" % bits],
                         check=True, capture_output=True).stdout
    out = subprocess.run(["openssl", "rsa", "-noout", "-modulus"],
                         input=pem, check=True, capture_output=True).stdout
    hexn = re.search(rb"Modulus=([0-9A-F]+)", out).group(1).decode()
    return bytes.fromhex(hexn)


def odd_number(bits, seed):
    """A number of exactly bits bits, odd (the parser checks size and
    parity only; EVP_PKEY_fromdata takes any n)."""
    nbytes = (bits + 7) // 8
    raw = bytearray((seed * 131 + i * 7) % 256 for i in range(nbytes))
    top = bits - (nbytes - 1) * 8
    raw[0] = (raw[0] & ((1 << top) - 1)) | (1 << (top - 1))
    raw[-1] |= 1
    return bytes(raw)


def jwk(n, kid, e=b"\x01\x00\x01", **extra):
    k = {"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
         "n": b64u(n), "e": b64u(e)}
    k.update(extra)
    return {key: v for key, v in k.items() if v is not None}


def write(name, doc):
    with open(os.path.join(HERE, name), "w") as f:
        text = doc if isinstance(doc, str) else json.dumps(doc)
        f.write(text + "\n" if text else "")


def main():
    for f in os.listdir(HERE):
        if f.startswith("jwks-"):
            os.unlink(os.path.join(HERE, f))
    a, b, small = modulus(2048), modulus(2048), modulus(1024)
    good = jwk(a, "good-a")
    keys = lambda *k: {"keys": list(k)}

    # Kakao's own shape: two keys, kid, kty, alg, use, n, e.
    write("jwks-2-kakao-shape.json", keys(jwk(a, "3f96980381e451efad0d2ddd30e3d3"),
                                          jwk(b, "9f252dadd5f233f93d2fa528d12fea")))
    write("jwks-1-no-use-no-alg.json", keys(jwk(a, "k", use=None, alg=None)))
    write("jwks-1-key-ops-verify.json", keys(jwk(a, "k", key_ops=["verify"])))
    write("jwks-1-skips-1024-bits.json", keys(jwk(small, "small"), good))
    write("jwks-1-skips-even-e.json", keys(jwk(a, "even", e=b"\x01\x00\x00"), good))
    write("jwks-1-skips-ec.json", keys({"kty": "EC", "crv": "P-256", "kid": "ec",
                                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
                                       good))
    write("jwks-1-skips-use-enc.json", keys(jwk(b, "enc", use="enc"), good))
    write("jwks-1-skips-rs512.json", keys(jwk(b, "rs512", alg="RS512"), good))
    write("jwks-1-skips-non-object.json", keys("a string", 7, None, [], good))
    write("jwks-1-repeated-kid.json", keys(jwk(a, "same"), jwk(b, "same")))
    write("jwks-1-leading-zero-n.json", keys({**good, "n": b64u(b"\x00" + a)}))
    write("jwks-1-8192-bits.json", keys(jwk(odd_number(8192, 1), "big")))
    write("jwks-1-2048-bits-exactly.json", keys(jwk(odd_number(2048, 2), "k")))
    write("jwks-1-e-3.json", keys(jwk(a, "k", e=b"\x03")))
    write("jwks-1-extra-members.json", {"keys": [dict(good, x5c=["MIIB"], x5t="abc")],
                                        "other": {"a": 1}})
    write("jwks-16-of-17.json", keys(*[jwk(a, "k%02d" % i) for i in range(17)]))

    write("jwks-bad-only-1024-bits.json", keys(jwk(small, "small")))
    write("jwks-bad-2047-bits.json", keys(jwk(odd_number(2047, 3), "k")))
    write("jwks-bad-8200-bits.json", keys(jwk(odd_number(8200, 4), "k")))
    write("jwks-bad-even-e.json", keys(jwk(a, "even", e=b"\x01\x00\x00")))
    write("jwks-bad-e-one.json", keys(jwk(a, "k", e=b"\x01")))
    write("jwks-bad-e-five-bytes.json", keys(jwk(a, "k", e=b"\x01\x00\x00\x00\x01")))
    write("jwks-bad-n-even.json", keys(jwk(a[:-1] + bytes([a[-1] & 0xfe]), "k")))
    write("jwks-bad-n-padded.json", keys({**good, "n": b64u(a) + "=" * (-len(b64u(a)) % 4 or 1)}))
    write("jwks-bad-n-standard-base64.json",
          keys({**good, "n": base64.b64encode(b"\xfb\xff" + a[2:]).rstrip(b"=").decode()}))
    write("jwks-bad-n-number.json", keys({**good, "n": 12345}))
    write("jwks-bad-kid-missing.json", keys(jwk(a, None)))
    write("jwks-bad-kid-empty.json", keys(jwk(a, "")))
    write("jwks-bad-kid-129-chars.json", keys(jwk(a, "k" * 129)))
    write("jwks-bad-kid-number.json", keys(jwk(a, 5)))
    write("jwks-bad-kty-lowercase.json", keys(jwk(a, "k", kty="rsa")))
    write("jwks-bad-alg-rs256-lowercase.json", keys(jwk(a, "k", alg="rs256")))
    write("jwks-bad-key-ops-sign-only.json", keys(jwk(a, "k", key_ops=["sign"])))
    write("jwks-bad-keys-empty.json", keys())
    write("jwks-bad-keys-not-array.json", {"keys": good})
    write("jwks-bad-no-keys.json", {"jwks": [good]})
    write("jwks-bad-not-object.json", [good])
    doc = json.dumps(keys(good))
    write("jwks-bad-duplicate-member.json", doc[:-1] + ', "keys": []}')
    write("jwks-bad-duplicate-in-key.json", doc.replace('"kid": "good-a"',
                                                        '"kid": "good-a", "kid": "x"'))
    write("jwks-bad-trailing-garbage.json", doc + " {}")
    write("jwks-bad-not-json.txt", "<html>502 Bad Gateway</html>")
    write("jwks-bad-empty.txt", "")


if __name__ == "__main__":
    sys.exit(main())
