/*
 * validate.c — request bodies and parameters of the auth routes.
 *
 * Pure functions over jansson values: no database, no request object, so
 * tests/unit/auth/test_validate.c drives them with literal JSON.  Type and
 * length checks go through libencore's getters (they count code points and
 * know the 422 error shape); the rules specific to accounts live here.
 */

#include <ctype.h>
#include <string.h>

#include "auth.h"


int
auth_username_valid(const char *s)
{
    size_t  i, len;

    len = strlen(s);
    if (len < AUTH_USERNAME_MIN || len > AUTH_USERNAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * A sanity check, not RFC 5322: one '@', a non-empty local part of at most
 * 64 bytes, a domain of dot-separated non-empty labels (at least two) made
 * of letters, digits, '-' (not at a label's edge) or non-ASCII bytes for
 * IDNs, and no whitespace, control characters or quotes anywhere.  Mail
 * that would need quoting is not worth the parsing risk.
 */
int
auth_email_valid(const char *s, size_t len)
{
    size_t               i, at, labels, label_len;
    const unsigned char  *u;

    u = (const unsigned char *) s;

    if (len < 3 || len > AUTH_EMAIL_MAX) {
        return 0;
    }

    at = len;
    for (i = 0; i < len; i++) {
        if (u[i] <= 0x20 || u[i] == 0x7f || u[i] == '"' || u[i] == '\\'
            || u[i] == '<' || u[i] == '>' || u[i] == ',' || u[i] == ';'
            || u[i] == '(' || u[i] == ')' || u[i] == '[' || u[i] == ']'
            || u[i] == ':')
        {
            return 0;
        }

        if (u[i] == '@') {
            if (at != len) {
                return 0;                   /* a second '@' */
            }
            at = i;
        }
    }

    if (at == len || at == 0 || at > AUTH_EMAIL_LOCAL_MAX || at == len - 1) {
        return 0;
    }

    if (u[0] == '.' || u[at - 1] == '.' || memmem(s, at, "..", 2) != NULL) {
        return 0;
    }

    labels = 0;
    label_len = 0;

    for (i = at + 1; i <= len; i++) {
        if (i == len || u[i] == '.') {
            if (label_len == 0 || label_len > 63
                || u[i - label_len] == '-' || u[i - 1] == '-')
            {
                return 0;
            }
            labels++;
            label_len = 0;
            continue;
        }

        if (!(isalnum(u[i]) || u[i] == '-' || u[i] >= 0x80)) {
            return 0;
        }
        label_len++;
    }

    return labels >= 2;
}




int
auth_role_valid(const char *s)
{
    return s != NULL
           && (strcmp(s, "user") == 0 || strcmp(s, "moderator") == 0
               || strcmp(s, "admin") == 0);
}


/*
 * The bodies' field tables (bind.h).  Passwords are limited in characters
 * by CONTRACT.md; their byte length is what Argon2 hashes, so the slots
 * carry both.  No format rule for a login: one that cannot exist simply
 * fails to authenticate, and refusing it early would answer faster than a
 * real attempt.
 */

#define SLOT(s, m)  ENC_SLOT(s, m)

typedef struct {
    enc_value_t  username, email, password, login, current_password, bio;
    enc_value_t  role, disabled;
} auth_body_t;

static const enc_field_t  register_fields[] = {
    { .name = "username", .type = ENC_STRING, .flags = ENC_REQUIRED,
      .min = AUTH_USERNAME_MIN, .max = AUTH_USERNAME_MAX,
      .slot = SLOT(auth_body_t, username) },
    { .name = "email", .type = ENC_STRING, .flags = ENC_REQUIRED,
      .min = 3, .max = AUTH_EMAIL_MAX, .slot = SLOT(auth_body_t, email) },
    { .name = "password", .type = ENC_STRING, .flags = ENC_REQUIRED,
      .min = AUTH_PASSWORD_MIN, .max = AUTH_PASSWORD_MAX,
      .slot = SLOT(auth_body_t, password) },
    ENC_FIELD_END
};

static const enc_field_t  login_fields[] = {
    { .name = "login", .type = ENC_STRING, .flags = ENC_REQUIRED,
      .min = 1, .max = AUTH_EMAIL_MAX, .slot = SLOT(auth_body_t, login) },
    { .name = "password", .type = ENC_STRING, .flags = ENC_REQUIRED,
      .min = 1, .max = AUTH_PASSWORD_MAX,
      .slot = SLOT(auth_body_t, password) },
    ENC_FIELD_END
};

static const enc_field_t  patch_me_fields[] = {
    { .name = "bio", .type = ENC_STRING, .flags = ENC_IN,
      .max = AUTH_BIO_MAX, .slot = SLOT(auth_body_t, bio) },
    { .name = "email", .type = ENC_STRING, .flags = ENC_IN,
      .min = 3, .max = AUTH_EMAIL_MAX, .slot = SLOT(auth_body_t, email) },
    { .name = "password", .type = ENC_STRING, .flags = ENC_IN,
      .min = AUTH_PASSWORD_MIN, .max = AUTH_PASSWORD_MAX,
      .slot = SLOT(auth_body_t, password) },
    { .name = "current_password", .type = ENC_STRING, .flags = ENC_IN,
      .min = 1, .max = AUTH_PASSWORD_MAX,
      .slot = SLOT(auth_body_t, current_password) },
    ENC_FIELD_END
};

static const char *const  roles[] = { "user", "moderator", "admin", NULL };

static const enc_field_t  patch_admin_fields[] = {
    { .name = "role", .type = ENC_ENUM, .flags = ENC_IN, .values = roles,
      .slot = SLOT(auth_body_t, role) },
    { .name = "disabled", .type = ENC_BOOL, .flags = ENC_IN,
      .slot = SLOT(auth_body_t, disabled) },
    ENC_FIELD_END
};


/* Binds body against fields into b.  None of these tables normalises a
   string (no UUID, no ENC_LOWER), so bind stores body's own strings and
   b's pointers stay valid with body: the bound object is released at
   once. */
static int
bind_body(json_t *body, const enc_field_t *fields, unsigned mode, auth_body_t *b,
    enc_validation_t *v)
{
    int      rc;
    json_t  *out = NULL;

    memset(b, 0, sizeof(*b));
    rc = enc_bind_json(body, fields, mode, &out, b, v);
    json_decref(out);
    return rc;
}


int
auth_validate_register(json_t *body, auth_register_in_t *out,
    enc_validation_t *v)
{
    auth_body_t  b;

    memset(out, 0, sizeof(*out));

    /* the format rules run even when another field failed: one 422 names
       every problem */
    (void) bind_body(body, register_fields, ENC_BIND_CREATE | ENC_BIND_ALL, &b, v);

    if (b.username.str != NULL && !auth_username_valid(b.username.str)) {
        enc_validation_add(v, "username",
                           "must be %d to %d characters of a-z, 0-9 and _",
                           AUTH_USERNAME_MIN, AUTH_USERNAME_MAX);
    }
    if (b.email.str != NULL && !auth_email_valid(b.email.str, b.email.len)) {
        enc_validation_add(v, "email", "is not a valid email address");
    }

    out->username = b.username.str;
    out->email = b.email.str;
    out->password = b.password.str;
    out->password_len = b.password.len;

    return enc_validation_failed(v) ? -1 : 0;
}


int
auth_validate_login(json_t *body, auth_login_in_t *out, enc_validation_t *v)
{
    auth_body_t  b;

    memset(out, 0, sizeof(*out));

    if (bind_body(body, login_fields, ENC_BIND_CREATE | ENC_BIND_ALL, &b, v) != 0) {
        return -1;
    }

    out->login = b.login.str;
    out->password = b.password.str;
    out->password_len = b.password.len;
    return 0;
}


int
auth_validate_patch_me(json_t *body, auth_patch_me_in_t *out,
    enc_validation_t *v)
{
    auth_body_t  b;

    memset(out, 0, sizeof(*out));

    /* an empty patch is a 422 (bind): a PATCH that changes nothing is a
       client's mistake worth naming (the spec's minProperties: 1) */
    (void) bind_body(body, patch_me_fields, ENC_BIND_PATCH, &b, v);

    if (b.email.str != NULL && !auth_email_valid(b.email.str, b.email.len)) {
        enc_validation_add(v, "email", "is not a valid email address");
    }
    /* a current_password that is there but malformed was named by bind */
    if (b.password.state == ENC_SET
        && (body == NULL || json_object_get(body, "current_password") == NULL))
    {
        enc_validation_add(v, "current_password",
                           "is required to change the password");
    }

    /* current_password alone changes nothing either ("" is the body
       itself, as a JSON Pointer) */
    if (!enc_validation_failed(v) && b.bio.state == ENC_ABSENT
        && b.email.state == ENC_ABSENT && b.password.state == ENC_ABSENT)
    {
        enc_validation_add(v, "", "must have at least one of bio, email, "
                           "password");
    }

    out->bio = b.bio.str;
    out->email = b.email.str;
    out->password = b.password.str;
    out->password_len = b.password.len;
    out->current_password = b.current_password.str;
    out->current_password_len = b.current_password.len;

    return enc_validation_failed(v) ? -1 : 0;
}


int
auth_validate_patch_admin(json_t *body, auth_patch_admin_in_t *out,
    enc_validation_t *v)
{
    auth_body_t  b;

    memset(out, 0, sizeof(*out));
    out->disabled = -1;

    if (bind_body(body, patch_admin_fields, ENC_BIND_PATCH, &b, v) != 0) {
        return -1;
    }

    out->role = b.role.str;
    if (b.disabled.state == ENC_SET) {
        out->disabled = (int) b.disabled.num;
    }
    return 0;
}
