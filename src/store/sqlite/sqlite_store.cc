// The SQLite Store: one writing connection in WAL mode behind a mutex, and for a database
// file a second connection that only reads, behind its own: WAL lets a reader see the last
// committed state while the writer's transaction (and its fsync) is under way, so no read
// waits for a commit. Each record is kept as its
// codec JSON document (`doc`) next to the columns that identify or index it, so the schema
// only changes when a query needs a new column, never when a record gains a field.
//
// The on-disk layout and its migrations: sqlite/schema.h; the connections and the SQL of every
// statement: sqlite/statements.h.
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "model/codec.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/statements.h"
#include "store/store.h"

namespace drover {
namespace {

using sqlite_db::column_text;
using sqlite_db::Connection;
using sqlite_db::DbPtr;
using sqlite_db::open_connection;
using sqlite_db::pragma;
using sqlite_db::prepare_statements;
using sqlite_db::StmtPtr;
using sqlite_schema::migrate;
using sqlite_schema::sqlite_error;

// Resets a cached statement at the end of a scope, so it is ready for reuse and no longer
// holds the read transaction it opened.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* s) : s_(s) {}
  ~ResetOnExit() { sqlite3_reset(s_); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* s_;
};

// Binds text without copying (the caller keeps it alive until the statement is reset). An
// empty view may have a null data pointer, which SQLite would bind as NULL: bind "" instead.
int bind_value(sqlite3_stmt* s, int index, std::string_view v) {
  return sqlite3_bind_text64(s, index, v.empty() ? "" : v.data(), v.size(), nullptr, SQLITE_UTF8);
}
int bind_value(sqlite3_stmt* s, int index, int64_t v) { return sqlite3_bind_int64(s, index, v); }

// Binds args to parameters ?1, ?2, ...; returns the first failure's code or SQLITE_OK.
template <typename... Args>
int bind_all([[maybe_unused]] sqlite3_stmt* s, const Args&... args) {
  [[maybe_unused]] int index = 0;
  int rc = SQLITE_OK;
  ((rc = rc == SQLITE_OK ? bind_value(s, ++index, args) : rc), ...);
  return rc;
}

// Binds, steps once and resets a statement that returns no rows. SQLITE_OK on success.
template <typename... Args>
int run(sqlite3_stmt* s, const Args&... args) {
  int rc = bind_all(s, args...);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

Error corruption(const char* table, const std::string& key, const std::string& why) {
  return {ErrorCode::kCorruption,
          "sqlite: table " + std::string(table) + ", key '" + key + "': " + why};
}

// Encoding a record as codec JSON costs about as much as SQLite's upsert of it. Batches larger
// than one chunk are pipelined: a helper thread encodes chunk k + 1 while chunk k is written.
constexpr size_t kEncodeChunk = 4096;

template <typename T>
std::vector<std::string> encode_range(const std::vector<T>& records, size_t begin, size_t end) {
  std::vector<std::string> docs;
  docs.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) docs.push_back(to_json(records[i]));
  return docs;
}

// Calls write_row(record, doc) for every record in order; stops at the first failure.
template <typename T, typename WriteRow>
Status write_rows(const std::vector<T>& records, WriteRow write_row) {
  const size_t n = records.size();
  std::vector<std::string> docs = encode_range(records, 0, std::min(n, kEncodeChunk));
  for (size_t begin = 0; begin < n; begin += kEncodeChunk) {
    const size_t end = std::min(n, begin + kEncodeChunk);
    std::future<std::vector<std::string>> next;
    if (end < n) {
      // async | deferred: when no thread can be started, the chunk is encoded at get().
      next = std::async(std::launch::async | std::launch::deferred, [&records, end, n] {
        return encode_range(records, end, std::min(n, end + kEncodeChunk));
      });
    }
    for (size_t i = begin; i < end; ++i) {
      // On failure, `next`'s destructor waits for the helper before `records` can go away.
      if (Status st = write_row(records[i], docs[i - begin]); !st.ok()) return st;
    }
    if (next.valid()) docs = next.get();
  }
  return ok_status();
}

// Thread-safe: the writing connection is used only under mu_, the reading one only under
// read_mu_. A batch is one transaction, so readers see all of it or none of it.
class SqliteStore final : public Store {
 public:
  // `reader`: null for a database in memory (":memory:" is private to its connection), whose
  // reads then go through the writer.
  SqliteStore(Connection writer, std::unique_ptr<Connection> reader)
      : w_(std::move(writer)), reader_(std::move(reader)) {}

  Status apply(const WriteBatch& batch) override {
    DROVER_TRY(check_keys(batch));
    MutexLock lock(mu_);
    if (batch.empty()) return ok_status();
    if (int rc = run(w_.st.begin.get()); rc != SQLITE_OK) return io(rc, "apply: begin");
    Status written = write_all(batch);
    if (written.ok()) {
      if (int rc = run(w_.st.commit.get()); rc != SQLITE_OK) written = io(rc, "apply: commit");
    }
    if (!written.ok()) rollback();
    return written;
  }

  Status apply_all(std::span<const WriteBatch* const> batches) override {
    for (const WriteBatch* b : batches) DROVER_TRY(check_keys(*b));
    MutexLock lock(mu_);
    if (int rc = run(w_.st.begin.get()); rc != SQLITE_OK) return io(rc, "apply: begin");
    Status written = ok_status();
    for (const WriteBatch* b : batches) {
      written = write_all(*b);
      if (!written.ok()) break;
    }
    if (written.ok()) {
      if (int rc = run(w_.st.commit.get()); rc != SQLITE_OK) written = io(rc, "apply: commit");
    }
    if (!written.ok()) rollback();
    return written;
  }

  Result<std::optional<Device>> get_device(std::string_view id) override {
    return read([&](Connection& c) {
      return read_one<Device>(c, c.st.get_device.get(), &device_from_json, "devices",
                              std::string(id), id);
    });
  }
  Result<std::optional<Site>> get_site(std::string_view name) override {
    return read([&](Connection& c) {
      return read_one<Site>(c, c.st.get_site.get(), &site_from_json, "sites", std::string(name),
                            name);
    });
  }
  Result<std::optional<DeviceProfile>> get_profile(std::string_view device_type) override {
    return read([&](Connection& c) {
      return read_one<DeviceProfile>(c, c.st.get_profile.get(), &profile_from_json, "profiles",
                                     std::string(device_type), device_type);
    });
  }
  Result<std::vector<DeviceProfile>> list_profiles() override {
    return read([&](Connection& c) {
      return read_all<DeviceProfile>(c, c.st.list_profiles.get(), &profile_from_json, "profiles");
    });
  }
  Result<std::optional<Artifact>> get_artifact(std::string_view name,
                                               std::string_view version) override {
    return read([&](Connection& c) {
      return read_one<Artifact>(c, c.st.get_artifact.get(), &artifact_from_json, "artifacts",
                                std::string(name) + "@" + std::string(version), name, version);
    });
  }
  Result<std::optional<Rollout>> get_rollout(std::string_view id) override {
    return read([&](Connection& c) {
      return read_one<Rollout>(c, c.st.get_rollout.get(), &rollout_from_json, "rollouts",
                               std::string(id), id);
    });
  }
  Result<std::optional<Deployment>> get_deployment(std::string_view rollout_id,
                                                   std::string_view device_id) override {
    return read([&](Connection& c) {
      return read_one<Deployment>(
          c, c.st.get_deployment.get(), &deployment_from_json, "deployments",
          std::string(rollout_id) + "/" + std::string(device_id), rollout_id, device_id);
    });
  }

  Result<std::optional<ApiToken>> get_api_token(std::string_view id) override {
    return read([&](Connection& c) {
      return read_one<ApiToken>(c, c.st.get_api_token.get(), &api_token_from_json, "api_tokens",
                                std::string(id), id);
    });
  }

  Result<std::optional<EnrollmentToken>> get_enrollment_token(std::string_view id) override {
    return read([&](Connection& c) {
      return read_one<EnrollmentToken>(c, c.st.get_enrollment_token.get(),
                                       &enrollment_token_from_json, "enrollment_tokens",
                                       std::string(id), id);
    });
  }

  Result<std::vector<Device>> list_devices() override {
    return read([&](Connection& c) {
      return read_all<Device>(c, c.st.list_devices.get(), &device_from_json, "devices");
    });
  }
  Result<std::vector<Site>> list_sites() override {
    return read([&](Connection& c) {
      return read_all<Site>(c, c.st.list_sites.get(), &site_from_json, "sites");
    });
  }
  Result<std::vector<Artifact>> list_artifacts() override {
    return read([&](Connection& c) {
      return read_all<Artifact>(c, c.st.list_artifacts.get(), &artifact_from_json, "artifacts");
    });
  }
  Result<std::vector<Rollout>> list_rollouts() override {
    return read([&](Connection& c) {
      return read_all<Rollout>(c, c.st.list_rollouts.get(), &rollout_from_json, "rollouts");
    });
  }
  Result<std::vector<Deployment>> list_deployments(std::string_view rollout_id) override {
    return read([&](Connection& c) {
      return read_all<Deployment>(c, c.st.list_deployments.get(), &deployment_from_json,
                                  "deployments", rollout_id);
    });
  }

  Result<DeploymentPage> page_deployments(std::string_view rollout_id,
                                          std::optional<DeploymentState> state,
                                          std::string_view after, size_t limit) override {
    return read([&](Connection& c) -> Result<DeploymentPage> {
      // The page and its count from one snapshot.
      if (int rc = run(c.st.begin_read.get()); rc != SQLITE_OK)
        return sqlite_error(c.db.get(), rc, "paging deployments");
      // Ended however this returns (a snapshot left open would go stale and pin the WAL).
      struct EndRead {
        Connection& c;
        ~EndRead() {
          if (sqlite3_get_autocommit(c.db.get()) == 0) run(c.st.rollback.get());
        }
      } end{c};
      auto page = page_of(c, rollout_id, state, after, limit);
      if (int rc = run(c.st.commit.get()); rc != SQLITE_OK && page.ok())
        return sqlite_error(c.db.get(), rc, "paging deployments");
      return page;
    });
  }

  Result<std::vector<ApiToken>> list_api_tokens() override {
    return read([&](Connection& c) {
      return read_all<ApiToken>(c, c.st.list_api_tokens.get(), &api_token_from_json, "api_tokens");
    });
  }
  Result<std::vector<EnrollmentToken>> list_enrollment_tokens() override {
    return read([&](Connection& c) {
      return read_all<EnrollmentToken>(c, c.st.list_enrollment_tokens.get(),
                                       &enrollment_token_from_json, "enrollment_tokens");
    });
  }
  Result<std::optional<Command>> get_command(std::string_view id) override {
    return read([&](Connection& c) {
      return read_one<Command>(c, c.st.get_command.get(), &command_from_json, "commands",
                               std::string(id), id);
    });
  }
  Result<std::vector<Command>> list_commands(std::string_view device_id, size_t limit,
                                             Timestamp before,
                                             std::string_view before_id) override {
    return read([&](Connection& c) {
      return read_all<Command>(c, c.st.list_commands.get(), &command_from_json, "commands",
                               device_id, int64_t{before.time_since_epoch().count()}, before_id,
                               static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    });
  }
  Result<std::optional<Alert>> get_alert(std::string_view id) override {
    return read([&](Connection& c) {
      return read_one<Alert>(c, c.st.get_alert.get(), &alert_from_json, "alerts", std::string(id),
                             id);
    });
  }
  Result<std::optional<ConfigDocument>> get_config(std::string_view device_type,
                                                   uint64_t version) override {
    const std::string key = std::string(device_type) + "@" + std::to_string(version);
    return read([&](Connection& c) {
      if (version == 0) {
        return read_one<ConfigDocument>(c, c.st.get_newest_config.get(), &config_document_from_json,
                                        "configs", key, device_type);
      }
      return read_one<ConfigDocument>(c, c.st.get_config.get(), &config_document_from_json,
                                      "configs", key, device_type,
                                      static_cast<int64_t>(std::min<uint64_t>(version, INT64_MAX)));
    });
  }
  Result<std::vector<ConfigDocument>> list_configs(std::string_view device_type) override {
    return read([&](Connection& c) {
      return read_all<ConfigDocument>(c, c.st.list_configs.get(), &config_document_from_json,
                                      "configs", device_type);
    });
  }
  Result<std::vector<Alert>> list_alerts(const AlertQuery& q) override {
    const auto limit = static_cast<int64_t>(std::min<size_t>(q.limit, INT64_MAX));
    if (q.unnotified_only && q.device_id.empty() && !q.unresolved_only) {
      return read([&](Connection& c) {
        return read_all<Alert>(c, c.st.list_unnotified_alerts.get(), &alert_from_json, "alerts",
                               int64_t{q.before.time_since_epoch().count()},
                               std::string_view(q.before_id), limit);
      });
    }
    return read([&](Connection& c) {
      return read_all<Alert>(
          c, c.st.list_alerts.get(), &alert_from_json, "alerts", std::string_view(q.device_id),
          int64_t{q.unresolved_only ? 1 : 0}, int64_t{q.before.time_since_epoch().count()},
          std::string_view(q.before_id), limit, int64_t{q.unnotified_only ? 1 : 0});
    });
  }
  Result<std::vector<Command>> list_open_commands() override {
    return read([&](Connection& c) {
      return read_all<Command>(c, c.st.list_open_commands.get(), &command_from_json, "commands");
    });
  }
  Result<std::vector<HeldCondition>> list_held_conditions() override {
    return read([&](Connection& c) -> Result<std::vector<HeldCondition>> {
      sqlite3_stmt* s = c.st.list_held.get();
      ResetOnExit reset(s);
      std::vector<HeldCondition> out;
      int rc = sqlite3_step(s);
      for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
        out.push_back({std::string(column_text(s, 0)), std::string(column_text(s, 1)),
                       Timestamp(Duration(sqlite3_column_int64(s, 2))),
                       sqlite3_column_int64(s, 3) != 0});
      }
      if (rc != SQLITE_DONE) return sqlite_error(c.db.get(), rc, "listing held conditions");
      return out;
    });
  }
  Result<std::vector<DeploymentStep>> list_deployment_steps(std::string_view rollout_id,
                                                            std::string_view device_id) override {
    return read([&](Connection& c) {
      return read_all<DeploymentStep>(c, c.st.list_steps.get(), &step_from_json, "deployment_steps",
                                      rollout_id, device_id);
    });
  }

  Status delete_artifact(std::string_view name, std::string_view version) override {
    MutexLock lock(mu_);
    const std::string key = std::string(name) + "@" + std::string(version);
    if (int rc = run(w_.st.delete_artifact.get(), name, version); rc != SQLITE_OK) {
      return io(rc, "deleting artifact " + key);
    }
    if (sqlite3_changes(w_.db.get()) == 0)
      return not_found("artifact '" + key + "' does not exist");
    return ok_status();
  }

  // An explicit transaction, so a failing commit is reported instead of lost in a reset.
  Result<uint64_t> next_sequence(std::string_view name) override {
    MutexLock lock(mu_);
    const std::string what = "next_sequence '" + std::string(name) + "'";
    if (int rc = run(w_.st.begin.get()); rc != SQLITE_OK) return io(rc, what + ": begin");
    sqlite3_stmt* s = w_.st.next_sequence.get();
    std::optional<int64_t> value;
    int rc = bind_all(s, name);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      value = sqlite3_column_int64(s, 0);
      rc = sqlite3_step(s);
    }
    sqlite3_reset(s);
    rc = rc == SQLITE_DONE ? run(w_.st.commit.get()) : rc;
    if (rc != SQLITE_OK || !value) {
      Error e = io(rc, what);
      rollback();
      return e;
    }
    return static_cast<uint64_t>(*value);
  }

  // The size is read inside the write transaction, so of two processes appending the same
  // index one commits and the other is told kConflict.
  Status append_audit(const AuditRecord& record) override {
    MutexLock lock(mu_);
    const std::string what = "appending audit entry " + std::to_string(record.index);
    if (int rc = run(w_.st.begin.get()); rc != SQLITE_OK) return io(rc, what + ": begin");
    auto size = audit_size_on(w_);
    Status st = size.ok() ? ok_status() : Status(size.error());
    if (st.ok() && *size != record.index) {
      st = conflict("the audit log has " + std::to_string(*size) + " entries; entry " +
                    std::to_string(record.index) + " cannot be appended");
    }
    if (st.ok()) {
      const int rc = run(w_.st.put_audit.get(), static_cast<int64_t>(record.index),
                         std::string_view(record.entry), std::string_view(record.checkpoint));
      if (rc != SQLITE_OK) st = io(rc, what);
    }
    if (st.ok()) {
      if (int rc = run(w_.st.commit.get()); rc != SQLITE_OK) st = io(rc, what + ": commit");
    }
    if (!st.ok()) rollback();
    return st;
  }

  Result<uint64_t> audit_size() override {
    return read([&](Connection& c) { return audit_size_on(c); });
  }

  Result<std::vector<AuditRecord>> read_audit(uint64_t from, size_t limit) override {
    return read([&](Connection& c) -> Result<std::vector<AuditRecord>> {
      sqlite3_stmt* s = c.st.read_audit.get();
      ResetOnExit reset(s);
      std::vector<AuditRecord> out;
      const auto capped = [](uint64_t v) {
        return static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX));
      };
      int rc = bind_all(s, capped(from), capped(limit));
      if (rc == SQLITE_OK) rc = sqlite3_step(s);
      for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
        out.push_back({static_cast<uint64_t>(sqlite3_column_int64(s, 0)),
                       std::string(column_text(s, 1)), std::string(column_text(s, 2))});
      }
      if (rc != SQLITE_DONE) return sqlite_error(c.db.get(), rc, "reading the audit log");
      return out;
    });
  }

 private:
  static Result<uint64_t> audit_size_on(Connection& c) {
    sqlite3_stmt* s = c.st.audit_size.get();
    ResetOnExit reset(s);
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) return sqlite_error(c.db.get(), rc, "sizing the audit log");
    return static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  }

  // Every failure of a write is kIo, whatever SQLite thought of it: the contract of apply().
  Error io(int rc, const std::string& what) REQUIRES(mu_) {
    Error e = sqlite_error(w_.db.get(), rc, what);
    e.code = ErrorCode::kIo;
    return e;
  }

  // Rolls back the open transaction, if SQLite has not already done so itself (it does on
  // some I/O errors and SQLITE_FULL).
  void rollback() REQUIRES(mu_) {
    if (sqlite3_get_autocommit(w_.db.get()) == 0) run(w_.st.rollback.get());
  }

  // write_rows, which calls `write_row` back on this thread (with mu_ held, as this function
  // requires) — a callback the analysis cannot follow through the free function.
  template <typename T, typename WriteRow>
  Status write_each(const std::vector<T>& records, WriteRow write_row) REQUIRES(mu_) {
    return write_rows(records, [&](const T& r, const std::string& doc)
                                   NO_THREAD_SAFETY_ANALYSIS { return write_row(r, doc); });
  }

  Status write_all(const WriteBatch& batch) REQUIRES(mu_) {
    Status st =
        write_each(batch.devices, [this](const Device& d, const std::string& doc) REQUIRES(mu_) {
          const int rc = run(w_.st.put_device.get(), d.id, d.device_type, d.hardware_revision,
                             d.site, d.connectivity, int64_t{d.decommissioned ? 1 : 0},
                             std::string_view(to_string(d.update_state)), doc);
          return check(rc, [&] { return "device '" + d.id + "'"; });
        });
    if (st.ok()) {
      st = write_each(batch.sites, [this](const Site& s, const std::string& doc) REQUIRES(mu_) {
        const int rc = run(w_.st.put_site.get(), s.name, doc);
        return check(rc, [&] { return "site '" + s.name + "'"; });
      });
    }
    if (st.ok()) {
      st = write_each(batch.profiles,
                      [this](const DeviceProfile& p, const std::string& doc) REQUIRES(mu_) {
                        const int rc = run(w_.st.put_profile.get(), p.device_type, doc);
                        return check(rc, [&] { return "profile '" + p.device_type + "'"; });
                      });
    }
    if (st.ok()) {
      st = write_each(
          batch.configs, [this](const ConfigDocument& d, const std::string& doc) REQUIRES(mu_) {
            const int rc = run(w_.st.put_config.get(), d.device_type,
                               static_cast<int64_t>(std::min<uint64_t>(d.version, INT64_MAX)), doc);
            return check(rc, [&] { return "configuration '" + d.device_type + "'"; });
          });
    }
    if (st.ok()) {
      st = write_each(batch.artifacts,
                      [this](const Artifact& a, const std::string& doc) REQUIRES(mu_) {
                        const int rc = run(w_.st.put_artifact.get(), a.name, a.version, doc);
                        return check(rc, [&] { return "artifact '" + a.key() + "'"; });
                      });
    }
    if (st.ok()) {
      st = write_each(
          batch.rollouts, [this](const Rollout& r, const std::string& doc) REQUIRES(mu_) {
            const int rc =
                run(w_.st.put_rollout.get(), r.id, std::string_view(to_string(r.state)), doc);
            return check(rc, [&] { return "rollout '" + r.id + "'"; });
          });
    }
    if (st.ok()) {
      st = write_each(batch.deployments, [this](const Deployment& d,
                                                const std::string& doc) REQUIRES(mu_) {
        const int rc = run(w_.st.put_deployment.get(), d.rollout_id, d.device_id, int64_t{d.stage},
                           d.stratum, std::string_view(to_string(d.state)),
                           int64_t{d.updated_at.time_since_epoch().count()}, doc);
        return check(rc, [&] { return "deployment '" + d.rollout_id + "/" + d.device_id + "'"; });
      });
    }
    if (st.ok()) {
      st = write_each(batch.api_tokens,
                      [this](const ApiToken& t, const std::string& doc) REQUIRES(mu_) {
                        const int rc = run(w_.st.put_api_token.get(), t.id, doc);
                        return check(rc, [&] { return "api token '" + t.id + "'"; });
                      });
    }
    if (st.ok()) {
      st = write_each(batch.enrollment_tokens,
                      [this](const EnrollmentToken& t, const std::string& doc) REQUIRES(mu_) {
                        const int rc = run(w_.st.put_enrollment_token.get(), t.id, doc);
                        return check(rc, [&] { return "enrollment token '" + t.id + "'"; });
                      });
    }
    if (st.ok()) {
      st = write_each(batch.commands,
                      [this](const Command& c, const std::string& doc) REQUIRES(mu_) {
                        const int rc = run(w_.st.put_command.get(), c.id, c.device_id,
                                           std::string_view(to_string(c.state)),
                                           int64_t{c.created_at.time_since_epoch().count()}, doc);
                        return check(rc, [&] { return "command '" + c.id + "'"; });
                      });
    }
    if (st.ok()) {
      st = write_each(batch.alerts, [this](const Alert& a, const std::string& doc) REQUIRES(mu_) {
        const int rc =
            run(w_.st.put_alert.get(), a.id, a.device_id, std::string_view(to_string(a.state)),
                int64_t{a.opened_at.time_since_epoch().count()}, doc,
                int64_t{a.notified_version < a.version ? 1 : 0});
        return check(rc, [&] { return "alert '" + a.id + "'"; });
      });
    }
    if (st.ok()) {
      st = write_each(batch.steps, [this](const DeploymentStep& s,
                                          const std::string& doc) REQUIRES(mu_) {
        const int rc = run(w_.st.put_step.get(), s.rollout_id, s.device_id, doc);
        return check(rc, [&] { return "a step of '" + s.rollout_id + "/" + s.device_id + "'"; });
      });
    }
    for (size_t k = 0; st.ok() && k < batch.removed_devices.size(); ++k) {
      const std::string& id = batch.removed_devices[k];
      st = check(run(w_.st.delete_device.get(), id),
                 [&] { return "the removal of device '" + id + "'"; });
    }
    for (size_t k = 0; st.ok() && k < batch.held_conditions.size(); ++k) {
      const HeldCondition& h = batch.held_conditions[k];
      st = check(
          run(w_.st.put_held.get(), h.device_id, h.rule,
              int64_t{h.since.time_since_epoch().count()}, int64_t{h.closed_by_person ? 1 : 0}),
          [&] { return "held condition '" + h.device_id + "/" + h.rule + "'"; });
    }
    for (size_t k = 0; st.ok() && k < batch.removed_held_conditions.size(); ++k) {
      const auto& key = batch.removed_held_conditions[k];
      st = check(run(w_.st.delete_held.get(), key.first, key.second), [&] {
        return "the removal of held condition '" + key.first + "/" + key.second + "'";
      });
    }
    return st;
  }

  // kIo naming the record when a write failed; the name is only built on failure.
  template <typename Name>
  Status check(int rc, Name name) REQUIRES(mu_) {
    if (rc == SQLITE_OK) return ok_status();
    return io(rc, "apply: writing " + name());
  }

  static Result<DeploymentPage> page_of(Connection& c, std::string_view rollout_id,
                                        std::optional<DeploymentState> state,
                                        std::string_view after, size_t limit) {
    DeploymentPage page;
    // One row more than the page says whether another follows.
    const auto want = static_cast<int64_t>(limit) + 1;
    auto rows = state ? read_all<Deployment>(c, c.st.page_deployments_in_state.get(),
                                             &deployment_from_json, "deployments", rollout_id,
                                             std::string_view(to_string(*state)), after, want)
                      : read_all<Deployment>(c, c.st.page_deployments.get(), &deployment_from_json,
                                             "deployments", rollout_id, after, want);
    if (!rows.ok()) return rows.error();
    page.more = rows->size() > limit;
    if (page.more) rows->resize(limit);
    page.rows = std::move(*rows);
    sqlite3_stmt* s = state ? c.st.count_deployments_in_state.get() : c.st.count_deployments.get();
    ResetOnExit reset(s);
    int rc = state ? bind_all(s, rollout_id, std::string_view(to_string(*state)))
                   : bind_all(s, rollout_id);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) return sqlite_error(c.db.get(), rc, "counting deployments");
    page.matched = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
    return page;
  }

  // Runs a lookup whose one column is the doc. `key` names the record in error messages.
  template <typename T, typename... Args>
  static Result<std::optional<T>> read_one(Connection& c, sqlite3_stmt* s,
                                           Result<T> (*decode)(std::string_view), const char* table,
                                           const std::string& key, const Args&... args) {
    ResetOnExit reset(s);
    int rc = bind_all(s, args...);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return std::optional<T>();
    if (rc != SQLITE_ROW) return sqlite_error(c.db.get(), rc, std::string("reading ") + table);
    Result<T> record = decode(column_text(s, 0));
    if (!record.ok()) return corruption(table, key, record.error().message);
    return std::optional<T>(std::move(record).value());
  }

  // Runs a listing whose columns are (key, doc), decoding every row.
  template <typename T, typename... Args>
  static Result<std::vector<T>> read_all(Connection& c, sqlite3_stmt* s,
                                         Result<T> (*decode)(std::string_view), const char* table,
                                         const Args&... args) {
    ResetOnExit reset(s);
    std::vector<T> out;
    int rc = bind_all(s, args...);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    for (; rc == SQLITE_ROW; rc = sqlite3_step(s)) {
      Result<T> record = decode(column_text(s, 1));
      if (!record.ok()) {
        return corruption(table, std::string(column_text(s, 0)), record.error().message);
      }
      out.push_back(std::move(record).value());
    }
    if (rc != SQLITE_DONE) return sqlite_error(c.db.get(), rc, std::string("listing ") + table);
    return out;
  }

  // Runs `fn` with the connection reads use: the reader under read_mu_, or the writer under
  // mu_ when there is no reader.
  template <typename Fn>
  std::invoke_result_t<Fn, Connection&> read(Fn fn) {
    if (reader_) {
      MutexLock lock(read_mu_);
      return fn(*reader_);
    }
    MutexLock lock(mu_);
    return fn(w_);
  }

  Mutex mu_{LockLevel::kStoreWriter};  // the writer
  Connection w_ GUARDED_BY(mu_);
  Mutex read_mu_{LockLevel::kStoreReader};  // the reader
  const std::unique_ptr<Connection> reader_ PT_GUARDED_BY(read_mu_);
};

}  // namespace

// kIo when the file cannot be opened or configured, or a migration fails (the failed migration
// is rolled back); kCorruption when the file is not a SQLite database or its schema version is
// newer than sqlite_schema::schema_version(). The returned store is thread-safe and owns its
// connections.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, SqliteOptions options) {
  auto db = open_connection(path, options);
  if (!db.ok()) return db.error();
  // Switching to WAL is the first statement that reads the file: a file that is not a
  // database fails here. ":memory:" databases cannot use WAL and say "memory"; they need no
  // crash safety and get no reader (a second connection would be another database).
  auto mode = pragma(db->get(), "PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.error();
  if (*mode != "wal" && *mode != "memory") {
    return io_error("sqlite: '" + path + "' cannot use WAL (journal_mode is " + *mode + ")");
  }
  if (auto migrated = migrate(db->get()); !migrated.ok()) return migrated.error();
  auto statements = prepare_statements(db->get());
  if (!statements.ok()) return statements.error();
  Connection writer{std::move(*db), std::move(statements).value()};

  std::unique_ptr<Connection> reader;
  if (*mode == "wal") {
    auto read_db = open_connection(path, options);
    if (!read_db.ok()) return read_db.error();
    auto read_statements = prepare_statements(read_db->get());
    if (!read_statements.ok()) return read_statements.error();
    reader = std::make_unique<Connection>(
        Connection{std::move(*read_db), std::move(read_statements).value()});
  }
  return std::unique_ptr<Store>(
      std::make_unique<SqliteStore>(std::move(writer), std::move(reader)));
}

}  // namespace drover
