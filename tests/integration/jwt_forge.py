"""Forging JSON Web Tokens for the edge's jwt tests.

Tokens are built by hand (no JWT library): an attack test must control every
byte — the header's member order and duplicates, the signature's encoding,
the alphabet. The "real" key is the auth worker's current private signing
key, read from $ENCORE_RUN_DIR/secrets/auth-keys/<created>-<kid>.pem (the
tests run as root); attacker keys are generated here.
"""
import base64
import hashlib
import hmac
import json
import time
import uuid

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)

from conftest import RUN_DIR, url

# order of the P-256 group (FIPS 186-4 D.1.2.3)
P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def segment(obj):
    """A JSON segment: dicts/lists are dumped compactly, str/bytes are taken
    as the exact JSON text (for duplicate members, bad UTF-8, ...)."""
    if isinstance(obj, (dict, list, int, type(None))):
        obj = json.dumps(obj, separators=(",", ":"))
    return b64u(obj)


def decode_part(token, i):
    return json.loads(b64u_decode(token.split(".")[i]))


# ---- keys ------------------------------------------------------------------

def published_kids():
    """kids of /.well-known/jwks.json, newest (the signing one) first."""
    r = requests.get(url("/.well-known/jwks.json"))
    assert r.status_code == 200, r.text
    return [k["kid"] for k in r.json()["keys"]]


def real_key(kid=None):
    """(kid, private key) of the auth worker; the signing key by default."""
    files = sorted((RUN_DIR / "secrets" / "auth-keys").glob("*.pem"),
                   reverse=True)
    assert files, "no signing keys under %s" % RUN_DIR
    for f in files:
        fkid = f.name[:-len(".pem")].split("-", 1)[1]
        if kid is None or fkid == kid:
            key = serialization.load_pem_private_key(f.read_bytes(), None)
            return fkid, key
    raise AssertionError("no private key for kid %r" % kid)


def attacker_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_forms(priv):
    """The published public key in every form an HS256 confusion attack
    might key the MAC with."""
    pub = priv.public_key()
    nums = pub.public_numbers()
    x = nums.x.to_bytes(32, "big")
    y = nums.y.to_bytes(32, "big")
    jwk = {"kty": "EC", "crv": "P-256", "x": b64u(x), "y": b64u(y)}
    pem = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "pem": pem,
        "pem-no-newline": pem.rstrip(b"\n"),
        "der": pub.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo),
        "point": pub.public_bytes(serialization.Encoding.X962,
                                  serialization.PublicFormat.UncompressedPoint),
        "jwk": json.dumps(jwk, separators=(",", ":")).encode(),
        "jwk-x": b64u(x).encode(),
    }


def jwk_of(priv):
    nums = priv.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256",
            "x": b64u(nums.x.to_bytes(32, "big")),
            "y": b64u(nums.y.to_bytes(32, "big"))}


# ---- signatures ---------------------------------------------------------------

def es256_rs(priv, signing_input):
    """(r, s) with s in its low form (s <= n / 2), the only one the edge
    accepts; es256_high() makes the other."""
    der = priv.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return r, min(s, P256_N - s)


def es256_high(priv, signing_input):
    """The same signature with s := n - s: valid ECDSA, but high S."""
    r, s = es256_rs(priv, signing_input)
    return p1363(r, P256_N - s)


def p1363(r, s, width=32):
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def es256(priv, signing_input):
    return p1363(*es256_rs(priv, signing_input))


def es256_der(priv, signing_input):
    return encode_dss_signature(*es256_rs(priv, signing_input))


def hs256(secret, signing_input):
    return hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()


# ---- tokens -------------------------------------------------------------------

def claims_for(user, **over):
    """The claims the auth worker issues for user (a dict with id, username,
    role), with overrides; a value of None removes the claim."""
    now = int(time.time())
    c = {"iss": "encore", "aud": "encore-api", "sub": user["id"],
         "role": user.get("role", "user"), "name": user["username"],
         "iat": now, "exp": now + 900, "jti": str(uuid.uuid4())}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def header_for(kid, **over):
    h = {"alg": "ES256", "typ": "JWT", "kid": kid}
    for k, v in over.items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return h


def token(header, claims, sign=None, key=None):
    """header/claims: dicts or exact JSON text; sign(key, signing_input) ->
    bytes, or None for an empty signature segment."""
    si = segment(header) + "." + segment(claims)
    sig = sign(key, si) if sign else b""
    return si + "." + b64u(sig)


def real_token(user, kid_key=None, header=None, **claims):
    """A token the edge must accept: the worker's key, its kid, its claims."""
    kid, key = kid_key or real_key()
    return token(header or header_for(kid), claims_for(user, **claims),
                 es256, key)
