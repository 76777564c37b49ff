#include "store/sqlite/schema.h"

#include <sqlite3.h>

#include <iterator>
#include <memory>
#include <string>

namespace drover::sqlite_schema {
namespace {

// Numbered schema migrations. Migration i (0-based) takes the database from user_version i to
// i + 1, inside one transaction. Append only: never edit a migration that has shipped.
constexpr const char* kMigrations[] = {
    // 1: the record tables. The CHECKs keep a record with an empty key out of the store (and
    // give the tests a way to make a batch fail half-way).
    R"sql(
CREATE TABLE devices (
  id                TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
  device_type       TEXT NOT NULL,
  hardware_revision TEXT NOT NULL,
  site              TEXT NOT NULL,
  connectivity      TEXT NOT NULL,
  decommissioned    INTEGER NOT NULL,
  update_state      TEXT NOT NULL,
  doc               TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sites (
  name TEXT NOT NULL PRIMARY KEY CHECK (length(name) > 0),
  doc  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE artifacts (
  name    TEXT NOT NULL CHECK (length(name) > 0),
  version TEXT NOT NULL CHECK (length(version) > 0),
  doc     TEXT NOT NULL,
  PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE TABLE rollouts (
  id    TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
  state TEXT NOT NULL,
  doc   TEXT NOT NULL
);
CREATE TABLE deployments (
  rollout_id TEXT NOT NULL CHECK (length(rollout_id) > 0),
  device_id  TEXT NOT NULL CHECK (length(device_id) > 0),
  stage      INTEGER NOT NULL,
  stratum    TEXT NOT NULL,
  state      TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  doc        TEXT NOT NULL,
  PRIMARY KEY (rollout_id, device_id)
) WITHOUT ROWID;
)sql",
    // 2: durable id counters.
    R"sql(
CREATE TABLE sequences (
  name  TEXT NOT NULL PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // 3: operator API tokens (the secret's hash, never the secret).
    R"sql(
CREATE TABLE api_tokens (
  id  TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
  doc TEXT NOT NULL
) WITHOUT ROWID;
)sql",
    // 4: each deployment's history, appended in order (seq is the rowid).
    R"sql(
CREATE TABLE deployment_steps (
  seq        INTEGER PRIMARY KEY,
  rollout_id TEXT NOT NULL CHECK (length(rollout_id) > 0),
  device_id  TEXT NOT NULL CHECK (length(device_id) > 0),
  doc        TEXT NOT NULL
);
CREATE INDEX deployment_steps_by_deployment ON deployment_steps (rollout_id, device_id, seq);
)sql",
    // 5: a rollout's deployments of one state, a page at a time (the operator API).
    R"sql(
CREATE INDEX deployments_by_state ON deployments (rollout_id, state, device_id);
)sql",
    // 6: device profiles (telemetry contracts, metric rules), one per device type.
    R"sql(
CREATE TABLE profiles (
  device_type TEXT NOT NULL PRIMARY KEY CHECK (length(device_type) > 0),
  doc         TEXT NOT NULL
) WITHOUT ROWID;
)sql",
    // 7: the audit log, one row per entry with the signed checkpoint it completes.
    R"sql(
CREATE TABLE audit_log (
  idx        INTEGER PRIMARY KEY CHECK (idx >= 0),
  entry      TEXT NOT NULL,
  checkpoint TEXT NOT NULL
);
)sql",
    // 8: scoped enrollment tokens (the secret's hash, never the secret).
    R"sql(
CREATE TABLE enrollment_tokens (
  id  TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
  doc TEXT NOT NULL
) WITHOUT ROWID;
)sql",
    // 9: remote commands; a device's history newest first, and the open ones at start-up.
    R"sql(
CREATE TABLE commands (
  id         TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
  device_id  TEXT NOT NULL,
  state      TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  doc        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX commands_by_device ON commands (device_id, created_at, id);
CREATE INDEX commands_open ON commands (id) WHERE state IN ('queued', 'sent');
)sql",
    // 10: alerts; newest first, of one device or all, and the unresolved ones at start-up.
    R"sql(
CREATE TABLE alerts (
  id        TEXT NOT NULL PRIMARY KEY CHECK (length(id) > 0),
  device_id TEXT NOT NULL,
  state     TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  doc       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX alerts_by_device ON alerts (device_id, opened_at, id);
CREATE INDEX alerts_by_time ON alerts (opened_at, id);
CREATE INDEX alerts_unresolved ON alerts (opened_at, id) WHERE state != 'resolved';
)sql",
    // 11: the alert changes the webhook has yet to deliver (notified_version < version).
    R"sql(
ALTER TABLE alerts ADD COLUMN unnotified INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alerts_unnotified ON alerts (opened_at, id) WHERE unnotified = 1;
)sql",
    // 12: since when the remediator counts each condition as held (kept across its restarts).
    R"sql(
CREATE TABLE held_conditions (
  device_id        TEXT NOT NULL,
  rule             TEXT NOT NULL CHECK (length(rule) > 0),
  since            INTEGER NOT NULL,
  closed_by_person INTEGER NOT NULL,
  PRIMARY KEY (device_id, rule)
) WITHOUT ROWID;
)sql",
    // 13: configuration documents, every version of each device type's.
    R"sql(
CREATE TABLE configs (
  device_type TEXT NOT NULL CHECK (length(device_type) > 0),
  version     INTEGER NOT NULL CHECK (version > 0),
  doc         TEXT NOT NULL,
  PRIMARY KEY (device_type, version)
) WITHOUT ROWID;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

}  // namespace

int schema_version() { return kSchemaVersion; }

Error sqlite_error(sqlite3* db, int rc, const std::string& what) {
  const int primary = rc & 0xff;
  const ErrorCode code = primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB
                             ? ErrorCode::kCorruption
                             : ErrorCode::kIo;
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return {code, "sqlite: " + what + ": " + detail};
}

Status migrate(sqlite3* db) {
  for (;;) {
    if (int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      return sqlite_error(db, rc, "starting a migration");
    }
    auto fail = [db](int rc, const std::string& what) {
      Error e = sqlite_error(db, rc, what);
      if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    };
    int version = 0;
    {
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &raw, nullptr);
      StmtPtr s(raw);
      if (rc == SQLITE_OK) rc = sqlite3_step(s.get());
      if (rc != SQLITE_ROW) return fail(rc, "reading the schema version");
      version = sqlite3_column_int(s.get(), 0);
    }
    if (version > kSchemaVersion || version < 0) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return Error{ErrorCode::kCorruption,
                   "sqlite: the database has schema version " + std::to_string(version) +
                       ", newer than this build knows (" + std::to_string(kSchemaVersion) +
                       "); open it with a newer drover"};
    }
    if (version == kSchemaVersion) {
      if (int rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
        return fail(rc, "ending the schema check");
      }
      return ok_status();
    }
    const std::string what = "schema migration " + std::to_string(version + 1);
    const std::string sql = std::string(kMigrations[version]) +
                            "\nPRAGMA user_version = " + std::to_string(version + 1) + ";\n";
    if (int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      return fail(rc, what);
    }
    if (int rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      return fail(rc, what + ": commit");
    }
  }
}

}  // namespace drover::sqlite_schema
