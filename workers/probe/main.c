/*
 * encore-probe: a test worker exercising the outbox and the consumer end
 * to end for the integration suite.  Not deployed.
 *
 * Threading: libencore's (see workers/lib/README.md) — HTTP handlers on the
 * libmicrohttpd pool, each on its thread's connection; the outbox relay and
 * the consumer each on their own thread and connection.  The probe keeps no
 * state of its own.
 *
 * It publishes encore.probe.writes from POST /writes and consumes the same
 * topic into `seen`, so a test can compare what was acknowledged with what
 * was applied (exactly once).
 */

#include <stddef.h>

#include "worker.h"
#include "writes.h"


static const char *const  probe_consumes[] = { PROBE_TOPIC, NULL };

static const enc_worker_def_t  probe_def = {
    .name = "probe",
    .routes = probe_routes,
    .statements = probe_statements,
    .conf_keys = NULL,
    .consumes = probe_consumes,
    .on_event = probe_on_event,
    .init = NULL,
    .command = NULL,
    .fini = NULL,
};


int
main(int argc, char **argv)
{
    return enc_worker_main(argc, argv, &probe_def);
}
