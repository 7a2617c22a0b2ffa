/*
 * events.c - error injection at the qcow2 driver's named metadata events
 * (see events.h): the rules, their counts and VMCLONE_EVENT.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/events.h"

int fmt_events_armed;

struct event_rule {
    int err;            /* negative errno, 0 = no rule */
    bool persistent;
    bool spent;         /* a once rule that fired */
    unsigned long fired;
};

static pthread_mutex_t rules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event_rule rules[FMT_EV_COUNT];
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static const char *const event_names[FMT_EV_COUNT] = {
    [FMT_EV_L1_UPDATE] = "l1_update",
    [FMT_EV_L1_GROW_ALLOC_TABLE] = "l1_grow.alloc_table",
    [FMT_EV_L1_GROW_WRITE_TABLE] = "l1_grow.write_table",
    [FMT_EV_L1_GROW_ACTIVATE_TABLE] = "l1_grow.activate_table",
    [FMT_EV_L2_LOAD] = "l2_load",
    [FMT_EV_L2_UPDATE] = "l2_update",
    [FMT_EV_L2_ALLOC_WRITE] = "l2_alloc.write",
    [FMT_EV_REFBLOCK_LOAD] = "refblock_load",
    [FMT_EV_REFBLOCK_UPDATE] = "refblock_update",
    [FMT_EV_REFBLOCK_ALLOC] = "refblock_alloc",
    [FMT_EV_REFBLOCK_ALLOC_WRITE] = "refblock_alloc.write",
    [FMT_EV_REFBLOCK_ALLOC_WRITE_TABLE] = "refblock_alloc.write_table",
    [FMT_EV_REFBLOCK_ALLOC_SWITCH_TABLE] = "refblock_alloc.switch_table",
    [FMT_EV_CLUSTER_ALLOC] = "cluster_alloc",
    [FMT_EV_CLUSTER_FREE] = "cluster_free",
    [FMT_EV_WRITE_AIO] = "write_aio",
    [FMT_EV_FLUSH] = "flush",
    [FMT_EV_HEADER_UPDATE] = "header_update",
};

const char *
fmt_event_name(enum fmt_event ev)
{
    return (unsigned)ev < FMT_EV_COUNT ? event_names[ev] : NULL;
}

int
fmt_event_fire(enum fmt_event ev)
{
    struct event_rule *rule = &rules[ev];
    int r = 0;

    pthread_mutex_lock(&rules_lock);
    if (rule->err && !rule->spent) {
        r = rule->err;
        rule->fired++;
        rule->spent = !rule->persistent;
    }
    pthread_mutex_unlock(&rules_lock);
    return r;
}

void
fmt_event_inject(enum fmt_event ev, int err, bool persistent)
{
    pthread_mutex_lock(&rules_lock);
    rules[ev] = (struct event_rule){ .err = err, .persistent = persistent };
    fmt_events_armed = 1;
    pthread_mutex_unlock(&rules_lock);
}

void
fmt_event_clear(void)
{
    pthread_mutex_lock(&rules_lock);
    memset(rules, 0, sizeof(rules));
    fmt_events_armed = 0;
    pthread_mutex_unlock(&rules_lock);
}

unsigned long
fmt_event_fired(enum fmt_event ev)
{
    unsigned long n;

    pthread_mutex_lock(&rules_lock);
    n = rules[ev].fired;
    pthread_mutex_unlock(&rules_lock);
    return n;
}

/* One "NAME:ERR[:persistent]" of VMCLONE_EVENT. */
static void
parse_rule(char *tok)
{
    static const struct { const char *name; int err; } errs[] = {
        { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
        { "EROFS", EROFS }, { "ENOMEM", ENOMEM },
    };
    char *save = NULL, *name = strtok_r(tok, ":", &save);
    char *err = strtok_r(NULL, ":", &save);
    char *mode = strtok_r(NULL, ":", &save);
    unsigned i, j;

    if (!name || !err) {
        return;
    }
    for (i = 0; i < FMT_EV_COUNT; i++) {
        for (j = 0; j < sizeof(errs) / sizeof(errs[0]); j++) {
            if (!strcmp(name, event_names[i]) && !strcmp(err, errs[j].name)) {
                fmt_event_inject((enum fmt_event)i, -errs[j].err,
                                 mode && !strcmp(mode, "persistent"));
            }
        }
    }
}

static void
parse_env(void)
{
    const char *env = getenv("VMCLONE_EVENT");
    char *copy, *tok, *save = NULL;

    if (!env || !*env || !(copy = strdup(env))) {
        return;
    }
    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        parse_rule(tok);
    }
    free(copy);
}

void
fmt_event_init_from_env(void)
{
    pthread_once(&env_once, parse_env);
}
