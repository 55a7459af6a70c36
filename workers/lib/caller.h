/*
 * caller: who is calling, as the edge says.
 *
 * The edge verifies the access token and forwards X-Encore-User-Id,
 * -Role and -Name (and drops any a client sent).  The runtime parses them
 * once per request, before the route's own checks: an id that is not a
 * UUID or a role that is not user/moderator/admin cannot have come from a
 * token we issued, so such a request is refused with 401 whatever the
 * route, rather than half-trusted by each handler.
 */

#ifndef ENC_CALLER_H
#define ENC_CALLER_H

typedef enum {
    ENC_ROLE_ANONYMOUS = 0,
    ENC_ROLE_USER,
    ENC_ROLE_MODERATOR,
    ENC_ROLE_ADMIN
} enc_role_t;

typedef struct {
    const char  *id;        /* canonical UUID, NULL when anonymous */
    const char  *name;      /* username, "" when the edge sent none */
    enc_role_t   role;
} enc_caller_t;

/* Fills c from the three header values (each may be NULL or empty).
   0: c is the caller (anonymous when no id); -1: the values are malformed
   (id not a UUID, unknown role, a role without an id or the reverse). */
int  enc_caller_parse(const char *id, const char *role, const char *name,
                      enc_caller_t *c);
/* the role's rank from its name; ENC_ROLE_ANONYMOUS for unknown or NULL */
enc_role_t enc_role_parse(const char *role);
/* 1 if the caller is signed in with at least min */
int  enc_caller_is(const enc_caller_t *c, enc_role_t min);
/* 1 if the caller is owner_id, or at least min (moderators editing what
   others wrote) */
int  enc_caller_owns_or_is(const enc_caller_t *c, const char *owner_id,
                           enc_role_t min);

#endif /* ENC_CALLER_H */
