/*
 * config: the declarative key table.  See config.h.
 *
 * Values are stored as validated text plus, for INT and BOOL, the parsed
 * number, so the getters never fail and never parse.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"


#define CONF_LINE_MAX  (ENC_CONF_VALUE_MAX + 256)

typedef struct {
    const enc_conf_key_t  *key;
    char                  *value;    /* owned; NULL = unset */
    long                   num;      /* INT value, BOOL 0/1 */
} conf_entry_t;

struct enc_config_s {
    conf_entry_t  *entries;
    size_t         n;
};


const enc_conf_key_t enc_runtime_conf_keys[] = {
    { "http.listen", ENC_CONF_STR, "", 0, 0, 0,
      "where to listen: unix:/path or tcp:host:port (empty ="
      " unix:/tmp/encore-<worker>.sock)" },
    { "http.threads", ENC_CONF_INT, "4", 1, 256, 0,
      "libmicrohttpd thread pool size" },
    { "http.max_body", ENC_CONF_INT, "65536", 0, 64L * 1024 * 1024, 0,
      "largest request body in bytes (413 above)" },
    { "http.socket_mode", ENC_CONF_STR, "0660", 0, 0, 0,
      "unix socket permissions, octal" },
    { "http.socket_group", ENC_CONF_STR, "www-data", 0, 0, 0,
      "unix socket group (ignored if the group does not exist)" },
    { "http.timeout_s", ENC_CONF_INT, "30", 1, 3600, 0,
      "idle connection timeout in seconds" },
    { "http.stream_buffer", ENC_CONF_INT, "262144", 1024,
      64L * 1024 * 1024, 0,
      "bytes of a streamed answer that may wait for a slow client; more"
      " and the stream is cancelled" },
    { "db.host", ENC_CONF_STR, "127.0.0.1", 0, 0, 0,
      "PostgreSQL host or socket directory" },
    { "db.port", ENC_CONF_INT, "55432", 1, 65535, 0, "PostgreSQL port" },
    { "db.name", ENC_CONF_STR, "encore", 0, 0, 0, "database name" },
    { "db.user", ENC_CONF_STR, "", 0, 0, 0,
      "database role (empty = the worker's schema name)" },
    { "db.password_file", ENC_CONF_STR, "", 0, 0, 1,
      "file holding the role's password (empty = none)" },
    { "db.schema", ENC_CONF_STR, "", 0, 0, 0,
      "schema owned by this worker (empty = the worker's name)" },
    { "db.connect_timeout_s", ENC_CONF_INT, "5", 1, 300, 0,
      "libpq connect_timeout" },
    { "db.statement_timeout_ms", ENC_CONF_INT, "10000", 100, 3600000, 0,
      "statement deadline: the server's statement_timeout; the client"
      " cancels a statement still running 200 ms later" },
    { "db.migrate_timeout_ms", ENC_CONF_INT, "300000", 0, 86400000, 0,
      "statement deadline for migrations at start-up (0 = none)" },
    { "kafka.brokers", ENC_CONF_STR, "127.0.0.1:9092", 0, 0, 0,
      "bootstrap servers" },
    { "kafka.client_id", ENC_CONF_STR, "", 0, 0, 0,
      "Kafka client.id (empty = encore-<worker>)" },
    { "kafka.security_protocol", ENC_CONF_STR, "plaintext", 0, 0, 0,
      "plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka's"
      " security.protocol)" },
    { "kafka.sasl_mechanism", ENC_CONF_STR, "SCRAM-SHA-512", 0, 0, 0,
      "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN, with sasl_*" },
    { "kafka.sasl_username", ENC_CONF_STR, "", 0, 0, 0,
      "SASL user, with sasl_* (a Strimzi KafkaUser's name)" },
    { "kafka.sasl_password_file", ENC_CONF_STR, "", 0, 0, 1,
      "file holding the SASL password, with sasl_*" },
    { "kafka.ssl_ca_file", ENC_CONF_STR, "", 0, 0, 0,
      "CA certificates (PEM) the brokers' certificates are checked"
      " against, with ssl and sasl_ssl (empty = the system's)" },
    { "outbox.enabled", ENC_CONF_BOOL, "true", 0, 0, 0,
      "run the outbox relay thread" },
    { "outbox.poll_ms", ENC_CONF_INT, "1000", 10, 600000, 0,
      "relay polling fallback interval" },
    { "outbox.batch", ENC_CONF_INT, "100", 1, 10000, 0,
      "events per relay round" },
    { "outbox.linger_ms", ENC_CONF_INT, "0", 0, 1000, 0,
      "how long the producer waits for more events before sending"
      " (librdkafka linger.ms; the relay sends a round at once)" },
    { "outbox.retain_hours", ENC_CONF_INT, "168", 0, 87600, 0,
      "published outbox rows are deleted after this (0 = keep forever)" },
    { "consumer.group", ENC_CONF_STR, "", 0, 0, 0,
      "consumer group id (empty = encore-<worker>)" },
    { "consumer.batch", ENC_CONF_INT, "500", 1, 10000, 0,
      "most events applied in one transaction: those already fetched,"
      " never waiting for more (1 = a transaction per event)" },
    { "consumer.inbox_retain_hours", ENC_CONF_INT, "720", 0, 87600, 0,
      "applied event ids are forgotten after this; keep it above the"
      " topics' retention (0 = keep forever)" },
    { "log.level", ENC_CONF_STR, "info", 0, 0, 0,
      "debug, info, warn or error" },
    { "log.file", ENC_CONF_STR, "", 0, 0, 0,
      "file the server appends its log lines (and stderr) to, reopened on"
      " SIGUSR1 for log rotation (empty = stderr as inherited)" },
    { "log.requests", ENC_CONF_BOOL, "false", 0, 0, 0,
      "a line per answered request (nginx's access log has them, with the"
      " same request id); 5xx answers are logged regardless" },
    { "drain.timeout_ms", ENC_CONF_INT, "15000", 0, 600000, 0,
      "how long SIGTERM waits for in-flight requests (above"
      " db.statement_timeout_ms + 1.2 s, so a slow statement can end)" },
    { "drain.idle_close_ms", ENC_CONF_INT, "3000", 0, 600000, 0,
      "while draining, a connection idle this long with nothing unread is"
      " closed; above the edge's upstream keepalive_timeout (2 s), so that"
      " nginx closes its idle connections first and never sends a request"
      " on one being closed" },
    { "drain.handover_timeout_ms", ENC_CONF_INT, "120000", 1000, 86400000,
      0,
      "how long SIGUSR2 waits for the successor (the binary on disk, on"
      " the same socket) to serve before giving up and serving on" },
    { "pid.file", ENC_CONF_STR, "", 0, 0, 0,
      "file the server writes its pid to once it serves (a successor"
      " after SIGUSR2 writes its own) and removes at exit (empty = none)" },
    { "migrations.dir", ENC_CONF_STR, "schemas", 0, 0, 0,
      "directory holding runtime/ and <schema>/ migrations" },
    { "cursor.secret_file", ENC_CONF_STR, "", 0, 0, 0,
      "key (32-256 bytes, mode 0600) that signs list cursors; empty = a"
      " random key per process (cursors die with it)" },
    { NULL, 0, NULL, 0, 0, 0, NULL }
};


static void
seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    (void) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


static conf_entry_t *
find(const enc_config_t *c, const char *name)
{
    size_t  i;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->entries[i].key->name, name) == 0) {
            return &c->entries[i];
        }
    }
    return NULL;
}


enc_config_t *
enc_config_new(const enc_conf_key_t *const *tables)
{
    size_t                  n = 0, t;
    enc_config_t           *c;
    const enc_conf_key_t   *k;

    for (t = 0; tables[t] != NULL; t++) {
        for (k = tables[t]; k->name != NULL; k++) {
            n++;
        }
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->entries = calloc(n ? n : 1, sizeof(conf_entry_t));
    if (c->entries == NULL) {
        free(c);
        return NULL;
    }

    for (t = 0; tables[t] != NULL; t++) {
        for (k = tables[t]; k->name != NULL; k++) {
            if (find(c, k->name) != NULL) {
                continue;
            }
            c->entries[c->n++].key = k;
        }
    }
    return c;
}


void
enc_config_free(enc_config_t *c)
{
    size_t  i;

    if (c == NULL) {
        return;
    }
    for (i = 0; i < c->n; i++) {
        free(c->entries[i].value);
    }
    free(c->entries);
    free(c);
}


static int
parse_bool(const char *s, long *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on", NULL };
    static const char *const no[] = { "0", "false", "no", "off", NULL };
    int                      i;

    for (i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
    }
    for (i = 0; no[i] != NULL; i++) {
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}


/* validates value against the key and stores a copy */
static int
set_entry(conf_entry_t *e, const char *value, const char *origin,
          char *err, size_t errlen)
{
    char   *end, *copy;
    long    num = 0;

    if (strlen(value) > ENC_CONF_VALUE_MAX) {
        seterr(err, errlen, "%s: value of \"%s\" is too long", origin,
               e->key->name);
        return -1;
    }

    switch (e->key->type) {
    case ENC_CONF_INT:
        errno = 0;
        num = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0') {
            seterr(err, errlen, "%s: \"%s\" is not an integer for \"%s\"",
                   origin, e->key->secret ? "***" : value, e->key->name);
            return -1;
        }
        if (num < e->key->min || num > e->key->max) {
            seterr(err, errlen, "%s: \"%s\" = %ld is out of range %ld..%ld",
                   origin, e->key->name, num, e->key->min, e->key->max);
            return -1;
        }
        break;
    case ENC_CONF_BOOL:
        if (parse_bool(value, &num) != 0) {
            seterr(err, errlen, "%s: \"%s\" is not a boolean for \"%s\"",
                   origin, e->key->secret ? "***" : value, e->key->name);
            return -1;
        }
        break;
    case ENC_CONF_STR:
        break;
    }

    copy = strdup(value);
    if (copy == NULL) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    free(e->value);
    e->value = copy;
    e->num = num;
    return 0;
}


int
enc_config_set(enc_config_t *c, const char *name, const char *value,
               char *err, size_t errlen)
{
    conf_entry_t  *e = find(c, name);

    if (e == NULL) {
        seterr(err, errlen, "unknown key \"%s\"", name);
        return -1;
    }
    return set_entry(e, value, "set", err, errlen);
}


/*
 * Expands ${VAR} and ${VAR:-default} from the environment into out; "$" not
 * followed by "{" is literal.  An unset ${VAR} without a default is an
 * error naming it in err: it would otherwise turn
 * "${ENCORE_RUN_DIR}/secrets" into "/secrets" without a word.
 */
static int
expand(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t       o = 0, vlen, nlen;
    const char  *p = in, *close, *val, *dflt;
    char         name[256], *sep;

    while (*p != '\0') {
        if (p[0] == '$' && p[1] == '{') {
            close = strchr(p + 2, '}');
            if (close == NULL) {
                seterr(err, errlen, "unclosed ${ expansion");
                return -1;
            }
            nlen = (size_t) (close - (p + 2));
            if (nlen == 0 || nlen >= sizeof(name)) {
                seterr(err, errlen, "empty or too long ${} name");
                return -1;
            }
            memcpy(name, p + 2, nlen);
            name[nlen] = '\0';

            dflt = NULL;
            sep = strstr(name, ":-");
            if (sep != NULL) {
                *sep = '\0';
                dflt = sep + 2;
            }

            val = getenv(name);
            if (val == NULL || (val[0] == '\0' && dflt != NULL)) {
                if (dflt == NULL) {
                    seterr(err, errlen, "environment variable %s is not set"
                           " (set it, or write ${%s:-default})", name, name);
                    return -1;
                }
                val = dflt;
            }

            vlen = strlen(val);
            if (o + vlen >= outlen) {
                seterr(err, errlen, "value too long after expansion");
                return -1;
            }
            memcpy(out + o, val, vlen);
            o += vlen;
            p = close + 1;
            continue;
        }
        if (o + 1 >= outlen) {
            seterr(err, errlen, "value too long after expansion");
            return -1;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    return 0;
}


static char *
trim(char *s)
{
    char  *end;

    while (isspace((unsigned char) *s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char) end[-1])) {
        *--end = '\0';
    }
    return s;
}


static int
load_file(enc_config_t *c, const char *path, char *err, size_t errlen)
{
    int            rc = -1;
    char           line[CONF_LINE_MAX], where[512], why[320];
    char           value[ENC_CONF_VALUE_MAX + 1];
    char          *k, *v, *eq;
    FILE          *f;
    size_t         len;
    unsigned       lineno = 0;
    conf_entry_t  *e;

    f = fopen(path, "r");
    if (f == NULL) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }

    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
            seterr(err, errlen, "%s: line too long", where);
            goto failed;
        }
        k = trim(line);
        if (*k == '\0' || *k == '#') {
            continue;
        }
        eq = strchr(k, '=');
        if (eq == NULL) {
            seterr(err, errlen, "%s: expected \"key = value\"", where);
            goto failed;
        }
        *eq = '\0';
        k = trim(k);
        v = trim(eq + 1);
        len = strlen(v);
        if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
            v[len - 1] = '\0';
            v++;
        }
        e = find(c, k);
        if (e == NULL) {
            seterr(err, errlen, "%s: unknown key \"%s\"", where, k);
            goto failed;
        }
        if (expand(v, value, sizeof(value), why, sizeof(why)) != 0) {
            seterr(err, errlen, "%s: \"%s\": %s", where, k, why);
            goto failed;
        }
        if (set_entry(e, value, where, err, errlen) != 0) {
            goto failed;
        }
    }
    if (ferror(f)) {
        seterr(err, errlen, "%s: read error", path);
        goto failed;
    }
    rc = 0;

failed:
    fclose(f);
    return rc;
}


/* "http.max_body" -> "ENCORE_HTTP_MAX_BODY" */
static void
env_name(const char *key, char *out, size_t outlen)
{
    size_t  o;

    o = (size_t) snprintf(out, outlen, "ENCORE_");
    for (; *key != '\0' && o + 1 < outlen; key++) {
        out[o++] = (*key == '.' || *key == '-')
                   ? '_' : (char) toupper((unsigned char) *key);
    }
    out[o] = '\0';
}


int
enc_config_load(enc_config_t *c, const char *path, char *err, size_t errlen)
{
    char           env[256], where[300];
    size_t         i;
    const char    *v;
    conf_entry_t  *e;

    for (i = 0; i < c->n; i++) {
        e = &c->entries[i];
        if (e->key->def != NULL
            && set_entry(e, e->key->def, "default", err, errlen) != 0)
        {
            return -1;
        }
    }

    if (path != NULL && load_file(c, path, err, errlen) != 0) {
        return -1;
    }

    for (i = 0; i < c->n; i++) {
        e = &c->entries[i];
        env_name(e->key->name, env, sizeof(env));
        v = getenv(env);
        if (v == NULL) {
            continue;
        }
        snprintf(where, sizeof(where), "environment %s", env);
        if (set_entry(e, v, where, err, errlen) != 0) {
            return -1;
        }
    }

    for (i = 0; i < c->n; i++) {
        e = &c->entries[i];
        if (e->value == NULL) {
            env_name(e->key->name, env, sizeof(env));
            seterr(err, errlen, "missing required key \"%s\" (or %s)",
                   e->key->name, env);
            return -1;
        }
    }
    return 0;
}


static conf_entry_t *
get(const enc_config_t *c, const char *name)
{
    conf_entry_t  *e = find(c, name);

    if (e == NULL) {
        enc_log_error("config: undeclared key \"%s\" requested", name);
    }
    return e;
}


const char *
enc_config_str(const enc_config_t *c, const char *name)
{
    conf_entry_t  *e = get(c, name);

    return e != NULL ? e->value : NULL;
}


long
enc_config_int(const enc_config_t *c, const char *name)
{
    conf_entry_t  *e = get(c, name);

    return e != NULL ? e->num : 0;
}


int
enc_config_bool(const enc_config_t *c, const char *name)
{
    conf_entry_t  *e = get(c, name);

    return e != NULL ? (int) e->num : 0;
}


void
enc_config_dump(const enc_config_t *c, FILE *out)
{
    size_t               i;
    const conf_entry_t  *e;

    for (i = 0; i < c->n; i++) {
        e = &c->entries[i];
        if (e->key->secret) {
            fprintf(out, "%s = %s\n", e->key->name,
                    (e->value != NULL && e->value[0] != '\0') ? "***" : "");
        } else {
            fprintf(out, "%s = %s\n", e->key->name,
                    e->value != NULL ? e->value : "");
        }
    }
}


void
enc_config_help(const enc_config_t *c, FILE *out)
{
    char                   env[256];
    size_t                 i;
    const enc_conf_key_t  *k;
    static const char     *const types[] = { "string", "integer", "boolean" };

    for (i = 0; i < c->n; i++) {
        k = c->entries[i].key;
        env_name(k->name, env, sizeof(env));
        fprintf(out, "  %-22s %s", k->name, types[k->type]);
        if (k->type == ENC_CONF_INT) {
            fprintf(out, " %ld..%ld", k->min, k->max);
        }
        if (k->def == NULL) {
            fprintf(out, ", required");
        } else if (k->secret) {
            fprintf(out, ", secret");
        } else {
            fprintf(out, ", default \"%s\"", k->def);
        }
        fprintf(out, ", env %s\n      %s\n", env, k->help ? k->help : "");
    }
}
