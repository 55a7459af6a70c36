#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_jws.c into corpus/fuzz_jws/.

The seeds are what the harness's key set (one EC P-256 key, kid "ec", the
RFC 7515 A.3 key; one Ed25519 key, kid "ed", RFC 8037's; one oct key, kid
"hs", RFC 7515 A.1's) and its clock (1300819370, before RFC 7515's exp)
make interesting: valid tokens of each algorithm with and without kid,
then one step away from valid in each of the ways the parser and the
checks refuse (alg, kid, crit, segments, base64url, JSON, signature
encoding, claims types), and bare JSON objects for the flat scanner.
ES256 signatures are random (ECDSA), so a new run writes other bytes for
those seeds; the others are the same every time.

usage (from the project root, with the test virtualenv's python):
    python3 tests/fuzz/corpus/fuzz_jws.py
"""
import base64
import hashlib
import hmac
import json
import os
import pathlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)

OUT = pathlib.Path(__file__).resolve().parent / "fuzz_jws"
NOW = 1300819370
P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_int(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


def seg(obj):
    if not isinstance(obj, (str, bytes)):
        obj = json.dumps(obj, separators=(",", ":"))
    return b64u(obj)


EC_KEY = ec.derive_private_key(b64u_int("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"),
                               ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(
    "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="))
HS_KEY = base64.urlsafe_b64decode(
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow==")


# order of P-256: s is written low (s <= n / 2), as the edge requires
P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551


def es256_rs(si):
    r, s = decode_dss_signature(EC_KEY.sign(si.encode(), ec.ECDSA(hashes.SHA256())))
    return r, min(s, P256_N - s)


def p1363(r, s):
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


SIGN = {
    "ES256": lambda si: p1363(*es256_rs(si)),
    "EdDSA": lambda si: ED_KEY.sign(si.encode()),
    "HS256": lambda si: hmac.new(HS_KEY, si.encode(), hashlib.sha256).digest(),
}
KID = {"ES256": "ec", "EdDSA": "ed", "HS256": "hs"}

CLAIMS = {"iss": "joe", "aud": "encore", "sub": "3f2b6c1e-0000-4000-8000-000000000001",
          "role": "admin", "name": "alice", "iat": NOW - 10, "exp": NOW + 600}


def token(header, claims, alg=None, sig=None):
    si = seg(header) + "." + seg(claims)
    if sig is None:
        sig = SIGN[alg](si) if alg else b""
    return si + "." + (b64u(sig) if isinstance(sig, bytes) else sig)


def main():
    seeds = {}

    # valid tokens of each algorithm, with and without kid
    for alg in ("ES256", "EdDSA", "HS256"):
        a = alg.lower()
        seeds["valid_%s_kid" % a] = token({"alg": alg, "typ": "JWT", "kid": KID[alg]},
                                          CLAIMS, alg)
        seeds["valid_%s_nokid" % a] = token({"alg": alg}, CLAIMS, alg)
    # RS256 and the algorithms Encore does not verify: no key in the set
    for alg in ("RS256", "PS256", "ES384", "ES512", "HS512", "RS512"):
        seeds["alg_%s" % alg.lower()] = token({"alg": alg, "kid": "rsa"}, CLAIMS,
                                             sig=b64u(os.urandom(256 if alg[0] in "RP" else 64)))
    # RFC 7515's own examples (clock before their exp)
    vectors = pathlib.Path(__file__).resolve().parents[2] / "vectors" / "jose"
    for name in ("rfc7515_A.1.jwsc", "rfc7515_A.3.jwsc", "rfc7515_A.4.jwsc"):
        seeds["rfc_" + name[:-len(".jwsc")].replace(".", "_")] = \
            (vectors / name).read_text().strip()

    valid = seeds["valid_es256_kid"]
    head, payload, sig = valid.split(".")

    # alg and key selection
    for alg in ("none", "None", "NONE", "", "es256"):
        seeds["alg_" + (alg or "empty")] = token({"alg": alg}, CLAIMS, sig="")
    seeds["alg_missing"] = token({"typ": "JWT"}, CLAIMS, "ES256")
    seeds["alg_number"] = token('{"alg":256}', CLAIMS, "ES256")
    seeds["alg_duplicate"] = token('{"alg":"HS256","alg":"ES256","kid":"ec"}', CLAIMS, "ES256")
    seeds["kid_unknown"] = token({"alg": "ES256", "kid": "nope"}, CLAIMS, "ES256")
    seeds["kid_of_other_alg"] = token({"alg": "HS256", "kid": "ec"}, CLAIMS, "HS256")
    seeds["kid_nul"] = token('{"alg":"ES256","kid":"ec\\u0000x"}', CLAIMS, "ES256")
    seeds["kid_number"] = token('{"alg":"ES256","kid":1}', CLAIMS, "ES256")
    seeds["crit"] = token({"alg": "ES256", "kid": "ec", "crit": ["exp"]}, CLAIMS, "ES256")
    seeds["crit_empty"] = token({"alg": "ES256", "kid": "ec", "crit": []}, CLAIMS, "ES256")
    seeds["jwk_embedded"] = token({"alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256",
                                   "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                   "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}},
                                  CLAIMS, "ES256")
    seeds["jku_x5u"] = token({"alg": "ES256", "kid": "ec", "jku": "http://127.0.0.1:9/k",
                              "x5u": "http://127.0.0.1:9/c"}, CLAIMS, "ES256")
    seeds["header_nested"] = token('{"alg":"ES256","kid":"ec","x":' + "[" * 20 + "]" * 20 + "}",
                                   CLAIMS, "ES256")
    seeds["header_array"] = token("[]", CLAIMS, "ES256")

    # segments and base64url
    seeds["segments_2"] = head + "." + payload
    seeds["segments_4"] = valid + "."
    seeds["segments_5_jwe"] = head + "." + payload + ".." + sig + "."
    seeds["empty_payload"] = head + ".." + sig
    seeds["empty"] = ""
    seeds["dots"] = ".."
    seeds["b64_padding"] = head + "=." + payload + "." + sig
    seeds["b64_std_alphabet"] = head + "." + payload + "." + "+/" + sig[2:]
    seeds["b64_unused_bits"] = head[:-1] + chr(ord(head[-1]) | 1) + "." + payload + "." + sig
    seeds["b64_space"] = head + ". " + payload + "." + sig
    seeds["json_serialization"] = json.dumps({"protected": head, "payload": payload,
                                              "signature": sig})

    # signature encodings
    si = head + "." + payload
    r, s = es256_rs(si)
    seeds["es256_der"] = si + "." + b64u(encode_dss_signature(r, s))
    seeds["es256_high_s"] = si + "." + b64u(p1363(r, P256_N - s))
    seeds["es256_zero"] = si + "." + b64u(bytes(64))
    seeds["es256_r_is_n"] = si + "." + b64u(p1363(P256_N, s))
    seeds["es256_short"] = si + "." + b64u(p1363(r, s)[:63])
    seeds["es256_long"] = si + "." + b64u(p1363(r, s) + b"\0")
    seeds["hs256_truncated"] = seeds["valid_hs256_kid"][:-10]
    seeds["eddsa_flipped"] = seeds["valid_eddsa_kid"][:-3] + (
        "A" if seeds["valid_eddsa_kid"][-3] != "A" else "B") + seeds["valid_eddsa_kid"][-2:]

    # claims: types, ranges, time, audiences, requirements
    for name, over in {
        "exp_missing": {"exp": None},
        "exp_past": {"exp": NOW - 100},
        "exp_leeway": {"exp": NOW - 30},
        "exp_float": {"exp": NOW + 0.5},
        "exp_string": {"exp": str(NOW + 600)},
        "exp_huge": {"exp": 1e300},
        "exp_negative": {"exp": -1},
        "nbf_future": {"nbf": NOW + 100},
        "aud_array": {"aud": ["x", "encore"]},
        "aud_array_other": {"aud": ["x", "y"]},
        "aud_number": {"aud": 7},
        "aud_many": {"aud": ["a%d" % i for i in range(12)] + ["encore"]},
        "iss_other": {"iss": "eve"},
        "role_array": {"role": ["user", "editor"]},
        "role_number": {"role": 7},
        "role_bool": {"role": True},
        "name_control": {"name": "a\r\nX-Injected: 1"},
        "sub_long": {"sub": "s" * 300},
        "unicode": {"name": "\u00e9\ud83c\udfb5", "sub": "\u0000"},
    }.items():
        c = dict(CLAIMS)
        for k, v in over.items():
            if v is None:
                c.pop(k)
            else:
                c[k] = v
        seeds["claims_" + name] = token({"alg": "EdDSA", "kid": "ed"}, c, "EdDSA")
    dup = '{"exp":%d,"exp":%d,"role":"admin","role":"user"}' % (NOW + 600, NOW - 600)
    seeds["claims_duplicate"] = token({"alg": "HS256", "kid": "hs"}, dup, "HS256")
    seeds["claims_not_object"] = token({"alg": "HS256", "kid": "hs"}, "[1,2]", "HS256")
    seeds["claims_bad_utf8"] = token({"alg": "HS256", "kid": "hs"},
                                     b'{"exp":1300819970,"name":"\xff\xfe"}', "HS256")

    # bare JSON objects: the harness runs its flat scanner on the input too
    seeds["json_claims"] = json.dumps(CLAIMS, separators=(",", ":"))
    seeds["json_escapes"] = '{"a":"\\u00e9\\ud83c\\udfb5\\n\\"","b":[ "x" , "y" ],"c":true,"d":false,"e":-0}'
    seeds["json_numbers"] = '{"a":1e3,"b":-9223372036854775808,"c":18446744073709551616,"d":1.0}'
    seeds["json_nested"] = '{"a":{"b":{"c":[[]]}},"d":null}'
    seeds["json_lone_surrogate"] = '{"a":"\\ud800"}'

    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for name, text in seeds.items():
        (OUT / name).write_text(text)
    print("%d seeds in %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
