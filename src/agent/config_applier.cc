#include "agent/config_applier.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/json_reader.h"
#include "base/utf8.h"
#include "security/crypto.h"

namespace drover::agent {
namespace {

using nlohmann::json;

std::string short_sha(const std::string& sha) { return sha.substr(0, 12); }

std::string describe(uint64_t version, const std::string& sha) {
  return "configuration version " + std::to_string(version) + " (" + short_sha(sha) + ")";
}

// What became of an apply command ("" when it succeeded).
std::string command_failure(const Result<CommandResult>& ran) {
  if (!ran.ok()) return "the apply command could not start: " + ran.error().to_string();
  if (ran->ok()) return "";
  if (ran->timed_out) return "the apply command timed out";
  std::string tail = utf8_tail(ran->output, 200);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  return "the apply command failed (exit " + std::to_string(ran->exit_code) + ")" +
         (tail.empty() ? "" : ": " + tail);
}

int64_t ms_of(Timestamp t) { return t.time_since_epoch().count(); }

}  // namespace

ConfigApplier::ConfigApplier(ConfigApplyOptions options, CommandRunner& runner, Clock& clock,
                             FileSystem& fs)
    : o_(std::move(options)), runner_(runner), clock_(clock), fs_(fs) {}

void ConfigApplier::log(std::string line) {
  if (log_.size() < kMaxLog) {
    log_.push_back(std::move(line));
  } else if (log_.size() == kMaxLog) {
    log_.push_back("(more configuration lines dropped)");
  }
}

std::vector<std::string> ConfigApplier::take_log() { return std::exchange(log_, {}); }

Status ConfigApplier::save() {
  json j = json::object();
  if (applied_) {
    j["applied"] = {{"version", applied_->version},
                    {"sha256", applied_->sha256},
                    {"document", applied_->document},
                    {"envelope", applied_->envelope}};
  }
  if (pending_) {
    json p{{"version", pending_->version}, {"sha256", pending_->sha256}};
    if (pending_->previous) p["previous"] = security::to_base64url(*pending_->previous);
    j["pending"] = std::move(p);
  }
  if (failed_) {
    j["failed"] = {{"sha256", failed_->sha256},
                   {"retry_at", ms_of(failed_->retry_at)},
                   {"error", failed_->error}};
  }
  if (refused_) {
    j["refused"] = {{"sha256", refused_->sha256},
                    {"envelope_sha256", refused_->envelope_sha256},
                    {"error", refused_->error}};
  }
  const std::string path = (std::filesystem::path(o_.state_dir) / "config.json").string();
  Status st = write_atomically(fs_, path, j.dump(-1, ' ', false, json::error_handler_t::replace));
  unsaved_ = !st.ok();
  if (!st.ok()) log("configuration state " + path + " not saved: " + st.error().to_string());
  return st;
}

void ConfigApplier::start() {
  if (!o_.envelope_file.empty()) {
    auto text = fs_.read(o_.envelope_file);
    if (!text.ok()) {
      broken_ = "this device's own envelope " + o_.envelope_file +
                " cannot be read: " + text.error().to_string();
    } else if (auto e = protocol::decode_config_envelope(*text); !e.ok()) {
      broken_ =
          "this device's own envelope " + o_.envelope_file + " is not valid: " + e.error().message;
    } else {
      own_ = std::move(*e);
      own_sha256_ = protocol::config_sha256_of(*text);
    }
    if (!broken_.empty()) log(broken_ + " (every configuration is refused)");
  }
  const std::string path = (std::filesystem::path(o_.state_dir) / "config.json").string();
  auto text = fs_.read(path);
  if (!text.ok()) {
    if (text.error().code != ErrorCode::kNotFound)
      log("configuration state " + path + " cannot be read: " + text.error().to_string());
  } else {
    struct State {
      std::optional<Applied> applied;
      std::optional<Pending> pending;
      std::optional<Failed> failed;
      std::optional<Refused> refused;
    };
    auto state = parse_json_document<State>(*text, "config state", [](const JsonReader& r) {
      r.allow_only({"applied", "pending", "failed", "refused"});
      State s;
      if (r.has("applied")) {
        const JsonReader a = r.child("applied");
        a.allow_only({"version", "sha256", "document", "envelope"});
        s.applied = Applied{a.uint_or("version", 0, UINT64_MAX), a.str("sha256"), a.str("document"),
                            a.str("envelope")};
      }
      if (r.has("pending")) {
        const JsonReader p = r.child("pending");
        p.allow_only({"version", "sha256", "previous"});
        Pending pending{p.uint_or("version", 0, UINT64_MAX), p.str("sha256"), std::nullopt};
        if (p.has("previous"))
          pending.previous = p.take("previous", security::from_base64url(p.str("previous")));
        s.pending = std::move(pending);
      }
      if (r.has("failed")) {
        const JsonReader f = r.child("failed");
        f.allow_only({"sha256", "retry_at", "error"});
        s.failed = Failed{
            f.str("sha256"),
            Timestamp(Duration(static_cast<int64_t>(f.uint_or("retry_at", 0, uint64_t{1} << 52)))),
            f.str_or("error", "")};
      }
      if (r.has("refused")) {
        const JsonReader f = r.child("refused");
        f.allow_only({"sha256", "envelope_sha256", "error"});
        s.refused =
            Refused{f.str("sha256"), f.str_or("envelope_sha256", ""), f.str_or("error", "")};
      }
      return s;
    });
    if (!state.ok()) {
      log("configuration state " + path + " does not parse (" + state.error().message +
          "): started afresh");
    } else {
      applied_ = std::move(state->applied);
      pending_ = std::move(state->pending);
      failed_ = std::move(state->failed);
      refused_ = std::move(state->refused);
    }
  }
  if (refused_ && refused_->envelope_sha256 != own_sha256_) {
    // Judged by another own envelope (a firmware update changed it): judged again.
    log("this device's own envelope changed: what it refused is judged again (" +
        utf8_head(refused_->error, 120) + ")");
    refused_.reset();
    (void)save();
  }
  if (pending_) {
    // Stopped between writing a document and its apply command's end: what ran before goes
    // back, so what is reported is what an apply command took.
    const std::string what = describe(pending_->version, pending_->sha256);
    const std::string sha = pending_->sha256;
    const std::string back = restore();
    (void)fail(sha, what + " cut short (the agent stopped before its apply command ended): " + back,
               ErrorCode::kIo);
  }
}

ConfigApplier::OnDisk ConfigApplier::on_disk() {
  auto file = fs_.read(o_.path);
  if (!file.ok()) {
    if (file.error().code == ErrorCode::kNotFound) return {};
    return {"", "reading " + o_.path + ": " + file.error().to_string()};
  }
  std::string sha = protocol::config_sha256_of(*file);
  if (applied_ && sha != applied_->sha256) {
    // The same values written otherwise (a service that rewrites its own file): still the
    // document applied, not a change to repair at every check-in.
    auto envelope = protocol::decode_config_envelope(applied_->envelope);
    if (envelope.ok()) {
      auto values = protocol::decode_config_values(*file, *envelope);
      if (values.ok() && protocol::config_sha256(*values) == applied_->sha256)
        sha = applied_->sha256;
    }
  }
  return {std::move(sha), ""};
}

protocol::ConfigReport ConfigApplier::report() {
  OnDisk d = on_disk();
  // A document whose apply failed is still on disk until its restore succeeds: what runs is
  // what ran before it.
  if (pending_)
    d.sha256 = pending_->previous ? protocol::config_sha256_of(*pending_->previous) : "";
  // The file unreadable first (what runs cannot be told), then what failed and what was
  // refused — both when there are both (the refusal of the version wanted, and a failure of
  // another: a put-back, a reapply).
  std::string error = !broken_.empty() ? broken_ : d.error;
  if (error.empty() && failed_) error = failed_->error;
  if (refused_ && (error.empty() || (failed_ && error == failed_->error)))
    error += (error.empty() ? "" : "; ") + refused_->error;
  return {std::move(d.sha256), utf8_head(error, protocol::kMaxConfigError)};
}

void ConfigApplier::on_answer(const std::optional<ConfigWanted>& wanted, ServerLink& server) {
  if (unsaved_) (void)save();
  if (pending_) {  // a restore that failed before: nothing else until it is done
    const std::string sha = pending_->sha256;
    const std::string back = restore();
    if (pending_) {
      failed_ = Failed{sha, clock_.now() + o_.retry_after,
                       describe(pending_->version, sha) + " not applied; " + back};
      (void)save();
      return;
    }
    (void)save();
  }
  if (!broken_.empty()) return;
  const OnDisk d = on_disk();
  if (!d.error.empty()) return;  // said at the next check-in; nothing is judged on it
  if (!wanted) {
    // The server wants what runs: a failure of another document is over; one of this very
    // document (a reapply_config that failed) stands.
    if (failed_ && failed_->sha256 != d.sha256) {
      failed_.reset();
      (void)save();
    }
    return;
  }
  const bool runs_it = wanted->sha256 == d.sha256 && (!applied_ || applied_->sha256 == d.sha256);
  if (runs_it) return;
  const bool refused = refused_ && refused_->sha256 == wanted->sha256;
  const bool waiting =
      failed_ && failed_->sha256 == wanted->sha256 && clock_.now() < failed_->retry_at;
  if (!refused && !waiting) {
    (void)fetch_and_apply(server, wanted->sha256);
    return;
  }
  // The version wanted is refused (or waits to be tried again): a file changed on the device
  // meanwhile gets what this device last applied.
  if (applied_ && d.sha256 != applied_->sha256 && clock_.now() >= put_back_at_) put_back_applied();
}

Result<std::string> ConfigApplier::reapply(ServerLink& server) {
  if (!broken_.empty()) return Error{ErrorCode::kFailedPrecondition, broken_};
  if (pending_) {
    return Error{ErrorCode::kIo, "the document that ran before " +
                                     describe(pending_->version, pending_->sha256) +
                                     " is still to be put back"};
  }
  return fetch_and_apply(server, "");
}

Result<std::string> ConfigApplier::fetch_and_apply(ServerLink& server,
                                                   const std::string& wanted_sha) {
  auto fetched = server.device_config();
  if (!fetched.ok()) {
    if (fetched.error().code == ErrorCode::kInvalidArgument) {
      // The server's document does not check (its hash, its envelope, a field this agent
      // does not know): a verdict on it, tried again later.
      return fail(wanted_sha,
                  "the configuration the server gives does not check: " + fetched.error().message,
                  ErrorCode::kIo);
    }
    // Out of reach: no verdict on any document; the next check-in asks again.
    const Error e{ErrorCode::kIo, "fetching the configuration: " + fetched.error().to_string()};
    log(e.message);
    return e;
  }
  const protocol::DeviceConfig& c = *fetched;
  const std::string what = describe(c.version, c.sha256);
  if (own_) {
    if (Status st = protocol::check_config_values(c.values, *own_); !st.ok()) {
      refused_ = Refused{c.sha256, own_sha256_,
                         what + " refused: outside this device's own envelope (" +
                             o_.envelope_file + "): " + st.error().message};
      (void)save();
      log(refused_->error);
      return Error{ErrorCode::kFailedPrecondition, refused_->error};
    }
  }
  auto done = install(c.version, c.sha256, protocol::encode_config_values(c.values),
                      protocol::encode_config_envelope(c.envelope), what);
  if (done.ok() && refused_) {
    refused_.reset();  // a newer version is applied: an older refusal is over
    (void)save();
  }
  return done;
}

Result<std::string> ConfigApplier::install(uint64_t version, const std::string& sha256,
                                           const std::string& bytes, const std::string& envelope,
                                           const std::string& what) {
  if (pending_) return Error{ErrorCode::kIo, what + " not applied: a restore is still owed"};
  auto previous = fs_.read(o_.path);
  if (!previous.ok() && previous.error().code != ErrorCode::kNotFound) {
    return fail(sha256,
                what + " not applied: reading " + o_.path + ": " + previous.error().to_string(),
                ErrorCode::kIo);
  }
  // Journaled before the file is touched: a stop from here on is undone at the next start.
  pending_ = Pending{version, sha256, previous.ok() ? std::optional(*previous) : std::nullopt};
  if (Status st = save(); !st.ok()) {
    pending_.reset();
    return fail(sha256, what + " not applied: " + st.error().to_string(), ErrorCode::kIo);
  }
  std::string why;
  if (Status st = write_atomically(fs_, o_.path, bytes); !st.ok()) {
    why = "writing " + o_.path + ": " + st.error().to_string();
  } else if (!o_.apply.empty()) {
    why = command_failure(runner_.run(o_.apply, o_.apply_timeout,
                                      {{"DROVER_CONFIG_PATH", o_.path},
                                       {"DROVER_CONFIG_VERSION", std::to_string(version)},
                                       {"DROVER_CONFIG_SHA256", sha256}}));
  }
  if (!why.empty()) {
    // Whatever is on disk now (a write can fail after its rename), what ran before goes back.
    return fail(sha256, what + " not applied: " + why + "; " + restore(), ErrorCode::kIo);
  }
  applied_ = Applied{version, sha256, bytes, envelope};
  pending_.reset();
  failed_.reset();
  (void)save();
  const std::string done = what + " applied to " + o_.path;
  log(done);
  return done;
}

std::string ConfigApplier::restore() {
  const std::optional<std::string>& previous = pending_->previous;
  Status st = previous ? write_atomically(fs_, o_.path, *previous) : fs_.remove(o_.path);
  if (!st.ok()) return "putting the previous document back failed: " + st.error().to_string();
  std::string said = previous ? "the previous document is back" : "no document is left";
  if (!o_.apply.empty()) {
    const std::string sha = previous ? protocol::config_sha256_of(*previous) : "";
    const bool known = applied_ && applied_->sha256 == sha;
    const std::string failure = command_failure(
        runner_.run(o_.apply, o_.apply_timeout,
                    {{"DROVER_CONFIG_PATH", o_.path},
                     {"DROVER_CONFIG_VERSION", known ? std::to_string(applied_->version) : ""},
                     {"DROVER_CONFIG_SHA256", sha},
                     {"DROVER_CONFIG_RESTORE", "1"}}));
    if (!failure.empty()) said += ", but for it " + failure;
  }
  pending_.reset();
  return said;
}

void ConfigApplier::put_back_applied() {
  const Applied a = *applied_;
  const std::string what = describe(a.version, a.sha256);
  if (own_) {
    if (auto v = protocol::decode_config_values(a.document, *own_); !v.ok()) {
      log(what + " not put back: outside this device's own envelope: " + v.error().message);
      put_back_at_ = clock_.now() + o_.retry_after;
      return;
    }
  }
  // The failure of the version wanted (its refusal is kept apart) stands whatever comes of
  // this, but one of this very document is over once it is back.
  const std::optional<Failed> held = failed_;
  auto put = install(a.version, a.sha256, a.document, a.envelope,
                     what + " (put back: the file had changed on the device)");
  if (put.ok()) {
    failed_ = held && held->sha256 != a.sha256 ? held : std::nullopt;
  } else {
    failed_ = held;
    put_back_at_ = clock_.now() + o_.retry_after;
  }
  (void)save();
}

Error ConfigApplier::fail(const std::string& sha256, const std::string& error, ErrorCode code) {
  failed_ = Failed{sha256, clock_.now() + o_.retry_after, error};
  (void)save();
  log(error);
  return Error{code, error};
}

}  // namespace drover::agent
