// Store: where fleet state lives. One interface, two backends: store/sqlite (the embedded
// default, durable) and store/memory (tests and very large simulations). Both pass the same
// conformance suite (tests/store/store_conformance_test.cc).
//
// Writes go through apply(WriteBatch): every record in a batch is written, or none is. This
// is what makes "persist, then act" in the rollout engine a single atomic step.
//
// Thread-safety: implementations are safe to call from several threads; a batch is atomic
// with respect to concurrent readers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "model/alert.h"
#include "model/api_token.h"
#include "model/artifact.h"
#include "model/command.h"
#include "model/config_document.h"
#include "model/device.h"
#include "model/device_profile.h"
#include "model/enrollment_token.h"
#include "model/rollout.h"
#include "model/site.h"

namespace drover {

// Records to upsert (insert or replace by key) atomically.
struct WriteBatch {
  std::vector<Device> devices;                     // key: id
  std::vector<Site> sites;                         // key: name
  std::vector<DeviceProfile> profiles;             // key: device_type
  std::vector<Artifact> artifacts;                 // key: (name, version)
  std::vector<Rollout> rollouts;                   // key: id
  std::vector<Deployment> deployments;             // key: (rollout_id, device_id)
  std::vector<ApiToken> api_tokens;                // key: id
  std::vector<EnrollmentToken> enrollment_tokens;  // key: id
  std::vector<Command> commands;                   // key: id
  std::vector<Alert> alerts;                       // key: id
  std::vector<ConfigDocument> configs;             // key: (device_type, version)
  std::vector<DeploymentStep> steps;  // appended to their deployment's history, in order
  // Devices deleted, after this batch's own records are written (a record both written and
  // removed in one batch is gone). Only the device's record goes: a device that was never
  // accepted (an expired pending enrollment) has nothing else.
  std::vector<std::string> removed_devices;
  std::vector<HeldCondition> held_conditions;  // key: (device_id, rule)
  // Held conditions deleted, by (device_id, rule), after this batch's records are written.
  std::vector<std::pair<std::string, std::string>> removed_held_conditions;

  bool empty() const {
    return devices.empty() && sites.empty() && profiles.empty() && artifacts.empty() &&
           rollouts.empty() && deployments.empty() && api_tokens.empty() &&
           enrollment_tokens.empty() && commands.empty() && alerts.empty() && configs.empty() &&
           steps.empty() && removed_devices.empty() && held_conditions.empty() &&
           removed_held_conditions.empty();
  }
  void clear() { *this = WriteBatch{}; }
};

// Every record in `batch` has a non-empty key; kInvalidArgument names the first that does
// not. Both backends call it before writing anything.
Status check_keys(const WriteBatch& batch);

// One entry of the audit log (fleet/audit_log.h) as stored: its place in the log, the entry's
// bytes, and the signed checkpoint of the log it completes (index + 1 entries).
struct AuditRecord {
  uint64_t index = 0;
  std::string entry;
  std::string checkpoint;
};

class Store {
 public:
  virtual ~Store() = default;

  // Writes the whole batch or nothing. kInvalidArgument when a record has an empty key
  // (see check_keys), kIo when the backend fails; either way the store is unchanged.
  virtual Status apply(const WriteBatch& batch) = 0;
  // Writes several batches, in order, as one transaction: all of them or none (a later
  // batch's record replaces an earlier one's with the same key). The group commit's writer
  // (store/group_commit.h) calls it with everything queued meanwhile: one commit, one fsync.
  // This default concatenates them and calls apply().
  virtual Status apply_all(std::span<const WriteBatch* const> batches);
  // Returns once every write accepted so far, by any thread, is what reads see: for a
  // snapshot that must not miss a write another request has made (a rollout's start reads
  // the fleet). Stores that apply writes before apply() returns have nothing to wait for.
  virtual Status settle_all() { return ok_status(); }

  // Lookups return std::nullopt when the record does not exist, an error only on failure.
  virtual Result<std::optional<Device>> get_device(std::string_view id) = 0;
  virtual Result<std::optional<Site>> get_site(std::string_view name) = 0;
  virtual Result<std::optional<DeviceProfile>> get_profile(std::string_view device_type) = 0;
  virtual Result<std::optional<Artifact>> get_artifact(std::string_view name,
                                                       std::string_view version) = 0;
  virtual Result<std::optional<Rollout>> get_rollout(std::string_view id) = 0;
  virtual Result<std::optional<Deployment>> get_deployment(std::string_view rollout_id,
                                                           std::string_view device_id) = 0;
  virtual Result<std::optional<ApiToken>> get_api_token(std::string_view id) = 0;
  virtual Result<std::optional<EnrollmentToken>> get_enrollment_token(std::string_view id) = 0;
  virtual Result<std::optional<Command>> get_command(std::string_view id) = 0;
  virtual Result<std::optional<Alert>> get_alert(std::string_view id) = 0;
  // One version of a type's configuration; version 0: the newest.
  virtual Result<std::optional<ConfigDocument>> get_config(std::string_view device_type,
                                                           uint64_t version) = 0;

  // Listings are ordered by key.
  virtual Result<std::vector<Device>> list_devices() = 0;
  virtual Result<std::vector<Site>> list_sites() = 0;
  virtual Result<std::vector<DeviceProfile>> list_profiles() = 0;
  virtual Result<std::vector<Artifact>> list_artifacts() = 0;
  virtual Result<std::vector<Rollout>> list_rollouts() = 0;
  // Every deployment of one rollout, ordered by device id.
  virtual Result<std::vector<Deployment>> list_deployments(std::string_view rollout_id) = 0;
  // One page of a rollout's deployments in device id order: those after `after` ("" from
  // the start), only in `state` when given, at most `limit` (>= 1); `more` says whether any
  // follow. `matched` counts every deployment of the rollout in `state` (all, without one).
  // Decodes only the page (SQLite: an index on rollout, state, device; `matched` is counted
  // on it).
  struct DeploymentPage {
    std::vector<Deployment> rows;
    bool more = false;
    uint64_t matched = 0;
  };
  virtual Result<DeploymentPage> page_deployments(std::string_view rollout_id,
                                                  std::optional<DeploymentState> state,
                                                  std::string_view after, size_t limit) = 0;
  virtual Result<std::vector<ApiToken>> list_api_tokens() = 0;
  virtual Result<std::vector<EnrollmentToken>> list_enrollment_tokens() = 0;
  // A device's commands, newest first (by created_at, then id, both descending): at most
  // `limit`; when `before` is not zero, only those after the command created at `before`
  // with id `before_id` in that order (the next page of a history).
  virtual Result<std::vector<Command>> list_commands(std::string_view device_id, size_t limit,
                                                     Timestamp before = {},
                                                     std::string_view before_id = {}) = 0;
  // Every command still queued or sent (is_open), in id order: what the queue loads.
  virtual Result<std::vector<Command>> list_open_commands() = 0;
  // Alerts, newest first (by opened_at, then id, both descending), at most `limit`: of one
  // device when `device_id` is not empty, unresolved ones only when asked, those whose newest
  // version the webhook has not delivered (notified_version < version) only when asked, and
  // when `before` is not zero only those after the alert opened at `before` with id
  // `before_id` in that order (the next page).
  struct AlertQuery {
    std::string device_id;
    bool unresolved_only = false;
    bool unnotified_only = false;
    Timestamp before{};
    std::string before_id;
    size_t limit = 100;
  };
  virtual Result<std::vector<Alert>> list_alerts(const AlertQuery& query) = 0;
  // Every version of a type's configuration, oldest first.
  virtual Result<std::vector<ConfigDocument>> list_configs(std::string_view device_type) = 0;
  // One deployment's history, oldest first (empty when it has none).
  virtual Result<std::vector<DeploymentStep>> list_deployment_steps(std::string_view rollout_id,
                                                                    std::string_view device_id) = 0;

  // Every held condition (the remediator's, health/remediator.h), ordered by (device_id, rule).
  virtual Result<std::vector<HeldCondition>> list_held_conditions() = 0;

  // Removes an artifact. kNotFound if absent.
  virtual Status delete_artifact(std::string_view name, std::string_view version) = 0;

  // The audit log: append-only through this interface (nothing rewrites or removes a record).
  // append_audit writes `record` when its index is the log's size (audit_size()), durably
  // before it returns; kConflict when another writer (another process on the same file) came
  // first, kIo when the backend fails; either way nothing is written.
  virtual Status append_audit(const AuditRecord& record) = 0;
  // One past the highest index stored (0 for an empty log).
  virtual Result<uint64_t> audit_size() = 0;
  // The records with index >= from in index order, at most `limit`. What is stored, as it is:
  // a record removed behind the store's back shows as a gap, which the log's verification
  // reports.
  virtual Result<std::vector<AuditRecord>> read_audit(uint64_t from, size_t limit) = 0;

  // A durable counter for ids: returns 1, 2, 3, ... per name, never the same value twice,
  // even across restarts.
  virtual Result<uint64_t> next_sequence(std::string_view name) = 0;
};

// The in-memory store. Nothing survives the process; everything else behaves as SQLite does.
std::unique_ptr<Store> make_memory_store();

struct SqliteOptions {
  // FULL syncs the WAL on every commit (survives power loss); NORMAL syncs at checkpoints
  // (survives a process crash, may lose the last commits on power loss).
  bool synchronous_full = true;
};

// Opens (creating if needed) the SQLite store at `path`, running schema migrations.
// kIo if the file cannot be opened; kCorruption if its schema is newer than this build.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 SqliteOptions options = {});

}  // namespace drover
