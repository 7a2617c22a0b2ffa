/*
 * catalog-internal.h - shared pieces of src/catalog: the handle, SQL
 * helpers with printf-like binding, journal locks, file durability and
 * the recovery entry points. Declarations are grouped by defining file.
 */
#ifndef VMC_CATALOG_INTERNAL_H
#define VMC_CATALOG_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "vmclone-catalog.h"
#include "sql.h"
#include "journal.h"

#define CAT_SCHEMA_VERSION 8

/* A growable list of strings. */
struct cat_strv {
    char **v;
    size_t n, cap;
};

/* Called by cat_delete_set() for each set it deleted: @what "VM",
 * "template", "template copy"; @op the journal op; @bytes the allocated
 * bytes of the files removed. */
typedef void (*cat_deleted_fn)(const char *what, const char *target,
                               const char *op, uint64_t bytes,
                               void *opaque);

struct vmc_catalog {
    struct sqlite3 *db;     /* the SQLite backend, or NULL */
    struct cat_pg *pg;      /* the PostgreSQL backend (sql-pg.c), or NULL */
    /* this host's id (catalog.conf 'host-id', default the hostname) */
    char host_id[65];
    char *home;
    char *run_dir;          /* home/run: journal and maintenance locks */
    int maint_fd;           /* shared (or exclusive) flock */
    /* config 'store-id' (open.c): in new volume file names and in the
     * pool directories' owner marker; "" when it could not be set */
    char store_id[17];
    bool in_txn;
    int64_t busy_since;     /* busy_wait(): when this wait began */
    unsigned busy_seed;     /* busy_wait(): jitter */
    /* vmc_catalog_set_progress(): for operations without a callback */
    vmc_progress_fn progress;
    void *progress_opaque;
    /* bytes done by the current progress sequence (all its files) */
    uint64_t progress_bytes;
    /* cat_free_retired() (delete.c), set at open: the journal's roll
     * forward calls it after deleting rows, through this pointer so
     * that journal.c stays below the delete operation it would call */
    int (*free_retired)(struct vmc_catalog *cat, struct vmc_error *err);
    /* set by gc while it runs */
    cat_deleted_fn deleted;
    void *deleted_opaque;
};

/* One progress sequence over @steps sub-operations (files): the engine's
 * per-file (done, total) becomes an overall 0..100 %. */
struct cat_progress {
    vmc_progress_fn fn;
    void *opaque;
    uint64_t step, steps;
    uint64_t last;          /* last overall value reported */
    struct vmc_catalog *cat;
    uint64_t base;          /* bytes of the steps done */
    uint64_t step_total;    /* bytes of the current step */
};

/* @fn, or the handle's callback when @fn is NULL. */
void cat_progress_init(struct cat_progress *p, struct vmc_catalog *cat,
                       vmc_progress_fn fn, void *opaque, uint64_t steps);
/* The vmc_progress_fn to hand the engine (NULL without a callback) and
 * its opaque (@p). Call cat_progress_next() after each step that
 * succeeded; after the last one it reports 100 %. */
vmc_progress_fn cat_progress_fn(const struct cat_progress *p);
void cat_progress_next(struct cat_progress *p);

/* The indexes of volumes and the view of who owns each volume, as
 * 'kind' and a display name: the same in schema.c and schema-pg.c. */
#define CAT_VOLUMES_INDEXES_AND_VIEW \
    "CREATE INDEX volumes_parent ON volumes(parent_id);\n" \
    "CREATE INDEX volumes_journal ON volumes(journal_id);\n" \
    "CREATE INDEX volumes_vm ON volumes(vm_id);\n" \
    "CREATE INDEX volumes_snapshot ON volumes(snapshot_id);\n" \
    "CREATE INDEX volumes_copy ON volumes(copy_id);\n" \
    "CREATE INDEX volumes_template ON volumes(template_id);\n" \
    "CREATE VIEW volume_owners AS\n" \
    "SELECT v.id, v.parent_id, v.state, v.disk, v.top,\n" \
    "  p.path || '/' || v.file AS path, p.name AS pool, v.virtual_size,\n" \
    "  CASE WHEN v.template_id IS NOT NULL THEN 'template'\n" \
    "       WHEN v.copy_id IS NOT NULL THEN 'copy'\n" \
    "       WHEN v.snapshot_id IS NOT NULL THEN 'snapshot'\n" \
    "       ELSE 'vm' END AS kind,\n" \
    "  CASE WHEN v.template_id IS NOT NULL THEN t.name\n" \
    "       WHEN v.copy_id IS NOT NULL THEN ct.name || '@' || cp.name\n" \
    "       WHEN v.snapshot_id IS NOT NULL THEN sv.name || '@' || s.name\n" \
    "       ELSE m.name END AS name\n" \
    "FROM volumes v JOIN pools p ON p.id = v.pool_id\n" \
    "LEFT JOIN templates t ON t.id = v.template_id\n" \
    "LEFT JOIN template_copies c ON c.id = v.copy_id\n" \
    "LEFT JOIN templates ct ON ct.id = c.template_id\n" \
    "LEFT JOIN pools cp ON cp.id = c.pool_id\n" \
    "LEFT JOIN snapshots s ON s.id = v.snapshot_id\n" \
    "LEFT JOIN vms sv ON sv.id = s.vm_id\n" \
    "LEFT JOIN vms m ON m.id = v.vm_id;\n"

/* Migration 8 (large catalogs, docs/design/scale-out.md): the view of
 * volume owners reads one table, volumes, and looks each owner's name
 * up by primary key in a scalar subquery; the version of migration 1
 * joined nine relations, more than PostgreSQL's from_collapse_limit,
 * so a query that joined the view to anything planned it apart and
 * scanned every volume. Filtering the view by id or parent_id now uses
 * the index, on both backends. Plus the indexes a 1M-VM catalog needs:
 * VMs by template (template rm: ON DELETE SET NULL), rows by the
 * journal that made them (each operation's final commit and recovery
 * update them by journal_id), the ready VMs by clone type. */
#define CAT_SCALE_MIGRATION \
    "DROP VIEW volume_owners;\n" \
    "CREATE VIEW volume_owners AS\n" \
    "SELECT v.id, v.parent_id, v.state, v.disk, v.top,\n" \
    "  (SELECT p.path FROM pools p WHERE p.id = v.pool_id) || '/' ||\n" \
    "  v.file AS path,\n" \
    "  (SELECT p.name FROM pools p WHERE p.id = v.pool_id) AS pool,\n" \
    "  v.virtual_size,\n" \
    "  CASE WHEN v.template_id IS NOT NULL THEN 'template'\n" \
    "       WHEN v.copy_id IS NOT NULL THEN 'copy'\n" \
    "       WHEN v.snapshot_id IS NOT NULL THEN 'snapshot'\n" \
    "       ELSE 'vm' END AS kind,\n" \
    "  CASE WHEN v.template_id IS NOT NULL THEN\n" \
    "         (SELECT t.name FROM templates t WHERE t.id = v.template_id)\n" \
    "       WHEN v.copy_id IS NOT NULL THEN\n" \
    "         (SELECT t.name || '@' || p.name FROM template_copies c\n" \
    "          JOIN templates t ON t.id = c.template_id\n" \
    "          JOIN pools p ON p.id = c.pool_id WHERE c.id = v.copy_id)\n" \
    "       WHEN v.snapshot_id IS NOT NULL THEN\n" \
    "         (SELECT m.name || '@' || s.name FROM snapshots s\n" \
    "          JOIN vms m ON m.id = s.vm_id WHERE s.id = v.snapshot_id)\n" \
    "       ELSE (SELECT m.name FROM vms m WHERE m.id = v.vm_id)\n" \
    "  END AS name\n" \
    "FROM volumes v;\n" \
    "CREATE INDEX vms_template ON vms(template_id);\n" \
    "CREATE INDEX vms_journal ON vms(journal_id);\n" \
    "CREATE INDEX snapshots_journal ON snapshots(journal_id);\n" \
    "CREATE INDEX templates_journal ON templates(journal_id);\n" \
    "CREATE INDEX template_copies_journal ON template_copies(journal_id);\n"

/* Migration 10 (hot templates, docs/design/scale-out.md): the view of
 * volume owners names a template's extra base copies in a pool
 * TEMPLATE@POOL#N (copy_no N > 0); the first stays TEMPLATE@POOL. */
#define CAT_OWNERS_VIEW_V10 \
    "CREATE VIEW volume_owners AS\n" \
    "SELECT v.id, v.parent_id, v.state, v.disk, v.top,\n" \
    "  (SELECT p.path FROM pools p WHERE p.id = v.pool_id) || '/' ||\n" \
    "  v.file AS path,\n" \
    "  (SELECT p.name FROM pools p WHERE p.id = v.pool_id) AS pool,\n" \
    "  v.virtual_size,\n" \
    "  CASE WHEN v.template_id IS NOT NULL THEN 'template'\n" \
    "       WHEN v.copy_id IS NOT NULL THEN 'copy'\n" \
    "       WHEN v.snapshot_id IS NOT NULL THEN 'snapshot'\n" \
    "       ELSE 'vm' END AS kind,\n" \
    "  CASE WHEN v.template_id IS NOT NULL THEN\n" \
    "         (SELECT t.name FROM templates t WHERE t.id = v.template_id)\n" \
    "       WHEN v.copy_id IS NOT NULL THEN\n" \
    "         (SELECT t.name || '@' || p.name || CASE WHEN c.copy_no > 0\n" \
    "                 THEN '#' || CAST(c.copy_no AS TEXT) ELSE '' END\n" \
    "          FROM template_copies c\n" \
    "          JOIN templates t ON t.id = c.template_id\n" \
    "          JOIN pools p ON p.id = c.pool_id WHERE c.id = v.copy_id)\n" \
    "       WHEN v.snapshot_id IS NOT NULL THEN\n" \
    "         (SELECT m.name || '@' || s.name FROM snapshots s\n" \
    "          JOIN vms m ON m.id = s.vm_id WHERE s.id = v.snapshot_id)\n" \
    "       ELSE (SELECT m.name FROM vms m WHERE m.id = v.vm_id)\n" \
    "  END AS name\n" \
    "FROM volumes v;\n"

/* schema.c, and schema-pg.c (the same versions on PostgreSQL) */
extern const char *const cat_migrations[];
extern const unsigned cat_nmigrations;
extern const char *const cat_pg_migrations[];
extern const unsigned cat_pg_nmigrations;

/* journal.c: set the journal row's state and finished time (inside the
 * caller's transaction; recovery's last step). */
int cat_journal_finish(struct vmc_catalog *cat, int64_t jid,
                       const char *state, struct vmc_error *err);

/* catalog.c */
/* Absolute path of volume @vid. */
int cat_volume_path(struct vmc_catalog *cat, int64_t vid, char **out,
                    struct vmc_error *err);
int cat_strv_push(struct cat_strv *v, const char *s);
void cat_strv_release(struct cat_strv *v);
/* Run read-only @sql (report.c's reports; ?1..?N = @params as text) and
 * call @fn with each row's column names and text values. */
int cat_query_rows(struct vmc_catalog *cat, const char *sql,
                   const char *const *params, size_t nparams,
                   vmc_catalog_row_fn fn, void *opaque,
                   struct vmc_error *err);
/* First column of every row of @sql (one int64 '?' = @arg). */
int cat_collect(struct vmc_catalog *cat, struct cat_strv *out,
                struct vmc_error *err, const char *sql, int64_t arg);
/* mkdir -p @path. */
int cat_mkdir_p(const char *path, struct vmc_error *err);
/* Mark pool directory @dir as this store's (a CAT_POOL_MARKER file
 * holding the store id), or refuse (-EEXIST) when another store's
 * marker is there. */
int cat_pool_claim(struct vmc_catalog *cat, const char *dir,
                   struct vmc_error *err);
#define CAT_POOL_MARKER ".vmclone-pool"
/* fsck --remove-unknown's default quarantine directory in each pool. */
#define CAT_QUARANTINE ".quarantine"
/* fsync the directory holding @path. */
int cat_fsync_dir_of(const char *path);
/* File modes under the umask (issue 9 finding 10): a new file's mode
 * (0666 less the umask); a read-only layer drops only the write bits; a
 * layer made writable again gets the write bits the umask allows (at
 * least the owner's). */
mode_t cat_new_file_mode(void);
int cat_mode_readonly(const char *path);
int cat_mode_new_readonly(const char *path);
int cat_mode_writable(const char *path);
/* Unlink @path and its seal sidecar, ignoring ENOENT. */
int cat_unlink_volume_file(const char *path, struct vmc_error *err);
/* _exit(99) when $VMCLONE_CRASH_AT names @point (crash tests); wait
 * there when $VMCLONE_PAUSE_AT names it (race tests, see catalog.c). */
void cat_crashpoint(const char *point);
/* Validate an object name: [A-Za-z0-9._-], 1..64, not starting with '.'
 * or '-'. */
int cat_check_name(const char *what, const char *name, struct vmc_error *err);
/* Validate a label (issue 9 finding 11): the key 1..CAT_LABEL_KEY_MAX of
 * [A-Za-z0-9._/-] starting with a letter or digit, the value at most
 * CAT_LABEL_VALUE_MAX bytes of printable UTF-8 (no C0/C1 control, DEL). */
#define CAT_LABEL_KEY_MAX 63
#define CAT_LABEL_VALUE_MAX 255
int cat_check_label(const char *key, const char *value,
                    struct vmc_error *err);
/* Resolve the backing file recorded in @path's header to a volume id
 * (0 = none; -ENOENT when it names a file outside the catalog). */
int cat_backing_volume(struct vmc_catalog *cat, const char *path,
                       int64_t *vid, char **backing, struct vmc_error *err);
/* Set parent_id of every ready volume touched by journal @jid from the
 * backing reference in its file. @fixed counts corrections. */
int cat_reconcile_journal(struct vmc_catalog *cat, int64_t jid,
                          unsigned *fixed, struct vmc_error *err);

/* journal.c */
/* Delete what journal row @jid marked 'deleting' (files, then rows) and
 * undo what it marked 'creating'. Inside no transaction. */
int cat_finish_journal(struct vmc_catalog *cat, int64_t jid,
                       struct vmc_error *err);

/* delete.c */
/* Free retired templates that nothing depends on any more. */
int cat_free_retired(struct vmc_catalog *cat, struct vmc_error *err);
/* Dependents of a set of volumes (SQL selecting ids, one '?' bound to
 * @arg) as one "kind name, kind name" line; *n their number. */
int cat_dependents_line(struct vmc_catalog *cat, const char *owned_sql,
                        int64_t arg, char **line, size_t *n,
                        struct vmc_error *err);
/* The same with dependents in @exclude_sql(@arg) not counted. */
int cat_dependents_line2(struct vmc_catalog *cat, const char *owned_sql,
                         const char *exclude_sql, int64_t arg, char **line,
                         size_t *n, struct vmc_error *err);

/* instant.c: fsck of the instant templates' RAM and state files (with
 * @verify their digests); the frozen files of the instant templates
 * journal @jid is deleting: their allocated bytes, and their unlink
 * (each only while it is the file the freeze recorded: same inode and
 * mtime; journal.c). */
int cat_instant_fsck(struct vmc_catalog *cat, bool verify,
                     vmc_catalog_report_fn fn, void *opaque,
                     unsigned *problems, struct vmc_error *err);
uint64_t cat_instant_deleting_bytes(struct vmc_catalog *cat, int64_t jid);
int cat_instant_unlink_deleting(struct vmc_catalog *cat, int64_t jid,
                                struct vmc_error *err);
/* @fn(path) for each file of HOME/instant (where freezes put their state
 * files) that no instant template records: gc and fsck report them,
 * never delete them. */
int cat_instant_scan(struct vmc_catalog *cat,
                     int (*fn)(const char *path, void *opaque), void *opaque,
                     struct vmc_error *err);
/* In the caller's transaction: template @tid is the instant template
 * @in describes (freeze.c). */
int cat_instant_insert(struct vmc_catalog *cat, int64_t tid,
                       const struct vmc_instant *in, struct vmc_error *err);
/* -ENOTEMPTY naming them when template @tid (@name) has instant clones
 * (which flattening does not detach), else 0. */
int cat_instant_refuse_flatten(struct vmc_catalog *cat, int64_t tid,
                               const char *name, struct vmc_error *err);

#endif /* VMC_CATALOG_INTERNAL_H */
