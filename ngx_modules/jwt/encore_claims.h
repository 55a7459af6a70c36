/*
 * Encore: JWT claims checks (RFC 7519 4.1, RFC 8725 3.8-3.10), with an
 * injectable clock so that tests can pin "now".
 */

#ifndef ENCORE_CLAIMS_H
#define ENCORE_CLAIMS_H


#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "encore_flat.h"


/* exp and nbf beyond year 9999 are refused as out of range */
#define ENCORE_CLAIMS_TIME_MAX  253402300799LL


typedef enum {
    ENCORE_CLAIMS_OK = 0,
    ENCORE_CLAIMS_EINVALID,    /* 401: malformed claim, wrong type, range */
    ENCORE_CLAIMS_EEXPIRED,    /* 401 */
    ENCORE_CLAIMS_ENOTYET,     /* 401: nbf in the future */
    ENCORE_CLAIMS_EISSUER,     /* 401 */
    ENCORE_CLAIMS_EAUDIENCE,   /* 401 */
    ENCORE_CLAIMS_EFORBIDDEN,  /* 403: a required claim is missing or has a
                                  value outside the location's set */
    ENCORE_CLAIMS_EUNKNOWN     /* facts only: the facts do not hold what the
                                  policy asks about; check the claims */
} encore_claims_rc_t;


typedef time_t (*encore_clock_pt)(void *data);


typedef struct {
    const char         *name;
    const char *const  *values;     /* NULL: the claim must only exist */
    size_t              nvalues;
} encore_claim_req_t;


typedef struct {
    encore_clock_pt            clock;       /* NULL: time(NULL) */
    void                      *clock_data;
    long                       leeway;      /* seconds, >= 0 */
    unsigned                   require_exp; /* exp must be present */
    unsigned                   require_iat; /* iat must be present */
    const char                *issuer;      /* NULL: not checked */
    const char                *audience;    /* NULL: not checked */
    const encore_claim_req_t  *reqs;
    size_t                     nreqs;
    const char *const         *roles;       /* role must be one of them */
    size_t                     nroles;      /* 0: role not checked */
} encore_claims_policy_t;


/*
 * Check exp, nbf and iat: numbers within [0, ENCORE_CLAIMS_TIME_MAX]
 * (fractions truncated); expired when now >= exp + leeway, not yet valid
 * when now < nbf - leeway, issued in the future when iat > now + leeway.
 * *exp_out receives exp (0 when absent).
 */
int encore_claims_check_time(const json_t *claims,
    const encore_claims_policy_t *policy, long long *exp_out,
    const char **error);

/*
 * iss (exact string), aud (a string, or an array of strings holding the
 * audience), role (one of policy->roles, when there are any: 401 otherwise)
 * and the required claims: a string claim must equal one of the
 * values; an array claim must hold one of them; numbers and booleans are
 * compared by their JSON text.
 */
int encore_claims_check_identity(const json_t *claims,
    const encore_claims_policy_t *policy, const char **error);

/* both of the above, time first */
int encore_claims_check(const json_t *claims,
    const encore_claims_policy_t *policy, long long *exp_out,
    const char **error);


/*
 * Claims facts: what the checks above and the identity outputs need of a
 * token's claims, flat and position-independent, so that the verified-token
 * cache can keep them and a cache hit needs neither base64 nor JSON.  The
 * checks still run on every request, against the facts.
 *
 * For iss, aud, sub, role and name a fact is ABSENT, TEXT (the value, kept
 * as text: iss and aud only when strings, sub, role and name also when
 * integers or booleans, rendered as their JSON text), INVALID (a type every
 * check refuses: iss not a string; aud neither a string nor an array of
 * strings) or UNKNOWN (not kept: too long, or another type), for which the
 * caller must check the claims themselves.
 */

#define ENCORE_CLAIM_ABSENT       0
#define ENCORE_CLAIM_TEXT         1
#define ENCORE_CLAIM_INVALID      2
#define ENCORE_CLAIM_UNKNOWN      3

#define ENCORE_CLAIMS_FACT_ISS    0
#define ENCORE_CLAIMS_FACT_SUB    1
#define ENCORE_CLAIMS_FACT_ROLE   2
#define ENCORE_CLAIMS_FACT_NAME   3
#define ENCORE_CLAIMS_FACT_AUD    4   /* kind of aud; values from slot 4 on */

#define ENCORE_CLAIMS_AUD_MAX     8
#define ENCORE_CLAIMS_TEXT_MAX    256 /* bytes of one value kept */
#define ENCORE_CLAIMS_FACTS_DATA  512 /* bytes of all values kept */


typedef struct {
    long long      exp;
    long long      nbf;
    long long      iat;
    unsigned char  has_exp;
    unsigned char  has_nbf;
    unsigned char  has_iat;
    unsigned char  has_sub_id;        /* sub is a UUID string: sub_id */
    unsigned char  has_sid_id;        /* sid is a UUID string: sid_id */
    unsigned char  has_sid;           /* sid is present, of any type */
    unsigned char  sub_id[16];        /* what revocations are keyed by */
    unsigned char  sid_id[16];
    unsigned char  kind[5];           /* ENCORE_CLAIM_*, by ..._FACT_* */
    unsigned char  naud;
    uint16_t       used;              /* bytes of data in use */
    uint16_t       off[4 + ENCORE_CLAIMS_AUD_MAX];
    uint16_t       len[4 + ENCORE_CLAIMS_AUD_MAX];
    char           data[ENCORE_CLAIMS_FACTS_DATA];
} encore_claims_facts_t;


/* bytes of facts worth copying: the fixed part and the data in use */
#define encore_claims_facts_size(f)                                        \
    (offsetof(encore_claims_facts_t, data) + (f)->used)

/*
 * Fill facts from claims.  Returns 0, or -1 when exp, nbf or iat is not a
 * valid NumericDate (such a token never passes encore_claims_check_time()).
 */
int encore_claims_facts_init(encore_claims_facts_t *facts,
    const json_t *claims);

/*
 * The same facts as encore_claims_facts_init() gives for the same claims,
 * from a flat scan (encore_flat.h) instead of jansson.  Returns -1, and the
 * caller parses the claims with jansson, whenever exp, nbf or iat is not a
 * plain integer within range.
 */
int encore_claims_facts_flat(encore_claims_facts_t *facts,
    const encore_flat_t *flat);

/* encore_claims_check_time(), on facts: the same verdicts and errors */
int encore_claims_check_time_facts(const encore_claims_facts_t *facts,
    const encore_claims_policy_t *policy, const char **error);

/*
 * encore_claims_check_identity(), on facts: the same verdicts and errors,
 * or ENCORE_CLAIMS_EUNKNOWN when a check needs a fact that is UNKNOWN or a
 * required claim other than sub, role and name.
 */
int encore_claims_check_identity_facts(const encore_claims_facts_t *facts,
    const encore_claims_policy_t *policy, const char **error);

/*
 * The kind of claim name ("sub", "role" or "name"; UNKNOWN for any other)
 * and, when TEXT, its value as a claim variable shows it; *text points
 * into facts.
 */
int encore_claims_facts_text(const encore_claims_facts_t *facts,
    const char *name, const char **text, size_t *len);


#endif /* ENCORE_CLAIMS_H */
