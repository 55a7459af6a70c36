/*
 * config: one declarative table of keys drives parsing, validation,
 * environment overrides, --help and --dump-config.
 *
 * File format: "key = value" lines, '#' starts a comment line, values may
 * be double-quoted, "${VAR}" is expanded from the environment.  Every key
 * "a.b_c" is overridden by the environment variable ENCORE_A_B_C.
 * Precedence: environment > file > default.
 */
#ifndef ENC_CONFIG_H
#define ENC_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    ENC_CONF_STR,
    ENC_CONF_INT,
    ENC_CONF_BOOL
} enc_conf_type_t;

typedef struct {
    const char       *name;      /* "http.listen" */
    enc_conf_type_t   type;
    const char       *def;       /* default as text, NULL = required */
    long              min, max;  /* ENC_CONF_INT bounds */
    int               secret;    /* never printed by --dump-config or logs */
    const char       *help;
} enc_conf_key_t;

typedef struct enc_config_s enc_config_t;

#define ENC_CONF_VALUE_MAX  4096  /* longest value accepted */

/* tables: NULL-terminated list of tables, each ended by {NULL}; the tables
   must outlive the config.  A key declared twice keeps its first entry.
   Returns NULL on allocation failure. */
enc_config_t *enc_config_new(const enc_conf_key_t *const *tables);
/* path may be NULL: defaults + env.  On failure writes a message into err
   and returns -1 (unknown key, bad value, out of bounds, missing required) */
int  enc_config_load(enc_config_t *c, const char *path, char *err,
                     size_t errlen);
/* values are owned by the config; NULL / 0 for an unknown or unset key
   (asking for an undeclared key is a programming error and is logged) */
const char *enc_config_str(const enc_config_t *c, const char *name);
long enc_config_int(const enc_config_t *c, const char *name);
int  enc_config_bool(const enc_config_t *c, const char *name);
void enc_config_dump(const enc_config_t *c, FILE *out);
void enc_config_help(const enc_config_t *c, FILE *out);
void enc_config_free(enc_config_t *c);
/* sets a value as if read from the file (validated); for tests and
   programmatic overrides */
int  enc_config_set(enc_config_t *c, const char *name, const char *value,
                    char *err, size_t errlen);

extern const enc_conf_key_t enc_runtime_conf_keys[];

#endif /* ENC_CONFIG_H */
