/*
 * libFuzzer harness for the jwt module's token parser: compact JWS split,
 * base64url, header JSON, key selection, signature verification and the
 * claims checks, with the key set loaded once.  Differential checks abort
 * on any disagreement: the table-driven base64url decoder against a
 * six-bits-at-a-time reference; the flat scanner against jansson (what it
 * takes, jansson takes with the same members and values, and the facts
 * read from either are the same bytes); the checks on the claims facts a
 * cache entry keeps against the checks on the claims themselves.
 *
 *   clang -fsanitize=fuzzer,address -g -O1 -I ngx_modules/jwt \
 *       tests/fuzz/fuzz_jws.c ngx_modules/jwt/encore_*.c \
 *       -ljansson -lcrypto -o build-fuzz/fuzz_jws
 *
 * auto/fuzz (make fuzz) builds it from this line:
 */
/* fuzz-sources: ngx_modules/jwt/encore_jws.c ngx_modules/jwt/encore_jwks.c ngx_modules/jwt/encore_claims.c ngx_modules/jwt/encore_flat.c ngx_modules/jwt/encore_revoke.c */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encore_jws.h"
#include "encore_claims.h"
#include "encore_flat.h"
#include "../unit/jwt/b64_reference.h"


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
static unsigned char   fuzz_buf[2][ENCORE_JWS_DEFAULT_MAX_SIZE];


static time_t
fuzz_clock(void *data)
{
    return 1300819370;
}


static void
fuzz_b64_differential(const uint8_t *data, size_t size)
{
    int     rc, ref;
    size_t  n, m;

    if (size > sizeof(fuzz_buf[0])) {
        return;
    }

    rc = encore_base64url_decode(fuzz_buf[0], &n, (const char *) data, size);
    ref = base64url_reference(fuzz_buf[1], &m, (const char *) data, size);

    if (rc != ref || (rc == 0 && (n != m || memcmp(fuzz_buf[0], fuzz_buf[1],
                                                   n) != 0)))
    {
        abort();
    }
}


static void
fuzz_flat_differential(const void *data, size_t size)
{
    char                         name[ENCORE_JWS_DEFAULT_MAX_SIZE];
    size_t                       i, k;
    json_t                      *root, *v, *e;
    encore_flat_t                flat;
    encore_claims_facts_t        a, b;
    const encore_flat_member_t  *m;

    if (encore_flat_parse(&flat, data, size) != 0) {
        return;
    }

    root = encore_json_object_parse(data, size);

    if (root == NULL || json_object_size(root) != flat.nmembers) {
        abort();
    }

    for (i = 0; i < flat.nmembers; i++) {
        m = &flat.members[i];

        if (m->name.len >= sizeof(name)) {
            abort();
        }

        memcpy(name, m->name.data, m->name.len);
        name[m->name.len] = '\0';

        v = json_object_get(root, name);

        switch (m->type) {
        case ENCORE_FLAT_STRING:
            if (!json_is_string(v) || json_string_length(v) != m->value.len
                || memcmp(json_string_value(v), m->value.data, m->value.len))
            {
                abort();
            }
            break;
        case ENCORE_FLAT_INTEGER:
            if (!json_is_integer(v)
                || json_integer_value(v) != (json_int_t) m->integer)
            {
                abort();
            }
            break;
        case ENCORE_FLAT_TRUE:
            if (!json_is_true(v)) {
                abort();
            }
            break;
        case ENCORE_FLAT_FALSE:
            if (!json_is_false(v)) {
                abort();
            }
            break;
        default:
            if (!json_is_array(v) || json_array_size(v) != m->nitems) {
                abort();
            }

            for (k = 0; k < m->nitems; k++) {
                e = json_array_get(v, k);

                if (!json_is_string(e)
                    || json_string_length(e) != flat.items[m->first + k].len
                    || memcmp(json_string_value(e),
                              flat.items[m->first + k].data,
                              flat.items[m->first + k].len) != 0)
                {
                    abort();
                }
            }
        }
    }

    if (encore_claims_facts_flat(&a, &flat) == 0) {
        if (encore_claims_facts_init(&b, root) != 0
            || encore_claims_facts_size(&a) != encore_claims_facts_size(&b)
            || memcmp(&a, &b, encore_claims_facts_size(&a)) != 0)
        {
            abort();
        }
    }

    json_decref(root);
}


/* the facts must agree with the claims wherever they decide */
static void
fuzz_facts_differential(json_t *claims, encore_claims_policy_t *policy)
{
    int                     rc, frc;
    long long               exp;
    const char             *error, *ferror;
    encore_claims_facts_t   facts;

    error = NULL;
    rc = encore_claims_check(claims, policy, &exp, &error);

    if (encore_claims_facts_init(&facts, claims) != 0) {
        if (rc != ENCORE_CLAIMS_EINVALID) {
            abort();
        }

        return;
    }

    if (encore_claims_facts_size(&facts) > sizeof(facts)) {
        abort();
    }

    ferror = NULL;
    frc = encore_claims_check_time_facts(&facts, policy, &ferror);

    if (frc == ENCORE_CLAIMS_OK) {
        frc = encore_claims_check_identity_facts(&facts, policy, &ferror);
    }

    if (frc == ENCORE_CLAIMS_EUNKNOWN) {
        return;
    }

    if (frc != rc || (rc != ENCORE_CLAIMS_OK && strcmp(ferror, error) != 0)) {
        abort();
    }
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
    size_t                   i;
    json_t                  *claims;
    encore_jws_t             jws;
    encore_claims_policy_t   policy;

    static const char         *roles[] = { "admin", "editor", "7", "true" };
    static const char         *accepted[] = { "user", "moderator", "admin" };
    static encore_claim_req_t  reqs[] = {
        { "role", roles, 4 },
        { "sub", NULL, 0 },
        { "name", roles, 2 }
    };

    fuzz_b64_differential(data, size);
    fuzz_flat_differential(data, size);

    if (encore_jws_parse(&jws, (const char *) data, size,
                         ENCORE_JWS_DEFAULT_MAX_SIZE, ENCORE_JWS_ALL)
        == ENCORE_JWS_OK)
    {
        (void) encore_jws_verify(&jws, fuzz_jwks);

        fuzz_flat_differential(jws.payload, jws.payload_len);

        claims = encore_json_object_parse(jws.payload, jws.payload_len);

        if (claims) {
            /* policies from none to all checks, with 0 to 3 requirements */
            for (i = 0; i < 8; i++) {
                memset(&policy, 0, sizeof(policy));
                policy.clock = fuzz_clock;
                policy.leeway = (i & 1) ? 60 : 0;
                policy.require_exp = (i != 7);
                policy.issuer = (i & 2) ? "joe" : NULL;
                policy.audience = (i & 4) ? "encore" : NULL;
                policy.reqs = reqs;
                policy.nreqs = i % 4;
                policy.require_iat = (i >= 4);
                policy.roles = (i & 1) ? accepted : NULL;
                policy.nroles = (i & 1) ? 3 : 0;

                fuzz_facts_differential(claims, &policy);
            }

            json_decref(claims);
        }
    }

    encore_jws_free(&jws);

    return 0;
}
