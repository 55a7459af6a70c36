#!/usr/bin/env python3
"""Keys and tokens for tests/bench/jwt/run.

usage: mint.py OUTDIR

Writes into OUTDIR (created 0700):
  keys/<created>-<kid>.pem  the EC P-256 signing key, named the way the auth
                            worker's keyring wants it (kid = RFC 7638
                            thumbprint), so the worker's /internal/verify
                            knows it
  hs256.key                 32 random bytes: the HS256 secret (raw, 0600)
  jwks.json                 the public JWK set nginx's jwt module loads: the
                            EC public key and the oct key, each with its kid
  es256.token hs256.token   valid tokens (iss encore, aud encore-api, 1 h)
  es256.bad hs256.bad       the same with one signature bit flipped
  njs-keys.txt              ES_SPKI=<base64 DER> and HS_KEY=<base64url>
"""

import base64
import hashlib
import json
import os
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def thumbprint(members):
    # RFC 7638: required members only, lexicographic order, no whitespace
    text = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(text.encode()).digest())


def write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def flip(token):
    # flip a bit in the middle of the signature segment: still strict
    # base64url, no longer a valid signature
    head, sig = token.rsplit(".", 1)
    i = len(sig) // 2
    c = "B" if sig[i] != "B" else "C"
    return head + "." + sig[:i] + c + sig[i + 1:]


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "keys"), mode=0o700, exist_ok=True)

    ec_key = ec.generate_private_key(ec.SECP256R1())
    nums = ec_key.public_key().public_numbers()
    x = b64u(nums.x.to_bytes(32, "big"))
    y = b64u(nums.y.to_bytes(32, "big"))
    es_kid = thumbprint({"crv": "P-256", "kty": "EC", "x": x, "y": y})

    secret = os.urandom(32)
    k = b64u(secret)
    hs_kid = thumbprint({"k": k, "kty": "oct"})

    created = "%016d" % int(time.time() * 1e6)
    write(os.path.join(out, "keys", "%s-%s.pem" % (created, es_kid)),
          ec_key.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()))
    write(os.path.join(out, "hs256.key"), secret)

    jwks = {"keys": [
        {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": es_kid,
         "use": "sig", "alg": "ES256"},
        {"kty": "oct", "k": k, "kid": hs_kid, "use": "sig", "alg": "HS256"},
    ]}
    write(os.path.join(out, "jwks.json"), json.dumps(jwks, indent=1), 0o644)

    now = int(time.time())
    claims = {"iss": "encore", "aud": "encore-api", "sub": str(uuid.uuid4()),
              "role": "user", "name": "bench", "iat": now,
              "sid": str(uuid.uuid4()),
              "exp": now + 3600, "jti": str(uuid.uuid4())}
    payload = b64u(json.dumps(claims, separators=(",", ":")).encode())

    def header(alg, kid):
        h = {"alg": alg, "typ": "JWT", "kid": kid}
        return b64u(json.dumps(h, separators=(",", ":")).encode())

    si = header("ES256", es_kid) + "." + payload
    r, s = decode_dss_signature(ec_key.sign(si.encode(),
                                            ec.ECDSA(hashes.SHA256())))
    # the low form (s <= n / 2), the only one the edge accepts
    n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
    s = min(s, n - s)
    es = si + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    si = header("HS256", hs_kid) + "." + payload
    import hmac
    hs = si + "." + b64u(hmac.new(secret, si.encode(), "sha256").digest())

    for name, tok in (("es256", es), ("hs256", hs)):
        write(os.path.join(out, name + ".token"), tok, 0o644)
        write(os.path.join(out, name + ".bad"), flip(tok), 0o644)

    spki = ec_key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    write(os.path.join(out, "njs-keys.txt"),
          "ES_SPKI=%s\nHS_KEY=%s\n" % (base64.b64encode(spki).decode(), k),
          0o644)


if __name__ == "__main__":
    main()
