/*
 * caller.c — the identity the edge forwards, parsed once.
 */

#include <stddef.h>
#include <strings.h>
#include <string.h>

#include "caller.h"
#include "uuid.h"


enc_role_t
enc_role_parse(const char *role)
{
    if (role == NULL) {
        return ENC_ROLE_ANONYMOUS;
    }
    if (strcmp(role, "user") == 0) {
        return ENC_ROLE_USER;
    }
    if (strcmp(role, "moderator") == 0) {
        return ENC_ROLE_MODERATOR;
    }
    if (strcmp(role, "admin") == 0) {
        return ENC_ROLE_ADMIN;
    }
    return ENC_ROLE_ANONYMOUS;
}


int
enc_caller_parse(const char *id, const char *role, const char *name,
    enc_caller_t *c)
{
    c->id = NULL;
    c->name = "";
    c->role = ENC_ROLE_ANONYMOUS;

    if (id != NULL && id[0] == '\0') {
        id = NULL;
    }
    if (role != NULL && role[0] == '\0') {
        role = NULL;
    }

    if (id == NULL && role == NULL) {
        return 0;
    }

    if (id == NULL || role == NULL || !enc_uuid_valid(id)
        || enc_role_parse(role) == ENC_ROLE_ANONYMOUS)
    {
        return -1;
    }

    c->id = id;
    c->name = name != NULL ? name : "";
    c->role = enc_role_parse(role);
    return 0;
}


int
enc_caller_is(const enc_caller_t *c, enc_role_t min)
{
    return c->id != NULL && c->role >= min && min > ENC_ROLE_ANONYMOUS;
}


int
enc_caller_owns_or_is(const enc_caller_t *c, const char *owner_id,
    enc_role_t min)
{
    if (c->id == NULL) {
        return 0;
    }

    return (owner_id != NULL && strcasecmp(c->id, owner_id) == 0)
           || enc_caller_is(c, min);
}
