/*
 * encore-auth — accounts, passwords, access tokens (ES256 JWT), refresh
 * tokens and the public JWKS.
 *
 * Threading model: libencore's enc_worker_main owns every thread.  init
 * (auth_app_new) runs once in the main thread before HTTP starts and
 * builds the only shared state, auth_app_t, which handlers afterwards only
 * read; each handler runs on a libmicrohttpd pool thread with that
 * thread's own PostgreSQL connection (enc_pg_thread).  The outbox relay
 * publishes encore.auth.users on its own thread.  There is no consumer.
 *
 * Commands (encore-auth rotate-key | remove-key KID | bootstrap-admin) run
 * instead of the server, see cli.c.
 */

#include "auth.h"
#include "verify.h"
#include "worker.h"


static int
auth_init(const enc_config_t *c, void **app)
{
    if (auth_app_new(c, (auth_app_t **) app) != 0) {
        return -1;
    }

    if (auth_verify_init(c, *app) != 0) {
        auth_app_free(*app);
        *app = NULL;
        return -1;
    }

    return 0;
}


static void
auth_fini(void *app)
{
    auth_verify_fini();
    auth_app_free(app);
}


/* "/api/v1/users/me" is listed as a literal, which the router prefers to
   "/api/v1/users/{id}".  "/internal/verify" is for nginx's auth_request
   through an `internal` location only: no public route of the edge
   forwards to it (verify.c). */
static const enc_route_t  auth_routes[] = {
    { "POST", "/api/v1/auth/register", auth_h_register,
      ENC_ROUTE_JSON_BODY, "auth_register" },
    { "POST", "/api/v1/auth/login", auth_h_login,
      ENC_ROUTE_JSON_BODY, "auth_login" },
    { "POST", "/api/v1/auth/refresh", auth_h_refresh,
      ENC_ROUTE_JSON_BODY, "auth_refresh" },
    { "POST", "/api/v1/auth/logout", auth_h_logout,
      ENC_ROUTE_JSON_BODY, "auth_logout" },
    { "GET", "/api/v1/auth/me", auth_h_me, ENC_ROUTE_USER, "auth_me" },
    { "GET", "/.well-known/jwks.json", auth_h_jwks, 0, "jwks" },
    { "GET", "/api/v1/users", auth_h_users_list, ENC_ROUTE_ADMIN,
      "users_list" },
    { "PATCH", "/api/v1/users/me", auth_h_me_patch,
      ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY, "users_me_patch" },
    { "DELETE", "/api/v1/users/me", auth_h_me_delete,
      ENC_ROUTE_USER | ENC_ROUTE_JSON_BODY, "users_me_delete" },
    { "GET", "/api/v1/users/{id}", auth_h_user_get, 0, "users_get" },
    { "PATCH", "/api/v1/users/{id}", auth_h_user_admin_patch,
      ENC_ROUTE_ADMIN | ENC_ROUTE_JSON_BODY, "users_patch" },
    { "GET", "/internal/verify", auth_h_verify, 0, "internal_verify" },
    { NULL, NULL, NULL, 0, NULL }
};


static const enc_entity_t *const  auth_entities[] = { &auth_user, NULL };


static const enc_worker_def_t  auth_worker = {
    .name = "auth",
    .routes = auth_routes,
    .statements = auth_statements,
    .entities = auth_entities,
    .conf_keys = auth_conf_keys,
    .consumes = NULL,
    .on_event = NULL,
    .init = auth_init,
    .command = auth_command,
    .commands = auth_commands,
    .fini = auth_fini,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &auth_worker);
}
