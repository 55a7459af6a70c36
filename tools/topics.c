/*
 * encore-topics — creates the entity topics before anything produces to
 * them, with the policy the broker's auto-creation would not give them
 * (topics.h).  Run by auto/stack after Kafka starts:
 *
 *   encore-topics [-p PARTITIONS] [-c NAME=VALUE]... BROKERS TOPIC...
 *
 * Not a worker (tools/, Makefile): it serves nothing, and exits 0 when every topic exists
 * with the configs, 1 (saying why on stderr) when one could not be made,
 * 2 on a usage error.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topics.h"


#define CONFIGS_MAX  16


static int
usage(void)
{
    fprintf(stderr, "usage: encore-topics [-p PARTITIONS] [-c NAME=VALUE]..."
            " BROKERS TOPIC...\n");
    return 2;
}


int
main(int argc, char **argv)
{
    int          opt, partitions = 3, n = 0;
    char        *eq, err[512];
    const char  *configs[2 * CONFIGS_MAX + 1];

    while ((opt = getopt(argc, argv, "p:c:")) != -1) {
        switch (opt) {
        case 'p':
            partitions = atoi(optarg);
            if (partitions < 1 || partitions > 1000) {
                return usage();
            }
            break;
        case 'c':
            eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg || n == 2 * CONFIGS_MAX) {
                return usage();
            }
            *eq = '\0';
            configs[n++] = optarg;
            configs[n++] = eq + 1;
            break;
        default:
            return usage();
        }
    }
    configs[n] = NULL;

    if (argc - optind < 2) {
        return usage();
    }
    /* argv is NULL-terminated: the topics are argv[optind + 1 ...] */
    if (enc_topics_ensure(argv[optind], (const char *const *) argv + optind + 1,
                          partitions, configs, 10000, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "encore-topics: %s\n", err);
        return 1;
    }
    return 0;
}
