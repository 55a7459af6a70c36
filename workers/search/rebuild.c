/*
 * rebuild.c — `encore-search rebuild`: a fresh index built from the
 * beginning of the entity topics and swapped in while search answers.
 *
 * The entity topics are compacted (auto/stack, encore-topics): each keeps
 * the latest record of every key, deletions included (their value is
 * {"id"}, not an empty tombstone), so reading them from the beginning
 * gives every entity's last state.
 *
 *   1. On a private session, temporary tables named like the index's
 *      (artists, albums, tracks, posts, docs, words, with the same
 *      triggers) shadow the live ones: the worker's own event statements
 *      and triggers, prepared on first use, build the fresh index there.
 *   2. Every partition of the four topics is read from its beginning to
 *      the end it had when the rebuild began (its high watermark), in
 *      transactions of REBUILD_BATCH events: no inbox (a state applies
 *      when newer, so a record read twice changes nothing).
 *   3. The fresh tables are copied into permanent <name>_next tables,
 *      outside any lock on the live ones: search answers, the live
 *      consumer goes on.
 *   4. The swap: one transaction renames the live tables away and the
 *      fresh ones in, gives them the triggers and drops the old ones.
 *      Queries and the consumer wait for it (a moment) and then plan
 *      their statements against the new tables.
 *   5. What the live consumer applied between step 2's ends and the
 *      swap went to the old tables: the rebuild reads on from step 2's
 *      ends to the ends after the swap and applies it again, through the
 *      live path (versions make the order of the two writers moot).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "search.h"


#define REBUILD_TOPICS      4
#define REBUILD_PARTS_MAX   256
#define REBUILD_BATCH       500


/* the index's tables, in the order they are copied */
static const char *const  tables[] = {
    "artists", "albums", "tracks", "posts", "docs", "words", NULL
};

/* the triggers a fresh table needs (001_search.sql, 002_bounded.sql) */
static const char *const  triggers[] = {
    "CREATE TRIGGER artists_after_write AFTER INSERT OR UPDATE ON %sartists"
    " FOR EACH ROW EXECUTE FUNCTION search.artists_after_write()",
    "CREATE TRIGGER albums_after_write AFTER INSERT OR UPDATE ON %salbums"
    " FOR EACH ROW EXECUTE FUNCTION search.albums_after_write()",
    "CREATE TRIGGER tracks_after_write AFTER INSERT OR UPDATE ON %stracks"
    " FOR EACH ROW EXECUTE FUNCTION search.doc_after_write('track')",
    "CREATE TRIGGER posts_after_write AFTER INSERT OR UPDATE ON %sposts"
    " FOR EACH ROW EXECUTE FUNCTION search.doc_after_write('post')",
    "CREATE TRIGGER posts_words AFTER INSERT OR UPDATE OF body, published,"
    " deleted ON %sposts FOR EACH ROW WHEN (NEW.published AND NOT NEW.deleted)"
    " EXECUTE FUNCTION search.posts_words()",
    "CREATE TRIGGER docs_words AFTER INSERT OR UPDATE OF title, context"
    " ON %sdocs FOR EACH ROW EXECUTE FUNCTION search.docs_words()",
    NULL
};


typedef struct {
    char     topic[64];
    int32_t  partition;
    int64_t  from;          /* first offset to read */
    int64_t  to;            /* the end: stop before it */
    int      done;
} part_t;

typedef struct {
    part_t   parts[REBUILD_PARTS_MAX];
    int      n;
    long     applied;
} span_t;


static int
sql(enc_pg_t *pg, const char *text)
{
    int        ok;
    PGresult  *res;

    res = enc_pg_exec_sql(pg, text, 0, NULL);
    ok = res != NULL && (PQresultStatus(res) == PGRES_COMMAND_OK
                         || PQresultStatus(res) == PGRES_TUPLES_OK);
    if (!ok) {
        fprintf(stderr, "encore-search: rebuild: %s: %s\n", text,
                res != NULL ? PQresultErrorMessage(res) : "connection lost");
    }
    PQclear(res);
    return ok ? 0 : -1;
}


/* every statement of a format with one %s, for each table or trigger */
static int
each(enc_pg_t *pg, const char *const *fmts, const char *arg)
{
    char  buf[512];

    for (; *fmts != NULL; fmts++) {
        snprintf(buf, sizeof(buf), *fmts, arg);
        if (sql(pg, buf) != 0) {
            return -1;
        }
    }
    return 0;
}


/* the partitions of the topics and their ends now; from = the previous
   span's ends (or the beginning) */
static int
span_ends(rd_kafka_t *rk, const span_t *prev, span_t *s)
{
    int                              i, j, k;
    int64_t                          low, high;
    rd_kafka_resp_err_t              e;
    const struct rd_kafka_metadata  *md;

    s->n = 0;
    s->applied = 0;
    for (i = 0; i < REBUILD_TOPICS; i++) {
        rd_kafka_topic_t  *t = rd_kafka_topic_new(rk, search_topics[i], NULL);

        e = rd_kafka_metadata(rk, 0, t, &md, 10000);
        rd_kafka_topic_destroy(t);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "encore-search: rebuild: metadata of %s: %s\n",
                    search_topics[i], rd_kafka_err2str(e));
            return -1;
        }
        for (j = 0; md->topic_cnt == 1 && j < md->topics[0].partition_cnt
                    && s->n < REBUILD_PARTS_MAX; j++)
        {
            part_t  *p = &s->parts[s->n];

            e = rd_kafka_query_watermark_offsets(
                    rk, search_topics[i], md->topics[0].partitions[j].id,
                    &low, &high, 10000);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "encore-search: rebuild: offsets of %s: %s\n",
                        search_topics[i], rd_kafka_err2str(e));
                rd_kafka_metadata_destroy(md);
                return -1;
            }
            snprintf(p->topic, sizeof(p->topic), "%s", search_topics[i]);
            p->partition = md->topics[0].partitions[j].id;
            p->from = low;
            p->to = high;
            for (k = 0; prev != NULL && k < prev->n; k++) {
                if (strcmp(prev->parts[k].topic, p->topic) == 0
                    && prev->parts[k].partition == p->partition
                    && prev->parts[k].to > low)
                {
                    p->from = prev->parts[k].to;
                }
            }
            s->n++;
        }
        rd_kafka_metadata_destroy(md);
    }
    return 0;
}


static part_t *
part_of(span_t *s, const char *topic, int32_t partition)
{
    int  i;

    for (i = 0; i < s->n; i++) {
        if (s->parts[i].partition == partition
            && strcmp(s->parts[i].topic, topic) == 0)
        {
            return &s->parts[i];
        }
    }
    return NULL;
}


/* reads the span's records and applies them on pg, REBUILD_BATCH to a
   transaction */
static int
apply_span(rd_kafka_t *rk, enc_pg_t *pg, span_t *s)
{
    int                                i, left = 0, in_tx = 0, rc = 0;
    char                               err[256];
    part_t                            *p;
    enc_event_msg_t                    em;
    rd_kafka_message_t                *m;
    rd_kafka_headers_t                *hdrs;
    rd_kafka_topic_partition_list_t   *list;

    list = rd_kafka_topic_partition_list_new(s->n > 0 ? s->n : 1);
    for (i = 0; i < s->n; i++) {
        s->parts[i].done = s->parts[i].from >= s->parts[i].to;
        if (!s->parts[i].done) {
            rd_kafka_topic_partition_list_add(list, s->parts[i].topic,
                                              s->parts[i].partition)->offset
                = s->parts[i].from;
            left++;
        }
    }
    if (left > 0 && rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "encore-search: rebuild: assign failed\n");
        left = 0;
        rc = -1;
    }
    rd_kafka_topic_partition_list_destroy(list);

    while (left > 0 && rc == 0) {
        m = rd_kafka_consumer_poll(rk, 10000);
        if (m == NULL) {
            fprintf(stderr, "encore-search: rebuild: no records for 10 s with"
                    " %d partitions unfinished\n", left);
            rc = -1;
            break;
        }
        p = m->rkt != NULL
            ? part_of(s, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* the end of a partition whose last records were compacted
               away: done too */
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (p != NULL && !p->done && m->offset >= p->to) {
                    p->done = 1;
                    left--;
                }
            } else {
                fprintf(stderr, "encore-search: rebuild: %s\n",
                        rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (p == NULL || p->done || m->offset >= p->to
            || m->offset < p->from)
        {
            rd_kafka_message_destroy(m);
            continue;
        }

        if (!in_tx) {
            if (enc_pg_begin(pg) != 0) {
                rd_kafka_message_destroy(m);
                rc = -1;
                break;
            }
            in_tx = 1;
        }
        hdrs = NULL;
        (void) rd_kafka_message_headers(m, &hdrs);
        if (enc_event_parse(p->topic, m->key, m->key_len, m->payload, m->len,
                            hdrs, &em, err, sizeof(err)) == 0)
        {
            /* a statement that fails fails the rebuild: the live index
               stays as it was */
            if (enc_event_table_apply(pg, &em.ev, (void *) search_events)
                != 0)
            {
                rc = -1;
            }
            enc_event_msg_free(&em);
            s->applied++;
        }
        /* unreadable records are skipped, as the live consumer does */

        p->from = m->offset + 1;
        if (p->from >= p->to) {
            p->done = 1;
            left--;
        }
        rd_kafka_message_destroy(m);

        if (rc == 0 && (s->applied % REBUILD_BATCH == 0 || left == 0)) {
            if (enc_pg_commit(pg) != 0) {
                rc = -1;
            }
            in_tx = 0;
        }
    }

    if (in_tx) {
        if (rc == 0) {
            rc = enc_pg_commit(pg);
        } else {
            enc_pg_rollback(pg);
        }
    }
    (void) rd_kafka_assign(rk, NULL);
    return rc;
}


/*
 * BEGIN and every live table locked, without ever waiting for a lock:
 * queries take the vocabulary before the documents, the consumer the
 * replicas before both, so a rebuild waiting with some locks held could
 * close a cycle, and the deadlock detector might end a query (a 500)
 * rather than the rebuild.  NOWAIT fails at once instead: roll back
 * (releasing what was taken) and try again a moment later, up to 30 s.
 */
static int
lock_all(enc_pg_t *pg)
{
    int               i;
    const char       *state;
    PGresult         *res;
    struct timespec   pause = { 0, 20 * 1000000L };

    for (i = 0; i < 1500; i++) {
        if (enc_pg_begin(pg) != 0) {
            return -1;
        }
        res = enc_pg_exec_sql(pg, "LOCK TABLE search.words, search.docs, "
                              "search.artists, search.albums, search.tracks, "
                              "search.posts IN ACCESS EXCLUSIVE MODE NOWAIT",
                              0, NULL);
        if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            return 0;
        }
        state = res != NULL ? enc_pg_sqlstate(res) : NULL;
        if (state == NULL || strcmp(state, "55P03") != 0) {
            fprintf(stderr, "encore-search: rebuild: locking the index: %s\n",
                    res != NULL ? PQresultErrorMessage(res)
                                : "connection lost");
            PQclear(res);
            enc_pg_rollback(pg);
            return -1;
        }
        PQclear(res);
        enc_pg_rollback(pg);
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "encore-search: rebuild: the index stayed busy for 30 s;"
            " nothing was swapped\n");
    return -1;
}


/* the fresh tables copied into permanent <name>_next ones, then swapped
   for the live ones in one transaction */
static int
swap(enc_pg_t *pg)
{
    int          i;
    char         buf[512];

    static const char *const  prepare[] = {
        "DROP TABLE IF EXISTS search.%s_next",
        "CREATE TABLE search.%s_next (LIKE search.%s INCLUDING ALL)",
        NULL
    };

    for (i = 0; tables[i] != NULL; i++) {
        snprintf(buf, sizeof(buf), prepare[0], tables[i]);
        if (sql(pg, buf) != 0) {
            return -1;
        }
        snprintf(buf, sizeof(buf), prepare[1], tables[i], tables[i]);
        if (sql(pg, buf) != 0) {
            return -1;
        }
        /* docs' and words' generated columns are computed again */
        snprintf(buf, sizeof(buf),
                 strcmp(tables[i], "docs") == 0
                 ? "INSERT INTO search.docs_next (kind, id, title, context) "
                   "SELECT kind, id, title, context FROM pg_temp.%s"
                 : strcmp(tables[i], "words") == 0
                 ? "INSERT INTO search.words_next (word) SELECT word "
                   "FROM pg_temp.%s"
                 : "INSERT INTO search.%s_next SELECT * FROM pg_temp.%s",
                 tables[i], tables[i]);
        if (sql(pg, buf) != 0) {
            return -1;
        }
        snprintf(buf, sizeof(buf), "ANALYZE search.%s_next", tables[i]);
        if (sql(pg, buf) != 0) {
            return -1;
        }
    }

    if (lock_all(pg) != 0) {
        return -1;
    }
    for (i = 0; tables[i] != NULL; i++) {
        snprintf(buf, sizeof(buf), "DROP TABLE search.%s", tables[i]);
        if (sql(pg, buf) != 0) {
            goto failed;
        }
        snprintf(buf, sizeof(buf), "ALTER TABLE search.%s_next RENAME TO %s",
                 tables[i], tables[i]);
        if (sql(pg, buf) != 0) {
            goto failed;
        }
    }
    if (each(pg, triggers, "search.") != 0 || enc_pg_commit(pg) != 0) {
        goto failed;
    }
    return 0;

failed:
    enc_pg_rollback(pg);
    return -1;
}


int
search_rebuild(const enc_config_t *c)
{
    int          rc = 1, i;
    char         err[512], group[96], buf[256];
    span_t      *first = NULL, *rest = NULL;
    enc_pg_t    *pg = NULL;
    rd_kafka_t  *rk = NULL;
    static const char *const  eof[] = { "enable.partition.eof", "true", NULL };

    first = calloc(1, sizeof(*first));
    rest = calloc(1, sizeof(*rest));
    if (first == NULL || rest == NULL) {
        goto done;
    }

    /* assigned, never subscribed: the group commits nothing */
    snprintf(group, sizeof(group), "encore-search-rebuild");
    rk = enc_consumer_kafka_new(enc_config_str(c, "kafka.brokers"), group,
                                "encore-search-rebuild", eof, err,
                                sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "encore-search: rebuild: %s\n", err);
        goto done;
    }

    pg = enc_pg_connect_new();
    if (pg == NULL) {
        fprintf(stderr, "encore-search: rebuild: no database connection\n");
        goto done;
    }
    /* copying a large index takes longer than a request may: the
       migrations' deadline */
    (void) enc_pg_set_timeout(pg, enc_config_int(c, "db.migrate_timeout_ms"));

    /* 1. the shadow tables, before any statement is prepared */
    for (i = 0; tables[i] != NULL; i++) {
        snprintf(buf, sizeof(buf), "CREATE TEMP TABLE %s (LIKE search.%s "
                 "INCLUDING ALL)", tables[i], tables[i]);
        if (sql(pg, buf) != 0) {
            goto done;
        }
    }
    if (each(pg, triggers, "pg_temp.") != 0) {
        goto done;
    }

    /* 2. from the beginning */
    if (span_ends(rk, NULL, first) != 0 || apply_span(rk, pg, first) != 0) {
        goto done;
    }
    printf("rebuild: %ld events read from %d partitions\n", first->applied,
           first->n);

    /* 3., 4. */
    if (swap(pg) != 0) {
        goto done;
    }
    printf("rebuild: the fresh index is live\n");

    /* 5. what came meanwhile, through the live tables: a new session,
       whose statements see no shadow */
    enc_pg_close(pg);
    pg = enc_pg_connect_new();
    if (pg == NULL) {
        fprintf(stderr, "encore-search: rebuild: no database connection\n");
        goto done;
    }
    if (span_ends(rk, first, rest) != 0 || apply_span(rk, pg, rest) != 0) {
        goto done;
    }
    printf("rebuild: %ld events that came meanwhile applied again\n",
           rest->applied);
    rc = 0;

done:

    if (pg != NULL) {
        enc_pg_close(pg);
    }
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free(first);
    free(rest);
    return rc;
}
