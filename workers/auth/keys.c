/*
 * keys.c — the ES256 signing keys, their kids and the public JWKS.
 *
 * Layout on disk (auth.keys_dir, mode 0700):
 *
 *     <created>-<kid>.pem    PKCS#8 private key, mode 0600
 *     .lock                  flock(2) target serialising creation/rotation
 *
 * <created> is 16 decimal digits of microseconds since the epoch, so a
 * plain name sort is chronological and the newest key, which signs, comes
 * first.  <kid> is the key's RFC 7638 thumbprint; loading recomputes it and
 * refuses a file whose name disagrees.
 *
 * Every key found is published in the JWKS, so tokens signed by an older
 * key keep verifying at the edge until it is removed from the directory.
 * Rotation: `encore-auth rotate-key` adds a key and rewrites the JWKS; the
 * edge picks the new JWKS up on reload, the workers start signing with the
 * new key on restart.  That order (publish first, sign later) is what keeps
 * every issued token verifiable.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "auth.h"
#include "log.h"


#define KEY_CREATED_DIGITS  16
#define KEY_NAME_LEN        (KEY_CREATED_DIGITS + 1 + AUTH_KID_LEN + 4)
#define KEYS_MAX            64      /* far more than rotation ever needs */


static int
mkdir_p(const char *path, mode_t last_mode, char *err, size_t errlen)
{
    char         buf[4096];
    char        *p;
    size_t       len;
    struct stat  st;

    len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        snprintf(err, errlen, "invalid directory \"%s\"", path);
        return -1;
    }

    memcpy(buf, path, len + 1);

    /* intermediate components get 0755 so that, e.g., nginx can traverse
       to a JWKS file kept beside the private keys' directory */
    for (p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }

        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "mkdir \"%s\": %s", buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }

    if (mkdir(buf, last_mode) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir \"%s\": %s", buf, strerror(errno));
        return -1;
    }

    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "\"%s\" is not a directory", buf);
        return -1;
    }

    return 0;
}


/* The keys directory must not be readable by anyone else: tighten it if a
   previous run or an operator left it open. */
static int
keys_dir_prepare(const char *dir, char *err, size_t errlen)
{
    struct stat  st;

    if (mkdir_p(dir, 0700, err, errlen) != 0) {
        return -1;
    }

    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "stat \"%s\": %s", dir, strerror(errno));
        return -1;
    }

    /* a failure is only worth a warning: a read-only mount (a Kubernetes
       Secret) cannot be changed, and its keys are still usable */
    if ((st.st_mode & 0077) != 0 && chmod(dir, 0700) != 0) {
        enc_log_warn("keys directory \"%s\" is mode %03o and chmod failed: "
                     "%s", dir, (unsigned) (st.st_mode & 0777),
                     strerror(errno));
    }

    return 0;
}


/* Returns an fd holding an exclusive flock on dir/.lock, or -1. */
static int
keys_lock(const char *dir, char *err, size_t errlen)
{
    int   fd;
    char  path[4096];

    if ((size_t) snprintf(path, sizeof(path), "%s/.lock", dir)
        >= sizeof(path))
    {
        snprintf(err, errlen, "keys directory path too long");
        return -1;
    }

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "open \"%s\": %s", path, strerror(errno));
        return -1;
    }

    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "flock \"%s\": %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }

    return fd;
}


static void
keys_unlock(int fd)
{
    /* closing the descriptor releases the flock */
    close(fd);
}


/* ---- JWK and thumbprint ------------------------------------------------- */

static int
bn_to_b64url(const BIGNUM *bn, size_t width, char *out, size_t cap)
{
    unsigned char  buf[66];

    if (width > sizeof(buf) || BN_bn2binpad(bn, buf, (int) width) < 0) {
        return -1;
    }

    return enc_b64url_encode(buf, width, out, cap);
}


json_t *
auth_key_public_jwk(EVP_PKEY *pkey)
{
    char     group[32], x[64], y[64];
    BIGNUM  *bx, *by;
    json_t  *jwk;

    bx = NULL;
    by = NULL;
    jwk = NULL;

    if (!EVP_PKEY_is_a(pkey, "EC")
        || EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), NULL) != 1
        || strcmp(group, "prime256v1") != 0)
    {
        goto failed;
    }

    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1
        || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1)
    {
        goto failed;
    }

    /* RFC 7518 §6.2.1.2: coordinates are the full field size, 32 bytes for
       P-256, even when leading bytes are zero */
    if (bn_to_b64url(bx, 32, x, sizeof(x)) != 0
        || bn_to_b64url(by, 32, y, sizeof(y)) != 0)
    {
        goto failed;
    }

    jwk = json_pack("{s:s, s:s, s:s, s:s}",
                    "kty", "EC", "crv", "P-256", "x", x, "y", y);

failed:

    BN_free(bx);
    BN_free(by);
    return jwk;
}


int
auth_jwk_thumbprint(json_t *jwk, char *out, size_t cap)
{
    static const char *const  ec[] = { "crv", "kty", "x", "y", NULL };
    static const char *const  rsa[] = { "e", "kty", "n", NULL };
    static const char *const  okp[] = { "crv", "kty", "x", NULL };
    static const char *const  oct[] = { "k", "kty", NULL };

    int                       rc;
    char                     *text;
    json_t                   *canon, *member;
    size_t                    i;
    unsigned int              mdlen;
    const char               *kty;
    unsigned char             md[EVP_MAX_MD_SIZE];
    const char *const        *names;

    rc = -1;
    text = NULL;

    kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL) {
        return -1;
    }

    /* RFC 7638 §3.2: only the required members, in lexicographic order */
    if (strcmp(kty, "EC") == 0) {
        names = ec;
    } else if (strcmp(kty, "RSA") == 0) {
        names = rsa;
    } else if (strcmp(kty, "OKP") == 0) {
        names = okp;
    } else if (strcmp(kty, "oct") == 0) {
        names = oct;
    } else {
        return -1;
    }

    canon = json_object();
    if (canon == NULL) {
        return -1;
    }

    for (i = 0; names[i] != NULL; i++) {
        member = json_object_get(jwk, names[i]);
        if (!json_is_string(member)
            || json_object_set(canon, names[i], member) != 0)
        {
            goto failed;
        }
    }

    /* jansson keeps insertion order and JSON_COMPACT emits no whitespace,
       which is exactly the RFC's canonical form for these ASCII values */
    text = json_dumps(canon, JSON_COMPACT);
    if (text == NULL) {
        goto failed;
    }

    if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1
        || enc_b64url_encode(md, mdlen, out, cap) != 0)
    {
        goto failed;
    }

    rc = 0;

failed:

    free(text);
    json_decref(canon);
    return rc;
}


static int
key_kid(EVP_PKEY *pkey, char *kid, size_t cap)
{
    int      rc;
    json_t  *jwk;

    jwk = auth_key_public_jwk(pkey);
    if (jwk == NULL) {
        return -1;
    }

    rc = auth_jwk_thumbprint(jwk, kid, cap);
    json_decref(jwk);
    return rc;
}


EVP_PKEY *
auth_key_generate(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}


/* ---- files -------------------------------------------------------------- */

static int
fsync_dir(const char *dir)
{
    int  fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }

    rc = fsync(fd);
    close(fd);
    return rc;
}


/*
 * Writes pkey as dir/<created>-<kid>.pem: first to a 0600 temp file, then
 * renamed, so a crash never leaves a half-written key a later load would
 * choke on.  Called with the directory lock held.
 */
static int
key_store(const char *dir, EVP_PKEY *pkey, char *kid, size_t kidcap,
    char *err, size_t errlen)
{
    int               fd;
    FILE             *f;
    char              tmp[4096], path[4096];
    struct timespec   ts;
    unsigned long long created;

    f = NULL;
    tmp[0] = '\0';

    if (key_kid(pkey, kid, kidcap) != 0) {
        snprintf(err, errlen, "cannot compute the key's thumbprint");
        return -1;
    }

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        snprintf(err, errlen, "clock_gettime: %s", strerror(errno));
        return -1;
    }

    created = (unsigned long long) ts.tv_sec * 1000000ULL
              + (unsigned long long) ts.tv_nsec / 1000;

    if ((size_t) snprintf(path, sizeof(path), "%s/%016llu-%s.pem",
                          dir, created, kid) >= sizeof(path)
        || (size_t) snprintf(tmp, sizeof(tmp), "%s/.tmp-%s.pem", dir, kid)
           >= sizeof(tmp))
    {
        snprintf(err, errlen, "keys directory path too long");
        return -1;
    }

    (void) unlink(tmp);     /* a leftover from a crash; ENOENT is normal */

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "open \"%s\": %s", tmp, strerror(errno));
        tmp[0] = '\0';
        goto failed;
    }

    f = fdopen(fd, "w");
    if (f == NULL) {
        snprintf(err, errlen, "fdopen: %s", strerror(errno));
        close(fd);
        goto failed;
    }

    if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        snprintf(err, errlen, "cannot write the private key");
        goto failed;
    }

    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "write \"%s\": %s", tmp, strerror(errno));
        goto failed;
    }

    if (fclose(f) != 0) {
        f = NULL;
        snprintf(err, errlen, "close \"%s\": %s", tmp, strerror(errno));
        goto failed;
    }
    f = NULL;

    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename \"%s\": %s", path, strerror(errno));
        goto failed;
    }

    if (fsync_dir(dir) != 0) {
        snprintf(err, errlen, "fsync \"%s\": %s", dir, strerror(errno));
        return -1;
    }

    return 0;

failed:

    if (f != NULL) {
        fclose(f);
    }
    if (tmp[0] != '\0') {
        (void) unlink(tmp);
    }
    return -1;
}


static int
key_name_valid(const char *name)
{
    size_t  i;

    if (strlen(name) != KEY_NAME_LEN
        || name[KEY_CREATED_DIGITS] != '-'
        || strcmp(name + KEY_NAME_LEN - 4, ".pem") != 0)
    {
        return 0;
    }

    for (i = 0; i < KEY_CREATED_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
    }

    for (i = KEY_CREATED_DIGITS + 1; i < KEY_NAME_LEN - 4; i++) {
        if (!((name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '-' || name[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


static int
name_cmp_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *) b, *(char *const *) a);
}


/* Fills k from dir/name; k->pkey is owned by the caller on success. */
static int
key_read(const char *dir, const char *name, auth_key_t *k, char *err,
    size_t errlen)
{
    FILE      *f;
    char       path[4096];
    EVP_PKEY  *pkey;

    if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, name)
        >= sizeof(path))
    {
        snprintf(err, errlen, "keys directory path too long");
        return -1;
    }

    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "open \"%s\": %s", path, strerror(errno));
        return -1;
    }

    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);

    if (pkey == NULL) {
        snprintf(err, errlen, "\"%s\" holds no readable private key", path);
        return -1;
    }

    if (key_kid(pkey, k->kid, sizeof(k->kid)) != 0) {
        snprintf(err, errlen, "\"%s\" is not a P-256 key", path);
        EVP_PKEY_free(pkey);
        return -1;
    }

    if (memcmp(k->kid, name + KEY_CREATED_DIGITS + 1, AUTH_KID_LEN) != 0) {
        snprintf(err, errlen, "\"%s\" does not match its kid \"%s\"",
                 path, k->kid);
        EVP_PKEY_free(pkey);
        return -1;
    }

    memcpy(k->created, name, KEY_CREATED_DIGITS);
    k->created[KEY_CREATED_DIGITS] = '\0';
    k->pkey = pkey;
    return 0;
}


/* Names of the key files in dir, newest first; caller frees each and the
   array.  *n receives the count. */
static int
keys_scan(const char *dir, char ***out, size_t *n, char *err, size_t errlen)
{
    DIR            *d;
    char          **names;
    size_t          count, i;
    struct dirent  *de;

    names = calloc(KEYS_MAX, sizeof(char *));
    if (names == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "opendir \"%s\": %s", dir, strerror(errno));
        free(names);
        return -1;
    }

    count = 0;

    while ((de = readdir(d)) != NULL) {
        if (!key_name_valid(de->d_name)) {
            continue;
        }

        if (count == KEYS_MAX) {
            snprintf(err, errlen, "more than %d keys in \"%s\"",
                     KEYS_MAX, dir);
            goto failed;
        }

        names[count] = strdup(de->d_name);
        if (names[count] == NULL) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }
        count++;
    }

    closedir(d);

    qsort(names, count, sizeof(char *), name_cmp_desc);
    *out = names;
    *n = count;
    return 0;

failed:

    closedir(d);
    for (i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
    return -1;
}


void
auth_keyring_free(auth_keyring_t *kr)
{
    size_t  i;

    if (kr == NULL) {
        return;
    }

    for (i = 0; i < kr->n; i++) {
        EVP_PKEY_free(kr->keys[i].pkey);
    }

    free(kr->keys);
    free(kr);
}


int
auth_keys_load(const char *dir, int create, auth_keyring_t **out, char *err,
    size_t errlen)
{
    int              lock;
    char           **names;
    char             kid[AUTH_KID_LEN + 1];
    size_t           n, i;
    EVP_PKEY        *pkey;
    auth_keyring_t  *kr;

    names = NULL;
    n = 0;
    kr = NULL;

    if (keys_dir_prepare(dir, err, errlen) != 0) {
        return -1;
    }

    lock = keys_lock(dir, err, errlen);
    if (lock < 0) {
        return -1;
    }

    if (keys_scan(dir, &names, &n, err, errlen) != 0) {
        goto failed;
    }

    if (n == 0 && create) {
        pkey = auth_key_generate();
        if (pkey == NULL) {
            snprintf(err, errlen, "cannot generate a P-256 key");
            goto failed;
        }

        if (key_store(dir, pkey, kid, sizeof(kid), err, errlen) != 0) {
            EVP_PKEY_free(pkey);
            goto failed;
        }
        EVP_PKEY_free(pkey);

        free(names);
        names = NULL;
        if (keys_scan(dir, &names, &n, err, errlen) != 0) {
            goto failed;
        }
    }

    if (n == 0) {
        snprintf(err, errlen, "no signing key in \"%s\"", dir);
        goto failed;
    }

    kr = calloc(1, sizeof(*kr));
    if (kr == NULL || (kr->keys = calloc(n, sizeof(auth_key_t))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    for (i = 0; i < n; i++) {
        if (key_read(dir, names[i], &kr->keys[i], err, errlen) != 0) {
            goto failed;
        }
        kr->n++;
    }

    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    keys_unlock(lock);

    *out = kr;
    return 0;

failed:

    if (names != NULL) {
        for (i = 0; i < n; i++) {
            free(names[i]);
        }
        free(names);
    }
    auth_keyring_free(kr);
    keys_unlock(lock);
    return -1;
}


int
auth_keys_add(const char *dir, char *kid_out, size_t kid_cap, char *err,
    size_t errlen)
{
    int        lock, rc;
    EVP_PKEY  *pkey;

    if (keys_dir_prepare(dir, err, errlen) != 0) {
        return -1;
    }

    lock = keys_lock(dir, err, errlen);
    if (lock < 0) {
        return -1;
    }

    rc = -1;
    pkey = auth_key_generate();

    if (pkey == NULL) {
        snprintf(err, errlen, "cannot generate a P-256 key");
    } else {
        rc = key_store(dir, pkey, kid_out, kid_cap, err, errlen);
        EVP_PKEY_free(pkey);
    }

    keys_unlock(lock);
    return rc;
}


/* ---- JWKS --------------------------------------------------------------- */

json_t *
auth_keyring_jwks(const auth_keyring_t *kr)
{
    size_t   i;
    json_t  *jwks, *keys, *jwk;

    jwks = json_object();
    keys = json_array();
    if (jwks == NULL || keys == NULL
        || json_object_set_new(jwks, "keys", keys) != 0)
    {
        json_decref(keys);
        json_decref(jwks);
        return NULL;
    }

    for (i = 0; i < kr->n; i++) {
        jwk = auth_key_public_jwk(kr->keys[i].pkey);
        if (jwk == NULL
            || json_object_set_new(jwk, "kid",
                                   json_string(kr->keys[i].kid)) != 0
            || json_object_set_new(jwk, "use", json_string("sig")) != 0
            || json_object_set_new(jwk, "alg", json_string("ES256")) != 0
            || json_array_append_new(keys, jwk) != 0)
        {
            json_decref(jwk);
            json_decref(jwks);
            return NULL;
        }
    }

    return jwks;
}


int
auth_jwks_write(const char *path, const auth_keyring_t *kr, char *err,
    size_t errlen)
{
    int      fd, rc;
    char     dir[4096], tmp[4096];
    char    *text, *slash;
    size_t   len, off;
    ssize_t  n;
    json_t  *jwks;

    rc = -1;
    fd = -1;
    text = NULL;
    tmp[0] = '\0';

    len = strlen(path);
    if (len == 0 || len >= sizeof(dir)) {
        snprintf(err, errlen, "invalid JWKS path");
        return -1;
    }

    memcpy(dir, path, len + 1);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }

    if (mkdir_p(dir, 0755, err, errlen) != 0) {
        return -1;
    }

    jwks = auth_keyring_jwks(kr);
    if (jwks == NULL) {
        snprintf(err, errlen, "cannot build the JWKS");
        return -1;
    }

    text = json_dumps(jwks, JSON_INDENT(2));
    json_decref(jwks);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    /* the pid keeps concurrent writers (several worker processes starting
       together) from sharing a temp file; rename makes the switch atomic
       for the edge, which may read the file at any moment */
    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
                          (long) getpid()) >= sizeof(tmp))
    {
        snprintf(err, errlen, "JWKS path too long");
        tmp[0] = '\0';
        goto failed;
    }

    (void) unlink(tmp);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "open \"%s\": %s", tmp, strerror(errno));
        tmp[0] = '\0';
        goto failed;
    }

    /* the umask may have narrowed the mode; nginx's workers must read it */
    if (fchmod(fd, 0644) != 0) {
        snprintf(err, errlen, "chmod \"%s\": %s", tmp, strerror(errno));
        goto failed;
    }

    len = strlen(text);

    for (off = 0; off < len; off += (size_t) n) {
        n = write(fd, text + off, len - off);
        if (n < 0) {
            if (errno == EINTR) {
                n = 0;
                continue;
            }
            snprintf(err, errlen, "write \"%s\": %s", tmp, strerror(errno));
            goto failed;
        }
    }

    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(err, errlen, "write \"%s\": %s", tmp, strerror(errno));
        goto failed;
    }

    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "close \"%s\": %s", tmp, strerror(errno));
        goto failed;
    }
    fd = -1;

    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename \"%s\": %s", path, strerror(errno));
        goto failed;
    }
    tmp[0] = '\0';

    (void) fsync_dir(dir);  /* durability only; the file is already in place */
    rc = 0;

failed:

    if (fd >= 0) {
        close(fd);
    }
    if (tmp[0] != '\0') {
        (void) unlink(tmp);
    }
    free(text);
    return rc;
}
