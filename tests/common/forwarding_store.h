// A Store that passes every call to another one; test doubles override only what they
// change (a write that fails on cue, a write counter).
#pragma once

#include <memory>
#include <utility>

#include "store/store.h"

namespace drover::testing {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}

  Status apply(const WriteBatch& b) override { return inner_->apply(b); }
  Result<std::optional<Device>> get_device(std::string_view id) override {
    return inner_->get_device(id);
  }
  Result<std::optional<Site>> get_site(std::string_view n) override { return inner_->get_site(n); }
  Result<std::optional<DeviceProfile>> get_profile(std::string_view t) override {
    return inner_->get_profile(t);
  }
  Result<std::optional<Artifact>> get_artifact(std::string_view n, std::string_view v) override {
    return inner_->get_artifact(n, v);
  }
  Result<std::optional<Rollout>> get_rollout(std::string_view id) override {
    return inner_->get_rollout(id);
  }
  Result<std::optional<Deployment>> get_deployment(std::string_view r,
                                                   std::string_view d) override {
    return inner_->get_deployment(r, d);
  }
  Result<std::optional<ApiToken>> get_api_token(std::string_view id) override {
    return inner_->get_api_token(id);
  }
  Result<std::optional<EnrollmentToken>> get_enrollment_token(std::string_view id) override {
    return inner_->get_enrollment_token(id);
  }
  Result<std::vector<Device>> list_devices() override { return inner_->list_devices(); }
  Status settle_all() override { return inner_->settle_all(); }
  Result<std::vector<Site>> list_sites() override { return inner_->list_sites(); }
  Result<std::vector<DeviceProfile>> list_profiles() override { return inner_->list_profiles(); }
  Result<std::vector<Artifact>> list_artifacts() override { return inner_->list_artifacts(); }
  Result<std::vector<Rollout>> list_rollouts() override { return inner_->list_rollouts(); }
  Result<std::vector<Deployment>> list_deployments(std::string_view r) override {
    return inner_->list_deployments(r);
  }
  Result<DeploymentPage> page_deployments(std::string_view r, std::optional<DeploymentState> s,
                                          std::string_view after, size_t limit) override {
    return inner_->page_deployments(r, s, after, limit);
  }
  Result<std::vector<ApiToken>> list_api_tokens() override { return inner_->list_api_tokens(); }
  Result<std::optional<Command>> get_command(std::string_view id) override {
    return inner_->get_command(id);
  }
  Result<std::vector<Command>> list_commands(std::string_view device_id, size_t limit,
                                             Timestamp before,
                                             std::string_view before_id) override {
    return inner_->list_commands(device_id, limit, before, before_id);
  }
  Result<std::vector<Command>> list_open_commands() override {
    return inner_->list_open_commands();
  }
  Result<std::vector<HeldCondition>> list_held_conditions() override {
    return inner_->list_held_conditions();
  }
  Result<std::optional<Alert>> get_alert(std::string_view id) override {
    return inner_->get_alert(id);
  }
  Result<std::optional<ConfigDocument>> get_config(std::string_view device_type,
                                                   uint64_t version) override {
    return inner_->get_config(device_type, version);
  }
  Result<std::vector<ConfigDocument>> list_configs(std::string_view device_type) override {
    return inner_->list_configs(device_type);
  }
  Result<std::vector<Alert>> list_alerts(const AlertQuery& query) override {
    return inner_->list_alerts(query);
  }
  Result<std::vector<EnrollmentToken>> list_enrollment_tokens() override {
    return inner_->list_enrollment_tokens();
  }
  Result<std::vector<DeploymentStep>> list_deployment_steps(std::string_view r,
                                                            std::string_view d) override {
    return inner_->list_deployment_steps(r, d);
  }
  Status delete_artifact(std::string_view n, std::string_view v) override {
    return inner_->delete_artifact(n, v);
  }
  Result<uint64_t> next_sequence(std::string_view n) override { return inner_->next_sequence(n); }
  Status append_audit(const AuditRecord& r) override { return inner_->append_audit(r); }
  Result<uint64_t> audit_size() override { return inner_->audit_size(); }
  Result<std::vector<AuditRecord>> read_audit(uint64_t from, size_t limit) override {
    return inner_->read_audit(from, limit);
  }

 private:
  std::unique_ptr<Store> inner_;
};

}  // namespace drover::testing
