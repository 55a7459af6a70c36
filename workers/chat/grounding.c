/*
 * grounding.c — the catalog items a question is about, from the search
 * worker (CONTRACT.md, Search), for the prompt and the reply's sources.
 *
 * Search matches words, so the question is shaped first: "what albums by
 * Iron Maiden are there?" has one word that says what is asked for
 * ("albums": the type filter album) and two that say which ("iron
 * maiden"); the rest (what, by, are, there) would only find titles that
 * happen to hold them.  Search indexes an album's artist with it, so
 * "iron maiden" with type=album finds Iron Maiden's albums.
 *
 * Search is a help, not a need: not configured, down, slow (past
 * search.timeout_ms) or saying nonsense, the reply goes on without
 * sources, and the failure is logged.  The request runs on the handler's
 * pool thread with a short deadline (libcurl's easy interface): the wait
 * is bounded and small next to the model's.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "chat.h"


/* words that ask, link or point, not name: dropped from the query */
static const char *const  stop_words[] = {
    "a", "about", "all", "also", "am", "an", "and", "any", "anything", "are",
    "as", "at", "be", "been", "by", "can", "could", "did", "do", "does",
    "for", "from", "give", "got", "has", "have", "he", "her", "here", "his",
    "how", "i", "in", "is", "it", "its", "know", "list", "many", "me", "made",
    "make", "makes", "more", "much", "my", "name", "of", "on", "or", "other",
    "please", "recorded", "released", "say", "she", "show", "some", "tell",
    "than", "that", "the", "their", "them", "there", "these", "they", "this",
    "those", "to", "was", "we", "were", "what", "whats", "which", "who",
    "whom", "whose", "why", "will", "with", "would", "wrote", "you", "your",
    NULL
};

/* words that say what kind of item is asked for: search's type filter */
static const struct {
    const char  *word;
    const char  *type;
} kind_words[] = {
    { "album", "album" }, { "albums", "album" }, { "record", "album" },
    { "records", "album" }, { "lp", "album" }, { "lps", "album" },
    { "discography", "album" },
    { "track", "track" }, { "tracks", "track" }, { "song", "track" },
    { "songs", "track" }, { "tune", "track" }, { "tunes", "track" },
    { "artist", "artist" }, { "artists", "artist" }, { "band", "artist" },
    { "bands", "artist" }, { "group", "artist" }, { "groups", "artist" },
    { "musician", "artist" }, { "musicians", "artist" },
    { "singer", "artist" }, { "singers", "artist" },
    { "post", "post" }, { "posts", "post" }, { "article", "post" },
    { "articles", "post" },
    { NULL, NULL }
};


static int
is_stop_word(const char *w)
{
    int  i;

    for (i = 0; stop_words[i] != NULL; i++) {
        if (strcmp(w, stop_words[i]) == 0) {
            return 1;
        }
    }
    return 0;
}


static const char *
kind_of(const char *w)
{
    int  i;

    for (i = 0; kind_words[i].word != NULL; i++) {
        if (strcmp(w, kind_words[i].word) == 0) {
            return kind_words[i].type;
        }
    }
    return NULL;
}


/* Words are runs of letters and digits (any byte >= 0x80 counts as a
   letter: accented names stay whole; search folds them), lower-cased;
   an apostrophe inside a word is dropped ("what's" -> "whats").  The
   first kind word is the filter; several different kinds: no filter. */
void
chat_query_shape(const char *question, chat_query_t *q)
{
    int            kinds = 0;
    char           word[128];
    size_t         n, len = 0;
    const char    *kind, *p = question;
    unsigned char  c;

    q->q[0] = '\0';
    q->type = NULL;

    while (*p != '\0') {
        n = 0;
        for ( ;; p++) {
            c = (unsigned char) *p;
            if (isalnum(c) || c >= 0x80) {
                if (n < sizeof(word) - 1) {
                    word[n++] = (char) tolower(c);
                }
            } else if (c == '\'' && n > 0
                       && (isalnum((unsigned char) p[1]) || p[1] & 0x80))
            {
                continue;
            } else {
                break;
            }
        }
        word[n] = '\0';
        if (*p != '\0') {
            p++;
        }
        if (n == 0 || is_stop_word(word)) {
            continue;
        }

        kind = kind_of(word);
        if (kind != NULL) {
            if (q->type == NULL) {
                q->type = kind;
            } else if (strcmp(q->type, kind) != 0) {
                kinds++;
            }
            continue;
        }

        if (len + n + 2 > sizeof(q->q)) {
            break;
        }
        if (len > 0) {
            q->q[len++] = ' ';
        }
        memcpy(q->q + len, word, n + 1);
        len += n;
    }

    if (kinds > 0) {
        q->type = NULL;
    }
}


/* ---- the search request ------------------------------------------------ */

#define SEARCH_BODY_MAX  (256 * 1024)

typedef struct {
    char    *buf;
    size_t   len;
    int      too_big;
} body_t;


static size_t
body_write(char *data, size_t size, size_t nmemb, void *arg)
{
    char    *p;
    body_t  *b = arg;
    size_t   n = size * nmemb;

    if (b->len + n > SEARCH_BODY_MAX) {
        b->too_big = 1;
        return 0;
    }
    p = realloc(b->buf, b->len + n + 1);
    if (p == NULL) {
        return 0;
    }
    b->buf = p;
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';

    return n;
}


/* the snippet's text: search marks the matched words with <mark> and
   escapes the rest as HTML; the prompt wants plain text */
static char *
plain_text(const char *html)
{
    char        *out, *o;
    const char  *p;
    size_t       i;
    static const struct { const char *ent; char c; } ents[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
        { "&quot;", '"' }, { "&#39;", '\'' }, { "&#x27;", '\'' },
        { NULL, 0 }
    };

    out = malloc(strlen(html) + 1);
    if (out == NULL) {
        return NULL;
    }

    for (p = html, o = out; *p != '\0'; ) {
        if (*p == '<') {
            while (*p != '\0' && *p != '>') {
                p++;
            }
            if (*p == '>') {
                p++;
            }
            continue;
        }
        if (*p == '&') {
            for (i = 0; ents[i].ent != NULL; i++) {
                if (strncmp(p, ents[i].ent, strlen(ents[i].ent)) == 0) {
                    break;
                }
            }
            if (ents[i].ent != NULL) {
                *o++ = ents[i].c;
                p += strlen(ents[i].ent);
                continue;
            }
        }
        *o++ = *p++;
    }
    *o = '\0';

    return out;
}


/* search's items as sources: [{type, id, title, snippet}] */
static json_t *
sources_of(json_t *answer)
{
    char        *snippet;
    size_t       i;
    json_t      *items, *item, *out, *src;
    const char  *type, *id, *title, *html;

    out = json_array();
    items = json_object_get(answer, "items");
    if (out == NULL || !json_is_array(items)) {
        return out;
    }

    json_array_foreach(items, i, item) {
        type = json_string_value(json_object_get(item, "type"));
        id = json_string_value(json_object_get(item, "id"));
        title = json_string_value(json_object_get(item, "title"));
        html = json_string_value(json_object_get(item, "snippet"));
        if (type == NULL || id == NULL || title == NULL) {
            continue;
        }
        snippet = plain_text(html != NULL ? html : "");
        src = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "id", id,
                        "title", title, "snippet", snippet ? snippet : "");
        free(snippet);
        if (src == NULL || json_array_append_new(out, src) != 0) {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


json_t *
chat_ground(const chat_app_t *app, const char *question,
    const char *request_id)
{
    long                code = 0;
    char                url[1024], header[200], *q = NULL;
    CURL               *curl = NULL;
    body_t              body = { NULL, 0, 0 };
    json_t             *answer, *sources = NULL;
    CURLcode            rc;
    const char         *base;
    chat_query_t        shaped;
    struct curl_slist  *headers = NULL;

    chat_query_shape(question, &shaped);
    if (app->search_url[0] == '\0' || shaped.q[0] == '\0') {
        return json_array();
    }

    curl = curl_easy_init();
    if (curl == NULL || (q = curl_easy_escape(curl, shaped.q, 0)) == NULL) {
        goto failed;
    }

    /* unix:/path: the socket, any host name */
    base = app->search_url;
    if (strncmp(base, "unix:", 5) == 0) {
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, base + 5);
        base = "http://search";
    }
    snprintf(url, sizeof(url), "%s/api/v1/search?q=%s&limit=%ld%s%s", base, q,
             app->search_results, shaped.type ? "&type=" : "",
             shaped.type ? shaped.type : "");

    snprintf(header, sizeof(header), "X-Request-Id: %s",
             request_id ? request_id : "");
    headers = curl_slist_append(NULL, header);

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, app->search_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, app->search_timeout_ms);
    /* threads: no signals for timeouts */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);

    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code != 200) {
        enc_log_warn("chat: search answered %ld (%s); replying without "
                     "sources", code, body.too_big ? "answer too large"
                                                   : curl_easy_strerror(rc));
        goto failed;
    }

    answer = json_loadb(body.buf ? body.buf : "", body.len, 0, NULL);
    sources = sources_of(answer);
    json_decref(answer);

failed:

    curl_slist_free_all(headers);
    curl_free(q);
    if (curl != NULL) {
        curl_easy_cleanup(curl);
    }
    free(body.buf);

    return sources != NULL ? sources : json_array();
}
