#include "store/sqlite/statements.h"

#include <utility>

#include "store/sqlite/schema.h"

namespace drover::sqlite_db {
namespace {

// The page cache, in KiB (SQLite's default is 2 MiB). A batch of 100k deployments touches
// ~30 MiB of pages; with the default cache it spills and reads its own pages back.
constexpr int kCacheKiB = 64 * 1024;

// How long a statement waits for another connection's lock before failing with SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 5000;

}  // namespace

Result<Statements> prepare_statements(sqlite3* db) {
  Statements st;
  const std::pair<StmtPtr*, const char*> sql[] = {
      {&st.begin, "BEGIN IMMEDIATE"},
      {&st.begin_read, "BEGIN"},
      {&st.commit, "COMMIT"},
      {&st.rollback, "ROLLBACK"},
      {&st.put_device,
       "INSERT INTO devices (id, device_type, hardware_revision, site, connectivity, "
       "decommissioned, update_state, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
       "ON CONFLICT (id) DO UPDATE SET device_type = excluded.device_type, "
       "hardware_revision = excluded.hardware_revision, site = excluded.site, "
       "connectivity = excluded.connectivity, decommissioned = excluded.decommissioned, "
       "update_state = excluded.update_state, doc = excluded.doc"},
      {&st.put_site,
       "INSERT INTO sites (name, doc) VALUES (?1, ?2) "
       "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc"},
      {&st.put_profile,
       "INSERT INTO profiles (device_type, doc) VALUES (?1, ?2) "
       "ON CONFLICT (device_type) DO UPDATE SET doc = excluded.doc"},
      {&st.put_artifact,
       "INSERT INTO artifacts (name, version, doc) VALUES (?1, ?2, ?3) "
       "ON CONFLICT (name, version) DO UPDATE SET doc = excluded.doc"},
      {&st.put_rollout,
       "INSERT INTO rollouts (id, state, doc) VALUES (?1, ?2, ?3) "
       "ON CONFLICT (id) DO UPDATE SET state = excluded.state, doc = excluded.doc"},
      {&st.put_deployment,
       "INSERT INTO deployments (rollout_id, device_id, stage, stratum, state, updated_at, doc) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
       "ON CONFLICT (rollout_id, device_id) DO UPDATE SET stage = excluded.stage, "
       "stratum = excluded.stratum, state = excluded.state, updated_at = excluded.updated_at, "
       "doc = excluded.doc"},
      {&st.put_api_token,
       "INSERT INTO api_tokens (id, doc) VALUES (?1, ?2) "
       "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"},
      {&st.put_enrollment_token,
       "INSERT INTO enrollment_tokens (id, doc) VALUES (?1, ?2) "
       "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"},
      {&st.put_command,
       "INSERT INTO commands (id, device_id, state, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5) "
       "ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, state = excluded.state, "
       "created_at = excluded.created_at, doc = excluded.doc"},
      {&st.get_command, "SELECT doc FROM commands WHERE id = ?1"},
      {&st.list_commands,
       "SELECT id, doc FROM commands WHERE device_id = ?1 "
       "AND (?2 = 0 OR created_at < ?2 OR (created_at = ?2 AND id < ?3)) "
       "ORDER BY created_at DESC, id DESC LIMIT ?4"},
      {&st.list_open_commands,
       "SELECT id, doc FROM commands WHERE state IN ('queued', 'sent') ORDER BY id"},
      {&st.put_alert,
       "INSERT INTO alerts (id, device_id, state, opened_at, doc, unnotified) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
       "ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, state = excluded.state, "
       "opened_at = excluded.opened_at, doc = excluded.doc, unnotified = excluded.unnotified"},
      {&st.get_alert, "SELECT doc FROM alerts WHERE id = ?1"},
      {&st.list_alerts,
       "SELECT id, doc FROM alerts WHERE (?1 = '' OR device_id = ?1) "
       "AND (?2 = 0 OR state != 'resolved') "
       "AND (?3 = 0 OR opened_at < ?3 OR (opened_at = ?3 AND id < ?4)) "
       "AND (?6 = 0 OR unnotified = 1) "
       "ORDER BY opened_at DESC, id DESC LIMIT ?5"},
      // What a starting webhook sends: on the partial index alone (the general query's
      // "?6 = 0 OR" keeps the planner from it).
      {&st.list_unnotified_alerts,
       "SELECT id, doc FROM alerts WHERE unnotified = 1 "
       "AND (?1 = 0 OR opened_at < ?1 OR (opened_at = ?1 AND id < ?2)) "
       "ORDER BY opened_at DESC, id DESC LIMIT ?3"},
      {&st.put_step,
       "INSERT INTO deployment_steps (rollout_id, device_id, doc) VALUES (?1, ?2, ?3)"},
      {&st.get_device, "SELECT doc FROM devices WHERE id = ?1"},
      {&st.get_site, "SELECT doc FROM sites WHERE name = ?1"},
      {&st.get_profile, "SELECT doc FROM profiles WHERE device_type = ?1"},
      {&st.get_artifact, "SELECT doc FROM artifacts WHERE name = ?1 AND version = ?2"},
      {&st.get_rollout, "SELECT doc FROM rollouts WHERE id = ?1"},
      {&st.get_deployment, "SELECT doc FROM deployments WHERE rollout_id = ?1 AND device_id = ?2"},
      {&st.get_api_token, "SELECT doc FROM api_tokens WHERE id = ?1"},
      {&st.list_devices, "SELECT id, doc FROM devices ORDER BY id"},
      {&st.list_api_tokens, "SELECT id, doc FROM api_tokens ORDER BY id"},
      {&st.get_enrollment_token, "SELECT doc FROM enrollment_tokens WHERE id = ?1"},
      {&st.list_enrollment_tokens, "SELECT id, doc FROM enrollment_tokens ORDER BY id"},
      {&st.list_sites, "SELECT name, doc FROM sites ORDER BY name"},
      {&st.list_profiles, "SELECT device_type, doc FROM profiles ORDER BY device_type"},
      {&st.list_artifacts,
       "SELECT name || '@' || version, doc FROM artifacts ORDER BY name, version"},
      {&st.list_rollouts, "SELECT id, doc FROM rollouts ORDER BY id"},
      {&st.list_deployments,
       "SELECT rollout_id || '/' || device_id, doc FROM deployments WHERE rollout_id = ?1 "
       "ORDER BY device_id"},
      {&st.page_deployments,
       "SELECT rollout_id || '/' || device_id, doc FROM deployments "
       "WHERE rollout_id = ?1 AND device_id > ?2 ORDER BY device_id LIMIT ?3"},
      {&st.page_deployments_in_state,
       "SELECT rollout_id || '/' || device_id, doc FROM deployments "
       "WHERE rollout_id = ?1 AND state = ?2 AND device_id > ?3 ORDER BY device_id LIMIT ?4"},
      {&st.count_deployments, "SELECT count(*) FROM deployments WHERE rollout_id = ?1"},
      {&st.count_deployments_in_state,
       "SELECT count(*) FROM deployments WHERE rollout_id = ?1 AND state = ?2"},
      {&st.list_steps,
       "SELECT rollout_id || '/' || device_id, doc FROM deployment_steps "
       "WHERE rollout_id = ?1 AND device_id = ?2 ORDER BY seq"},
      {&st.put_held,
       "INSERT INTO held_conditions (device_id, rule, since, closed_by_person) "
       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id, rule) DO UPDATE SET "
       "since = excluded.since, closed_by_person = excluded.closed_by_person"},
      {&st.delete_held, "DELETE FROM held_conditions WHERE device_id = ?1 AND rule = ?2"},
      {&st.put_config,
       "INSERT INTO configs (device_type, version, doc) VALUES (?1, ?2, ?3) "
       "ON CONFLICT (device_type, version) DO UPDATE SET doc = excluded.doc"},
      {&st.get_config, "SELECT doc FROM configs WHERE device_type = ?1 AND version = ?2"},
      {&st.get_newest_config,
       "SELECT doc FROM configs WHERE device_type = ?1 ORDER BY version DESC LIMIT 1"},
      {&st.list_configs,
       "SELECT device_type || '@' || version, doc FROM configs WHERE device_type = ?1 "
       "ORDER BY version"},
      {&st.list_held,
       "SELECT device_id, rule, since, closed_by_person FROM held_conditions "
       "ORDER BY device_id, rule"},
      {&st.delete_artifact, "DELETE FROM artifacts WHERE name = ?1 AND version = ?2"},
      {&st.delete_device, "DELETE FROM devices WHERE id = ?1"},
      {&st.next_sequence,
       "INSERT INTO sequences (name, value) VALUES (?1, 1) "
       "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"},
      {&st.put_audit, "INSERT INTO audit_log (idx, entry, checkpoint) VALUES (?1, ?2, ?3)"},
      {&st.audit_size, "SELECT coalesce(max(idx) + 1, 0) FROM audit_log"},
      {&st.read_audit,
       "SELECT idx, entry, checkpoint FROM audit_log WHERE idx >= ?1 ORDER BY idx LIMIT ?2"},
  };
  for (const auto& [slot, text] : sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db, text, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    slot->reset(raw);
    if (rc != SQLITE_OK)
      return sqlite_schema::sqlite_error(db, rc, std::string("preparing '") + text + "'");
  }
  return st;
}

Result<std::string> pragma(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr);
  StmtPtr s(raw);
  if (rc == SQLITE_OK) rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return std::string(column_text(s.get(), 0));
  if (rc == SQLITE_DONE) return std::string();
  return sqlite_schema::sqlite_error(db, rc, sql);
}

Result<DbPtr> open_connection(const std::string& path, const SqliteOptions& options) {
  sqlite3* raw = nullptr;
  // NOMUTEX: the store serializes every use of a connection itself.
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);  // sqlite3_open_v2 may hand out a handle even when it fails
  if (rc != SQLITE_OK) {
    Error e = sqlite_schema::sqlite_error(db.get(), rc, "opening '" + path + "'");
    e.code = ErrorCode::kIo;
    return e;
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  if (auto sync = pragma(db.get(), options.synchronous_full ? "PRAGMA synchronous = FULL"
                                                            : "PRAGMA synchronous = NORMAL");
      !sync.ok()) {
    return sync.error();
  }
  if (auto cache = pragma(db.get(), "PRAGMA cache_size = -" + std::to_string(kCacheKiB));
      !cache.ok()) {
    return cache.error();
  }
  return db;
}

}  // namespace drover::sqlite_db
