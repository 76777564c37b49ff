#include "agent/config_applier.h"

#include <utility>

#include "base/utf8.h"

namespace drover::agent {
namespace {

std::string short_sha(const std::string& sha) { return sha.substr(0, 12); }

// The end of a command's output, for an error line.
std::string tail_of(const std::string& output) {
  std::string t = utf8_tail(output, 200);
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

ConfigApplier::ConfigApplier(ConfigApplyOptions options, CommandRunner& runner, Clock& clock,
                             FileSystem& fs)
    : o_(std::move(options)), runner_(runner), clock_(clock), fs_(fs) {}

Status ConfigApplier::start() {
  if (o_.envelope_file.empty()) return ok_status();
  auto text = fs_.read(o_.envelope_file);
  if (!text.ok()) return text.error();
  auto envelope = protocol::decode_config_envelope(*text);
  if (!envelope.ok()) {
    return invalid_argument("configuration envelope " + o_.envelope_file + ": " +
                            envelope.error().message);
  }
  own_ = std::move(*envelope);
  return ok_status();
}

std::string ConfigApplier::on_disk_sha() {
  auto text = fs_.read(o_.path);
  return text.ok() ? protocol::config_sha256_of(*text) : std::string();
}

protocol::ConfigReport ConfigApplier::report() {
  std::string error = error_;
  if (error.size() > protocol::kMaxConfigError) error = utf8_tail(error, protocol::kMaxConfigError);
  return {on_disk_sha(), std::move(error)};
}

void ConfigApplier::on_answer(const std::optional<ConfigWanted>& wanted, ServerLink& server) {
  if (!wanted) {
    error_.clear();  // it runs what the server wants
    failed_sha_.clear();
    return;
  }
  if (wanted->sha256 == on_disk_sha()) return;
  if (wanted->sha256 == failed_sha_ && (refused_ || clock_.now() < retry_at_)) return;
  (void)fetch_and_apply(server);
}

Result<std::string> ConfigApplier::reapply(ServerLink& server) { return fetch_and_apply(server); }

Result<std::string> ConfigApplier::fetch_and_apply(ServerLink& server) {
  auto fetched = server.device_config();
  if (!fetched.ok()) {
    // Not a verdict on any document: the next check-in asks again.
    const Error e{ErrorCode::kIo, "fetching the configuration: " + fetched.error().to_string()};
    log_.push_back(e.message);
    return e;
  }
  const protocol::DeviceConfig& c = *fetched;
  const std::string what =
      "configuration version " + std::to_string(c.version) + " (" + short_sha(c.sha256) + ")";
  const auto refuse = [&](const std::string& why) {
    error_ = what + " refused: " + why;
    failed_sha_ = c.sha256;
    refused_ = true;
    log_.push_back(error_);
    return Error{ErrorCode::kFailedPrecondition, error_};
  };
  if (own_) {
    if (Status st = protocol::check_config_values(c.values, *own_); !st.ok())
      return refuse("outside this device's own envelope (" + o_.envelope_file +
                    "): " + st.error().message);
  }
  const std::string bytes = protocol::encode_config_values(c.values);
  auto previous = fs_.read(o_.path);
  const bool had_previous = previous.ok();
  if (!had_previous && previous.error().code != ErrorCode::kNotFound) {
    const Error e{ErrorCode::kIo, what + " not applied: " + previous.error().to_string()};
    error_ = e.message;
    log_.push_back(e.message);
    return e;
  }
  const auto failed = [&](const std::string& why) {
    error_ = what + " not applied: " + why;
    failed_sha_ = c.sha256;
    refused_ = false;
    retry_at_ = clock_.now() + o_.retry_after;
    log_.push_back(error_);
    return Error{ErrorCode::kIo, error_};
  };
  if (Status st = write_atomically(fs_, o_.path, bytes); !st.ok())
    return failed("writing " + o_.path + ": " + st.error().to_string());
  const Environment env = {{"DROVER_CONFIG_PATH", o_.path},
                           {"DROVER_CONFIG_VERSION", std::to_string(c.version)},
                           {"DROVER_CONFIG_SHA256", c.sha256}};
  if (!o_.apply.empty()) {
    auto ran = runner_.run(o_.apply, o_.apply_timeout, env);
    if (!ran.ok() || !ran->ok()) {
      const std::string why =
          !ran.ok()        ? "the apply command could not start: " + ran.error().to_string()
          : ran->timed_out ? "the apply command timed out"
                           : "the apply command failed (exit " + std::to_string(ran->exit_code) +
                                 ")" + (ran->output.empty() ? "" : ": " + tail_of(ran->output));
      // Back to what ran before, and the command run again so the service takes it.
      Status restored =
          had_previous ? write_atomically(fs_, o_.path, *previous) : fs_.remove(o_.path);
      if (restored.ok() && !o_.apply.empty()) {
        Environment back = {{"DROVER_CONFIG_PATH", o_.path}};
        (void)runner_.run(o_.apply, o_.apply_timeout, back);
      }
      return failed(
          why + (restored.ok()
                     ? (had_previous ? "; the previous document is back" : "; no document is left")
                     : "; putting the previous back failed too: " + restored.error().to_string()));
    }
  }
  error_.clear();
  failed_sha_.clear();
  refused_ = false;
  const std::string done = what + " applied to " + o_.path;
  log_.push_back(done);
  return done;
}

std::vector<std::string> ConfigApplier::take_log() { return std::exchange(log_, {}); }

}  // namespace drover::agent
