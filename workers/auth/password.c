/*
 * password.c — Argon2id password hashes (libargon2), stored in the PHC
 * string format "$argon2id$v=19$m=..,t=..,p=..$salt$hash" so that the
 * parameters travel with each hash and can be raised without a migration
 * (auth_password_needs_rehash tells login when to re-hash).
 *
 * Thread-safety: argon2 allocates its m_kib working memory per call, so
 * concurrent calls are independent; each costs m_kib of RAM while it runs.
 */

#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"


int
auth_password_hash(const auth_argon2_params_t *p, const char *pw, size_t len,
    char *out, size_t cap)
{
    int            rc;
    size_t         need;
    unsigned char  salt[AUTH_ARGON2_SALT_LEN];

    /* refuse weak parameters here too, not only in the config table, so a
       caller cannot bypass the floor by filling the struct by hand */
    if (p->m_kib < AUTH_ARGON2_M_MIN || p->t_cost < AUTH_ARGON2_T_MIN
        || p->parallelism < AUTH_ARGON2_P_MIN)
    {
        return -1;
    }

    need = argon2_encodedlen(p->t_cost, p->m_kib, p->parallelism,
                             AUTH_ARGON2_SALT_LEN, AUTH_ARGON2_HASH_LEN,
                             Argon2_id);
    if (need > cap) {
        return -1;
    }

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return -1;
    }

    rc = argon2id_hash_encoded(p->t_cost, p->m_kib, p->parallelism, pw, len,
                               salt, sizeof(salt), AUTH_ARGON2_HASH_LEN,
                               out, cap);
    OPENSSL_cleanse(salt, sizeof(salt));

    return rc == ARGON2_OK ? 0 : -1;
}


int
auth_password_verify(const char *encoded, const char *pw, size_t len)
{
    int  rc;

    if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0) {
        return -1;
    }

    /* argon2id_verify compares in constant time */
    rc = argon2id_verify(encoded, pw, len);

    if (rc == ARGON2_OK) {
        return 1;
    }

    if (rc == ARGON2_VERIFY_MISMATCH) {
        return 0;
    }

    return -1;
}


int
auth_password_needs_rehash(const auth_argon2_params_t *p, const char *encoded)
{
    int       n, used;
    unsigned  v, m, t, par;

    used = 0;
    n = sscanf(encoded, "$argon2id$v=%u$m=%u,t=%u,p=%u$%n",
               &v, &m, &t, &par, &used);

    if (n != 4 || used == 0 || v != ARGON2_VERSION_NUMBER) {
        return 1;
    }

    return m < p->m_kib || t < p->t_cost || par < p->parallelism;
}
