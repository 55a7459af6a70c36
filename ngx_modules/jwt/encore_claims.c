/*
 * Encore: JWT claims checks.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "encore_claims.h"


static int
encore_claims_time(const json_t *claims, const char *name, long long *out,
    unsigned *present)
{
    double   d;
    json_t  *v;

    v = json_object_get(claims, name);

    if (v == NULL) {
        *present = 0;
        return 0;
    }

    *present = 1;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);

    } else if (json_is_real(v)) {
        d = json_real_value(v);

        if (!isfinite(d) || d < 0 || d > (double) ENCORE_CLAIMS_TIME_MAX) {
            return -1;
        }

        /* NumericDate may carry fractions; truncation is conservative */
        *out = (long long) d;

    } else {
        return -1;
    }

    if (*out < 0 || *out > ENCORE_CLAIMS_TIME_MAX) {
        return -1;
    }

    return 0;
}


int
encore_claims_check_time(const json_t *claims,
    const encore_claims_policy_t *policy, long long *exp_out,
    const char **error)
{
    long long  now, exp, nbf;
    unsigned   has_exp, has_nbf;

    *exp_out = 0;

    if (encore_claims_time(claims, "exp", &exp, &has_exp) != 0) {
        *error = "exp is not a valid NumericDate";
        return ENCORE_CLAIMS_EINVALID;
    }

    if (encore_claims_time(claims, "nbf", &nbf, &has_nbf) != 0) {
        *error = "nbf is not a valid NumericDate";
        return ENCORE_CLAIMS_EINVALID;
    }

    if (!has_exp && policy->require_exp) {
        *error = "exp missing";
        return ENCORE_CLAIMS_EINVALID;
    }

    now = policy->clock ? (long long) policy->clock(policy->clock_data)
                        : (long long) time(NULL);

    if (has_exp) {
        /* RFC 7519 4.1.4: must not be accepted on or after exp */
        if (now >= exp + policy->leeway) {
            *error = "token expired";
            return ENCORE_CLAIMS_EEXPIRED;
        }

        *exp_out = exp;
    }

    if (has_nbf && now < nbf - policy->leeway) {
        *error = "token not yet valid";
        return ENCORE_CLAIMS_ENOTYET;
    }

    return ENCORE_CLAIMS_OK;
}


static int
encore_claims_value_is(const json_t *v, const char *value)
{
    char  buf[64];

    if (json_is_string(v)) {
        return strlen(value) == json_string_length(v)
               && memcmp(json_string_value(v), value,
                         json_string_length(v)) == 0;
    }

    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
        return strcmp(buf, value) == 0;
    }

    if (json_is_true(v)) {
        return strcmp(value, "true") == 0;
    }

    if (json_is_false(v)) {
        return strcmp(value, "false") == 0;
    }

    return 0;
}


static int
encore_claims_matches(const json_t *v, const encore_claim_req_t *req)
{
    size_t   i, k;
    json_t  *e;

    if (req->values == NULL) {
        return 1;
    }

    for (k = 0; k < req->nvalues; k++) {
        if (json_is_array(v)) {
            json_array_foreach(v, i, e) {
                if (encore_claims_value_is(e, req->values[k])) {
                    return 1;
                }
            }

        } else if (encore_claims_value_is(v, req->values[k])) {
            return 1;
        }
    }

    return 0;
}


int
encore_claims_check_identity(const json_t *claims,
    const encore_claims_policy_t *policy, const char **error)
{
    size_t   i;
    json_t  *v, *e;
    int      found;

    if (policy->issuer) {
        v = json_object_get(claims, "iss");

        if (!json_is_string(v)
            || strlen(policy->issuer) != json_string_length(v)
            || strcmp(json_string_value(v), policy->issuer) != 0)
        {
            *error = "issuer not accepted";
            return ENCORE_CLAIMS_EISSUER;
        }
    }

    if (policy->audience) {
        v = json_object_get(claims, "aud");
        found = 0;

        if (json_is_string(v)) {
            found = encore_claims_value_is(v, policy->audience);

        } else if (json_is_array(v)) {
            json_array_foreach(v, i, e) {
                if (!json_is_string(e)) {
                    *error = "aud is not a string or array of strings";
                    return ENCORE_CLAIMS_EINVALID;
                }

                if (encore_claims_value_is(e, policy->audience)) {
                    found = 1;
                }
            }

        } else if (v != NULL) {
            *error = "aud is not a string or array of strings";
            return ENCORE_CLAIMS_EINVALID;
        }

        if (!found) {
            *error = "audience not accepted";
            return ENCORE_CLAIMS_EAUDIENCE;
        }
    }

    for (i = 0; i < policy->nreqs; i++) {
        v = json_object_get(claims, policy->reqs[i].name);

        if (v == NULL || json_is_null(v)
            || !encore_claims_matches(v, &policy->reqs[i]))
        {
            *error = "claims do not satisfy the requirement";
            return ENCORE_CLAIMS_EFORBIDDEN;
        }
    }

    return ENCORE_CLAIMS_OK;
}


int
encore_claims_check(const json_t *claims,
    const encore_claims_policy_t *policy, long long *exp_out,
    const char **error)
{
    int  rc;

    rc = encore_claims_check_time(claims, policy, exp_out, error);
    if (rc != ENCORE_CLAIMS_OK) {
        return rc;
    }

    return encore_claims_check_identity(claims, policy, error);
}
