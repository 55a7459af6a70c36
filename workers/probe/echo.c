/*
 * echo: GET /echo-identity answers the identity headers the request
 * carried, so the integration suite can see what the edge forwarded to a
 * worker (tests/integration/test_jwt_edge.py routes it in a test-only
 * include; a deployment never does).
 *
 * Answer: {"headers": {"<name>": "<value>" | null, ...}} for every name of
 * echo_names below; null when the worker did not receive that header.
 */

#include <jansson.h>

#include "echo.h"


/* the identity headers and the spoofed ones the tests send */
static const char *const  echo_names[] = {
    "X-Encore-User-Id",
    "X-Encore-User-Role",
    "X-Encore-User-Name",
    "X-Encore-Anything",
    "X-Encore-Admin",
    NULL
};


void
probe_echo_identity_get(enc_req_t *req, enc_resp_t *resp, void *app)
{
    size_t       i;
    json_t      *body, *headers;
    const char  *v;

    body = json_object();
    headers = json_object();

    if (body == NULL || headers == NULL
        || json_object_set_new(body, "headers", headers) != 0)
    {
        json_decref(body);
        enc_resp_problem(resp, 500, "Internal Server Error", "out of memory");
        return;
    }

    for (i = 0; echo_names[i] != NULL; i++) {
        v = enc_req_header(req, echo_names[i]);

        if (json_object_set_new(headers, echo_names[i],
                                v != NULL ? json_string(v) : json_null())
            != 0)
        {
            json_decref(body);
            enc_resp_problem(resp, 500, "Internal Server Error",
                             "out of memory");
            return;
        }
    }

    enc_resp_json(resp, 200, body);
}
