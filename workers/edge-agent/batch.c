/*
 * batch.c — events in, the edge's request body out.  No I/O: unit tested
 * in tests/unit/edge-agent.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "json.h"
#include "uuid.h"


static const char *const  causes[] = {
    "logout", "refresh_reuse", "password_changed", "disabled",
    "role_changed", "deleted", NULL
};


static int
cause_known(const char *s)
{
    const char *const  *c;

    for (c = causes; *c != NULL; c++) {
        if (strcmp(*c, s) == 0) {
            return 1;
        }
    }
    return 0;
}


long long
agent_rfc3339_ms(const char *s)
{
    int        ms = 0, n = 0, i;
    time_t     t;
    struct tm  tm;

    if (s == NULL) {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6
        || n != 19)
    {
        return -1;
    }
    s += n;
    if (*s == '.') {
        for (i = 0, s++; *s >= '0' && *s <= '9'; s++, i++) {
            if (i < 3) {
                ms = ms * 10 + (*s - '0');
            }
        }
        for (; i < 3; i++) {
            ms *= 10;
        }
    }
    if (strcmp(s, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    if (t == (time_t) -1) {
        return -1;
    }
    return (long long) t * 1000 + ms;
}


json_t *
agent_entry_parse(const char *value, size_t len, long long now_s,
    long long *at_ms)
{
    json_t        *v, *e, *nb;
    const char    *sub, *sid, *cause;
    json_error_t   jerr;

    *at_ms = 0;
    if (value == NULL || len == 0) {
        return NULL;
    }
    v = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        return NULL;
    }

    e = NULL;
    sub = json_string_value(json_object_get(v, "sub"));
    sid = json_string_value(json_object_get(v, "sid"));
    cause = json_string_value(json_object_get(v, "cause"));
    nb = json_object_get(v, "not_before");

    /* the edge's rules (encore_revoke_parse_item()): a UUID of either
       case, a cause it knows, a not_before in its bounds */
    if (!json_is_object(v) || sub == NULL || !enc_uuid_valid(sub)
        || (json_object_get(v, "sid") != NULL
            && (sid == NULL || !enc_uuid_valid(sid)))
        || cause == NULL || !cause_known(cause)
        || !json_is_integer(nb) || json_integer_value(nb) < 0
        || json_integer_value(nb) > AGENT_NOT_BEFORE_MAX
        || json_integer_value(nb) > now_s + AGENT_NOT_BEFORE_AHEAD)
    {
        goto done;
    }

    e = json_pack("{s:s, s:I, s:s}", "sub", sub,
                  "not_before", json_integer_value(nb), "cause", cause);
    if (e != NULL && sid != NULL
        && json_object_set_new(e, "sid", json_string(sid)) != 0)
    {
        json_decref(e);
        e = NULL;
    }
    if (e != NULL) {
        *at_ms = agent_rfc3339_ms(json_string_value(json_object_get(v, "at")));
        if (*at_ms < 0) {
            *at_ms = 0;
        }
    }

done:
    json_decref(v);
    return e;
}


char *
agent_body(json_t *entries, int replayed, long long through_ms, size_t *len)
{
    char    *s;
    json_t  *b;

    b = json_pack("{s:O, s:b, s:I}", "revocations", entries,
                  "replayed", replayed, "through", (json_int_t) through_ms);
    if (b == NULL) {
        return NULL;
    }
    s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (s != NULL) {
        *len = strlen(s);
    }
    return s;
}


long
agent_backoff_next(long prev_ms)
{
    if (prev_ms <= 0) {
        return 100;
    }
    return prev_ms >= 1000 ? 2000 : prev_ms * 2;
}
