// ServerLink: what the agent needs from the server — a session, check-ins, status reports and
// artifact downloads — behind an interface (the HTTP one below; tests may script their own).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/update_state.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/result.h"
#include "protocol/device.h"
#include "protocol/device_config.h"
#include "protocol/telemetry_rules.h"
#include "security/crypto.h"

namespace drover::http {
struct ClientOptions;
}  // namespace drover::http

namespace drover::agent {

using Inventory = std::map<std::string, std::string>;  // component -> version

// The longest report message the server takes (docs/api/device.md); the HTTP link cuts
// longer ones, keeping their start.
inline constexpr size_t kMaxReportMessage = 2048;
// The server sends a device its windows for the coming week, at most this many of them
// (docs/api/device.md): a shorter list covers the whole week.
inline constexpr size_t kWeekOfWindows = 16;

struct Offer {
  std::string rollout_id, component, version, sha256;
  uint64_t size = 0;
  bool revert = false;
  // A revert to the image the device keeps in its other slot: nothing to download (size
  // and sha256 are those of the uploaded artifact, 0 and "" when there is none).
  bool switch_back = false;
  std::vector<TimeRange> windows;  // when to install it; empty: any time
};

// The answer to a device that holds a verified image (state "ready").
struct Hold {
  enum class Action : uint8_t { kApply, kWait, kDrop };
  std::string rollout_id;
  Action action = Action::kApply;
  std::vector<TimeRange> windows;  // kApply: as in Offer
  std::string reason;
};

// The server's answer to a telemetry batch (docs/api/device.md, "Telemetry").
struct TelemetryAck {
  uint64_t sequence = 0;
  bool retry = false;  // stored before: nothing was added
  uint64_t accepted = 0, duplicates = 0, refused = 0;
  std::string rules;  // the ETag of the rules the device should follow ("" for none)
};

// A remote command in a check-in answer (docs/api/device.md, "Commands"). The action is kept
// as sent: one this agent does not know is refused, not a reason to drop the whole answer.
struct RemoteCommand {
  std::string id;
  std::string action;
  std::string argument;
  Timestamp expires_at{};
  bool operator==(const RemoteCommand&) const = default;
};
// At most this many commands are read from one answer (the server keeps at most 16 open
// per device).
inline constexpr size_t kMaxCommandsPerAnswer = 64;

// The configuration the server wants the device to run (a check-in answer's "config").
using ConfigWanted = protocol::ConfigTarget;

struct CheckInAnswer {
  std::optional<Offer> offer;
  std::optional<Hold> hold;
  std::vector<RemoteCommand> commands;
  std::optional<ConfigWanted> config;  // only when it runs another
  Duration next_checkin{0};
};

class ServerLink {
 public:
  virtual ~ServerLink() = default;
  // Enrolls if needed and logs in. kFailedPrecondition while the device waits, pending, for an
  // operator; kPermissionDenied when rejected or decommissioned; kIo when unreachable.
  virtual Status connect(const Inventory& installed) = 0;
  // `state`: what the device is doing; `holding` names the rollout whose image a device in
  // state kReady holds ("" otherwise);
  // `keeps_previous`: the device keeps the image it ran before an update (A/B slots);
  // `config`: what it says of its configuration (null: it applies none).
  virtual Result<CheckInAnswer> check_in(const Inventory& installed, protocol::UpdateState state,
                                         std::string_view holding, bool keeps_previous,
                                         const protocol::ConfigReport* config) = 0;
  // `standby` (with kSucceeded): the version the other slot now keeps, "" for none.
  virtual Status report(const std::string& rollout_id, const std::string& version,
                        protocol::Report status, const std::string& message,
                        const std::string& standby) = 0;
  // Appends bytes [from, size) of the artifact to the file at `path` (truncating it to
  // `from` first), resuming a cut download; `progress` hears the bytes on disk now and
  // then. Returns the bytes on disk at the end. A changed artifact (If-Range mismatch)
  // restarts from 0.
  virtual Result<uint64_t> download(const UpdateRecord& update, const std::string& path,
                                    uint64_t from,
                                    const std::function<void(uint64_t)>& progress) = 0;
  // Sends a telemetry batch (encode_telemetry_batch's bytes). kInvalidArgument,
  // kResourceExhausted: the server refuses it for good (a malformed or oversized batch,
  // a series limit); kIo and the rest: try again later.
  virtual Result<TelemetryAck> send_telemetry(std::string_view body) {
    (void)body;
    return Error{ErrorCode::kFailedPrecondition, "this link carries no telemetry"};
  }
  // The rules this device's agent follows.
  virtual Result<protocol::TelemetryRules> telemetry_rules() {
    return Error{ErrorCode::kFailedPrecondition, "this link carries no telemetry"};
  }
  // The device's type's configuration (GET /api/device/v1/config), its hash and values
  // checked against the envelope it comes with.
  virtual Result<protocol::DeviceConfig> device_config() {
    return Error{ErrorCode::kFailedPrecondition, "this link carries no configuration"};
  }
  // A remote command's result. kNotFound when the server has no such command for this device.
  virtual Status report_command(const std::string& id, protocol::CommandOutcome outcome,
                                int exit_code, const std::string& output) {
    (void)id, (void)outcome, (void)exit_code, (void)output;
    return Error{ErrorCode::kFailedPrecondition, "this link carries no commands"};
  }
  // Re-enrolls the device under its id with a new identity key (the remote "rotate_key"):
  // the next key is kept on disk before the server hears of it, the server takes it signed
  // by the current one, and only then does it replace the current key on disk. Returns the
  // new public key (base64url). A rotation cut short anywhere leaves a device that still
  // logs in: with the old key if the server never took the new one, else with the new one
  // (found beside the old at the next login and put in its place). kFailedPrecondition
  // when this link has no key file to rotate.
  virtual Result<std::string> rotate_key() {
    return Error{ErrorCode::kFailedPrecondition, "this link has no key to rotate"};
  }
  // Drops the connection to the server, if one is open; the session stays. A device that
  // sleeps between polls need not hold a connection meanwhile.
  virtual void disconnect() {}
  // What the link knows of reaching the server (LinkWatchdog): when it last answered anything
  // — an error status included: the link carried it — and since when every request has gone
  // unanswered (no HTTP answer at all), if the last one did. Both empty: nothing tried yet.
  struct Reach {
    std::optional<Timestamp> last_answer;
    std::optional<Timestamp> unanswered_since;
  };
  virtual Reach reach() const { return {}; }
};

// The largest answer the agent reads into memory from the device API (downloads stream to
// disk and are bounded by the offer's size instead).
inline constexpr uint64_t kMaxAnswerBytes = uint64_t{1} << 20;

struct HttpLinkOptions {
  std::string server;  // http(s)://host:port
  std::string device_id, device_type, hardware_revision;
  std::string enrollment_token;
  std::string site;  // where the device is, told when it enrolls (may be empty)
  // Factory identity (security/factory_identity.h): the manufacturer's certificate chain and
  // its private key (PEM files), which sign the enrollment. Read when the link is made.
  std::string factory_certificate_file, factory_key_file;
  std::string ca_file, cert_file, key_file;  // https
  Duration timeout = seconds(30);
  // Where the device's identity key is kept (load_or_create_key's path): a rotation writes
  // the next key beside it (kNextKeySuffix) and renames it into place once the server has
  // it. Empty: the key is never rotated.
  std::string device_key_file;
};

// The next identity key, kept beside the current one while a rotation is under way.
inline constexpr std::string_view kNextKeySuffix = ".next";

// The HTTP client settings of a link (timeouts, TLS files), for other requests to the same
// server: signed update metadata.
http::ClientOptions link_client_options(const HttpLinkOptions& options);

// The device API over HTTP (docs/api/device.md), signing logins with `key`. Tokens are
// renewed before they expire and after a 401. kInvalidArgument when the factory identity's
// files cannot be read or its key cannot sign.
// `fs` holds the device's key file (HttpLinkOptions::device_key_file).
Result<std::unique_ptr<ServerLink>> make_http_link(HttpLinkOptions options,
                                                   security::SigningKey key, Clock& clock,
                                                   FileSystem& fs = real_file_system());

// The device's key in `path` (PKCS#8 PEM, 0600): loaded, or generated and saved on first
// start.
Result<security::SigningKey> load_or_create_key(FileSystem& fs, const std::string& path);

}  // namespace drover::agent
