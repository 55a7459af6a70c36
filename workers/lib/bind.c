/*
 * bind.c — field tables checked against JSON bodies and query strings.
 *
 * One function per type checks a candidate value and returns the
 * normalised JSON value to store (a new reference) or NULL after adding the
 * error.  Bodies and query strings only differ in how a raw value becomes a
 * JSON value (query_value), so both end in check_value.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind.h"


/* ISO 3166-1 alpha-2: the 249 officially assigned codes (ISO 3166
   Maintenance Agency, as of 2024), sorted, for bsearch. */
static const char  countries[][3] = {
    "AD","AE","AF","AG","AI","AL","AM","AO","AQ","AR","AS","AT","AU","AW",
    "AX","AZ","BA","BB","BD","BE","BF","BG","BH","BI","BJ","BL","BM","BN",
    "BO","BQ","BR","BS","BT","BV","BW","BY","BZ","CA","CC","CD","CF","CG",
    "CH","CI","CK","CL","CM","CN","CO","CR","CU","CV","CW","CX","CY","CZ",
    "DE","DJ","DK","DM","DO","DZ","EC","EE","EG","EH","ER","ES","ET","FI",
    "FJ","FK","FM","FO","FR","GA","GB","GD","GE","GF","GG","GH","GI","GL",
    "GM","GN","GP","GQ","GR","GS","GT","GU","GW","GY","HK","HM","HN","HR",
    "HT","HU","ID","IE","IL","IM","IN","IO","IQ","IR","IS","IT","JE","JM",
    "JO","JP","KE","KG","KH","KI","KM","KN","KP","KR","KW","KY","KZ","LA",
    "LB","LC","LI","LK","LR","LS","LT","LU","LV","LY","MA","MC","MD","ME",
    "MF","MG","MH","MK","ML","MM","MN","MO","MP","MQ","MR","MS","MT","MU",
    "MV","MW","MX","MY","MZ","NA","NC","NE","NF","NG","NI","NL","NO","NP",
    "NR","NU","NZ","OM","PA","PE","PF","PG","PH","PK","PL","PM","PN","PR",
    "PS","PT","PW","PY","QA","RE","RO","RS","RU","RW","SA","SB","SC","SD",
    "SE","SG","SH","SI","SJ","SK","SL","SM","SN","SO","SR","SS","ST","SV",
    "SX","SY","SZ","TC","TD","TF","TG","TH","TJ","TK","TL","TM","TN","TO",
    "TR","TT","TV","TW","TZ","UA","UG","UM","US","UY","UZ","VA","VC","VE",
    "VG","VI","VN","VU","WF","WS","YE","YT","ZA","ZM","ZW"
};


static int
country_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 2);
}


int
enc_country_valid(const char *s)
{
    if (s == NULL || strlen(s) != 2) {
        return 0;
    }

    return bsearch(s, countries, sizeof(countries) / sizeof(countries[0]),
                   sizeof(countries[0]), country_cmp) != NULL;
}


static int
is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}


int
enc_date_valid(const char *s)
{
    static const int  mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31 };
    int               i;
    long              y, m, d;

    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-') {
        return 0;
    }
    for (i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && !isdigit((unsigned char) s[i])) {
            return 0;
        }
    }

    y = strtol(s, NULL, 10);
    m = strtol(s + 5, NULL, 10);
    d = strtol(s + 8, NULL, 10);

    /* year 0000 is not a Gregorian year PostgreSQL's date accepts as AD */
    if (y < 1 || m < 1 || m > 12 || d < 1) {
        return 0;
    }

    return d <= mdays[m - 1] + (m == 2 && is_leap(y));
}


int
enc_slug_valid(const char *s)
{
    size_t  i;

    if (s == NULL || s[0] == '\0' || s[0] == '-') {
        return 0;
    }

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] == '-') {
            if (s[i + 1] == '-' || s[i + 1] == '\0') {
                return 0;
            }
        } else if (!((s[i] >= 'a' && s[i] <= 'z')
                     || (s[i] >= '0' && s[i] <= '9')))
        {
            return 0;
        }
    }

    return 1;
}


/* today's UTC date as YYYY-MM-DD, and its year */
static long
today_utc(char *buf, size_t cap)
{
    time_t     now = time(NULL);
    struct tm  tm;

    gmtime_r(&now, &tm);
    if (buf != NULL) {
        strftime(buf, cap, "%Y-%m-%d", &tm);
    }

    return tm.tm_year + 1900L;
}


/* ---- one value ------------------------------------------------------------ */

static void
length_error(enc_validation_t *v, const char *name, long long min,
    long long max, const char *unit)
{
    if (max > 0) {
        enc_validation_add(v, name, "must be %lld to %lld %s", min, max, unit);
    } else {
        enc_validation_add(v, name, "must be at least %lld %s", min, unit);
    }
}


static json_t *
check_string(const enc_field_t *f, const char *name, json_t *j,
    enc_validation_t *v)
{
    size_t       i, len, chars;
    char        *copy;
    json_t      *out;
    const char  *s;

    if (!json_is_string(j)) {
        enc_validation_add(v, name, "must be a string");
        return NULL;
    }

    s = json_string_value(j);
    len = json_string_length(j);
    chars = enc_utf8_chars(s, len);
    if (chars == (size_t) -1) {
        enc_validation_add(v, name, "must be UTF-8 text without NUL");
        return NULL;
    }

    if ((long long) chars < f->min || (f->max > 0 && (long long) chars > f->max))
    {
        length_error(v, name, f->min, f->max, "characters");
        return NULL;
    }

    if ((f->flags & ENC_NOT_BLANK) && strspn(s, " \t\r\n\v\f") == len) {
        enc_validation_add(v, name, "must not be blank");
        return NULL;
    }

    if (f->type == ENC_SLUG && !enc_slug_valid(s)) {
        enc_validation_add(v, name, "must be lower-case letters and digits "
                           "in words joined by single hyphens");
        return NULL;
    }

    if (!(f->flags & ENC_LOWER)) {
        return json_incref(j);
    }

    copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    for (i = 0; i < len; i++) {
        copy[i] = (char) tolower((unsigned char) s[i]);
    }
    copy[len] = '\0';
    out = json_stringn(copy, len);
    free(copy);
    return out;
}


static json_t *
check_int(const enc_field_t *f, const char *name, json_t *j,
    enc_validation_t *v)
{
    long long  n, max;

    max = f->max;
    if (f->flags & ENC_NOT_FUTURE) {
        max = today_utc(NULL, 0);
    }

    /* JSON has numbers, not integers: 3.0 is the integer 3 to JSON
       Schema (and to the spec), so a real without a fraction is taken,
       within the doubles that hold integers exactly */
    if (json_is_real(j) && json_real_value(j) >= -9007199254740992.0
        && json_real_value(j) <= 9007199254740992.0
        && json_real_value(j) == (double) (long long) json_real_value(j))
    {
        n = (long long) json_real_value(j);

    } else if (json_is_integer(j)) {
        n = json_integer_value(j);

    } else {
        enc_validation_add(v, name, "must be an integer");
        return NULL;
    }

    if (n < f->min || n > max) {
        if (f->flags & ENC_NOT_FUTURE) {
            enc_validation_add(v, name, "must be from %lld to this year "
                               "(%lld)", f->min, max);
        } else {
            enc_validation_add(v, name, "must be an integer from %lld to "
                               "%lld", f->min, max);
        }
        return NULL;
    }

    return json_is_integer(j) ? json_incref(j) : json_integer(n);
}


/* "must be one of album, ep, single, compilation" */
static void
enum_error(const enc_field_t *f, const char *name, enc_validation_t *v)
{
    char                list[256];
    size_t              n = 0;
    const char *const  *e;

    list[0] = '\0';
    for (e = f->values; *e != NULL && n < sizeof(list); e++) {
        n += (size_t) snprintf(list + n, sizeof(list) - n, "%s%s",
                               e == f->values ? "" : ", ", *e);
    }
    enc_validation_add(v, name, "must be one of %s", list);
}


static json_t *
check_text(const enc_field_t *f, const char *name, json_t *j,
    enc_validation_t *v)
{
    char               today[16], low[37];
    size_t             i;
    const char        *s;
    const char *const *e;

    if (!json_is_string(j)) {
        enc_validation_add(v, name, "must be a string");
        return NULL;
    }
    s = json_string_value(j);

    /* the checks below see the text up to its first NUL: a value with
       more after it would pass them whole */
    if (strlen(s) != json_string_length(j)) {
        enc_validation_add(v, name, "must be text without NUL");
        return NULL;
    }

    switch (f->type) {

    case ENC_UUID:
        if (!enc_uuid_valid(s)) {
            enc_validation_add(v, name, "must be a UUID");
            return NULL;
        }
        for (i = 0; i < 36; i++) {
            low[i] = (char) tolower((unsigned char) s[i]);
        }
        low[36] = '\0';
        return json_string(low);

    case ENC_DATE:
        if (!enc_date_valid(s)) {
            enc_validation_add(v, name, "must be a calendar date YYYY-MM-DD");
            return NULL;
        }
        if (f->flags & ENC_NOT_FUTURE) {
            today_utc(today, sizeof(today));
            if (strcmp(s, today) > 0) {
                enc_validation_add(v, name, "must not be in the future");
                return NULL;
            }
        }
        return json_incref(j);

    case ENC_COUNTRY:
        if (!enc_country_valid(s)) {
            enc_validation_add(v, name, "must be an ISO 3166-1 alpha-2 "
                               "country code such as \"IS\"");
            return NULL;
        }
        return json_incref(j);

    case ENC_ENUM:
        for (e = f->values; *e != NULL; e++) {
            if (strcmp(*e, s) == 0) {
                return json_incref(j);
            }
        }
        enum_error(f, name, v);
        return NULL;

    default:
        enc_validation_add(v, name, "cannot be written");
        return NULL;
    }
}


static json_t *check_value(const enc_field_t *f, const char *name, json_t *j,
    enc_validation_t *v);


static json_t *
check_array(const enc_field_t *f, const char *name, json_t *j,
    enc_validation_t *v)
{
    char      item_name[128];
    size_t    i, k, n;
    json_t   *out, *one;
    int       failed = 0;

    if (!json_is_array(j)) {
        enc_validation_add(v, name, "must be an array");
        return NULL;
    }

    n = json_array_size(j);
    if ((long long) n < f->min || (f->max > 0 && (long long) n > f->max)) {
        length_error(v, name, f->min, f->max, "items");
        return NULL;
    }

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        snprintf(item_name, sizeof(item_name), "%s[%zu]", name, i);
        one = check_value(f->item, item_name, json_array_get(j, i), v);
        if (one == NULL) {
            failed = 1;
            continue;
        }

        if (f->flags & ENC_UNIQUE) {
            for (k = 0; k < json_array_size(out); k++) {
                if (json_equal(json_array_get(out, k), one)) {
                    enc_validation_add(v, item_name, "repeats an earlier "
                                       "item");
                    failed = 1;
                    break;
                }
            }
        }

        json_array_append_new(out, one);
    }

    if (failed) {
        json_decref(out);
        return NULL;
    }

    return out;
}


static json_t *
check_value(const enc_field_t *f, const char *name, json_t *j,
    enc_validation_t *v)
{
    switch (f->type) {

    case ENC_STRING:
    case ENC_SLUG:
        return check_string(f, name, j, v);

    case ENC_INT:
        return check_int(f, name, j, v);

    case ENC_BOOL:
        if (!json_is_boolean(j)) {
            enc_validation_add(v, name, "must be true or false");
            return NULL;
        }
        return json_incref(j);

    case ENC_ARRAY:
        return check_array(f, name, j, v);

    default:
        return check_text(f, name, j, v);
    }
}


/* ---- a whole table ---------------------------------------------------------- */

static void
fill_slot(const enc_field_t *f, json_t *j, void *dst)
{
    enc_value_t  *val;

    if (dst == NULL || f->slot == 0) {
        return;
    }

    val = (enc_value_t *) ((char *) dst + f->slot - 1);
    memset(val, 0, sizeof(*val));

    if (j == NULL) {
        return;
    }

    val->json = j;
    if (json_is_null(j)) {
        val->state = ENC_NULL;
        return;
    }

    val->state = ENC_SET;
    if (json_is_string(j)) {
        val->str = json_string_value(j);
        val->len = json_string_length(j);
    } else if (json_is_integer(j)) {
        val->num = json_integer_value(j);
    } else if (json_is_boolean(j)) {
        val->num = json_is_true(j);
    }
}


static int
is_input(const enc_field_t *f, unsigned mode)
{
    if (f->type == ENC_TIME) {
        return 0;
    }

    return (mode & ENC_BIND_ALL) || (f->flags & ENC_IN)
           || ((mode & ENC_BIND_CREATE) && (f->flags & ENC_IN_CREATE));
}


static const enc_field_t *
find_field(const enc_field_t *fields, const char *name)
{
    for (; fields->name != NULL; fields++) {
        if (strcmp(fields->name, name) == 0) {
            return fields;
        }
    }

    return NULL;
}


int
enc_bind_json(json_t *body, const enc_field_t *fields, unsigned mode,
    json_t **out, void *dst, enc_validation_t *v)
{
    int                 given = 0, failed = 0;
    json_t             *obj, *j, *norm;
    const char         *key;
    const enc_field_t  *f;

    *out = NULL;
    if (body != NULL && !json_is_object(body)) {
        enc_validation_add(v, "", "must be a JSON object");
        return -1;
    }

    obj = json_object();
    if (obj == NULL) {
        return -1;
    }

    if ((mode & ENC_BIND_STRICT) && body != NULL) {
        json_object_foreach(body, key, j) {
            f = find_field(fields, key);
            if (f == NULL || !is_input(f, mode)) {
                enc_validation_add(v, key, "is not a field that can be "
                                   "written here");
                failed = 1;
            }
        }
    }

    for (f = fields; f->name != NULL; f++) {
        if (!is_input(f, mode)) {
            continue;
        }

        j = body != NULL ? json_object_get(body, f->name) : NULL;

        if (j == NULL) {
            if (!(mode & ENC_BIND_CREATE)) {
                continue;
            }
            if (f->flags & ENC_REQUIRED) {
                enc_validation_add(v, f->name, "is required");
                failed = 1;
                continue;
            }
            norm = f->def != NULL ? json_loads(f->def, JSON_DECODE_ANY, NULL)
                                  : json_null();

        } else if (json_is_null(j)) {
            if (!(f->flags & ENC_NULLABLE)) {
                enc_validation_add(v, f->name, (f->flags & ENC_REQUIRED)
                                   ? "is required" : "cannot be null");
                failed = 1;
                continue;
            }
            given++;
            norm = json_null();

        } else {
            given++;
            norm = check_value(f, f->name, j, v);
            if (norm == NULL) {
                failed = 1;
                continue;
            }
        }

        if (norm == NULL || json_object_set_new(obj, f->name, norm) != 0) {
            enc_validation_add(v, f->name, "could not be processed");
            failed = 1;
        }
    }

    if ((mode & ENC_BIND_PATCH) && given == 0 && !failed) {
        enc_validation_add(v, "", "names no field to change");
        failed = 1;
    }

    /* the fields that passed, even when others failed: cross-field rules
       of the caller still run, and one 422 names every problem */
    for (f = fields; f->name != NULL; f++) {
        fill_slot(f, json_object_get(obj, f->name), dst);
    }

    *out = obj;
    return failed ? -1 : 0;
}


/* A query parameter's text as the JSON value its field expects, or NULL
   after adding the error. */
static json_t *
query_value(const enc_field_t *f, const char *name, const char *s,
    enc_validation_t *v)
{
    char        *end;
    json_t      *j;
    long long    n;

    switch (f->type) {

    case ENC_INT:
        if (s[0] == '\0' || s[0] == '+' || isspace((unsigned char) s[0])) {
            break;
        }
        n = strtoll(s, &end, 10);
        if (*end != '\0' || n < -999999999999LL || n > 999999999999LL) {
            break;
        }
        return json_integer(n);

    case ENC_BOOL:
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
            return json_boolean(s[0] == 't');
        }
        enc_validation_add(v, name, "must be true or false");
        return NULL;

    default:
        j = json_string(s);
        if (j == NULL) {
            enc_validation_add(v, name, "must be UTF-8 text");
        }
        return j;
    }

    if (f->flags & ENC_NOT_FUTURE) {
        enc_validation_add(v, name, "must be an integer from %lld to this "
                           "year", f->min);
    } else {
        enc_validation_add(v, name, "must be an integer from %lld to %lld",
                           f->min, f->max);
    }
    return NULL;
}


static json_t *
query_array(const enc_field_t *f, const char *s, enc_validation_t *v)
{
    char        item_name[128];
    size_t      i = 0;
    json_t     *raw, *one, *norm;
    const char *p, *comma;

    raw = json_array();
    if (raw == NULL) {
        return NULL;
    }

    for (p = s; ; p = comma + 1, i++) {
        comma = strchr(p, ',');
        one = json_stringn(p, comma ? (size_t) (comma - p) : strlen(p));
        snprintf(item_name, sizeof(item_name), "%s[%zu]", f->name, i);
        if (one == NULL) {
            enc_validation_add(v, item_name, "must be UTF-8 text");
            json_decref(raw);
            return NULL;
        }
        if (f->item->type == ENC_INT || f->item->type == ENC_BOOL) {
            norm = query_value(f->item, item_name, json_string_value(one), v);
            json_decref(one);
            if (norm == NULL) {
                json_decref(raw);
                return NULL;
            }
            one = norm;
        }
        json_array_append_new(raw, one);
        if (comma == NULL) {
            break;
        }
    }

    norm = check_array(f, f->name, raw, v);
    json_decref(raw);
    return norm;
}


int
enc_bind_query(const char *(*get)(void *arg, const char *name), void *arg,
    const enc_field_t *fields, json_t **out, void *dst, enc_validation_t *v)
{
    int                 failed = 0;
    json_t             *obj, *raw, *norm;
    const char         *s;
    const enc_field_t  *f;

    *out = NULL;
    obj = json_object();
    if (obj == NULL) {
        return -1;
    }

    for (f = fields; f->name != NULL; f++) {
        s = get(arg, f->name);

        if (s == NULL) {
            if (f->flags & ENC_REQUIRED) {
                enc_validation_add(v, f->name, "is required");
                failed = 1;
            }
            continue;
        }

        if (f->type == ENC_ARRAY) {
            norm = query_array(f, s, v);

        } else {
            raw = query_value(f, f->name, s, v);
            if (raw == NULL) {
                failed = 1;
                continue;
            }
            norm = check_value(f, f->name, raw, v);
            json_decref(raw);
        }

        if (norm == NULL) {
            failed = 1;
            continue;
        }

        json_object_set_new(obj, f->name, norm);
    }

    for (f = fields; f->name != NULL; f++) {
        fill_slot(f, json_object_get(obj, f->name), dst);
    }

    *out = obj;
    return failed ? -1 : 0;
}
