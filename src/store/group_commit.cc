#include "store/group_commit.h"

#include <algorithm>
#include <utility>

namespace drover {

// ---------------------------------------------------------------- CommitScope

namespace {
thread_local CommitScope* current_scope = nullptr;
}  // namespace

CommitScope::CommitScope(GroupCommitStore* log) : log_(log), outer_(current_scope) {
  current_scope = this;
}

CommitScope::~CommitScope() {
  current_scope = outer_;
  // An enclosing piece of work waits for what this one wrote, too.
  if (outer_ != nullptr && log_ != nullptr && needed_ > 0) outer_->note(log_, needed_);
}

CommitScope* CommitScope::current() { return current_scope; }

void CommitScope::note(GroupCommitStore* log, uint64_t seq) {
  if (log_ == nullptr) log_ = log;
  needed_ = std::max(needed_, seq);
}

void CommitScope::depend_on_all() {
  if (log_ != nullptr) needed_ = std::max(needed_, log_->tail());
}

Status CommitScope::wait() const {
  if (log_ == nullptr || needed_ == 0) return ok_status();
  return log_->wait(needed_);
}

// ---------------------------------------------------------------- GroupCommitStore

GroupCommitStore::GroupCommitStore(std::unique_ptr<Store> inner, GroupCommitOptions options)
    : inner_(std::move(inner)), options_(options) {
  options_.max_group = std::max<size_t>(1, options_.max_group);
  writer_ = std::thread([this] { run(); });
}

GroupCommitStore::~GroupCommitStore() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  queued_cv_.notify_all();
  writer_.join();
}

Status GroupCommitStore::failed_status() const {
  return Error{ErrorCode::kIo, "the store stopped taking writes after a failed commit (" +
                                   failure_->message + "); restart to reload from it"};
}

Status GroupCommitStore::apply(const WriteBatch& batch) {
  DROVER_TRY(check_keys(batch));
  if (batch.empty()) return ok_status();
  uint64_t seq = 0;
  {
    MutexLock lock(mu_);
    if (failure_) return failed_status();
    queue_.push_back(batch);
    seq = ++tail_;
  }
  queued_cv_.notify_one();
  CommitScope* scope = CommitScope::current();
  if (scope != nullptr && (scope->log_ == nullptr || scope->log_ == this)) {
    scope->note(this, seq);
    return ok_status();
  }
  return wait(seq);
}

void GroupCommitStore::run() {
  std::vector<WriteBatch> group;
  std::vector<const WriteBatch*> refs;
  mu_.lock();
  for (;;) {
    queued_cv_.wait(mu_, [this]() REQUIRES(mu_) { return !queue_.empty() || stopping_; });
    if (queue_.empty()) break;  // stopping, and everything queued is written
    const size_t n = std::min(queue_.size(), options_.max_group);
    group.clear();
    for (size_t i = 0; i < n; ++i) {
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    taken_ += n;
    const uint64_t last = taken_;
    mu_.unlock();

    refs.clear();
    for (const WriteBatch& b : group) refs.push_back(&b);
    const auto started = std::chrono::steady_clock::now();
    const Status written = inner_->apply_all(refs);
    const auto took = std::chrono::steady_clock::now() - started;

    mu_.lock();
    ++stats_.commits;
    stats_.batches += n;
    stats_.largest_group = std::max<uint64_t>(stats_.largest_group, n);
    stats_.commit_time += took;
    const double ms = std::chrono::duration<double, std::milli>(took).count();
    const auto bucket =
        static_cast<size_t>(std::lower_bound(GroupCommitStats::kBucketsMs.begin(),
                                             GroupCommitStats::kBucketsMs.end(), ms) -
                            GroupCommitStats::kBucketsMs.begin());
    ++stats_.by_duration[bucket];
    std::vector<std::function<void(Status)>> ready;
    Status outcome = ok_status();
    std::function<void(const Error&)> report_failure;
    if (written.ok()) {
      durable_ = last;
      auto end = waiters_.upper_bound(last);
      for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
      waiters_.erase(waiters_.begin(), end);
    } else {
      // The writers of this group and of everything queued after it may have acted on their
      // changes already: none of them is durable, and no later write may be either.
      ++stats_.failed;
      failure_ = written.error();
      queue_.clear();
      taken_ = tail_;
      outcome = failed_status();
      for (auto& [seq, done] : waiters_) ready.push_back(std::move(done));
      waiters_.clear();
      report_failure = on_failure_;
    }
    mu_.unlock();
    durable_cv_.notify_all();
    for (auto& done : ready) done(outcome);
    ready.clear();  // what they held (an HTTP session) goes here, not under mu_
    if (report_failure) report_failure(written.error());
    mu_.lock();
  }
  mu_.unlock();
}

uint64_t GroupCommitStore::tail() const {
  MutexLock lock(mu_);
  return tail_;
}

bool GroupCommitStore::durable(uint64_t seq) const {
  MutexLock lock(mu_);
  return durable_ >= seq;
}

Status GroupCommitStore::wait(uint64_t seq) const {
  MutexLock lock(mu_);
  durable_cv_.wait(mu_, [&]() REQUIRES(mu_) { return durable_ >= seq || failure_.has_value(); });
  return durable_ >= seq ? ok_status() : failed_status();
}

void GroupCommitStore::when_durable(uint64_t seq, std::function<void(Status)> done) {
  Status now = ok_status();
  {
    MutexLock lock(mu_);
    if (durable_ < seq && !failure_) {
      waiters_.emplace(seq, std::move(done));
      return;
    }
    if (durable_ < seq) now = failed_status();
  }
  done(now);
}

std::optional<Error> GroupCommitStore::failure() const {
  MutexLock lock(mu_);
  return failure_;
}

void GroupCommitStore::set_on_failure(std::function<void(const Error&)> on_failure) {
  MutexLock lock(mu_);
  on_failure_ = std::move(on_failure);
}

GroupCommitStats GroupCommitStore::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

// ---------------------------------------------------------------- reads and direct writes

void GroupCommitStore::settle() const {
  const CommitScope* scope = CommitScope::current();
  if (scope != nullptr && scope->log() == this && scope->needed() > 0) (void)wait(scope->needed());
}

Result<std::optional<Device>> GroupCommitStore::get_device(std::string_view id) {
  settle();
  return inner_->get_device(id);
}
Result<std::optional<Site>> GroupCommitStore::get_site(std::string_view name) {
  settle();
  return inner_->get_site(name);
}
Result<std::optional<DeviceProfile>> GroupCommitStore::get_profile(std::string_view device_type) {
  settle();
  return inner_->get_profile(device_type);
}
Result<std::optional<Artifact>> GroupCommitStore::get_artifact(std::string_view name,
                                                               std::string_view version) {
  settle();
  return inner_->get_artifact(name, version);
}
Result<std::optional<Rollout>> GroupCommitStore::get_rollout(std::string_view id) {
  settle();
  return inner_->get_rollout(id);
}
Result<std::optional<Deployment>> GroupCommitStore::get_deployment(std::string_view rollout_id,
                                                                   std::string_view device_id) {
  settle();
  return inner_->get_deployment(rollout_id, device_id);
}
Result<std::optional<ApiToken>> GroupCommitStore::get_api_token(std::string_view id) {
  settle();
  return inner_->get_api_token(id);
}
Result<std::optional<EnrollmentToken>> GroupCommitStore::get_enrollment_token(std::string_view id) {
  settle();
  return inner_->get_enrollment_token(id);
}
Result<std::optional<Command>> GroupCommitStore::get_command(std::string_view id) {
  settle();
  return inner_->get_command(id);
}
Result<std::vector<Command>> GroupCommitStore::list_commands(std::string_view device_id,
                                                             size_t limit, Timestamp before,
                                                             std::string_view before_id) {
  settle();
  return inner_->list_commands(device_id, limit, before, before_id);
}
Result<std::vector<Command>> GroupCommitStore::list_open_commands() {
  settle();
  return inner_->list_open_commands();
}
Result<std::optional<Alert>> GroupCommitStore::get_alert(std::string_view id) {
  settle();
  return inner_->get_alert(id);
}
Result<std::vector<Alert>> GroupCommitStore::list_alerts(const AlertQuery& query) {
  settle();
  return inner_->list_alerts(query);
}
Result<std::optional<ConfigDocument>> GroupCommitStore::get_config(std::string_view device_type,
                                                                   uint64_t version) {
  settle();
  return inner_->get_config(device_type, version);
}
Result<std::vector<ConfigDocument>> GroupCommitStore::list_configs(std::string_view device_type) {
  settle();
  return inner_->list_configs(device_type);
}
Result<std::vector<HeldCondition>> GroupCommitStore::list_held_conditions() {
  settle();
  return inner_->list_held_conditions();
}
Result<std::vector<Device>> GroupCommitStore::list_devices() {
  settle();
  return inner_->list_devices();
}
Result<std::vector<Site>> GroupCommitStore::list_sites() {
  settle();
  return inner_->list_sites();
}
Result<std::vector<DeviceProfile>> GroupCommitStore::list_profiles() {
  settle();
  return inner_->list_profiles();
}
Result<std::vector<Artifact>> GroupCommitStore::list_artifacts() {
  settle();
  return inner_->list_artifacts();
}
Result<std::vector<Rollout>> GroupCommitStore::list_rollouts() {
  settle();
  return inner_->list_rollouts();
}
Result<std::vector<Deployment>> GroupCommitStore::list_deployments(std::string_view rollout_id) {
  settle();
  return inner_->list_deployments(rollout_id);
}
Result<Store::DeploymentPage> GroupCommitStore::page_deployments(
    std::string_view rollout_id, std::optional<DeploymentState> state, std::string_view after,
    size_t limit) {
  settle();
  return inner_->page_deployments(rollout_id, state, after, limit);
}
Result<std::vector<ApiToken>> GroupCommitStore::list_api_tokens() {
  settle();
  return inner_->list_api_tokens();
}
Result<std::vector<EnrollmentToken>> GroupCommitStore::list_enrollment_tokens() {
  settle();
  return inner_->list_enrollment_tokens();
}
Result<std::vector<DeploymentStep>> GroupCommitStore::list_deployment_steps(
    std::string_view rollout_id, std::string_view device_id) {
  settle();
  return inner_->list_deployment_steps(rollout_id, device_id);
}

// These two write at once, in the caller's thread (rare operator actions), not after a
// failure; a delete lands after everything queued before it (a sequence is independent).
Status GroupCommitStore::delete_artifact(std::string_view name, std::string_view version) {
  (void)settle_all();  // a failure is answered below
  if (auto failed = failure()) return Error{ErrorCode::kIo, failed->message};
  return inner_->delete_artifact(name, version);
}
Result<uint64_t> GroupCommitStore::next_sequence(std::string_view name) {
  if (auto failed = failure()) return Error{ErrorCode::kIo, failed->message};
  return inner_->next_sequence(name);
}
Status GroupCommitStore::append_audit(const AuditRecord& record) {
  if (auto failed = failure()) return Error{ErrorCode::kIo, failed->message};
  return inner_->append_audit(record);
}

}  // namespace drover
