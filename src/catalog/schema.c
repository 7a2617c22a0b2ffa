/*
 * schema.c - the catalog's schema, embedded as migrations applied in
 * order; PRAGMA user_version holds how many have been applied.
 *
 * NOTES ON THE DESIGN OF THE CATALOG RECORDS
 *
 * Every image file in a pool is one row of `volumes`, owned by exactly
 * one of: a template (its sealed disks in a secondary pool), a template
 * copy (the template's disks copied once into a primary pool), a snapshot
 * (a VM's frozen layers) or a VM (its current disks, top = 1, and merged
 * layers). `volumes.parent_id` is the backing file; the foreign key has no
 * ON DELETE action, so SQLite itself refuses to delete a parent row under
 * a child row.
 *
 * Record states (templates, template_copies, vms, snapshots, volumes):
 *
 *     creating --(files durable, one commit)--> ready --> deleting --> (gone)
 *
 * Invariants:
 *  1. A row is inserted in state 'creating' together with a 'running'
 *     journal row, committed, and only then are its files made: under a
 *     temporary name, synced, renamed, directory synced. One final commit
 *     turns every row of the operation 'ready' and the journal 'done'.
 *  2. A 'ready' volume row names a file that exists and whose backing
 *     reference is the parent row's file.
 *  3. Deletion commits 'deleting' (after checking for dependents in the
 *     same transaction), unlinks the files children first, syncs the
 *     directories, then deletes the rows.
 *  4. The process running an operation holds an flock on run/j<ID>.lock
 *     (ID = its journal row) until the final commit; a lock that can be
 *     taken means its owner died.
 *
 * What a crash leaves, and how the next command (or fsck) resolves it
 * (src/catalog/open.c -> journal.c cat_recover_all() -> cat_finish_journal()):
 *  - 'creating' rows of a dead operation, with or without their files (a
 *    hidden temporary file, or the final file): rolled back; the files
 *    and the rows are deleted, a snapshot's frozen parents made writable
 *    again. Nothing outside the operation referenced them.
 *  - 'deleting' rows: rolled forward; unlink again (idempotent), delete
 *    the rows. A 'deleting' volume that still has a child (a snapshot
 *    whose merge did not finish) goes back to 'ready' instead.
 *  - in-place rewrites (flatten, relink, consolidate, snapshot merge)
 *    mark the volumes they touch with their journal id; the engine keeps
 *    each file readable with the same content at every instant, so
 *    recovery reads each file's backing reference and sets parent_id
 *    from it (rolls forward if the header changed, back if not).
 *  - temporary files ('.NAME.vmc-XXXXXX', '.NAME.tmp-*', '*.seal.tmp')
 *    are removed by fsck, which holds the store's maintenance lock
 *    exclusively, so no operation can be running.
 */
#include "catalog-internal.h"

const char *const cat_migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE config(\n"
    "  key TEXT PRIMARY KEY,\n"
    "  value TEXT NOT NULL);\n"
    "CREATE TABLE pools(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  kind TEXT NOT NULL CHECK (kind IN ('primary', 'secondary')),\n"
    "  path TEXT NOT NULL UNIQUE,\n"
    "  created REAL NOT NULL);\n"
    "CREATE TABLE journal(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  op TEXT NOT NULL,\n"
    "  target TEXT,\n"
    "  state TEXT NOT NULL CHECK (state IN ('running', 'done',\n"
    "        'rolled-back', 'failed')),\n"
    "  pid INTEGER NOT NULL,\n"
    "  started REAL NOT NULL,\n"
    "  finished REAL);\n"
    "CREATE INDEX journal_running ON journal(state) WHERE state = 'running';\n"
    "CREATE TABLE templates(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),\n"
    "  retired INTEGER NOT NULL DEFAULT 0,\n"
    "  cpus INTEGER NOT NULL,\n"
    "  memory_mb INTEGER NOT NULL,\n"
    "  nics INTEGER NOT NULL,\n"
    "  pool_id INTEGER NOT NULL REFERENCES pools(id),\n"
    "  origin TEXT,\n"
    "  journal_id INTEGER REFERENCES journal(id),\n"
    "  created REAL NOT NULL);\n"
    "CREATE TABLE template_copies(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  template_id INTEGER NOT NULL REFERENCES templates(id),\n"
    "  pool_id INTEGER NOT NULL REFERENCES pools(id),\n"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),\n"
    "  mechanism TEXT,\n"
    "  journal_id INTEGER REFERENCES journal(id),\n"
    "  created REAL NOT NULL,\n"
    "  UNIQUE (template_id, pool_id));\n"
    "CREATE TABLE vms(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  uuid TEXT NOT NULL UNIQUE,\n"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),\n"
    "  pool_id INTEGER NOT NULL REFERENCES pools(id),\n"
    "  cpus INTEGER NOT NULL,\n"
    "  memory_mb INTEGER NOT NULL,\n"
    "  template_id INTEGER REFERENCES templates(id) ON DELETE SET NULL,\n"
    "  source TEXT,\n"
    "  clone_requested TEXT,\n"
    "  clone_type TEXT,\n"
    "  mechanism TEXT,\n"
    "  request_id TEXT UNIQUE,\n"
    "  expires REAL,\n"
    "  journal_id INTEGER REFERENCES journal(id),\n"
    "  created REAL NOT NULL);\n"
    "CREATE TABLE nics(\n"
    "  vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,\n"
    "  idx INTEGER NOT NULL,\n"
    "  mac TEXT NOT NULL UNIQUE,\n"
    "  PRIMARY KEY (vm_id, idx));\n"
    "CREATE TABLE labels(\n"
    "  vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,\n"
    "  key TEXT NOT NULL,\n"
    "  value TEXT NOT NULL,\n"
    "  PRIMARY KEY (vm_id, key));\n"
    "CREATE TABLE snapshots(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  vm_id INTEGER NOT NULL REFERENCES vms(id),\n"
    "  name TEXT NOT NULL,\n"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),\n"
    "  journal_id INTEGER REFERENCES journal(id),\n"
    "  created REAL NOT NULL,\n"
    "  UNIQUE (vm_id, name));\n"
    "CREATE TABLE volumes(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  pool_id INTEGER NOT NULL REFERENCES pools(id),\n"
    "  file TEXT NOT NULL,\n"
    "  format TEXT NOT NULL,\n"
    "  virtual_size INTEGER NOT NULL,\n"
    "  disk INTEGER NOT NULL,\n"
    "  parent_id INTEGER REFERENCES volumes(id),\n"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),\n"
    "  template_id INTEGER REFERENCES templates(id),\n"
    "  copy_id INTEGER REFERENCES template_copies(id),\n"
    "  snapshot_id INTEGER REFERENCES snapshots(id),\n"
    "  vm_id INTEGER REFERENCES vms(id),\n"
    "  top INTEGER NOT NULL DEFAULT 0,\n"
    "  seal TEXT,\n"
    "  journal_id INTEGER REFERENCES journal(id),\n"
    "  created REAL NOT NULL,\n"
    "  UNIQUE (pool_id, file),\n"
    "  CHECK ((template_id IS NOT NULL) + (copy_id IS NOT NULL) +\n"
    "         (snapshot_id IS NOT NULL) + (vm_id IS NOT NULL) = 1));\n"
    CAT_VOLUMES_INDEXES_AND_VIEW
    "INSERT INTO config(key, value) VALUES ('max-chain-depth', '16');\n",
    /* 2: request ids as (key, index) columns matched exactly; index 0 for
     * a single VM, 1..N for --count N. Rows of version 1 stored "ID" or
     * "ID/N" in request_id: split the same way. request_id stays for
     * those rows only. */
    "ALTER TABLE vms ADD COLUMN request_key TEXT;\n"
    "ALTER TABLE vms ADD COLUMN request_idx INTEGER;\n"
    "UPDATE vms SET request_key = request_id, request_idx = 0\n"
    "  WHERE request_id IS NOT NULL;\n"
    "UPDATE vms SET\n"
    "  request_key = substr(request_id, 1,\n"
    "                       length(rtrim(request_id, '0123456789')) - 1),\n"
    "  request_idx = CAST(substr(request_id,\n"
    "      length(rtrim(request_id, '0123456789')) + 1) AS INTEGER)\n"
    "  WHERE request_id IS NOT NULL\n"
    "    AND length(rtrim(request_id, '0123456789')) < length(request_id)\n"
    "    AND length(rtrim(request_id, '0123456789')) > 1\n"
    "    AND substr(rtrim(request_id, '0123456789'), -1) = '/';\n"
    "CREATE UNIQUE INDEX vms_request ON vms(request_key, request_idx)\n"
    "  WHERE request_key IS NOT NULL;\n",
    /* 3: hypervisors: a template's firmware ('bios' or NULL, 'uefi'); a
     * VM's libvirt domain (the connection URI and the domain's UUID) */
    "ALTER TABLE templates ADD COLUMN firmware TEXT;\n"
    "ALTER TABLE vms ADD COLUMN domain_uri TEXT;\n"
    "ALTER TABLE vms ADD COLUMN domain_uuid TEXT;\n",
    /* 4: pool types (issue 11): 'dir' (path is a directory) or 'rbd' (a
     * Ceph pool: path is its spec, rbd:POOL[/NS][:id=U][:conf=F], and
     * each volume's file an image name; see include/vmclone-rbd.h) */
    "ALTER TABLE pools ADD COLUMN type TEXT NOT NULL DEFAULT 'dir'\n"
    "  CHECK (type IN ('dir', 'rbd'));\n"
    "ALTER TABLE pools ADD COLUMN rbd_pool TEXT;\n"
    "ALTER TABLE pools ADD COLUMN rbd_namespace TEXT;\n"
    "ALTER TABLE pools ADD COLUMN rbd_conf TEXT;\n"
    "ALTER TABLE pools ADD COLUMN rbd_id TEXT;\n",
    /* 5: several hosts (docs/design/scale-out.md). journal.host_id: the
     * host that runs the operation (NULL on rows of older versions: any
     * host may finish them). pools.host_id: the host a pool's files are
     * local to (NULL: shared; always NULL on SQLite, one host). The
     * running rows of a host found by index; labels by (key, value). */
    "ALTER TABLE journal ADD COLUMN host_id TEXT;\n"
    "ALTER TABLE pools ADD COLUMN host_id TEXT;\n"
    "CREATE INDEX journal_host_running ON journal(host_id, id)\n"
    "  WHERE state = 'running';\n"
    "CREATE INDEX labels_kv ON labels(key, value, vm_id);\n",
    /* 6: guest customization and ephemeral VMs (seed.c): a volume's kind
     * ('disk', or 'seed': a VM's cloud-init NoCloud ISO), the VM's
     * ephemeral mark, and the values its seed is made from */
    "ALTER TABLE volumes ADD COLUMN kind TEXT NOT NULL DEFAULT 'disk'\n"
    "  CHECK (kind IN ('disk', 'seed'));\n"
    "ALTER TABLE vms ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE TABLE seeds(\n"
    "  vm_id INTEGER PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,\n"
    "  hostname TEXT,\n"
    "  ssh_key TEXT,\n"
    "  user_data TEXT,\n"
    "  network_config TEXT);\n",
    /* 7: instant templates (instant.c): a frozen running VM's RAM and
     * device state files with their digests and stat at freeze, the
     * QEMU version, machine, boot files and device list its clones
     * repeat; a VM cloned with --instant */
    "CREATE TABLE instant_templates(\n"
    "  template_id INTEGER PRIMARY KEY REFERENCES templates(id)\n"
    "    ON DELETE CASCADE,\n"
    "  qemu_version TEXT NOT NULL,\n"
    "  machine TEXT NOT NULL,\n"
    "  devices TEXT NOT NULL,\n"
    "  cpus INTEGER NOT NULL,\n"
    "  memory_mb INTEGER NOT NULL,\n"
    "  kernel TEXT,\n"
    "  initrd TEXT,\n"
    "  append TEXT,\n"
    "  ram_file TEXT NOT NULL,\n"
    "  ram_sha256 TEXT NOT NULL,\n"
    "  ram_size INTEGER NOT NULL,\n"
    "  ram_ino INTEGER NOT NULL,\n"
    "  ram_mtime INTEGER NOT NULL,\n"
    "  ram_mode INTEGER NOT NULL,\n"
    "  state_file TEXT NOT NULL,\n"
    "  state_sha256 TEXT NOT NULL,\n"
    "  state_size INTEGER NOT NULL,\n"
    "  state_ino INTEGER NOT NULL,\n"
    "  state_mtime INTEGER NOT NULL,\n"
    "  state_mode INTEGER NOT NULL,\n"
    "  created REAL NOT NULL);\n"
    "ALTER TABLE vms ADD COLUMN instant INTEGER NOT NULL DEFAULT 0;\n",
    /* 8: a large catalog (10k templates, 1M VMs): the volume_owners view
     * without joins and the indexes its queries need (catalog-internal.h) */
    CAT_SCALE_MIGRATION,
    /* 9: none (a number left unused: the instant templates needed no
     * schema change after 7) */
    "SELECT 1;\n",
    /* 10: hot templates (docs/design/scale-out.md): several base copies
     * of a template per pool, numbered by copy_no (0 first), each with
     * its own files, the first made from the template, the next ones
     * from a sibling copy (source_copy_id; no foreign key: the source
     * may go first); a pool's max_clones_per_base (NULL: the default of
     * its type, cat_pool_max_clones()). UNIQUE (template_id, pool_id,
     * copy_no) keeps one winner per new copy. SQLite cannot drop a
     * UNIQUE constraint: the table is rebuilt (open.c runs migrations
     * with foreign_keys off and checks them before the commit), its
     * AUTOINCREMENT sequence kept, the view that names it made again. */
    "ALTER TABLE pools ADD COLUMN max_clones_per_base INTEGER;\n"
    "DROP VIEW volume_owners;\n"
    "CREATE TABLE template_copies_v10(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  template_id INTEGER NOT NULL REFERENCES templates(id),\n"
    "  pool_id INTEGER NOT NULL REFERENCES pools(id),\n"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),\n"
    "  mechanism TEXT,\n"
    "  journal_id INTEGER REFERENCES journal(id),\n"
    "  created REAL NOT NULL,\n"
    "  copy_no INTEGER NOT NULL DEFAULT 0,\n"
    "  source_copy_id INTEGER,\n"
    "  UNIQUE (template_id, pool_id, copy_no));\n"
    "INSERT INTO template_copies_v10(id, template_id, pool_id, state,\n"
    "  mechanism, journal_id, created) SELECT id, template_id, pool_id,\n"
    "  state, mechanism, journal_id, created FROM template_copies;\n"
    "DELETE FROM sqlite_sequence WHERE name = 'template_copies_v10';\n"
    "INSERT INTO sqlite_sequence(name, seq) SELECT 'template_copies_v10',\n"
    "  seq FROM sqlite_sequence WHERE name = 'template_copies';\n"
    "DROP TABLE template_copies;\n"
    "ALTER TABLE template_copies_v10 RENAME TO template_copies;\n"
    "CREATE INDEX template_copies_journal ON template_copies(journal_id);\n"
    CAT_OWNERS_VIEW_V10,
};

const unsigned cat_nmigrations =
    sizeof(cat_migrations) / sizeof(cat_migrations[0]);
