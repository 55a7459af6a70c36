/*
 * auth.h — the auth worker's internal interfaces, one section per file.
 *
 * Ownership rules that hold everywhere unless a function says otherwise:
 * strings passed in are borrowed for the duration of the call; json_t
 * values returned are new references the caller must json_decref; char *
 * returned are malloc'd and the caller frees them.  Functions return 0 on
 * success and -1 on failure.
 *
 * Pure units (b64url, password, keys, jwt_sign, validate, cookies and the
 * token helpers in tokens.c) never touch PostgreSQL, so tests/unit/auth
 * exercises them without a database.
 */

#ifndef ENCORE_AUTH_H
#define ENCORE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "config.h"
#include "http.h"
#include "json.h"
#include "pg.h"
#include "worker.h"
#include "b64url.h"
#include "kit.h"
#include "uuid.h"


/* ---- limits (CONTRACT.md, Auth) ------------------------------------------ */

#define AUTH_USERNAME_MIN        3
#define AUTH_USERNAME_MAX        32
#define AUTH_PASSWORD_MIN        8        /* code points */
#define AUTH_PASSWORD_MAX        128      /* code points */
#define AUTH_EMAIL_MAX           254      /* RFC 5321 path limit */
#define AUTH_EMAIL_LOCAL_MAX     64
#define AUTH_BIO_MAX             2000     /* code points */
#define AUTH_UUID_LEN            36

#define AUTH_TOPIC_USERS         "encore.auth.users"
#define AUTH_TOPIC_REVOCATIONS   "encore.auth.revocations"


/* ---- password.c: Argon2id ------------------------------------------------ */

/* OWASP Password Storage Cheat Sheet, Argon2id minimum: m=19 MiB, t=2, p=1.
   The config keys take these as their lower bounds. */
#define AUTH_ARGON2_M_MIN        19456u   /* KiB */
#define AUTH_ARGON2_T_MIN        2u
#define AUTH_ARGON2_P_MIN        1u
#define AUTH_ARGON2_SALT_LEN     16u
#define AUTH_ARGON2_HASH_LEN     32u
#define AUTH_ARGON2_ENCODED_MAX  160u     /* "$argon2id$v=19$m=..,t=..,p=..$salt$hash" */

typedef struct {
    uint32_t  m_kib;
    uint32_t  t_cost;
    uint32_t  parallelism;
} auth_argon2_params_t;

/* Hashes pw[0..len) with a fresh random salt into out (PHC string format,
   NUL-terminated).  -1 on bad parameters, RNG or argon2 failure. */
int auth_password_hash(const auth_argon2_params_t *p, const char *pw,
                       size_t len, char *out, size_t cap);
/* 1 if pw matches the encoded hash, 0 if not, -1 if the hash is malformed
   or argon2 failed (callers treat -1 as "no match" plus a log line). */
int auth_password_verify(const char *encoded, const char *pw, size_t len);
/* 1 if encoded was made with parameters weaker than p (or is not argon2id),
   so a successful login should store a fresh hash. */
int auth_password_needs_rehash(const auth_argon2_params_t *p,
                               const char *encoded);


/* ---- keys.c: ES256 signing keys, JWK thumbprints, JWKS -------------------- */

#define AUTH_KID_LEN  43                  /* b64url(SHA-256) */

typedef struct {
    char       kid[AUTH_KID_LEN + 1];
    EVP_PKEY  *pkey;                      /* owned by the keyring */
    char       created[24];               /* µs since the epoch, from the file name */
} auth_key_t;

typedef struct {
    auth_key_t  *keys;                    /* newest first; keys[0] signs */
    size_t       n;
} auth_keyring_t;

/* RFC 7638 thumbprint of a public JWK (EC, RSA, OKP or oct members),
   base64url, into out[AUTH_KID_LEN + 1]. */
int      auth_jwk_thumbprint(json_t *jwk, char *out, size_t cap);
/* {"kty":"EC","crv":"P-256","x":..,"y":..} of a P-256 key; NULL on error. */
json_t  *auth_key_public_jwk(EVP_PKEY *pkey);
/* A fresh P-256 key; caller frees with EVP_PKEY_free. */
EVP_PKEY *auth_key_generate(void);
/*
 * Loads every "<created>-<kid>.pem" of dir (creating dir 0700 if missing)
 * into a new keyring.  When dir holds no key and create is set, a first key
 * is generated and stored.  A file whose name does not match its key's
 * thumbprint is an error, not skipped: a misnamed key is a sign of
 * tampering.  Serialised across processes by flock on dir/.lock.  The
 * caller frees *out with auth_keyring_free.  err receives a message.
 */
int      auth_keys_load(const char *dir, int create, auth_keyring_t **out,
                        char *err, size_t errlen);
/* Generates and stores a new key in dir (it becomes the signer at the next
   load); kid_out receives its kid.  Under the same lock. */
int      auth_keys_add(const char *dir, char *kid_out, size_t kid_cap,
                       char *err, size_t errlen);
void     auth_keyring_free(auth_keyring_t *kr);
/* {"keys":[{kty,crv,x,y,kid,use,alg}...]}: public halves only. */
json_t  *auth_keyring_jwks(const auth_keyring_t *kr);
/* Writes the keyring's JWKS to path atomically (temp file in the same
   directory, fsync, rename), mode 0644, creating the directory (0755). */
int      auth_jwks_write(const char *path, const auth_keyring_t *kr,
                         char *err, size_t errlen);


/* ---- jwt_sign.c: compact JWS, ES256 -------------------------------------- */

typedef struct {
    const char  *iss;
    const char  *aud;
    const char  *sub;
    const char  *role;
    const char  *name;
    const char  *jti;
    const char  *sid;                     /* refresh family; NULL = none */
    long long    iat;
    long long    exp;
} auth_claims_t;

/* Converts a DER ECDSA-Sig-Value into the 64-byte JOSE form r || s
   (RFC 7518 §3.4), each left-padded to 32 bytes. */
int   auth_es256_der_to_jose(const unsigned char *der, size_t len,
                             unsigned char out[64]);
/* Signs the claims with key (header alg ES256, typ JWT, kid).  Returns the
   compact serialisation, malloc'd; NULL on failure. */
char *auth_jwt_sign(const auth_key_t *key, const auth_claims_t *c);


/* ---- validate.c: request bodies and parameters --------------------------- */

int   auth_username_valid(const char *s);           /* 1/0: [a-z0-9_]{3,32} */
int   auth_email_valid(const char *s, size_t len);  /* 1/0: sanity, not RFC 5322 */
int   auth_role_valid(const char *s);               /* 1/0: user|moderator|admin */

/* Fields point into the request body (borrowed, valid while it lives). */
typedef struct {
    const char  *username;
    const char  *email;
    const char  *password;
    size_t       password_len;
} auth_register_in_t;

typedef struct {
    const char  *login;
    const char  *password;
    size_t       password_len;
} auth_login_in_t;

typedef struct {
    const char  *bio;                     /* NULL = unchanged */
    const char  *email;
    const char  *password;
    size_t       password_len;
    const char  *current_password;
    size_t       current_password_len;
} auth_patch_me_in_t;

typedef struct {
    const char  *role;                    /* NULL = unchanged */
    int          disabled;                /* -1 = unchanged, else 0/1 */
} auth_patch_admin_in_t;

/* Each returns 0 when valid, -1 after adding errors to v.  body may be NULL
   (treated as an empty object). */
int auth_validate_register(json_t *body, auth_register_in_t *out,
                           enc_validation_t *v);
int auth_validate_login(json_t *body, auth_login_in_t *out,
                        enc_validation_t *v);
int auth_validate_patch_me(json_t *body, auth_patch_me_in_t *out,
                           enc_validation_t *v);
int auth_validate_patch_admin(json_t *body, auth_patch_admin_in_t *out,
                              enc_validation_t *v);


/* ---- cookies.c ----------------------------------------------------------- */

#define AUTH_COOKIE_ACCESS        "encore_access"
#define AUTH_COOKIE_REFRESH       "encore_refresh"
#define AUTH_COOKIE_ACCESS_PATH   "/"
#define AUTH_COOKIE_REFRESH_PATH  "/api/v1/auth"
/* the edge's verdict on the request's Origin ("1": one of its configured
   origins), set by conf/proxy.conf; a client's copy never passes the edge */
#define AUTH_ORIGIN_ALLOWED_HEADER  "X-Encore-Origin-Allowed"

/* "name=value; Path=..; Max-Age=..; HttpOnly; SameSite=Strict[; Secure]".
   value must consist of RFC 6265 cookie-octets.  max_age < 0 omits
   Max-Age (session cookie).  -1 if it does not fit or value is unsafe. */
int auth_cookie_build(char *buf, size_t cap, const char *name,
                      const char *value, const char *path, long max_age,
                      int secure);
/* A Set-Cookie value that deletes the cookie (empty, Max-Age=0, Expires in
   1970) with the same attributes it was set with. */
int auth_cookie_clear(char *buf, size_t cap, const char *name,
                      const char *path, int secure);
/* Adds the two Set-Cookie headers that delete the session's cookies
   (encore_access and encore_refresh, each with its own Path) to w. */
void auth_cookies_clear_session(enc_resp_t *w, int secure);
/* 1 if the X-Forwarded-Proto value (may be NULL) says https. */
int auth_forwarded_https(const char *xfp);


/* ---- users.c: the user row ----------------------------------------------- */

/* A user as read from the database; the strings point into res, which the
   struct owns (auth_user_clear releases it). */
typedef struct {
    PGresult    *res;
    const char  *id;
    const char  *username;
    const char  *email;
    const char  *role;
    const char  *bio;
    const char  *password_hash;
    const char  *created_at;
    int          disabled;
    long long    not_before;              /* tokens_not_before, seconds */
} auth_user_t;

typedef enum {
    AUTH_USER_PUBLIC = 0,                 /* {id, username, role, bio, created_at} */
    AUTH_USER_OWNER,                      /* + email */
    AUTH_USER_ADMIN                       /* + email, disabled */
} auth_user_view_t;

/* the user entity of the kit (users.c), for lists */
extern const enc_entity_t  auth_user;

/* 1 found (u filled), 0 not found, -1 DB error.  u must be cleared by the
   caller when 1 is returned (it is left empty otherwise). */
int     auth_user_by_id(enc_pg_t *pg, const char *id, auth_user_t *u);
int     auth_user_by_login(enc_pg_t *pg, const char *login, auth_user_t *u);
/* Fills u from row `row` of res, taking ownership of res. */
void    auth_user_from_result(PGresult *res, int row, auth_user_t *u);
void    auth_user_clear(auth_user_t *u);
json_t *auth_user_json(const auth_user_t *u, auth_user_view_t view);
/* Adds the user event to the outbox in the caller's transaction. */
int     auth_user_event(enc_pg_t *pg, const char *type, const auth_user_t *u);


/* ---- tokens.c: refresh tokens -------------------------------------------- */

#define AUTH_REFRESH_BYTES      32        /* 256 bits */
#define AUTH_REFRESH_TOKEN_LEN  43        /* b64url of 32 bytes */
#define AUTH_SHA256_HEX_LEN     64

/* A fresh random token into out[AUTH_REFRESH_TOKEN_LEN + 1]. */
int auth_refresh_token_new(char *out, size_t cap);
/* 1 if s has the exact shape of a token we issue. */
int auth_refresh_token_wellformed(const char *s);
/* Lower-case hex SHA-256 of the token text into out[65].  Only this hash
   reaches the database, so a leaked table cannot be replayed. */
int auth_refresh_token_hash(const char *token, char *out, size_t cap);

typedef enum {
    AUTH_ROTATE_OK = 0,
    AUTH_ROTATE_INVALID,                  /* unknown, expired or revoked */
    AUTH_ROTATE_REUSED,                   /* already used: family revoked */
    AUTH_ROTATE_DISABLED,                 /* the owner is disabled */
    AUTH_ROTATE_ERROR                     /* database trouble */
} auth_rotate_rc_t;

/* Issues a token for user_id into token[AUTH_REFRESH_TOKEN_LEN + 1]:
   a new family when family is NULL, else a child of parent; the family
   id goes into family_out[AUTH_UUID_LEN + 1] (may be NULL).  Runs on the
   caller's connection, inside its transaction if one is open. */
int auth_tokens_issue(enc_pg_t *pg, const char *user_id, const char *family,
                      const char *parent, long ttl, char *token, size_t cap,
                      char *family_out);
/* One transaction: validates token, marks it used and issues its
   successor into new_token; on OK, u holds the owner (caller clears it)
   and sid the family.  A reused token revokes its family and publishes
   the session's revocation in the same transaction. */
auth_rotate_rc_t auth_tokens_rotate(enc_pg_t *pg, const char *token,
                                    long ttl, auth_user_t *u,
                                    char *new_token, size_t cap,
                                    char sid[AUTH_UUID_LEN + 1]);
/* Revokes the family of token (logout) and, when it was live, publishes
   the session's revocation in the same transaction.  Unknown tokens are
   not an error. */
int auth_tokens_revoke(enc_pg_t *pg, const char *token);
/* Revokes every live token of the user, in the caller's transaction. */
int auth_tokens_revoke_user(enc_pg_t *pg, const char *user_id);
/* Deletes the user's expired tokens; best effort. */
void auth_tokens_purge_user(enc_pg_t *pg, const char *user_id);


/* ---- revoke.c: revocation events for the edge ---------------------------- */

/* The causes of REVOKE-SPEC.md: a session's (sid) or every session of a
   subject. */
#define AUTH_REVOKE_LOGOUT            "logout"
#define AUTH_REVOKE_REFRESH_REUSE     "refresh_reuse"
#define AUTH_REVOKE_PASSWORD_CHANGED  "password_changed"
#define AUTH_REVOKE_DISABLED          "disabled"
#define AUTH_REVOKE_ROLE_CHANGED      "role_changed"
#define AUTH_REVOKE_DELETED           "deleted"

#define AUTH_REVOKE_TYPE  "encore.user.tokens_revoked"

/* The iat of a token issued now to a user whose tokens_not_before is nb:
   max(now, nb), so a token issued right after a revocation is not
   refused while every earlier one is. */
long long auth_token_iat(long long now, long long not_before);
/* The event's value: {sub, [sid,] not_before, cause, at}; at_ms is the
   time of the event in ms since the epoch.  NULL on a bad argument
   (not a UUID, unknown cause) or out of memory. */
json_t   *auth_revocation_json(const char *sub, const char *sid,
                               long long not_before, const char *cause,
                               long long at_ms);
/* In the caller's transaction: every token of user_id issued so far is
   refused (tokens_not_before raised), and the event goes to the outbox.
   -1 on a database error (nothing is left half done: roll back). */
int       auth_revoke_user(enc_pg_t *pg, const char *user_id,
                           const char *cause);
/* The same for one session (refresh family sid) of user_id. */
int       auth_revoke_session(enc_pg_t *pg, const char *user_id,
                              const char *sid, const char *cause);
/* The event alone, for a deleted user (no row left to raise); not_before
   as the deleted row had it. */
int       auth_revoke_event(enc_pg_t *pg, const char *user_id,
                            const char *sid, long long not_before,
                            const char *cause);
/* the worker's clock, seconds and milliseconds since the epoch */
long long auth_now_s(void);


/* ---- app.c: configuration, shared state, response helpers ---------------- */

typedef struct {
    const enc_config_t    *conf;          /* borrowed; outlives the app */
    auth_keyring_t        *keys;          /* owned */
    auth_argon2_params_t   argon2;
    char                   dummy_hash[AUTH_ARGON2_ENCODED_MAX];
    const char            *issuer;        /* borrowed from conf */
    const char            *audience;
    long                   access_ttl;    /* seconds */
    long                   refresh_ttl;
    int                    cookie_secure; /* always add Secure */
} auth_app_t;

extern const enc_conf_key_t auth_conf_keys[];

void auth_argon2_from_config(const enc_config_t *c, auth_argon2_params_t *p);
/* Builds the app: loads (or creates) the keys, writes the JWKS, prepares
   the dummy hash.  Caller frees with auth_app_free. */
int  auth_app_new(const enc_config_t *c, auth_app_t **out);
void auth_app_free(auth_app_t *app);

/* Response helpers: each answers the request completely. */
void auth_resp_unauthorized(enc_resp_t *w, const char *detail);
/* The caller's user id from the edge, or NULL after answering 401. */
const char *auth_require_user(enc_req_t *r, enc_resp_t *w);
/* Loads the caller's own row (id from auth_require_user) into u: 1, and the
   caller clears u; else 0 after answering (401 when the account was deleted
   or disabled after its token was issued, 503/500 on a DB error). */
int         auth_load_caller(enc_pg_t *pg, enc_resp_t *w, const char *id,
                             auth_user_t *u);
/* Whether the caller (id) is an enabled admin now, in the database, not
   only in its token (which outlives a demotion by up to access_ttl): 1, else
   0 after answering 403 (or 503/500 on a DB error). */
int         auth_caller_is_admin(enc_pg_t *pg, enc_resp_t *w, const char *id);
/* As above, and 403 unless the caller's role is at least min. */
const char *auth_require_role(enc_req_t *r, enc_resp_t *w, enc_role_t min);
/* 1 if the response cookies should carry Secure. */
int         auth_cookies_secure(const auth_app_t *app, enc_req_t *r);


/* ---- handlers ------------------------------------------------------------ */

/* session.c */
void auth_h_register(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_login(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_refresh(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_logout(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_me(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_jwks(enc_req_t *r, enc_resp_t *w, void *app);

/* profile.c */
void auth_h_user_get(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_me_patch(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_me_delete(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_users_list(enc_req_t *r, enc_resp_t *w, void *app);
void auth_h_user_admin_patch(enc_req_t *r, enc_resp_t *w, void *app);


/* ---- sql.c: prepared statements ------------------------------------------ */

extern const enc_pg_stmt_t auth_statements[];


/* ---- cli.c: encore-auth <command> ---------------------------------------- */

extern const enc_worker_cmd_t auth_commands[];

/* argv[0] is one of auth_commands (checked by enc_worker_main) */
int auth_command(const enc_config_t *c, int argc, char **argv);

#endif /* ENCORE_AUTH_H */
