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
auth_uuid_valid(const char *s)
{
    size_t  i;

    if (s == NULL || strlen(s) != AUTH_UUID_LEN) {
        return 0;
    }

    for (i = 0; i < AUTH_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }
        } else if (!isxdigit((unsigned char) s[i])) {
            return 0;
        }
    }

    return 1;
}


int
auth_role_valid(const char *s)
{
    return s != NULL
           && (strcmp(s, "user") == 0 || strcmp(s, "moderator") == 0
               || strcmp(s, "admin") == 0);
}


/* Byte length of a password member; the getters already vetted it. */
static size_t
str_len(json_t *body, const char *field)
{
    return json_string_length(json_object_get(body, field));
}


/*
 * libencore's getters take a JSON null for an absent optional member; the
 * spec types these members without null, so an explicit null is a wrong
 * type here (422), not a silent no-op.  0 when the member is not null.
 */
static int
null_member(json_t *body, const char *field, const char *what,
    enc_validation_t *v)
{
    if (!json_is_null(json_object_get(body, field))) {
        return 0;
    }

    enc_validation_add(v, field, "must be %s", what);
    return -1;
}


int
auth_validate_register(json_t *body, auth_register_in_t *out,
    enc_validation_t *v)
{
    memset(out, 0, sizeof(*out));

    if (enc_json_get_str(body, "username", 1, AUTH_USERNAME_MIN,
                         AUTH_USERNAME_MAX, &out->username, v) == 0
        && !auth_username_valid(out->username))
    {
        enc_validation_add(v, "username",
                           "must be %d to %d characters of a-z, 0-9 and _",
                           AUTH_USERNAME_MIN, AUTH_USERNAME_MAX);
    }

    if (enc_json_get_str(body, "email", 1, 3, AUTH_EMAIL_MAX, &out->email, v)
        == 0 && !auth_email_valid(out->email, strlen(out->email)))
    {
        enc_validation_add(v, "email", "is not a valid email address");
    }

    if (enc_json_get_str(body, "password", 1, AUTH_PASSWORD_MIN,
                         AUTH_PASSWORD_MAX, &out->password, v) == 0)
    {
        out->password_len = str_len(body, "password");
    }

    return enc_validation_failed(v) ? -1 : 0;
}


int
auth_validate_login(json_t *body, auth_login_in_t *out, enc_validation_t *v)
{
    memset(out, 0, sizeof(*out));

    /* no format rules here: a login that cannot exist simply fails to
       authenticate, and rejecting it early would answer faster than a
       real attempt */
    (void) enc_json_get_str(body, "login", 1, 1, AUTH_EMAIL_MAX,
                            &out->login, v);

    if (enc_json_get_str(body, "password", 1, 1, AUTH_PASSWORD_MAX,
                         &out->password, v) == 0)
    {
        out->password_len = str_len(body, "password");
    }

    return enc_validation_failed(v) ? -1 : 0;
}


int
auth_validate_patch_me(json_t *body, auth_patch_me_in_t *out,
    enc_validation_t *v)
{
    int  rc;

    memset(out, 0, sizeof(*out));

    (void) null_member(body, "bio", "a string", v);
    (void) null_member(body, "email", "a string", v);
    (void) null_member(body, "password", "a string", v);

    (void) enc_json_get_str(body, "bio", 0, 0, AUTH_BIO_MAX, &out->bio, v);

    if (enc_json_get_str(body, "email", 0, 3, AUTH_EMAIL_MAX, &out->email, v)
        == 0 && out->email != NULL
        && !auth_email_valid(out->email, strlen(out->email)))
    {
        enc_validation_add(v, "email", "is not a valid email address");
    }

    if (enc_json_get_str(body, "password", 0, AUTH_PASSWORD_MIN,
                         AUTH_PASSWORD_MAX, &out->password, v) == 0
        && out->password != NULL)
    {
        out->password_len = str_len(body, "password");
    }

    rc = null_member(body, "current_password", "a string", v);
    if (rc == 0) {
        rc = enc_json_get_str(body, "current_password", 0, 1,
                              AUTH_PASSWORD_MAX, &out->current_password, v);
    }
    if (rc == 0 && out->current_password != NULL) {
        out->current_password_len = str_len(body, "current_password");
    }

    /* rc != 0 already reported a malformed current_password */
    if (out->password != NULL && out->current_password == NULL && rc == 0) {
        enc_validation_add(v, "current_password",
                           "is required to change the password");
    }

    /* a PATCH that changes nothing is a client's mistake ("" is the body
       itself, as a JSON Pointer): no body, {}, or current_password alone */
    if (!enc_validation_failed(v) && out->bio == NULL && out->email == NULL
        && out->password == NULL)
    {
        enc_validation_add(v, "", "must have at least one of bio, email, "
                           "password");
    }

    return enc_validation_failed(v) ? -1 : 0;
}


int
auth_validate_patch_admin(json_t *body, auth_patch_admin_in_t *out,
    enc_validation_t *v)
{
    int  disabled;

    memset(out, 0, sizeof(*out));
    out->disabled = -1;

    (void) null_member(body, "role", "a string", v);
    (void) null_member(body, "disabled", "a boolean", v);

    if (enc_json_get_str(body, "role", 0, 1, 16, &out->role, v) == 0
        && out->role != NULL && !auth_role_valid(out->role))
    {
        enc_validation_add(v, "role", "must be one of user, moderator, admin");
    }

    disabled = -1;
    if (enc_json_get_bool(body, "disabled", 0, &disabled, v) == 0) {
        out->disabled = disabled;
    }

    if (!enc_validation_failed(v) && out->role == NULL && out->disabled < 0) {
        enc_validation_add(v, "", "must have at least one of role, disabled");
    }

    return enc_validation_failed(v) ? -1 : 0;
}


int
auth_validate_limit(const char *s, int *out, enc_validation_t *v)
{
    size_t  i, len;
    long    n;

    if (s == NULL) {
        *out = AUTH_LIST_LIMIT_DEFAULT;
        return 0;
    }

    len = strlen(s);
    n = 0;

    for (i = 0; i < len && i < 4; i++) {
        if (s[i] < '0' || s[i] > '9') {
            break;
        }
        n = n * 10 + (s[i] - '0');
    }

    if (len == 0 || i != len || n < 1 || n > AUTH_LIST_LIMIT_MAX) {
        enc_validation_add(v, "limit", "must be an integer from 1 to %d",
                           AUTH_LIST_LIMIT_MAX);
        return -1;
    }

    *out = (int) n;
    return 0;
}


#define CURSOR_TAG      "u1:"
#define CURSOR_TAG_LEN  3

int
auth_cursor_encode(const char *username, char *out, size_t cap)
{
    char    buf[CURSOR_TAG_LEN + AUTH_USERNAME_MAX + 1];
    size_t  len;

    len = strlen(username);
    if (len > AUTH_USERNAME_MAX) {
        return -1;
    }

    /* the tag versions the cursor, so its content can change later while
       old cursors are still recognised (and refused) cleanly */
    memcpy(buf, CURSOR_TAG, CURSOR_TAG_LEN);
    memcpy(buf + CURSOR_TAG_LEN, username, len);

    return auth_b64url_encode((const unsigned char *) buf,
                              CURSOR_TAG_LEN + len, out, cap);
}


int
auth_cursor_decode(const char *cursor, char *out, size_t cap)
{
    size_t         len, n;
    unsigned char  buf[CURSOR_TAG_LEN + AUTH_USERNAME_MAX + 1];

    len = strlen(cursor);
    if (len > auth_b64url_len(sizeof(buf) - 1)) {
        return -1;
    }

    if (auth_b64url_decode(cursor, len, buf, sizeof(buf) - 1, &n) != 0
        || n <= CURSOR_TAG_LEN
        || memcmp(buf, CURSOR_TAG, CURSOR_TAG_LEN) != 0
        || n - CURSOR_TAG_LEN + 1 > cap)
    {
        return -1;
    }

    memcpy(out, buf + CURSOR_TAG_LEN, n - CURSOR_TAG_LEN);
    out[n - CURSOR_TAG_LEN] = '\0';

    return auth_username_valid(out) ? 0 : -1;
}
