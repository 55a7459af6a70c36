/*
 * Encore: JWT claims checks (RFC 7519 4.1, RFC 8725 3.8-3.10), with an
 * injectable clock so that tests can pin "now".
 */

#ifndef ENCORE_CLAIMS_H
#define ENCORE_CLAIMS_H


#include <stddef.h>
#include <time.h>
#include <jansson.h>


/* exp and nbf beyond year 9999 are refused as out of range */
#define ENCORE_CLAIMS_TIME_MAX  253402300799LL


typedef enum {
    ENCORE_CLAIMS_OK = 0,
    ENCORE_CLAIMS_EINVALID,    /* 401: malformed claim, wrong type, range */
    ENCORE_CLAIMS_EEXPIRED,    /* 401 */
    ENCORE_CLAIMS_ENOTYET,     /* 401: nbf in the future */
    ENCORE_CLAIMS_EISSUER,     /* 401 */
    ENCORE_CLAIMS_EAUDIENCE,   /* 401 */
    ENCORE_CLAIMS_EFORBIDDEN   /* 403: a required claim is missing or has a
                                  value outside the location's set */
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
    const char                *issuer;      /* NULL: not checked */
    const char                *audience;    /* NULL: not checked */
    const encore_claim_req_t  *reqs;
    size_t                     nreqs;
} encore_claims_policy_t;


/*
 * Check exp and nbf: numbers within [0, ENCORE_CLAIMS_TIME_MAX]; expired
 * when now >= exp + leeway, not yet valid when now < nbf - leeway.
 * *exp_out receives exp (0 when absent).
 */
int encore_claims_check_time(const json_t *claims,
    const encore_claims_policy_t *policy, long long *exp_out,
    const char **error);

/*
 * iss (exact string), aud (a string, or an array of strings holding the
 * audience) and the required claims: a string claim must equal one of the
 * values; an array claim must hold one of them; numbers and booleans are
 * compared by their JSON text.
 */
int encore_claims_check_identity(const json_t *claims,
    const encore_claims_policy_t *policy, const char **error);

/* both of the above, time first */
int encore_claims_check(const json_t *claims,
    const encore_claims_policy_t *policy, long long *exp_out,
    const char **error);


#endif /* ENCORE_CLAIMS_H */
