/*
 * revoke.c — what invalidates access tokens, published for the edge.
 *
 * An access token lives access_ttl (15 minutes) and the edge verifies it
 * without asking anyone, so a logout, a password change, a disabled or
 * deleted account or a role change would leave it working until it
 * expires.  Each of them therefore publishes one event on
 * encore.auth.revocations through the outbox, in the transaction of the
 * change itself: the edge's agent (workers/edge-agent) hands it to every
 * nginx, which refuses the tokens it names (the jwt module's revocation
 * zone).
 *
 * "Issued before" is decided on iat, the worker's clock in seconds.
 * users.tokens_not_before remembers a subject-wide revocation so that
 * tokens issued afterwards, in the same second too, carry an iat the
 * edge does not refuse (auth_token_iat).  The event never carries a
 * token, a hash or an email: a subject, a session id, a time, a cause.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "log.h"
#include "outbox.h"
#include "sql.h"


static const char *const  causes[] = {
    AUTH_REVOKE_LOGOUT, AUTH_REVOKE_REFRESH_REUSE,
    AUTH_REVOKE_PASSWORD_CHANGED, AUTH_REVOKE_DISABLED,
    AUTH_REVOKE_ROLE_CHANGED, AUTH_REVOKE_DELETED, NULL
};


long long
auth_now_s(void)
{
    return (long long) time(NULL);
}


static long long
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


long long
auth_token_iat(long long now, long long not_before)
{
    return now > not_before ? now : not_before;
}


static int
cause_known(const char *cause)
{
    const char *const  *c;

    for (c = causes; *c != NULL; c++) {
        if (strcmp(*c, cause) == 0) {
            return 1;
        }
    }
    return 0;
}


json_t *
auth_revocation_json(const char *sub, const char *sid, long long not_before,
    const char *cause, long long at_ms)
{
    char       at[64];
    time_t     secs;
    json_t    *j;
    struct tm  tm;

    if (sub == NULL || !enc_uuid_valid(sub)
        || (sid != NULL && !enc_uuid_valid(sid))
        || cause == NULL || !cause_known(cause)
        || not_before < 0 || at_ms < 0)
    {
        return NULL;
    }

    secs = (time_t) (at_ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL) {
        return NULL;
    }
    snprintf(at, sizeof(at), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int) (at_ms % 1000));

    j = json_pack("{s:s, s:I, s:s, s:s}", "sub", sub,
                  "not_before", (json_int_t) not_before, "cause", cause,
                  "at", at);
    if (j != NULL && sid != NULL
        && json_object_set_new(j, "sid", json_string(sid)) != 0)
    {
        json_decref(j);
        return NULL;
    }
    return j;
}


int
auth_revoke_event(enc_pg_t *pg, const char *user_id, const char *sid,
    long long not_before, const char *cause)
{
    int      rc;
    char     subject[16 + AUTH_UUID_LEN];
    json_t  *data;

    data = auth_revocation_json(user_id, sid, not_before, cause, now_ms());
    if (data == NULL) {
        enc_log_error("revocation event for user %s: bad argument or out of"
                      " memory", user_id);
        return -1;
    }

    snprintf(subject, sizeof(subject), "users/%s", user_id);
    rc = enc_outbox_add(pg, AUTH_TOPIC_REVOCATIONS, AUTH_REVOKE_TYPE,
                        user_id, subject, data);
    json_decref(data);

    if (rc != 0) {
        enc_log_error("outbox insert for %s failed", AUTH_REVOKE_TYPE);
    }
    return rc;
}


/* runs stmt ($1 user, $2 now) and reads the one value it returns into
   *nb: 1, 0 when the user is gone, -1 on a database error */
static int
not_before(enc_pg_t *pg, const char *stmt, const char *user_id,
    long long *nb)
{
    int          rc;
    char         now[24];
    PGresult    *res;
    const char  *params[2];

    snprintf(now, sizeof(now), "%lld", auth_now_s());
    params[0] = user_id;
    params[1] = now;

    res = enc_pg_exec(pg, stmt, 2, params);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res != NULL) {
            enc_log_error("%s failed: %s", stmt, enc_pg_sqlstate(res));
        }
        PQclear(res);
        return -1;
    }

    rc = PQntuples(res) == 1;
    if (rc) {
        *nb = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return rc;
}


int
auth_revoke_user(enc_pg_t *pg, const char *user_id, const char *cause)
{
    int        rc;
    long long  nb;

    rc = not_before(pg, AUTH_SQL_USER_NOT_BEFORE_BUMP, user_id, &nb);
    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        nb = auth_now_s() + 1;     /* gone meanwhile: refuse what it had */
    }
    return auth_revoke_event(pg, user_id, NULL, nb, cause);
}


int
auth_revoke_session(enc_pg_t *pg, const char *user_id, const char *sid,
    const char *cause)
{
    int        rc;
    long long  nb;

    rc = not_before(pg, AUTH_SQL_USER_NOT_BEFORE_SESSION, user_id, &nb);
    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        nb = auth_now_s() + 1;
    }
    return auth_revoke_event(pg, user_id, sid, nb, cause);
}
