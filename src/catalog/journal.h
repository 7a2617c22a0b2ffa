/*
 * journal.h - the journaled-operation protocol (journal.c): one struct
 * cat_op per operation and one function per transition, and the row and
 * journal state names. The row states and what a crash leaves are in
 * schema.c's design notes; docs/design/architecture.md has the summary.
 *
 *   IDLE --begin--> RUNNING --stage--> STAGED --publish--> PUBLISHING
 *   PUBLISHING --ready--> DONE          (rows final, journal 'done')
 *   RUNNING --stage(r < 0)--> FAILED    (rolled back, nothing written)
 *   STAGED/PUBLISHING --fail--> FAILED  (creating rolled back, deleting
 *                                        rolled forward, by recovery)
 *   STAGED --finish--> DONE|FAILED      (delete ops: roll deleting forward)
 *   PUBLISHING --settle--> DONE|FAILED  (the files decided: no roll back)
 *   STAGED --abandon--> FAILED          (rows left to recovery)
 *   PUBLISHING --restage--> STAGED      (final rows in, deleting marks
 *                                        still to roll forward: finish)
 *   IDLE/DONE/FAILED --end--> ENDED     (journal lock released once)
 *
 * Every row state change of an operation goes through cat_op_cas(): an
 * UPDATE whose WHERE names the state it expects, and -EBUSY with a clear
 * message when another operation changed the row meanwhile.
 *
 * The files of src/catalog form a one-way stack; a file calls only the
 * files above it in this list (open.c, at the bottom, reaches them all):
 *   sql.c       SQL helpers, the only file that names SQLite statements
 *   schema.c    the schema and its migrations
 *   catalog.c   progress, crash points, names, volume files, query,
 *               config, pools, string lists
 *   volumes.c   disks of an object, volume rows, pool lookup, depth
 *   instant.c   instant templates' rows and frozen files (a delete's
 *               journal unlinks the files through it)
 *   journal.c   this protocol, the journal locks and recovery
 *   delete.c    deleting a set of volumes with its owners, dependents
 *   template.c  import, template from VM, retire, rm, detach, copies
 *   clone.c     clones;   vm.c  snapshots, VM rm, flatten/relink/...
 *   fsck.c      fsck, and the pool scan it shares with gc.c
 *   gc.c        gc
 *   open.c      opening a store, recovery at open
 * (report.c, read-only reports for the CLI, sits with catalog.c.)
 */
#ifndef VMC_CATALOG_JOURNAL_H
#define VMC_CATALOG_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vmclone.h"

struct vmc_catalog;

/* Row states (volumes, template_copies, vms, snapshots, templates). */
#define CAT_CREATING "creating"
#define CAT_READY    "ready"
#define CAT_DELETING "deleting"
/* Journal row states. */
#define CAT_J_RUNNING "running"
#define CAT_J_DONE    "done"
#define CAT_J_FAILED  "failed"

enum cat_op_state {
    CAT_OP_IDLE,
    CAT_OP_RUNNING,     /* journal row inserted, lock held, txn open */
    CAT_OP_STAGED,      /* rows creating/deleting committed */
    CAT_OP_PUBLISHING,  /* final transaction open */
    CAT_OP_DONE,
    CAT_OP_FAILED,
    CAT_OP_ENDED,
};

struct cat_op {
    struct vmc_catalog *cat;
    const char *name;       /* journal op: "clone", "copy", ... */
    int64_t jid;            /* 0 before begin */
    int lock_fd;            /* -1 when not held */
    enum cat_op_state state;
};

void cat_op_init(struct cat_op *op, struct vmc_catalog *cat,
                 const char *name);
/* IDLE -> RUNNING: insert the running journal row for @target and take
 * its lock, inside the caller's transaction. */
int cat_op_begin(struct cat_op *op, const char *target,
                 struct vmc_error *err);
/* RUNNING (or IDLE) -> STAGED: commit the staged rows when @r is 0;
 * otherwise (or when the commit fails) roll back -> FAILED. Returns the
 * result. */
int cat_op_stage(struct cat_op *op, int r, struct vmc_error *err);
/* STAGED -> PUBLISHING: open the final transaction. */
int cat_op_publish(struct cat_op *op, struct vmc_error *err);
/* PUBLISHING -> DONE: journal 'done' and commit (on a failed commit the
 * op is STAGED again, for cat_op_fail). */
int cat_op_ready(struct cat_op *op, struct vmc_error *err);
/* STAGED/PUBLISHING -> FAILED: roll back the open transaction, then undo
 * what the op staged (cat_finish_journal). */
void cat_op_fail(struct cat_op *op);
/* STAGED -> DONE/FAILED: roll the staged rows forward or back now
 * (cat_finish_journal: delete what is deleting, undo what is creating). */
int cat_op_finish(struct cat_op *op, struct vmc_error *err);
/* PUBLISHING -> STAGED: commit the final rows with the journal still
 * running (a later cat_op_finish() rolls its deleting marks forward). */
int cat_op_restage(struct cat_op *op, struct vmc_error *err);
/* PUBLISHING -> DONE/FAILED when the files decided the rows (no roll
 * back): @q the result of the final updates, @r the operation's; journal
 * 'done' or 'failed' and commit. Returns the commit's result. */
int cat_op_settle(struct cat_op *op, int q, int r, struct vmc_error *err);
/* STAGED -> FAILED leaving the rows to recovery (no transaction could be
 * opened). */
void cat_op_abandon(struct cat_op *op);
/* True between a committed stage and DONE/FAILED. */
bool cat_op_pending(const struct cat_op *op);
/* IDLE/DONE/FAILED -> ENDED: release the journal lock (once). */
void cat_op_end(struct cat_op *op);

/* Compare-and-set inside the op's transaction: run @sql (an UPDATE or
 * DELETE whose WHERE names the state it expects) and check that it
 * changed exactly @expect rows; otherwise -EBUSY "@what changed state
 * during this operation" (and nothing is overwritten: the caller fails
 * the op, which rolls the transaction back). */
int cat_op_cas(struct cat_op *op, int expect, const char *what,
               struct vmc_error *err, const char *sql, const char *fmt, ...);

/* The op's creating volumes become ready: a compare-and-set that expects
 * @expect rows. */
int cat_op_volumes_ready(struct cat_op *op, int expect,
                         struct vmc_error *err);

/* Wait until the owner of journal row @jid is gone, then recover the row
 * if it is still running. */
int cat_journal_wait(struct vmc_catalog *cat, int64_t jid,
                     struct vmc_error *err);
/* Which running rows a recovery looks at: this host's (every command,
 * at open; and rows without a host) or the other hosts' (fsck --reap).
 * A row is finished only when its journal lock can be taken (its owner
 * died: an flock, or on PostgreSQL a session advisory lock that dies
 * with its session on any host). */
enum cat_recover_scope {
    CAT_RECOVER_OWN,
    CAT_RECOVER_OTHERS,
};
/* Recover this host's running rows whose owner died. @count may be NULL.
 * A row that cannot be finished is skipped (it stays running for the
 * next attempt); only an error reading the journal itself fails. */
int cat_recover_all(struct vmc_catalog *cat, unsigned *count,
                    struct vmc_error *err);
/* The same for @scope, calling @fn(journal id, its host ("" when not
 * recorded), why, @opaque) for each row finished (why NULL) or that
 * could not be finished (fsck reports them). */
typedef void (*cat_recovered_fn)(int64_t jid, const char *host,
                                 const char *why, void *opaque);
int cat_recover_report(struct vmc_catalog *cat, enum cat_recover_scope scope,
                       unsigned *count, cat_recovered_fn fn, void *opaque,
                       struct vmc_error *err);

/* Host-local pools: -EREMOTE naming the owning host when pool @pool_id
 * is local to another host (always 0 on SQLite). */
int cat_pool_local_check(struct vmc_catalog *cat, int64_t pool_id,
                         struct vmc_error *err);
/* The first column of @sql's rows, its one '?' bound to this host's id
 * (queries of what this host reaches: pools.host_id NULL or ?). */
struct cat_strv;
int cat_collect_host(struct vmc_catalog *cat, struct cat_strv *out,
                     struct vmc_error *err, const char *sql);
/* The same for every pool the rows of journal row @jid reach. */
int cat_journal_local_check(struct vmc_catalog *cat, int64_t jid,
                            struct vmc_error *err);

#endif /* VMC_CATALOG_JOURNAL_H */
