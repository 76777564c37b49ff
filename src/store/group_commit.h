// Group commit: durable writes that wait for the disk without holding anyone up.
//
// GroupCommitStore wraps a Store. Its apply() queues the batch for one writer thread, which
// commits everything queued meanwhile in one transaction — one fsync for many writers, as a
// database's commit grouping does. Batches become durable in the order they were queued, so
// once one is durable, every batch queued before it is too.
//
// How a caller waits depends on the thread it runs on:
// - with no CommitScope open, apply() returns when its batch is durable (or failed): the
//   Store contract, for tools, tests and start-up;
// - inside a CommitScope (a request being answered, an engine tick), apply() returns as
//   soon as the batch is queued and the scope remembers it. The caller acts on the change
//   at once, in memory, under its own locks; once it has released them it waits for the
//   scope — or asks to be called back — before it tells anyone the outcome. Nothing answered
//   is lost, and no lock is held across a disk wait.
//
// A failed commit stops the store for writes: the changes queued with it may already be in
// the callers' memory, ahead of the disk, so every waiting and later write fails (kIo) and
// the owner must reload from the store (drover serve stops; a restart loads what was durable,
// which is everything that was answered). Reads keep working.
//
// Reads are read-committed: a read sees every write that was durable when it began, and the
// writes its own thread queued in the open scope (it waits for those) — never a disk wait
// for other requests' writes, which are not committed until they are durable. The in-memory
// state above the store (registry, engine) is where uncommitted changes are seen.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "store/store.h"

namespace drover {

class GroupCommitStore;

// The writes a piece of work made through a GroupCommitStore on this thread, so it can wait
// for them after releasing its locks. Scopes nest; the innermost one is current.
class CommitScope {
 public:
  // `log`, when given, is the store whose tail depend_on_all() means; otherwise the store of
  // the first write made in the scope.
  explicit CommitScope(GroupCommitStore* log = nullptr);
  ~CommitScope();
  CommitScope(const CommitScope&) = delete;
  CommitScope& operator=(const CommitScope&) = delete;

  // This thread's innermost open scope, or nullptr.
  static CommitScope* current();

  // The answer reveals state other work changed (an offer, a deployment's state): wait for
  // everything queued so far, not only this scope's own writes.
  void depend_on_all();
  // The answer reveals nothing others changed that must be durable first: only this
  // scope's own writes are waited for (see transport/http/durable.h).
  void own_writes_only() { own_only_ = true; }
  bool own_only() const { return own_only_; }

  // The sequence number to wait for (0: nothing) and on which store.
  uint64_t needed() const { return needed_; }
  GroupCommitStore* log() const { return log_; }

  // Blocks until everything needed is durable; kIo when the store failed.
  Status wait() const;

 private:
  friend class GroupCommitStore;
  void note(GroupCommitStore* log, uint64_t seq);

  GroupCommitStore* log_ = nullptr;
  uint64_t needed_ = 0;
  bool own_only_ = false;
  CommitScope* outer_ = nullptr;
};

struct GroupCommitOptions {
  // The most batches one transaction takes (bounds how long the first writer of a group
  // waits behind the others).
  size_t max_group = 4096;
};

// What the writer has done since it started.
struct GroupCommitStats {
  uint64_t commits = 0;  // transactions (each one fsync with SQLite synchronous=FULL)
  uint64_t batches = 0;  // batches written by them
  uint64_t failed = 0;   // commits that failed
  uint64_t largest_group = 0;
  std::chrono::nanoseconds commit_time{0};  // summed over commits
  // Commits by duration: <=0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250 ms, more.
  static constexpr std::array<double, 10> kBucketsMs = {0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250};
  std::array<uint64_t, kBucketsMs.size() + 1> by_duration{};
};

class GroupCommitStore final : public Store {
 public:
  explicit GroupCommitStore(std::unique_ptr<Store> inner, GroupCommitOptions options = {});
  // Commits what is queued, then stops the writer.
  ~GroupCommitStore() override;
  GroupCommitStore(const GroupCommitStore&) = delete;
  GroupCommitStore& operator=(const GroupCommitStore&) = delete;

  Status apply(const WriteBatch& batch) override;
  // Waits until every batch queued so far is written (kIo when the store failed first); also
  // before a direct write, so that it lands after them.
  Status settle_all() override { return wait(tail()); }

  // The number of the last batch queued (0: none yet).
  uint64_t tail() const;
  // Whether batch `seq` (and every one before it) is durable.
  bool durable(uint64_t seq) const;
  // Blocks until batch `seq` is durable; kIo when the store failed first.
  Status wait(uint64_t seq) const;
  // Calls `done` once batch `seq` is durable or the store has failed: at once on this thread
  // when that is already so, otherwise on the writer's thread (`done` must be quick and must
  // not write to this store).
  void when_durable(uint64_t seq, std::function<void(Status)> done);
  // The error that stopped the store for writes, if one has.
  std::optional<Error> failure() const;
  // Called once, on the writer's thread, when a commit fails (for the owner's log and to
  // stop serving). Set before the first write.
  void set_on_failure(std::function<void(const Error&)> on_failure);
  GroupCommitStats stats() const;

  Result<std::optional<Device>> get_device(std::string_view id) override;
  Result<std::optional<Site>> get_site(std::string_view name) override;
  Result<std::optional<DeviceProfile>> get_profile(std::string_view device_type) override;
  Result<std::optional<Artifact>> get_artifact(std::string_view name,
                                               std::string_view version) override;
  Result<std::optional<Rollout>> get_rollout(std::string_view id) override;
  Result<std::optional<Deployment>> get_deployment(std::string_view rollout_id,
                                                   std::string_view device_id) override;
  Result<std::optional<ApiToken>> get_api_token(std::string_view id) override;
  Result<std::optional<EnrollmentToken>> get_enrollment_token(std::string_view id) override;
  Result<std::optional<Command>> get_command(std::string_view id) override;
  Result<std::vector<Command>> list_commands(std::string_view device_id, size_t limit,
                                             Timestamp before, std::string_view before_id) override;
  Result<std::vector<Command>> list_open_commands() override;
  Result<std::vector<HeldCondition>> list_held_conditions() override;
  Result<std::optional<Alert>> get_alert(std::string_view id) override;
  Result<std::vector<Alert>> list_alerts(const AlertQuery& query) override;
  Result<std::optional<ConfigDocument>> get_config(std::string_view device_type,
                                                   uint64_t version) override;
  Result<std::vector<ConfigDocument>> list_configs(std::string_view device_type) override;
  Result<std::vector<Device>> list_devices() override;
  Result<std::vector<Site>> list_sites() override;
  Result<std::vector<DeviceProfile>> list_profiles() override;
  Result<std::vector<Artifact>> list_artifacts() override;
  Result<std::vector<Rollout>> list_rollouts() override;
  Result<std::vector<Deployment>> list_deployments(std::string_view rollout_id) override;
  Result<DeploymentPage> page_deployments(std::string_view rollout_id,
                                          std::optional<DeploymentState> state,
                                          std::string_view after, size_t limit) override;
  Result<std::vector<ApiToken>> list_api_tokens() override;
  Result<std::vector<EnrollmentToken>> list_enrollment_tokens() override;
  Result<std::vector<DeploymentStep>> list_deployment_steps(std::string_view rollout_id,
                                                            std::string_view device_id) override;
  Status delete_artifact(std::string_view name, std::string_view version) override;
  Result<uint64_t> next_sequence(std::string_view name) override;
  // The audit log is written straight through (its appends are their own transactions).
  Status append_audit(const AuditRecord& record) override;
  Result<uint64_t> audit_size() override { return inner_->audit_size(); }
  Result<std::vector<AuditRecord>> read_audit(uint64_t from, size_t limit) override {
    return inner_->read_audit(from, limit);
  }

 private:
  void run();
  // Before a read: waits for the writes this thread's scope queued (a failure is the
  // writer's to report; the read then sees what the disk holds).
  void settle() const;
  Status failed_status() const REQUIRES(mu_);

  std::unique_ptr<Store> inner_;
  GroupCommitOptions options_;
  mutable Mutex mu_{LockLevel::kGroupCommit};  // nothing else is locked while it is held
  mutable CondVar queued_cv_, durable_cv_;
  std::deque<WriteBatch> queue_ GUARDED_BY(mu_);  // batches taken_ + 1, taken_ + 2, ...
  uint64_t taken_ GUARDED_BY(mu_) = 0;            // the last batch the writer took
  uint64_t tail_ GUARDED_BY(mu_) = 0;             // taken_ + queue_.size()
  uint64_t durable_ GUARDED_BY(mu_) = 0;
  std::optional<Error> failure_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::multimap<uint64_t, std::function<void(Status)>> waiters_ GUARDED_BY(mu_);
  GroupCommitStats stats_ GUARDED_BY(mu_);
  std::function<void(const Error&)> on_failure_ GUARDED_BY(mu_);
  std::thread writer_;
};

}  // namespace drover
