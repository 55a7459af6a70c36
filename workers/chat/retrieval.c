/*
 * retrieval.c — the answer without a language model (reply.h): it says
 * plainly that none is configured, then lists the grounding sources by
 * type, best first, numbered as the sources are; the engine streams it a
 * word every retrieval.word_ms, as a model would.  Its own words are
 * ASCII: only the titles may be anything else.
 *
 * The answer is Markdown (clients render an assistant's message), and the
 * titles and types are the catalog's and users' text: each of their
 * characters that Markdown could read as syntax is backslash-escaped, so
 * a post titled "[Reset your password](https://evil.example)" is shown as
 * written, never as a link, an image, HTML or emphasis.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prompt.h"
#include "reply.h"


static const char  intro[] =
    "No language model is configured on this server, so this answer lists"
    " what the catalog holds:";

static const char  nothing[] =
    "No language model is configured on this server, so this answer can"
    " only list what the catalog holds, and nothing in it matched your"
    " question. Try other words: an artist's, an album's or a track's"
    " name.";


/* Markdown's syntax characters, escaped in text that is not ours: links,
   images and autolinks ("[", "(", "<", ":" of a scheme, "." of www.),
   HTML and entities, emphasis, code, headings, lists, tables,
   strikethrough */
static const char  md_special[] = "\\`*_{}[]()<>#+-.!|~:&";


/* text on one line, spaces collapsed, bounded, Markdown escaped */
static void
put_text(FILE *f, const char *text)
{
    size_t       len, i;
    int          space;

    len = chat_prompt_cut(text, strlen(text), CHAT_PROMPT_TITLE_MAX);
    space = 0;
    for (i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n'
            || text[i] == '\r')
        {
            space = 1;
            continue;
        }
        if (space) {
            fputc(' ', f);
            space = 0;
        }
        if (strchr(md_special, text[i]) != NULL) {
            fputc('\\', f);
        }
        fputc(text[i], f);
    }
}


static void
put_title(FILE *f, const char *title)
{
    if (title == NULL || title[0] == '\0') {
        fputs("(untitled)", f);
        return;
    }

    put_text(f, title);
}


char *
chat_retrieval_text(json_t *sources)
{
    FILE        *f;
    char        *buf, *done;
    size_t       size, n, i, j, count, groups;
    const char  *type, *t;

    n = json_is_array(sources) ? json_array_size(sources) : 0;
    if (n > CHAT_PROMPT_SOURCES_MAX) {
        n = CHAT_PROMPT_SOURCES_MAX;
    }
    if (n == 0) {
        return strdup(nothing);
    }

    done = calloc(n, 1);
    f = open_memstream(&buf, &size);
    if (done == NULL || f == NULL) {
        free(done);
        if (f) {
            fclose(f);
            free(buf);
        }
        return NULL;
    }

    fputs(intro, f);

    /* a group a type, in the order of each type's best source */
    groups = 0;
    for (i = 0; i < n; i++) {
        if (done[i]) {
            continue;
        }
        type = json_string_value(json_object_get(json_array_get(sources, i),
                                                 "type"));
        type = type && type[0] ? type : "item";

        count = 0;
        for (j = i; j < n; j++) {
            t = json_string_value(json_object_get(json_array_get(sources, j),
                                                  "type"));
            t = t && t[0] ? t : "item";
            if (strcmp(t, type) == 0) {
                count++;
            }
        }

        fprintf(f, "%s %zu ", groups ? ";" : "", count);
        put_text(f, type);
        fputs(count == 1 ? " (" : "s (", f);

        for (j = i, count = 0; j < n; j++) {
            t = json_string_value(json_object_get(json_array_get(sources, j),
                                                  "type"));
            t = t && t[0] ? t : "item";
            if (strcmp(t, type) != 0) {
                continue;
            }
            done[j] = 1;
            fputs(count++ ? ", " : "", f);
            put_title(f, json_string_value(
                             json_object_get(json_array_get(sources, j),
                                             "title")));
            fprintf(f, " [%zu]", j + 1);
        }
        fputc(')', f);
        groups++;
    }
    fputc('.', f);

    free(done);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}


int
chat_retrieval_next(chat_reply_t *r)
{
    size_t       start, end, len;
    const char  *s = r->text;

    len = strlen(s);
    start = r->pos;
    if (start >= len || atomic_load(&r->cancel)) {
        return 1;
    }

    /* a word and the spaces after it */
    for (end = start; end < len && s[end] != ' '; end++) {
        /* void */
    }
    while (end < len && s[end] == ' ') {
        end++;
    }
    r->pos = end;

    if (chat_reply_token(r, s + start, end - start) != 0) {
        return 1;
    }
    return r->pos >= len;
}
