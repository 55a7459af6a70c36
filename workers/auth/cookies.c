/*
 * cookies.c — the Set-Cookie values of the browser session.
 *
 * encore_access carries the access token for the whole site (Path=/) and
 * lives exactly as long as the token (Max-Age); encore_refresh is only sent
 * to /api/v1/auth, so the long-lived credential never travels with ordinary
 * API calls.  Both are HttpOnly (no script access) and SameSite=Strict (no
 * cross-site sends); Secure is added when the edge says the client spoke
 * TLS, since a Secure cookie set over plain HTTP would be dropped.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"


/* RFC 6265 §4.1.1 cookie-octet: visible ASCII except '"', ',', ';', '\\' */
static int
cookie_value_safe(const char *s)
{
    const unsigned char  *p;

    for (p = (const unsigned char *) s; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == ',' || *p == ';'
            || *p == '\\')
        {
            return 0;
        }
    }

    return 1;
}


int
auth_cookie_build(char *buf, size_t cap, const char *name, const char *value,
    const char *path, long max_age, int secure)
{
    int   n;
    char  age[48];

    if (!cookie_value_safe(value) || !cookie_value_safe(name)
        || name[0] == '\0' || !cookie_value_safe(path))
    {
        return -1;
    }

    age[0] = '\0';
    if (max_age >= 0) {
        snprintf(age, sizeof(age), "; Max-Age=%ld", max_age);
    }

    n = snprintf(buf, cap, "%s=%s; Path=%s%s; HttpOnly; SameSite=Strict%s",
                 name, value, path, age, secure ? "; Secure" : "");

    return (n < 0 || (size_t) n >= cap) ? -1 : 0;
}


int
auth_cookie_clear(char *buf, size_t cap, const char *name, const char *path,
    int secure)
{
    int  n;

    if (!cookie_value_safe(name) || name[0] == '\0'
        || !cookie_value_safe(path))
    {
        return -1;
    }

    /* Expires as well as Max-Age=0: old user agents ignore Max-Age */
    n = snprintf(buf, cap,
                 "%s=; Path=%s; Max-Age=0; "
                 "Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                 "HttpOnly; SameSite=Strict%s",
                 name, path, secure ? "; Secure" : "");

    return (n < 0 || (size_t) n >= cap) ? -1 : 0;
}


void
auth_cookies_clear_session(enc_resp_t *w, int secure)
{
    char  buf[256];

    if (auth_cookie_clear(buf, sizeof(buf), AUTH_COOKIE_ACCESS,
                          AUTH_COOKIE_ACCESS_PATH, secure) == 0)
    {
        enc_resp_header(w, "Set-Cookie", buf);
    }
    if (auth_cookie_clear(buf, sizeof(buf), AUTH_COOKIE_REFRESH,
                          AUTH_COOKIE_REFRESH_PATH, secure) == 0)
    {
        enc_resp_header(w, "Set-Cookie", buf);
    }
}


int
auth_forwarded_https(const char *xfp)
{
    size_t  len;

    if (xfp == NULL) {
        return 0;
    }

    /* a chain of proxies appends: "https, http"; the first hop is the
       client's */
    len = strcspn(xfp, ",");
    while (len > 0 && (xfp[len - 1] == ' ' || xfp[len - 1] == '\t')) {
        len--;
    }
    while (len > 0 && (*xfp == ' ' || *xfp == '\t')) {
        xfp++;
        len--;
    }

    return len == 5 && strncasecmp(xfp, "https", 5) == 0;
}
