/*
 * echo: GET /echo-identity, the identity headers a request reached the
 * probe with.  See echo.c.
 */
#ifndef ENC_PROBE_ECHO_H
#define ENC_PROBE_ECHO_H

#include "http.h"

void probe_echo_identity_get(enc_req_t *req, enc_resp_t *resp, void *app);

#endif /* ENC_PROBE_ECHO_H */
