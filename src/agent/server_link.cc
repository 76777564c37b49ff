#include "agent/server_link.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/device_answers.h"
#include "base/file_system.h"
#include "security/factory_identity.h"
#include "transport/http/client.h"

namespace drover::agent {
namespace {

using nlohmann::json;

// The error a device API answer stands for.
Error answer_error(const http::ClientResponse& r, const std::string& what) {
  return agent::answer_error(r.status, r.body, what);
}

json inventory_json(const Inventory& installed) {
  json out = json::object();
  for (const auto& [component, version] : installed) out[component] = version;
  return out;
}

class HttpLink final : public ServerLink {
 public:
  HttpLink(HttpLinkOptions o, std::unique_ptr<http::HttpClient> client, security::SigningKey key,
           Clock& clock, FileSystem& fs, std::string factory_certificate)
      : o_(std::move(o)),
        client_(std::move(client)),
        key_(std::move(key)),
        clock_(clock),
        fs_(fs),
        factory_certificate_(std::move(factory_certificate)) {}

  Status connect(const Inventory& installed) override {
    if (!token_.empty() && clock_.now() + minutes(1) < expires_) return ok_status();
    token_.clear();
    Status st = log_in(key_, installed);
    // Refused with the current key (another key is enrolled, the login does not verify):
    // a rotation cut short after the server took the next key, which logs in instead.
    if (st.ok() || o_.device_key_file.empty() ||
        (st.error().code != ErrorCode::kUnauthenticated &&
         st.error().code != ErrorCode::kConflict)) {
      return st;
    }
    auto next = read_next_key();
    if (!next.ok() || !*next) return st;
    // Only a login: the server holds this key already if it is to work, and an enrollment
    // could be refused for reasons of its own (a scoped token used up since).
    if (!log_in_only(**next, installed).ok()) return st;
    enrolled_ = true;
    key_ = std::move(**next);
    (void)put_next_key_in_place();  // else found beside the old one again at the next start
    return ok_status();
  }

  Result<std::string> rotate_key() override {
    if (o_.device_key_file.empty()) {
      return Error{ErrorCode::kFailedPrecondition,
                   "this agent was not told where its key is kept; it cannot rotate it"};
    }
    DROVER_TRY(connect(installed_));  // may itself finish a rotation cut short
    // The next key: one an earlier attempt left (the server may have it already), else a new
    // one, on disk before the server hears of it.
    auto next = read_next_key();
    if (!next.ok()) return next.error();
    if (*next && (*next)->public_key() == key_.public_key()) {
      DROVER_TRY(put_next_key_in_place());  // in use already: putting it in place was cut short
      next->reset();
    }
    if (!*next) {
      auto made = security::SigningKey::generate();
      if (!made.ok()) return made.error();
      DROVER_TRY(write_atomically(fs_, next_key_file(), made->private_pem()));  // 0600
      next->emplace(std::move(*made));
    }
    const std::string public_key = (*next)->public_key();
    const std::string encoded = security::to_base64url(public_key);
    const std::string message = "drover-rotate-v1\n" + o_.device_id + "\n" + encoded;
    auto r = authorized_post(
        "/api/device/v1/auth/rotate",
        {{"public_key", encoded}, {"signature", security::to_base64url(key_.sign(message))}},
        installed_);
    // A retry of a rotation whose answer was lost: the login after the 401 found the server
    // holding the next key already, and put it in place.
    if (key_.public_key() == public_key) return encoded;
    if (!r.ok()) return r.error();  // the next key stays for the next attempt
    if (r->status != 200) {
      Error e = answer_error(*r, "key rotation");
      // A key the server will never take is not kept for another try.
      if (e.code == ErrorCode::kInvalidArgument) (void)fs_.remove(next_key_file());
      return e;
    }
    key_ = std::move(**next);
    token_.clear();  // the server revoked every token of the old key
    // Not in place (a failing disk): the next login finds the key beside the old one.
    (void)put_next_key_in_place();
    return encoded;
  }

  Result<CheckInAnswer> check_in(const Inventory& installed, protocol::UpdateState state,
                                 std::string_view holding, bool keeps_previous,
                                 const protocol::ConfigReport* config) override {
    nlohmann::json body{{"installed", inventory_json(installed)},
                        {"update_state", protocol::to_string(state)}};
    if (!holding.empty()) body["holding"] = holding;
    if (keeps_previous) body["keeps_previous"] = true;
    if (config != nullptr) {
      body["config"] = {{"sha256", config->sha256}};
      if (!config->error.empty()) body["config"]["error"] = config->error;
    }
    auto r = authorized_post("/api/device/v1/checkin", body, installed);
    if (!r.ok()) return r.error();
    if (r->status != 200) return answer_error(*r, "check-in");
    return parse_checkin_answer(r->body);
  }

  Status report(const std::string& rollout_id, const std::string& version, protocol::Report status,
                const std::string& message, const std::string& standby) override {
    std::string_view text = message;
    if (text.size() > kMaxReportMessage) {
      text = text.substr(0, kMaxReportMessage);
      while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80)
        text.remove_suffix(1);  // a character cut in two
      if (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0xC0)
        text.remove_suffix(1);  // the lead byte of that character
    }
    nlohmann::json body{
        {"version", version}, {"status", protocol::to_string(status)}, {"message", text}};
    if (!standby.empty()) body["standby"] = standby;
    auto r = authorized_post(
        "/api/device/v1/deployments/" + http::url_encode(rollout_id) + "/status", body, installed_);
    if (!r.ok()) return r.error();
    if (r->status != 200) return answer_error(*r, "status report");
    return ok_status();
  }

  Status report_command(const std::string& id, protocol::CommandOutcome outcome, int exit_code,
                        const std::string& output) override {
    nlohmann::json body{{"outcome", protocol::to_string(outcome)}, {"output", output}};
    if (exit_code >= 0 && exit_code <= 255) body["exit_code"] = exit_code;
    auto r = authorized_post("/api/device/v1/commands/" + http::url_encode(id) + "/result", body,
                             installed_);
    if (!r.ok()) return r.error();
    if (r->status != 200) return answer_error(*r, "command result");
    return ok_status();
  }

  Result<TelemetryAck> send_telemetry(std::string_view batch) override {
    for (int attempt = 0;; ++attempt) {
      DROVER_TRY(connect(installed_));
      auto r = client_->request("POST", "/api/device/v1/telemetry", std::string(batch),
                                {{"Content-Type", "application/cbor"},
                                 {"Content-Encoding", "zstd"},
                                 {"Authorization", "Bearer " + token_}});
      note(r.ok());
      if (!r.ok()) return r.error();
      if (r->status == 401 && attempt == 0) {
        token_.clear();
        continue;
      }
      if (r->status == 200) return parse_telemetry_answer(r->body);
      // A batch the server will never take (malformed, too large, past a limit) is not
      // worth sending again; anything else may pass later.
      if (r->status == 400 || r->status == 413 || r->status == 415 || r->status == 422) {
        Error e = answer_error(*r, "telemetry");
        e.code = ErrorCode::kInvalidArgument;
        return e;
      }
      Error e = answer_error(*r, "telemetry");
      if (e.code == ErrorCode::kInvalidArgument) e.code = ErrorCode::kIo;
      return e;
    }
  }

  Result<protocol::TelemetryRules> telemetry_rules() override {
    auto r = authorized_get("/api/device/v1/telemetry/rules");
    if (!r.ok()) return r.error();
    if (r->status != 200) return answer_error(*r, "telemetry rules");
    auto rules = protocol::decode_telemetry_rules(r->body);
    if (!rules.ok()) return io_error("telemetry rules: " + rules.error().message);
    return rules;
  }

  Result<protocol::DeviceConfig> device_config() override {
    auto r = authorized_get("/api/device/v1/config");
    if (!r.ok()) return r.error();
    if (r->status != 200) return answer_error(*r, "configuration");
    // A document that does not check is the server's verdict to report (kInvalidArgument),
    // not a link to try again at once.
    auto config = protocol::decode_device_config(r->body);
    if (!config.ok()) return invalid_argument("configuration: " + config.error().message);
    return config;
  }

  void disconnect() override { client_->close(); }
  Reach reach() const override { return reach_; }

  Result<uint64_t> download(const UpdateRecord& u, const std::string& path, uint64_t from,
                            const std::function<void(uint64_t)>& progress) override {
    DROVER_TRY(connect(installed_));
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return io_error("opening " + path + ": " + errno_text(errno));
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    if (::ftruncate(fd, static_cast<off_t>(from)) != 0)
      return io_error("truncating " + path + ": " + errno_text(errno));
    http::Headers headers = {{"Authorization", "Bearer " + token_}};
    if (from > 0) {
      headers.emplace_back("Range", "bytes=" + std::to_string(from) + "-");
      headers.emplace_back("If-Range", "\"" + u.sha256 + "\"");
    }
    uint64_t at = from;
    uint64_t reported = from;
    const std::string target = "/api/device/v1/artifacts/" + http::url_encode(u.component) + "/" +
                               http::url_encode(u.version);
    int status = 0;
    auto r = client_->get_to(target, headers, [&](std::string_view piece) -> Status {
      if (status == 0) status = 1;  // first piece: the head was fine
      note(true);
      for (size_t done = 0; done < piece.size();) {
        const ssize_t n =
            ::pwrite(fd, piece.data() + done, piece.size() - done, static_cast<off_t>(at + done));
        if (n < 0) {
          if (errno == EINTR) continue;
          // A full disk does not empty itself: the attempt fails instead of retrying.
          const ErrorCode code =
              is_out_of_space(errno) ? ErrorCode::kResourceExhausted : ErrorCode::kIo;
          return Error{code, "writing " + path + ": " + errno_text(errno)};
        }
        done += static_cast<size_t>(n);
      }
      at += piece.size();
      if (at > u.size) return io_error("the server sent more than the artifact's size");
      if (progress && at - reported >= (1u << 20)) {
        if (::fdatasync(fd) != 0) return io_error("syncing " + path + ": " + errno_text(errno));
        progress(at);
        reported = at;
      }
      return ok_status();
    });
    if (!r.ok()) {
      if (status == 0) note(false);  // cut after pieces came: the link carried those
      if (progress && at > reported && ::fdatasync(fd) == 0) progress(at);
      return r.error();
    }
    note(true);
    if (r->status == 401) {
      token_.clear();
      return Error{ErrorCode::kIo, "download: the session expired; will log in again"};
    }
    if (r->status == 200 && from > 0) {
      // The content changed under the same name: it came whole, from byte 0, but was
      // written from `from`. Start over.
      ::ftruncate(fd, 0);
      if (progress) progress(0);
      return io_error("download: the artifact changed; starting over");
    }
    if (r->status != 200 && r->status != 206) return answer_error(*r, "download");
    if (::fdatasync(fd) != 0) return io_error("syncing " + path + ": " + errno_text(errno));
    if (progress) progress(at);
    return at;
  }

 private:
  // Enrolls (once per link) and logs in with `key`, keeping the session's token.
  Status log_in(const security::SigningKey& key, const Inventory& installed) {
    if (!enrolled_) {
      DROVER_TRY(enroll(key, installed));
      enrolled_ = true;
    }
    return log_in_only(key, installed);
  }

  Status enroll(const security::SigningKey& key, const Inventory& installed) {
    json body = {{"device_id", o_.device_id},
                 {"device_type", o_.device_type},
                 {"hardware_revision", o_.hardware_revision},
                 {"public_key", security::to_base64url(key.public_key())},
                 {"installed", inventory_json(installed)}};
    if (!o_.enrollment_token.empty()) body["enrollment_token"] = o_.enrollment_token;
    if (!o_.site.empty()) body["site"] = o_.site;
    if (!factory_certificate_.empty()) {
      // The factory vouches for this key: signed for each key the device enrolls with (a
      // rotated key too), with the factory key read from its file when needed.
      auto pem = real_file_system().read(o_.factory_key_file);
      if (!pem.ok()) return pem.error();
      auto signature = security::sign_with_private_key(
          *pem, security::factory_enrollment_message(o_.device_id, o_.device_type,
                                                     o_.hardware_revision, key.public_key()));
      if (!signature.ok()) return signature.error();
      body["factory_certificate"] = factory_certificate_;
      body["factory_signature"] = security::to_base64url(*signature);
    }
    auto r = post("/api/device/v1/enroll", body, false);
    if (!r.ok()) return r.error();
    if (r->status != 200) return answer_error(*r, "enroll");
    auto pending = parse_enroll_answer(r->body);
    if (!pending.ok()) return pending.error();
    if (*pending) {
      return Error{ErrorCode::kFailedPrecondition,
                   "enrolled; waiting for an operator to accept device " + o_.device_id};
    }
    return ok_status();
  }

  // The challenge and its answer signed by `key`: the session's token.
  Status log_in_only(const security::SigningKey& key, const Inventory& installed) {
    auto c = post("/api/device/v1/auth/challenge", {{"device_id", o_.device_id}}, false);
    if (!c.ok()) return c.error();
    if (c->status != 200) return answer_error(*c, "challenge");
    auto challenge = parse_challenge_answer(c->body);
    if (!challenge.ok()) return challenge.error();
    const std::string& nonce = *challenge;
    const std::string message = "drover-auth-v1\n" + o_.device_id + "\n" + nonce;
    auto t = post("/api/device/v1/auth/token",
                  {{"device_id", o_.device_id},
                   {"challenge", nonce},
                   {"signature", security::to_base64url(key.sign(message))}},
                  false);
    if (!t.ok()) return t.error();
    if (t->status != 200) {
      // Pending again (an operator has not accepted yet), rejected, decommissioned.
      if (t->status == 403) enrolled_ = false;
      return answer_error(*t, "login");
    }
    auto token = parse_token_answer(t->body);
    if (!token.ok()) return token.error();
    token_ = std::move(token->token);
    expires_ = token->expires;
    installed_ = installed;
    return ok_status();
  }

  // A request answered (any HTTP status), or not answered at all.
  void note(bool answered) {
    if (answered) {
      reach_.last_answer = clock_.now();
      reach_.unanswered_since.reset();
    } else if (!reach_.unanswered_since) {
      reach_.unanswered_since = clock_.now();
    }
  }

  std::string next_key_file() const { return o_.device_key_file + std::string(kNextKeySuffix); }

  // The key a rotation left beside the current one; nullopt when there is none.
  Result<std::optional<security::SigningKey>> read_next_key() {
    auto pem = fs_.read(next_key_file());
    if (!pem.ok()) {
      if (pem.error().code == ErrorCode::kNotFound) return std::optional<security::SigningKey>();
      return pem.error();
    }
    auto key = security::SigningKey::from_pem(*pem);
    if (!key.ok()) {
      // Damaged (write_atomically never leaves it half written): set aside, not deleted —
      // it may be the key the server holds — and a rotation makes a new one.
      DROVER_TRY(fs_.rename(next_key_file(), next_key_file() + ".damaged"));
      return std::optional<security::SigningKey>();
    }
    return std::optional<security::SigningKey>(std::move(*key));
  }

  // key_ (the next key, which the server took) becomes the current one on disk: device.key
  // written whole and durable first, and only then the next key's file removed — at every
  // instant one of the two files holds it, whatever the file system makes of a rename cut
  // by a power loss.
  Status put_next_key_in_place() {
    DROVER_TRY(write_atomically(fs_, o_.device_key_file, key_.private_pem()));  // 0600
    DROVER_TRY(fs_.remove(next_key_file()));
    std::string dir = std::filesystem::path(o_.device_key_file).parent_path().string();
    return fs_.sync_dir(dir.empty() ? "." : dir);
  }

  Result<http::ClientResponse> post(const std::string& path, const json& body, bool auth) {
    http::Headers headers = {{"Content-Type", "application/json"}};
    if (auth) headers.emplace_back("Authorization", "Bearer " + token_);
    // Invalid UTF-8 (a health check's raw output, say) is replaced, never thrown over.
    auto r = client_->request(
        "POST", path, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), headers);
    note(r.ok());
    return r;
  }

  // A request with the session's token; logs in first when needed, and once more after a 401.
  Result<http::ClientResponse> authorized_post(const std::string& path, const json& body,
                                               const Inventory& installed) {
    for (int attempt = 0;; ++attempt) {
      DROVER_TRY(connect(installed));
      auto r = post(path, body, true);
      if (!r.ok() || r->status != 401 || attempt == 1) return r;
      token_.clear();
    }
  }

  // A GET with the session's token, logged in again once if the token was refused.
  Result<http::ClientResponse> authorized_get(const std::string& path) {
    for (int attempt = 0;; ++attempt) {
      DROVER_TRY(connect(installed_));
      auto r = client_->request("GET", path, "", {{"Authorization", "Bearer " + token_}});
      note(r.ok());
      if (!r.ok() || r->status != 401 || attempt == 1) return r;
      token_.clear();
    }
  }

  HttpLinkOptions o_;
  std::unique_ptr<http::HttpClient> client_;
  security::SigningKey key_;
  Clock& clock_;
  FileSystem& fs_;
  std::string factory_certificate_;  // empty: no factory identity
  bool enrolled_ = false;
  std::string token_;
  Timestamp expires_{};
  Inventory installed_;
  Reach reach_;
};

}  // namespace

http::ClientOptions link_client_options(const HttpLinkOptions& options) {
  http::ClientOptions c;
  c.connect_timeout = options.timeout;
  c.request_timeout = options.timeout;
  c.user_agent = "drover-agent";
  c.ca_file = options.ca_file;
  c.cert_file = options.cert_file;
  c.key_file = options.key_file;
  return c;
}

Result<std::unique_ptr<ServerLink>> make_http_link(HttpLinkOptions options,
                                                   security::SigningKey key, Clock& clock,
                                                   FileSystem& fs) {
  http::ClientOptions c = link_client_options(options);
  // Check-in, login and report answers are a few KiB: one larger than this is not read.
  c.max_answer_bytes = kMaxAnswerBytes;
  auto client = http::HttpClient::create(options.server, c);
  if (!client.ok()) return client.error();
  // The factory identity is read once, and its key tried now: a link that could not enroll
  // is refused before it is used.
  std::string certificate;
  if (!options.factory_certificate_file.empty()) {
    auto chain = real_file_system().read(options.factory_certificate_file);
    if (!chain.ok()) {
      return invalid_argument("factory certificate " + options.factory_certificate_file + ": " +
                              chain.error().message);
    }
    auto pem = real_file_system().read(options.factory_key_file);
    if (!pem.ok()) {
      return invalid_argument("factory key " + options.factory_key_file + ": " +
                              pem.error().message);
    }
    auto signed_ = security::sign_with_private_key(
        *pem, security::factory_enrollment_message(options.device_id, options.device_type,
                                                   options.hardware_revision, key.public_key()));
    if (!signed_.ok()) {
      return invalid_argument("factory key " + options.factory_key_file + ": " +
                              signed_.error().message);
    }
    certificate = std::move(*chain);
  }
  return std::unique_ptr<ServerLink>(new HttpLink(
      std::move(options), std::move(*client), std::move(key), clock, fs, std::move(certificate)));
}

Result<security::SigningKey> load_or_create_key(FileSystem& fs, const std::string& path) {
  auto pem = fs.read(path);
  if (pem.ok()) {
    auto key = security::SigningKey::from_pem(*pem);
    if (!key.ok()) return Error{ErrorCode::kCorruption, path + ": not a device key"};
    return key;
  }
  if (pem.error().code != ErrorCode::kNotFound) return pem.error();
  auto key = security::SigningKey::generate();
  if (!key.ok()) return key.error();
  DROVER_TRY(write_atomically(fs, path, key->private_pem()));  // 0600
  return key;
}

}  // namespace drover::agent
