/*
 * encore-edge-agent — the revocation feed of one edge host (agent.h).
 * A worker without a database: config, logs, /healthz, /readyz and
 * /metrics from workers/lib, the feed on a thread of its own.
 */

#include "agent.h"
#include "worker.h"


static const enc_route_t  routes[] = {
    { NULL, NULL, NULL, 0, NULL }
};


static int
init(const enc_config_t *c, void **app)
{
    *app = NULL;
    if (agent_start(c) != 0) {
        return -1;
    }
    enc_worker_set_ready_check(agent_ready, NULL);
    return 0;
}


static void
fini(void *app)
{
    (void) app;
    agent_stop();
}


int
main(int argc, char **argv)
{
    static const enc_worker_def_t  def = {
        .name = "edge-agent",
        .routes = routes,
        .conf_keys = agent_conf_keys,
        .init = init,
        .fini = fini,
        .no_database = 1,
    };

    return enc_worker_main(argc, argv, &def);
}
