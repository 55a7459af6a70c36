/*
 * libFuzzer harness for the jwt module's token parser: compact JWS split,
 * base64url, header JSON, key selection, signature verification and the
 * claims checks, with the key set loaded once.
 *
 *   clang -fsanitize=fuzzer,address -g -O1 -I ngx_modules/jwt \
 *       tests/fuzz/fuzz_jws.c ngx_modules/jwt/encore_*.c \
 *       -ljansson -lcrypto -o build-fuzz/fuzz_jws
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: ngx_modules/jwt/encore_jws.c ngx_modules/jwt/encore_jwks.c ngx_modules/jwt/encore_claims.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encore_jws.h"
#include "encore_claims.h"


/* one key of each type; the EC and Ed25519 keys are RFC 7515/8037 ones */
static const char  fuzz_jwks_text[] =
    "{\"keys\":["
    "{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
    "{\"kty\":\"oct\",\"kid\":\"hs\","
    "\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}"
    "]}";

/* file-scope state is the fuzzer's, not Encore's: loaded once */
static encore_jwks_t  *fuzz_jwks;


static time_t
fuzz_clock(void *data)
{
    return 1300819370;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char  err[256];

    fuzz_jwks = encore_jwks_parse(fuzz_jwks_text, sizeof(fuzz_jwks_text) - 1,
                                  err, sizeof(err));

    return fuzz_jwks ? 0 : -1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                  *claims;
    long long                exp;
    const char              *error;
    encore_jws_t             jws;
    encore_claims_policy_t   policy;

    static const char         *roles[] = { "admin", "editor" };
    static encore_claim_req_t  req = { "role", roles, 2 };

    if (encore_jws_parse(&jws, (const char *) data, size,
                         ENCORE_JWS_DEFAULT_MAX_SIZE, ENCORE_JWS_ALL)
        == ENCORE_JWS_OK)
    {
        (void) encore_jws_verify(&jws, fuzz_jwks);

        claims = encore_json_object_parse(jws.payload, jws.payload_len);

        if (claims) {
            memset(&policy, 0, sizeof(policy));
            policy.clock = fuzz_clock;
            policy.leeway = 60;
            policy.require_exp = 1;
            policy.issuer = "joe";
            policy.audience = "encore";
            policy.reqs = &req;
            policy.nreqs = 1;

            (void) encore_claims_check(claims, &policy, &exp, &error);
            json_decref(claims);
        }
    }

    encore_jws_free(&jws);

    return 0;
}
