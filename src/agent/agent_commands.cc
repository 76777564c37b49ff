// The agent's side of remote commands (docs/agent.md, "Remote commands"): taking them from
// the check-in's answer, running them through RemoteCommands with the agent's hooks, and
// clear_update, which gives up a download or an image held for its window.
#include <filesystem>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "base/units.h"

namespace drover::agent {
using internal::offer_key;

Result<CheckInAnswer> Agent::check_in(protocol::UpdateState state, std::string_view holding) {
  std::optional<protocol::ConfigReport> config;
  if (o_.config != nullptr) config = o_.config->report();
  auto answer = server_.check_in(inventory_, state, holding, module_.keeps_previous(),
                                 config ? &*config : nullptr);
  if (!answer.ok()) return answer;
  last_check_in_ = clock_.now();
  poll_ = poll_after(*answer);
  handle_commands(answer->commands);
  if (o_.config != nullptr) o_.config->on_answer(answer->config, server_);
  return answer;
}

void Agent::handle_commands(const std::vector<RemoteCommand>& commands) {
  RemoteCommands* remote = o_.remote_commands;
  if (remote == nullptr || (commands.empty() && !remote->has_undelivered())) return;
  CommandHooks hooks{o_.reboot_device,
                     [this](bool download_only) { return clear_update(download_only); },
                     [this] { return server_.rotate_key(); },
                     {}};
  if (o_.config != nullptr) hooks.reapply_config = [this] { return o_.config->reapply(server_); };
  Status st = remote->take(commands);
  if (st.ok()) st = remote->run_pending(hooks);
  // Results are reported even when journaling failed: those of commands run before.
  if (Status sent = remote->deliver(server_); st.ok()) st = sent;
  if (!st.ok()) last_error_ = "remote commands: " + st.error().to_string();
}

Result<std::string> Agent::clear_update(bool download_only) {
  if (record_.step == UpdateStep::kIdle)
    return std::string("nothing to clear: no update under way");
  const bool downloading = record_.step == UpdateStep::kDownloading;
  if (download_only && !downloading) {
    return std::string("nothing to clear: no download under way (the update is ") +
           to_string(record_.step) + ")";
  }
  if (!downloading && record_.step != UpdateStep::kReady) {
    return Error{ErrorCode::kFailedPrecondition, std::string("the update is ") +
                                                     to_string(record_.step) +
                                                     ": past the point where it can be given up"};
  }
  const std::string key =
      offer_key(record_.rollout_id, record_.component, record_.version, record_.sha256);
  const std::string what = record_.component + "@" + record_.version +
                           (downloading ? " (" + format_bytes(record_.bytes_done) + " of " +
                                              format_bytes(record_.size) + " downloaded)"
                                        : ", held for its maintenance window");
  // A download given up is a delivery that failed (the rollout's gate counts it: an image
  // nobody can download must halt it); an image held for its window, verified, is only
  // withdrawn.
  if (!advance(UpdateEvent::kDropped, [&](UpdateRecord& r) {
        r.report = downloading ? protocol::Report::kInstallFailed : protocol::Report::kWithdraw;
        r.message = downloading ? "download given up by a remote command (clear_update) at " +
                                      format_bytes(r.bytes_done) + " of " + format_bytes(r.size)
                                : "given up by a remote command (clear_update)";
      })) {
    return io_error(last_error_);
  }
  std::error_code ec;
  std::filesystem::remove(path("download.part"), ec);
  // A download is not taken again at once if the server, not told yet, offers it again.
  if (downloading) offer_failed(key);
  return (downloading ? "gave up the download of " : "gave up ") + what;
}

}  // namespace drover::agent
