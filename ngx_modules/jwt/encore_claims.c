/*
 * Encore: JWT claims checks.
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "encore_claims.h"
#include "encore_revoke.h"


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


/*
 * The time verdict on exp, nbf and iat already read and range-checked.
 *
 * iat matters because revocations refuse tokens issued before a time: a
 * token without iat, or claiming to be issued later than it was, would
 * outlive its revocation.  So it is required (policy->require_iat) and may
 * not lie in the future beyond the leeway.
 */
static int
encore_claims_time_verdict(unsigned has_exp, long long exp, unsigned has_nbf,
    long long nbf, unsigned has_iat, long long iat,
    const encore_claims_policy_t *policy, const char **error)
{
    long long  now;

    if (!has_exp && policy->require_exp) {
        *error = "exp missing";
        return ENCORE_CLAIMS_EINVALID;
    }

    if (!has_iat && policy->require_iat) {
        *error = "iat missing";
        return ENCORE_CLAIMS_EINVALID;
    }

    now = policy->clock ? (long long) policy->clock(policy->clock_data)
                        : (long long) time(NULL);

    /* RFC 7519 4.1.4: must not be accepted on or after exp */
    if (has_exp && now >= exp + policy->leeway) {
        *error = "token expired";
        return ENCORE_CLAIMS_EEXPIRED;
    }

    if (has_nbf && now < nbf - policy->leeway) {
        *error = "token not yet valid";
        return ENCORE_CLAIMS_ENOTYET;
    }

    if (has_iat && iat > now + policy->leeway) {
        *error = "token issued in the future";
        return ENCORE_CLAIMS_ENOTYET;
    }

    return ENCORE_CLAIMS_OK;
}


int
encore_claims_check_time(const json_t *claims,
    const encore_claims_policy_t *policy, long long *exp_out,
    const char **error)
{
    int        rc;
    long long  exp, nbf, iat;
    unsigned   has_exp, has_nbf, has_iat;

    *exp_out = 0;

    if (encore_claims_time(claims, "exp", &exp, &has_exp) != 0) {
        *error = "exp is not a valid NumericDate";
        return ENCORE_CLAIMS_EINVALID;
    }

    if (encore_claims_time(claims, "nbf", &nbf, &has_nbf) != 0) {
        *error = "nbf is not a valid NumericDate";
        return ENCORE_CLAIMS_EINVALID;
    }

    if (encore_claims_time(claims, "iat", &iat, &has_iat) != 0) {
        *error = "iat is not a valid NumericDate";
        return ENCORE_CLAIMS_EINVALID;
    }

    rc = encore_claims_time_verdict(has_exp, exp, has_nbf, nbf, has_iat, iat,
                                    policy, error);

    /* as before the split: exp is reported once it is known unexpired */
    if (has_exp && (rc == ENCORE_CLAIMS_OK || rc == ENCORE_CLAIMS_ENOTYET)) {
        *exp_out = exp;
    }

    return rc;
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

    if (policy->nroles) {
        v = json_object_get(claims, "role");
        found = 0;

        /* one value, not an array: a role is what X-Encore-User-Role says */
        for (i = 0; v != NULL && !json_is_array(v) && i < policy->nroles;
             i++)
        {
            found = encore_claims_value_is(v, policy->roles[i]);
            if (found) {
                break;
            }
        }

        if (!found) {
            *error = "role not accepted";
            return ENCORE_CLAIMS_EINVALID;
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


/* keep text as fact slot i; 0, or -1 when it does not fit */
static int
encore_claims_facts_put(encore_claims_facts_t *f, size_t i, const char *text,
    size_t len)
{
    if (len > ENCORE_CLAIMS_TEXT_MAX
        || len > (size_t) (ENCORE_CLAIMS_FACTS_DATA - f->used))
    {
        return -1;
    }

    memcpy(f->data + f->used, text, len);
    f->off[i] = f->used;
    f->len[i] = (uint16_t) len;
    f->used += (uint16_t) len;

    return 0;
}


/* sub, role, name: as encore_claims_value_is() and the variables see them */
static unsigned
encore_claims_facts_scalar(encore_claims_facts_t *f, size_t i,
    const json_t *v)
{
    int   n;
    char  buf[64];

    if (v == NULL) {
        return ENCORE_CLAIM_ABSENT;
    }

    if (json_is_string(v)) {
        return encore_claims_facts_put(f, i, json_string_value(v),
                                       json_string_length(v))
               == 0 ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;
    }

    if (json_is_integer(v)) {
        n = snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));

        return n > 0 && encore_claims_facts_put(f, i, buf, (size_t) n) == 0
               ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;
    }

    if (json_is_boolean(v)) {
        return encore_claims_facts_put(f, i, json_is_true(v) ? "true" : "false",
                                       json_is_true(v) ? 4 : 5)
               == 0 ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;
    }

    /* null, reals, arrays, objects: rare; the claims are checked instead */
    return ENCORE_CLAIM_UNKNOWN;
}


int
encore_claims_facts_init(encore_claims_facts_t *f, const json_t *claims)
{
    size_t       i;
    json_t      *v, *e;
    unsigned     has;
    long long    t;

    static const char  *scalars[] = { "sub", "role", "name" };

    memset(f, 0, offsetof(encore_claims_facts_t, data));

    if (encore_claims_time(claims, "exp", &t, &has) != 0) {
        return -1;
    }

    f->has_exp = (unsigned char) has;
    f->exp = has ? t : 0;

    if (encore_claims_time(claims, "nbf", &t, &has) != 0) {
        return -1;
    }

    f->has_nbf = (unsigned char) has;
    f->nbf = has ? t : 0;

    if (encore_claims_time(claims, "iat", &t, &has) != 0) {
        return -1;
    }

    f->has_iat = (unsigned char) has;
    f->iat = has ? t : 0;

    v = json_object_get(claims, "iss");

    if (v == NULL) {
        f->kind[ENCORE_CLAIMS_FACT_ISS] = ENCORE_CLAIM_ABSENT;

    } else if (!json_is_string(v)) {
        f->kind[ENCORE_CLAIMS_FACT_ISS] = ENCORE_CLAIM_INVALID;

    } else {
        f->kind[ENCORE_CLAIMS_FACT_ISS] =
            encore_claims_facts_put(f, ENCORE_CLAIMS_FACT_ISS,
                                    json_string_value(v),
                                    json_string_length(v))
            == 0 ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;
    }

    for (i = 0; i < 3; i++) {
        f->kind[ENCORE_CLAIMS_FACT_SUB + i] =
            (unsigned char) encore_claims_facts_scalar(f,
                                ENCORE_CLAIMS_FACT_SUB + i,
                                json_object_get(claims, scalars[i]));
    }

    /* sub and sid as revocations know them: UUIDs, parsed once */
    v = json_object_get(claims, "sub");
    f->has_sub_id = json_is_string(v)
                    && encore_revoke_uuid(f->sub_id, json_string_value(v),
                                          json_string_length(v)) == 0;

    v = json_object_get(claims, "sid");
    f->has_sid = (v != NULL);
    f->has_sid_id = json_is_string(v)
                    && encore_revoke_uuid(f->sid_id, json_string_value(v),
                                          json_string_length(v)) == 0;

    v = json_object_get(claims, "aud");

    if (v == NULL) {
        f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_ABSENT;

    } else if (json_is_string(v)) {
        f->naud = 1;
        f->kind[ENCORE_CLAIMS_FACT_AUD] =
            encore_claims_facts_put(f, ENCORE_CLAIMS_FACT_AUD,
                                    json_string_value(v),
                                    json_string_length(v))
            == 0 ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;

    } else if (json_is_array(v)) {
        f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_TEXT;

        /* a non-string anywhere makes the whole aud invalid */
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) {
                f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_INVALID;
                break;
            }
        }

        if (f->kind[ENCORE_CLAIMS_FACT_AUD] == ENCORE_CLAIM_TEXT) {

            if (json_array_size(v) > ENCORE_CLAIMS_AUD_MAX) {
                f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_UNKNOWN;

            } else {
                json_array_foreach(v, i, e) {
                    if (encore_claims_facts_put(f, ENCORE_CLAIMS_FACT_AUD + i,
                                                json_string_value(e),
                                                json_string_length(e))
                        != 0)
                    {
                        f->kind[ENCORE_CLAIMS_FACT_AUD] =
                                                         ENCORE_CLAIM_UNKNOWN;
                        break;
                    }

                    f->naud++;
                }
            }
        }

    } else {
        f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_INVALID;
    }

    if (f->kind[ENCORE_CLAIMS_FACT_AUD] != ENCORE_CLAIM_TEXT) {
        f->naud = 0;
    }

    return 0;
}


/* exp, nbf from a flat scan: -1 unless absent or an integer in range */
static int
encore_claims_flat_time(const encore_flat_t *flat, const char *name,
    long long *out, unsigned char *present)
{
    const encore_flat_member_t  *m;

    m = encore_flat_get(flat, name);

    if (m == NULL) {
        *present = 0;
        *out = 0;
        return 0;
    }

    if (m->type != ENCORE_FLAT_INTEGER
        || m->integer > (unsigned long long) ENCORE_CLAIMS_TIME_MAX)
    {
        return -1;
    }

    *present = 1;
    *out = (long long) m->integer;

    return 0;
}


/* in the order, and with the outcomes, of encore_claims_facts_init() */
int
encore_claims_facts_flat(encore_claims_facts_t *f, const encore_flat_t *flat)
{
    size_t                       i, k;
    unsigned                     kind;
    const encore_flat_member_t  *m;

    static const char  *scalars[] = { "sub", "role", "name" };

    memset(f, 0, offsetof(encore_claims_facts_t, data));

    if (encore_claims_flat_time(flat, "exp", &f->exp, &f->has_exp) != 0
        || encore_claims_flat_time(flat, "nbf", &f->nbf, &f->has_nbf) != 0
        || encore_claims_flat_time(flat, "iat", &f->iat, &f->has_iat) != 0)
    {
        return -1;
    }

    m = encore_flat_get(flat, "iss");

    if (m == NULL) {
        f->kind[ENCORE_CLAIMS_FACT_ISS] = ENCORE_CLAIM_ABSENT;

    } else if (m->type != ENCORE_FLAT_STRING) {
        f->kind[ENCORE_CLAIMS_FACT_ISS] = ENCORE_CLAIM_INVALID;

    } else {
        f->kind[ENCORE_CLAIMS_FACT_ISS] =
            encore_claims_facts_put(f, ENCORE_CLAIMS_FACT_ISS, m->value.data,
                                    m->value.len)
            == 0 ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;
    }

    for (i = 0; i < 3; i++) {
        m = encore_flat_get(flat, scalars[i]);

        if (m == NULL) {
            kind = ENCORE_CLAIM_ABSENT;

        } else if (m->type == ENCORE_FLAT_ARRAY) {
            kind = ENCORE_CLAIM_UNKNOWN;

        } else {
            /* canonical integers are their own "%lld" text */
            kind = encore_claims_facts_put(f, ENCORE_CLAIMS_FACT_SUB + i,
                       m->type == ENCORE_FLAT_TRUE ? "true"
                       : m->type == ENCORE_FLAT_FALSE ? "false"
                       : m->value.data,
                       m->type == ENCORE_FLAT_TRUE ? 4
                       : m->type == ENCORE_FLAT_FALSE ? 5
                       : m->value.len)
                   == 0 ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;
        }

        f->kind[ENCORE_CLAIMS_FACT_SUB + i] = (unsigned char) kind;
    }

    m = encore_flat_get(flat, "sub");
    f->has_sub_id = m && m->type == ENCORE_FLAT_STRING
                    && encore_revoke_uuid(f->sub_id, m->value.data,
                                          m->value.len) == 0;

    m = encore_flat_get(flat, "sid");
    f->has_sid = (m != NULL);
    f->has_sid_id = m && m->type == ENCORE_FLAT_STRING
                    && encore_revoke_uuid(f->sid_id, m->value.data,
                                          m->value.len) == 0;

    m = encore_flat_get(flat, "aud");

    if (m == NULL) {
        f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_ABSENT;

    } else if (m->type == ENCORE_FLAT_STRING) {
        f->naud = 1;
        f->kind[ENCORE_CLAIMS_FACT_AUD] =
            encore_claims_facts_put(f, ENCORE_CLAIMS_FACT_AUD, m->value.data,
                                    m->value.len)
            == 0 ? ENCORE_CLAIM_TEXT : ENCORE_CLAIM_UNKNOWN;

    } else if (m->type == ENCORE_FLAT_ARRAY) {
        /* a flat array holds only strings */
        f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_TEXT;

        if (m->nitems > ENCORE_CLAIMS_AUD_MAX) {
            f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_UNKNOWN;

        } else {
            for (k = 0; k < m->nitems; k++) {
                if (encore_claims_facts_put(f, ENCORE_CLAIMS_FACT_AUD + k,
                                            flat->items[m->first + k].data,
                                            flat->items[m->first + k].len)
                    != 0)
                {
                    f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_UNKNOWN;
                    break;
                }

                f->naud++;
            }
        }

    } else {
        f->kind[ENCORE_CLAIMS_FACT_AUD] = ENCORE_CLAIM_INVALID;
    }

    if (f->kind[ENCORE_CLAIMS_FACT_AUD] != ENCORE_CLAIM_TEXT) {
        f->naud = 0;
    }

    return 0;
}


int
encore_claims_check_time_facts(const encore_claims_facts_t *f,
    const encore_claims_policy_t *policy, const char **error)
{
    return encore_claims_time_verdict(f->has_exp, f->exp, f->has_nbf, f->nbf,
                                      f->has_iat, f->iat, policy, error);
}


static int
encore_claims_facts_is(const encore_claims_facts_t *f, size_t i,
    const char *value)
{
    return strlen(value) == f->len[i]
           && memcmp(f->data + f->off[i], value, f->len[i]) == 0;
}


static int
encore_claims_facts_slot(const char *name)
{
    if (strcmp(name, "sub") == 0) {
        return ENCORE_CLAIMS_FACT_SUB;
    }

    if (strcmp(name, "role") == 0) {
        return ENCORE_CLAIMS_FACT_ROLE;
    }

    if (strcmp(name, "name") == 0) {
        return ENCORE_CLAIMS_FACT_NAME;
    }

    return -1;
}


int
encore_claims_check_identity_facts(const encore_claims_facts_t *f,
    const encore_claims_policy_t *policy, const char **error)
{
    int     s;
    size_t  i, k;
    int     found;

    if (policy->issuer) {
        switch (f->kind[ENCORE_CLAIMS_FACT_ISS]) {

        case ENCORE_CLAIM_TEXT:
            if (encore_claims_facts_is(f, ENCORE_CLAIMS_FACT_ISS,
                                       policy->issuer))
            {
                break;
            }

            /* fall through */

        case ENCORE_CLAIM_ABSENT:
        case ENCORE_CLAIM_INVALID:
            *error = "issuer not accepted";
            return ENCORE_CLAIMS_EISSUER;

        default:
            return ENCORE_CLAIMS_EUNKNOWN;
        }
    }

    if (policy->audience) {
        switch (f->kind[ENCORE_CLAIMS_FACT_AUD]) {

        case ENCORE_CLAIM_TEXT:
            found = 0;

            for (i = 0; i < f->naud; i++) {
                if (encore_claims_facts_is(f, ENCORE_CLAIMS_FACT_AUD + i,
                                           policy->audience))
                {
                    found = 1;
                    break;
                }
            }

            if (found) {
                break;
            }

            /* fall through */

        case ENCORE_CLAIM_ABSENT:
            *error = "audience not accepted";
            return ENCORE_CLAIMS_EAUDIENCE;

        case ENCORE_CLAIM_INVALID:
            *error = "aud is not a string or array of strings";
            return ENCORE_CLAIMS_EINVALID;

        default:
            return ENCORE_CLAIMS_EUNKNOWN;
        }
    }

    if (policy->nroles) {
        switch (f->kind[ENCORE_CLAIMS_FACT_ROLE]) {

        case ENCORE_CLAIM_TEXT:
            found = 0;

            for (i = 0; !found && i < policy->nroles; i++) {
                found = encore_claims_facts_is(f, ENCORE_CLAIMS_FACT_ROLE,
                                               policy->roles[i]);
            }

            if (found) {
                break;
            }

            /* fall through */

        case ENCORE_CLAIM_ABSENT:
            *error = "role not accepted";
            return ENCORE_CLAIMS_EINVALID;

        default:
            return ENCORE_CLAIMS_EUNKNOWN;
        }
    }

    for (i = 0; i < policy->nreqs; i++) {
        s = encore_claims_facts_slot(policy->reqs[i].name);

        if (s < 0 || f->kind[s] == ENCORE_CLAIM_UNKNOWN
            || f->kind[s] == ENCORE_CLAIM_INVALID)
        {
            return ENCORE_CLAIMS_EUNKNOWN;
        }

        found = 0;

        if (f->kind[s] == ENCORE_CLAIM_TEXT) {
            found = (policy->reqs[i].values == NULL);

            for (k = 0; !found && k < policy->reqs[i].nvalues; k++) {
                found = encore_claims_facts_is(f, s,
                                               policy->reqs[i].values[k]);
            }
        }

        if (!found) {
            *error = "claims do not satisfy the requirement";
            return ENCORE_CLAIMS_EFORBIDDEN;
        }
    }

    return ENCORE_CLAIMS_OK;
}


int
encore_claims_facts_text(const encore_claims_facts_t *f, const char *name,
    const char **text, size_t *len)
{
    int  s;

    s = encore_claims_facts_slot(name);

    if (s < 0) {
        return ENCORE_CLAIM_UNKNOWN;
    }

    if (f->kind[s] == ENCORE_CLAIM_TEXT) {
        *text = f->data + f->off[s];
        *len = f->len[s];
    }

    return f->kind[s];
}
