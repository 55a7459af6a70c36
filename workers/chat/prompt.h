/*
 * prompt: what the model is sent — a system prompt holding the grounding
 * sources, the session's history trimmed to a budget, and the question.
 *
 * The sources' text comes from the catalog and from users' posts: it is
 * data, never instructions.  It goes into the system prompt as one JSON
 * object a line, between markers carrying a random boundary the text
 * cannot know, after instructions saying that nothing between them can
 * change the rules.
 */
#ifndef CHAT_PROMPT_H
#define CHAT_PROMPT_H

#include <stddef.h>
#include <jansson.h>

#include "engine.h"

#define CHAT_PROMPT_SOURCES_MAX   20     /* sources past this are left out */
#define CHAT_PROMPT_SNIPPET_MAX   600    /* characters of a source's text */
#define CHAT_PROMPT_TITLE_MAX     300
#define CHAT_PROMPT_BOUNDARY_LEN  16     /* hex digits */

/* CHAT_PROMPT_BOUNDARY_LEN random hex digits and a NUL into out */
void chat_prompt_boundary(char *out);

/* The newest pairs of history (a user message and the assistant's answer
   after it) whose contents fit budget characters together, oldest first,
   as [{role, content}] (a new reference; NULL only when out of memory).
   A question left unanswered, and anything neither a user's nor an
   assistant's string, is left out, so roles alternate and the question
   that follows is the only user message in a row. */
json_t *chat_prompt_history(json_t *history, size_t budget);

/* The system prompt for these sources (borrowed; may be NULL or empty):
   malloc'd text, NULL when out of memory. */
char *chat_prompt_system(json_t *sources, const char *boundary);

/* The whole messages array: system, trimmed history, the question (a new
   reference; NULL when out of memory). */
json_t *chat_prompt_messages(const chat_prompt_t *p, size_t budget,
    const char *boundary);

/* A search snippet (HTML: <mark>, escaped entities) as plain text on one
   line, at most max characters (malloc'd). */
char *chat_prompt_plain(const char *html, size_t max);

/* s cut to at most max characters (UTF-8 code points), never inside one:
   the byte length kept */
size_t chat_prompt_cut(const char *s, size_t len, size_t max);

#endif /* CHAT_PROMPT_H */
