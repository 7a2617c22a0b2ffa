/*
 * events.h - named metadata events of the qcow2 driver, for error
 * injection in tests (QEMU blkdebug's idea, reliability.md §6 test 7).
 *
 * The driver calls fmt_event(EV) just before the step EV names (usually
 * the host I/O of that step); when a test armed a rule for EV, the call
 * returns the rule's error and the driver fails the step as if its I/O
 * had failed. Off (no rule, the normal case) it is one load of a global.
 *
 * Rules come from a test through fmt_event_inject(), or from the
 * environment, read once at the first image open:
 *   VMCLONE_EVENT="NAME:ERR[:persistent][,...]"
 *     NAME  an event name below (l2_update, refblock_alloc.write...)
 *     ERR   EIO, ENOSPC, ... (as VMCLONE_FAULT, hostio.h)
 *     persistent: fail every later occurrence too (default: once)
 */
#ifndef VMC_FORMAT_EVENTS_H
#define VMC_FORMAT_EVENTS_H

#include <stdbool.h>

enum fmt_event {
    FMT_EV_L1_UPDATE,              /* write the active L1 table */
    FMT_EV_L1_GROW_ALLOC_TABLE,    /* allocate clusters for a larger L1 */
    FMT_EV_L1_GROW_WRITE_TABLE,    /* write the moved L1 table */
    FMT_EV_L1_GROW_ACTIVATE_TABLE, /* header: switch to the moved L1 */
    FMT_EV_L2_LOAD,                /* read an L2 table */
    FMT_EV_L2_UPDATE,              /* write back a changed L2 table */
    FMT_EV_L2_ALLOC_WRITE,         /* write a new L2 table */
    FMT_EV_REFBLOCK_LOAD,          /* read a refcount block */
    FMT_EV_REFBLOCK_UPDATE,        /* write back a changed refcount block */
    FMT_EV_REFBLOCK_ALLOC,         /* allocate a new refcount block */
    FMT_EV_REFBLOCK_ALLOC_WRITE,   /* write a new refcount block */
    FMT_EV_REFBLOCK_ALLOC_WRITE_TABLE,  /* write the refcount table */
    FMT_EV_REFBLOCK_ALLOC_SWITCH_TABLE, /* header: switch to a moved one */
    FMT_EV_CLUSTER_ALLOC,          /* allocate host clusters */
    FMT_EV_CLUSTER_FREE,           /* drop references after a flush */
    FMT_EV_WRITE_AIO,              /* write guest data */
    FMT_EV_FLUSH,                  /* fdatasync the image file */
    FMT_EV_HEADER_UPDATE,          /* rewrite header fields */
    FMT_EV_COUNT,
};

extern int fmt_events_armed;   /* non-zero while any rule is set */

int fmt_event_fire(enum fmt_event ev);

/* 0, or the negative errno a rule for @ev injects. */
static inline int
fmt_event(enum fmt_event ev)
{
    return __builtin_expect(fmt_events_armed, 0) ? fmt_event_fire(ev) : 0;
}

/* The event's name ("l2_update"...), NULL past the end. */
const char *fmt_event_name(enum fmt_event ev);
/* Test API: from now on @ev fails with @err (a negative errno), once or
 * every time; replaces any rule for @ev. */
void fmt_event_inject(enum fmt_event ev, int err, bool persistent);
/* Remove every rule and reset the counts. */
void fmt_event_clear(void);
/* How many times a rule for @ev injected its error since it was set. */
unsigned long fmt_event_fired(enum fmt_event ev);
/* Read VMCLONE_EVENT (once per process). */
void fmt_event_init_from_env(void);

#endif /* VMC_FORMAT_EVENTS_H */
