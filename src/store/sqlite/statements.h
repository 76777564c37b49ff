// The SQLite store's connections and the statements prepared on them (sqlite_store.cc is the
// store itself): how a connection is opened and configured, and every statement's SQL in one
// table, prepared once per connection. Internal to the SQLite store.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "store/store.h"

namespace drover::sqlite_db {

struct DbCloser {
  // Every statement is finalized before the handle goes, so close cannot report busy.
  void operator()(sqlite3* db) const { DROVER_CHECK(sqlite3_close(db) == SQLITE_OK); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// The statements the store runs, prepared once when it opens.
struct Statements {
  StmtPtr begin, begin_read, commit, rollback;
  StmtPtr put_device, put_site, put_profile, put_artifact, put_rollout, put_deployment,
      put_api_token, put_enrollment_token, put_command, put_alert, put_step;
  StmtPtr get_device, get_site, get_profile, get_artifact, get_rollout, get_deployment,
      get_api_token, get_enrollment_token, get_command, get_alert;
  StmtPtr list_devices, list_sites, list_profiles, list_artifacts, list_rollouts, list_deployments,
      list_api_tokens, list_enrollment_tokens, list_steps, list_commands, list_open_commands,
      list_alerts, list_unnotified_alerts;
  StmtPtr page_deployments, page_deployments_in_state, count_deployments,
      count_deployments_in_state;
  StmtPtr put_held, delete_held, list_held;
  StmtPtr put_config, get_config, get_newest_config, list_configs;
  StmtPtr delete_artifact, delete_device, next_sequence;
  StmtPtr put_audit, audit_size, read_audit;
};

// A connection and the statements prepared on it.
struct Connection {
  DbPtr db;  // declared before the statements so it is closed after they are finalized
  Statements st;
};

// The text of a column of the current row, without copying ("" for NULL): valid until the
// statement steps or resets.
inline std::string_view column_text(sqlite3_stmt* s, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
  if (text == nullptr) return {};
  return {text, static_cast<size_t>(sqlite3_column_bytes(s, column))};
}

// Prepares every statement of the store on `db` (whose schema is migrated). The error names
// the statement that failed.
Result<Statements> prepare_statements(sqlite3* db);

// Runs a pragma and returns the first column of its first row ("" when it returns none).
Result<std::string> pragma(sqlite3* db, const std::string& sql);

// Opens `path` with the store's settings. kIo when it cannot be opened or configured.
Result<DbPtr> open_connection(const std::string& path, const SqliteOptions& options);

}  // namespace drover::sqlite_db
