// The SQLite store's schema, and the errors SQLite's answers become.
//
// On-disk layout (schema version 12, kept in PRAGMA user_version):
//   devices     (id PK, device_type, hardware_revision, site, connectivity, decommissioned,
//                update_state, doc)                                         WITHOUT ROWID
//   sites       (name PK, doc)                                              WITHOUT ROWID
//   profiles    (device_type PK, doc)                                       WITHOUT ROWID
//   artifacts   (name, version, doc, PK(name, version))                     WITHOUT ROWID
//   rollouts    (id PK, state, doc)       rowid table: plans make these documents large
//   deployments (rollout_id, device_id, stage, stratum, state, updated_at, doc,
//                PK(rollout_id, device_id))                                 WITHOUT ROWID
//                indexed by (rollout_id, state, device_id): pages of one state
//   sequences   (name PK, value)                                            WITHOUT ROWID
//   api_tokens  (id PK, doc)                                                WITHOUT ROWID
//   deployment_steps (seq PK, rollout_id, device_id, doc), indexed by
//                (rollout_id, device_id, seq): each deployment's history in order
//   audit_log   (idx PK, entry, checkpoint)  rowid table: append-only, by index
//   enrollment_tokens (id PK, doc)                                          WITHOUT ROWID
//   commands    (id PK, device_id, state, created_at, doc)                  WITHOUT ROWID
//                indexed by (device_id, created_at, id); the open ones by id (partial)
//   alerts      (id PK, device_id, state, opened_at, doc, unnotified)       WITHOUT ROWID
//                indexed by (device_id, opened_at, id), (opened_at, id), and partially
//                the unresolved ones and those the webhook has yet to deliver
//   held_conditions (device_id, rule, since, closed_by_person, PK(device_id, rule))
//                WITHOUT ROWID; plain columns, no document
// Enums are stored by their codec names, timestamps as milliseconds since the epoch.
#pragma once

#include <string>

#include "base/result.h"

struct sqlite3;

namespace drover::sqlite_schema {

// The schema version this build writes (PRAGMA user_version): the number of migrations.
int schema_version();

// Brings the schema of `db` up to schema_version(), one migration per transaction. The
// version is read inside the write transaction, so two processes opening a new file do not
// both migrate it. kCorruption for a schema newer than this build; kIo (or kCorruption, as
// SQLite judges the file) when a migration fails, rolled back.
Status migrate(sqlite3* db);

// SQLite's own judgement of the file decides between corruption and a plain I/O failure.
Error sqlite_error(sqlite3* db, int rc, const std::string& what);

}  // namespace drover::sqlite_schema
