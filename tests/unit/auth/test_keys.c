/*
 * Unit tests: workers/auth/keys.c — thumbprints (RFC 7638), key files,
 * rotation and the JWKS file, in a temporary directory.
 */

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_test.h"


static char  tmpdir[64];


static int
setup(void **state)
{
    (void) state;

    strcpy(tmpdir, "/tmp/encore-auth-keys-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}


static void
rm_rf(const char *dir)
{
    DIR            *d;
    char            path[512];
    struct stat     st;
    struct dirent  *de;

    d = opendir(dir);
    if (d == NULL) {
        return;
    }

    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            rm_rf(path);
        } else {
            unlink(path);
        }
    }

    closedir(d);
    rmdir(dir);
}


static int
teardown(void **state)
{
    (void) state;
    rm_rf(tmpdir);
    return 0;
}


static mode_t
mode_of(const char *path)
{
    struct stat  st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}


/* Counts entries of dir whose name ends with suffix. */
static int
count_files(const char *dir, const char *suffix)
{
    int             n;
    DIR            *d;
    size_t          l, sl;
    struct dirent  *de;

    n = 0;
    sl = strlen(suffix);
    d = opendir(dir);
    assert_non_null(d);

    while ((de = readdir(d)) != NULL) {
        l = strlen(de->d_name);
        if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0) {
            n++;
        }
    }

    closedir(d);
    return n;
}


static void
test_thumbprint_rfc7638_example(void **state)
{
    char     kid[AUTH_KID_LEN + 1];
    json_t  *jwk;

    (void) state;

    /* RFC 7638 §3.1: the example RSA key and its thumbprint; alg and kid
       are not required members and must not change the result */
    jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}",
        "kty", "RSA",
        "n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu"
             "1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4H"
             "c5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqz"
             "s8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
             "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a"
             "wapJzKnqDKgw",
        "e", "AQAB", "alg", "RS256", "kid", "2011-04-29");
    assert_non_null(jwk);

    assert_int_equal(auth_jwk_thumbprint(jwk, kid, sizeof(kid)), 0);
    assert_string_equal(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

    json_decref(jwk);
}


static void
test_thumbprint_ec_and_errors(void **state)
{
    FILE    *f;
    char     kid[AUTH_KID_LEN + 1];
    json_t  *set, *jwk;

    (void) state;

    jwk = json_pack("{s:s}", "kty", "EC");
    assert_int_equal(auth_jwk_thumbprint(jwk, kid, sizeof(kid)), -1);
    json_decref(jwk);

    jwk = json_pack("{s:s}", "kty", "XYZ");
    assert_int_equal(auth_jwk_thumbprint(jwk, kid, sizeof(kid)), -1);
    json_decref(jwk);

    /* the EC key of RFC 7517 A.1; the expected value was computed with an
       independent implementation (Python hashlib over the canonical JSON) */
    f = testdata_open("jose/rfc7517_A.1.jwkset");
    if (f == NULL) {
        fail_msg("cannot open tests/vectors/%s (run from the project root)",
                 "jose/rfc7517_A.1.jwkset");
    }
    set = json_loadf(f, 0, NULL);
    fclose(f);
    assert_non_null(set);

    jwk = json_array_get(json_object_get(set, "keys"), 0);
    assert_int_equal(auth_jwk_thumbprint(jwk, kid, sizeof(kid)), 0);
    assert_string_equal(kid, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s");

    json_decref(set);
}


static void
test_public_jwk(void **state)
{
    json_t    *jwk;
    EVP_PKEY  *pkey;

    (void) state;

    pkey = auth_key_generate();
    assert_non_null(pkey);

    jwk = auth_key_public_jwk(pkey);
    assert_non_null(jwk);
    assert_int_equal(json_object_size(jwk), 4);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")),
                        "P-256");
    assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))),
                     43);
    assert_int_equal(strlen(json_string_value(json_object_get(jwk, "y"))),
                     43);
    assert_null(json_object_get(jwk, "d"));

    json_decref(jwk);
    EVP_PKEY_free(pkey);
}


static void
test_first_load_creates_key(void **state)
{
    char             dir[128], err[256], path[256], kid[AUTH_KID_LEN + 1];
    json_t          *jwk;
    auth_keyring_t  *kr, *again;

    (void) state;

    /* the directory does not exist yet, nor its parent */
    snprintf(dir, sizeof(dir), "%s/run/keys", tmpdir);

    assert_int_equal(auth_keys_load(dir, 0, &kr, err, sizeof(err)), -1);

    assert_int_equal(auth_keys_load(dir, 1, &kr, err, sizeof(err)), 0);
    assert_int_equal(kr->n, 1);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(count_files(dir, ".pem"), 1);

    snprintf(path, sizeof(path), "%s/%s-%s.pem", dir, kr->keys[0].created,
             kr->keys[0].kid);
    assert_int_equal(mode_of(path), 0600);

    /* the kid is the thumbprint of the public key */
    jwk = auth_key_public_jwk(kr->keys[0].pkey);
    assert_int_equal(auth_jwk_thumbprint(jwk, kid, sizeof(kid)), 0);
    assert_string_equal(kid, kr->keys[0].kid);
    json_decref(jwk);

    /* a second start reuses the key instead of making another */
    assert_int_equal(auth_keys_load(dir, 1, &again, err, sizeof(err)), 0);
    assert_int_equal(again->n, 1);
    assert_string_equal(again->keys[0].kid, kr->keys[0].kid);
    assert_int_equal(count_files(dir, ".pem"), 1);

    auth_keyring_free(again);
    auth_keyring_free(kr);
}


static void
test_rotation_and_jwks(void **state)
{
    int              i;
    char             dir[128], jwks_path[160], err[256];
    char             kid1[AUTH_KID_LEN + 1], kid2[AUTH_KID_LEN + 1];
    char             tp[AUTH_KID_LEN + 1];
    mode_t           old;
    json_t          *jwks, *keys, *k;
    const char      *name;
    auth_keyring_t  *kr;

    (void) state;

    snprintf(dir, sizeof(dir), "%s/keys", tmpdir);
    snprintf(jwks_path, sizeof(jwks_path), "%s/pub/jwks.json", tmpdir);

    assert_int_equal(auth_keys_add(dir, kid1, sizeof(kid1), err,
                                   sizeof(err)), 0);
    assert_int_equal(auth_keys_add(dir, kid2, sizeof(kid2), err,
                                   sizeof(err)), 0);
    assert_string_not_equal(kid1, kid2);

    assert_int_equal(auth_keys_load(dir, 1, &kr, err, sizeof(err)), 0);
    assert_int_equal(kr->n, 2);
    /* newest first: it signs */
    assert_string_equal(kr->keys[0].kid, kid2);
    assert_string_equal(kr->keys[1].kid, kid1);

    /* the mode must not depend on the caller's umask */
    old = umask(077);
    assert_int_equal(auth_jwks_write(jwks_path, kr, err, sizeof(err)), 0);
    umask(old);

    assert_int_equal(mode_of(jwks_path), 0644);
    /* nothing left behind by the atomic write */
    snprintf(err, sizeof(err), "%s/pub", tmpdir);
    assert_int_equal(count_files(err, ".json"), 1);
    assert_int_equal(count_files(err, ""), 3);     /* ".", "..", jwks.json */

    jwks = json_load_file(jwks_path, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(jwks);
    assert_int_equal(json_object_size(jwks), 1);
    keys = json_object_get(jwks, "keys");
    assert_int_equal(json_array_size(keys), 2);

    for (i = 0; i < 2; i++) {
        k = json_array_get(keys, (size_t) i);
        assert_int_equal(json_object_size(k), 7);
        assert_string_equal(json_string_value(json_object_get(k, "kty")),
                            "EC");
        assert_string_equal(json_string_value(json_object_get(k, "crv")),
                            "P-256");
        assert_string_equal(json_string_value(json_object_get(k, "use")),
                            "sig");
        assert_string_equal(json_string_value(json_object_get(k, "alg")),
                            "ES256");
        assert_null(json_object_get(k, "d"));

        name = json_string_value(json_object_get(k, "kid"));
        assert_non_null(name);
        assert_int_equal(auth_jwk_thumbprint(k, tp, sizeof(tp)), 0);
        assert_string_equal(tp, name);
        assert_string_equal(name, i == 0 ? kid2 : kid1);
    }

    /* rewriting replaces the file in place */
    assert_int_equal(auth_jwks_write(jwks_path, kr, err, sizeof(err)), 0);

    json_decref(jwks);
    auth_keyring_free(kr);
}


static void
test_misnamed_key_is_refused(void **state)
{
    char             dir[128], from[256], to[256], err[256];
    char             kid[AUTH_KID_LEN + 1];
    auth_keyring_t  *kr;

    (void) state;

    snprintf(dir, sizeof(dir), "%s/bad", tmpdir);
    assert_int_equal(auth_keys_load(dir, 1, &kr, err, sizeof(err)), 0);
    snprintf(from, sizeof(from), "%s/%s-%s.pem", dir, kr->keys[0].created,
             kr->keys[0].kid);
    auth_keyring_free(kr);

    /* same file under another key's kid */
    assert_int_equal(auth_keys_add(tmpdir, kid, sizeof(kid), err,
                                   sizeof(err)), 0);
    snprintf(to, sizeof(to), "%s/0000000000000001-%s.pem", dir, kid);
    assert_int_equal(rename(from, to), 0);

    assert_int_equal(auth_keys_load(dir, 1, &kr, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not match"));
}


static void
test_open_dir_is_tightened(void **state)
{
    char             dir[128], err[256];
    auth_keyring_t  *kr;

    (void) state;

    snprintf(dir, sizeof(dir), "%s/open", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0755), 0);

    assert_int_equal(auth_keys_load(dir, 1, &kr, err, sizeof(err)), 0);
    assert_int_equal(mode_of(dir), 0700);
    auth_keyring_free(kr);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_thumbprint_rfc7638_example),
        cmocka_unit_test(test_thumbprint_ec_and_errors),
        cmocka_unit_test(test_public_jwk),
        cmocka_unit_test_setup_teardown(test_first_load_creates_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_jwks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_misnamed_key_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_dir_is_tightened,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
