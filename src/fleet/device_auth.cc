#include "fleet/device_auth.h"

#include <chrono>
#include <string>
#include <utility>

#include "base/try_assign.h"
#include "store/group_commit.h"

namespace drover {
namespace {

constexpr std::string_view kDeviceSubject = "device:";
constexpr std::string_view kChallengeSubject = "challenge:";

Error unauthenticated(std::string why) { return {ErrorCode::kUnauthenticated, std::move(why)}; }
Error denied(std::string why) { return {ErrorCode::kPermissionDenied, std::move(why)}; }

}  // namespace

DeviceAuth::DeviceAuth(DeviceService& registry, Clock& clock, security::TokenSigner signer,
                       AuthOptions options)
    : registry_(registry), clock_(clock), signer_(std::move(signer)), options_(std::move(options)) {
  // Unique per start: 9 random bytes (12 characters). Should the system's random source
  // fail, the start time still tells this instance from the one before.
  auto mark = security::random_bytes(9);
  instance_ = security::to_base64url(
      mark.ok() ? *mark
                : std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  if (options_.pending_lifetime > Duration(0)) schedule_expiry();
}

DeviceAuth::~DeviceAuth() {
  if (expiry_timer_ != 0) clock_.cancel(expiry_timer_);
}

void DeviceAuth::schedule_expiry() {
  expiry_timer_ = clock_.schedule_after(options_.pending_sweep, [this] {
    const Result<size_t> swept = expire_pending();
    if (options_.on_expiry && (!swept.ok() || *swept > 0)) options_.on_expiry(swept);
    schedule_expiry();
  });
}

Result<size_t> DeviceAuth::expire_pending() {
  if (options_.pending_lifetime <= Duration(0)) return size_t{0};
  // Queued under the locks, waited for after them (store/group_commit.h).
  CommitScope scope;
  size_t removed = 0;
  {
    MutexLock lock(mu_);  // no enrollment decision in between
    const Timestamp now = clock_.now();
    auto gone = registry_.expire_pending(now - options_.pending_lifetime, now);
    if (!gone.ok()) return gone.error();
    removed = gone->size();
  }
  DROVER_TRY(scope.wait());
  return removed;
}

bool DeviceAuth::token_valid(std::string_view token) const {
  bool valid = false;
  for (const std::string& t : options_.enrollment_tokens) {
    // Every configured token is compared, each in constant time.
    valid = security::constant_time_equal(token, t) || valid;
  }
  return valid;
}

Status DeviceAuth::load_tokens() {
  if (tokens_loaded_ || options_.store == nullptr) return ok_status();
  DROVER_TRY_ASSIGN(std::vector<EnrollmentToken> all, options_.store->list_enrollment_tokens());
  for (EnrollmentToken& t : all) tokens_.emplace(t.id, std::move(t));
  tokens_loaded_ = true;
  return ok_status();
}

Result<std::optional<EnrollmentToken>> DeviceAuth::find_token(std::string_view text) {
  DROVER_TRY(load_tokens());
  const std::optional<std::string_view> id = enrollment_token_id(text);
  if (!id) return std::optional<EnrollmentToken>();
  auto it = tokens_.find(*id);
  if (it == tokens_.end()) return std::optional<EnrollmentToken>();
  return std::optional<EnrollmentToken>(it->second);
}

Result<Enrollment> DeviceAuth::enroll(const EnrollRequest& request) {
  if (request.public_key.size() != security::SigningKey::kPublicKeySize)
    return invalid_argument("public_key must be 32 bytes (Ed25519)");
  if (!security::is_ed25519_point(request.public_key))
    return invalid_argument("public_key is not an Ed25519 public key (not a point of the curve)");
  const std::string key = security::to_base64url(request.public_key);
  const Timestamp now = clock_.now();

  // Enrolling again with the key the device is enrolled with — what every agent does when it
  // starts — binds nothing, so it needs nothing: the token it enrolled with may be used up,
  // expired or revoked since, its factory certificate expired, and the device must still come
  // back after a restart. Answered before any credential is judged, as an enrollment with
  // none is answered (a public key is no secret: this tells nobody more than that does).
  if (const std::optional<Device> known = registry_.device(request.device_id);
      known && !known->decommissioned && known->enrollment == Enrollment::kAccepted &&
      security::constant_time_equal(known->public_key, key)) {
    return Enrollment::kAccepted;
  }

  // What vouches for the device, checked before anything is read: a manufacturer's
  // certificate, an enrollment token, or nothing (a claim).
  std::optional<security::FactoryIdentity> factory;
  if (!request.factory_certificate.empty()) {
    if (!options_.factory) {
      return unauthenticated(
          "this server trusts no manufacturer CA: enroll with an enrollment token");
    }
    auto id = options_.factory->verify(
        request.factory_certificate,
        security::factory_enrollment_message(request.device_id, request.device_type,
                                             request.hardware_revision, request.public_key),
        request.factory_signature, now);
    if (!id.ok()) return id.error();
    if (id->device_id != request.device_id || id->device_type != request.device_type ||
        id->hardware_revision != request.hardware_revision) {
      return unauthenticated("factory certificate: it names device '" + id->device_id +
                             "' of type '" + id->device_type + "', revision '" +
                             id->hardware_revision + "', not what the enrollment claims");
    }
    factory = std::move(*id);
  }
  const bool has_token = !request.enrollment_token.empty();
  const bool preshared = has_token && token_valid(request.enrollment_token);
  if (has_token && !preshared && !enrollment_token_id(request.enrollment_token)) {
    return unauthenticated("the enrollment token is not valid");
  }
  const bool vouched = factory.has_value() || has_token;

  MutexLock lock(mu_);
  std::optional<EnrollmentToken> scoped;
  if (has_token && !preshared) {
    // Its secret and standing first: a wrong or spent token tells nothing about the device.
    DROVER_TRY_ASSIGN(scoped, find_token(request.enrollment_token));
    if (!scoped) return unauthenticated("the enrollment token is not valid");
    DROVER_TRY(drover::usable(*scoped, request.enrollment_token, now));
  }
  const std::optional<Device> known = registry_.device(request.device_id);
  Device d;
  // Whether the record is taken from the request (new, or replacing a claim).
  bool from_request = !known;
  if (known) {
    d = *known;
    if (d.decommissioned)
      return Error{ErrorCode::kFailedPrecondition, "device '" + d.id + "' is decommissioned"};
    const bool same_key = security::constant_time_equal(d.public_key, key);
    // Only claims are ever rejected (an operator decides on pending devices only).
    const bool claim = d.enrollment != Enrollment::kAccepted;
    if (d.enrollment == Enrollment::kRejected && (same_key || !vouched)) {
      return denied("device '" + d.id +
                    "' was rejected by an operator; an admin can undo that (drover device "
                    "unreject)");
    }
    if (same_key && !(vouched && claim)) return d.enrollment;  // enrolling again: no change
    if (!d.public_key.empty() && !same_key && !(claim && vouched)) {
      return Error{ErrorCode::kAlreadyExists,
                   "device '" + d.id + "' is enrolled with another key; rotate it instead"};
    }
    // A device an operator provisioned is trusted already: only a token or certificate may
    // bind its key, or whoever knows its id could park a key on it.
    if (d.public_key.empty() && !vouched) {
      return unauthenticated("device '" + d.id +
                             "' was provisioned by an operator; enrolling it needs an "
                             "enrollment token or a factory certificate");
    }
    // A claim brought what its claimant said — whoever that was (a public key proves
    // nothing at enrollment): the vouched request is what counts.
    from_request = claim;
  } else if (!vouched) {
    // A new pending record: what an unauthenticated client can make the server keep.
    if (request.installed.size() > options_.max_pending_components) {
      return invalid_argument("an enrollment without a token may list at most " +
                              std::to_string(options_.max_pending_components) +
                              " installed components");
    }
    if (registry_.pending_count() >= options_.max_pending) {
      return Error{ErrorCode::kResourceExhausted,
                   std::to_string(options_.max_pending) +
                       " devices wait for an operator already, the most this server keeps; "
                       "accept or reject them, or enroll with an enrollment token"};
    }
  }
  if (from_request) {
    d = Device{};  // nothing of a replaced claim stays
    d.id = request.device_id;
    d.device_type = request.device_type;
    d.hardware_revision = request.hardware_revision;
    d.site = request.site;
    d.installed = request.installed;
  } else if (factory && (d.device_type != factory->device_type ||
                         d.hardware_revision != factory->hardware_revision)) {
    // The operator's record and the manufacturer's certificate disagree: neither wins.
    return Error{ErrorCode::kFailedPrecondition,
                 "device '" + d.id + "' is recorded as type '" + d.device_type + "', revision '" +
                     d.hardware_revision + "', and its factory certificate names '" +
                     factory->device_type + "', '" + factory->hardware_revision + "'"};
  }
  if (scoped) {
    // A token for sites gives a device without one the site it names (or its only one).
    if (d.site.empty())
      d.site = request.site.empty() && scoped->sites.size() == 1 ? scoped->sites[0] : request.site;
    DROVER_TRY(admits(*scoped, d));
    ++scoped->uses;
  }
  d.public_key = key;
  d.enrollment = vouched ? Enrollment::kAccepted : Enrollment::kPending;
  d.enrolled_at = now;
  d.enrolled_by = factory     ? "factory:" + factory->fingerprint
                  : scoped    ? "token:" + scoped->id
                  : preshared ? "pre-shared token"
                              : "claim";
  if (vouched) {
    Device checked = d;  // a record update() would refuse is not recorded as enrolled
    DROVER_TRY(validate(checked));
    std::map<std::string, std::string> detail{{"device_type", d.device_type},
                                              {"hardware_revision", d.hardware_revision},
                                              {"public_key", d.public_key},
                                              {"by", d.enrolled_by}};
    if (factory) detail["issuer"] = factory->issuer;
    if (!d.site.empty()) detail["site"] = d.site;
    if (known && !known->public_key.empty() && known->public_key != d.public_key) {
      detail["replaced_claim"] = known->public_key;
    }
    DROVER_TRY(audit(d.id, "device.enrolled", std::move(detail)));
  }
  WriteBatch with;
  if (scoped) with.enrollment_tokens.push_back(*scoped);
  // Written only if the record is still as the decision saw it: an operator's edit or a
  // decommission in between (they do not wait for this lock) is not overwritten.
  bool created = false;
  auto written = registry_.update(
      d.id,
      [&](Device& current) -> Status {
        const bool unchanged = known ? !created && !current.decommissioned &&
                                           current.enrollment == known->enrollment &&
                                           current.public_key == known->public_key &&
                                           current.site == known->site &&
                                           current.device_type == known->device_type &&
                                           current.hardware_revision == known->hardware_revision
                                     : created;
        if (!unchanged) {
          return Error{ErrorCode::kConflict,
                       "device '" + d.id + "' changed while it enrolled; enroll again"};
        }
        if (from_request) {
          current = d;
          return ok_status();
        }
        current.public_key = d.public_key;
        current.enrollment = d.enrollment;
        current.enrolled_at = d.enrolled_at;
        current.enrolled_by = d.enrolled_by;
        current.site = d.site;
        return ok_status();
      },
      &created, std::move(with));
  if (!written.ok()) {  // validates: nothing is written on error
    // The log said it was enrolled (recorded before the write, as every change is): it
    // says now that the write was refused, so that it does not claim what never happened.
    if (vouched) {
      (void)audit(d.id, "device.enrollment_failed",
                  {{"public_key", d.public_key}, {"reason", written.error().message}});
    }
    return written.error();
  }
  if (scoped) tokens_[scoped->id] = *scoped;
  return d.enrollment;
}

// A challenge is signed by the server, not stored: nothing a third party sends can cancel a
// device's challenge (it may hold several at once), and the server keeps no state for one
// that is never answered.
Result<std::string> DeviceAuth::challenge(std::string_view device_id) {
  auto d = registry_.device(device_id);
  if (!d || d->public_key.empty())
    return not_found("device '" + std::string(device_id) + "' is not enrolled");
  auto nonce = security::random_bytes(16);
  if (!nonce.ok()) return nonce.error();
  return signer_.issue(std::string(kChallengeSubject) + std::string(device_id) + ":" + instance_ +
                           "." + security::to_base64url(*nonce),
                       clock_.now() + options_.challenge_lifetime);
}

std::string DeviceAuth::challenge_message(std::string_view device_id, std::string_view challenge) {
  return "drover-auth-v1\n" + std::string(device_id) + "\n" + std::string(challenge);
}

std::string DeviceAuth::rotation_message(std::string_view device_id,
                                         std::string_view new_public_key) {
  return "drover-rotate-v1\n" + std::string(device_id) + "\n" +
         security::to_base64url(new_public_key);
}

// Every authenticated request passes here: the device's standing only, not its record.
Status DeviceAuth::check_usable(std::string_view device_id) const {
  return usable(device_id, registry_.standing(device_id));
}

Status DeviceAuth::usable(std::string_view device_id,
                          const std::optional<DeviceService::Standing>& standing) {
  if (!standing) return unauthenticated("unknown device");
  const char* why = standing->decommissioned ? "is decommissioned"
                    : standing->enrollment == Enrollment::kPending
                        ? "waits for an operator to accept it"
                    : standing->enrollment == Enrollment::kRejected ? "was rejected"
                                                                    : nullptr;
  if (why == nullptr) return ok_status();
  return denied("device '" + std::string(device_id) + "' " + why);
}

Result<IssuedToken> DeviceAuth::authenticate(std::string_view device_id, std::string_view challenge,
                                             std::string_view signature) {
  const Timestamp now = clock_.now();
  auto claims = signer_.verify(challenge, now);
  if (!claims.ok()) {
    return unauthenticated(claims.error().message == "token expired"
                               ? "the challenge expired"
                               : "not a challenge this server issued");
  }
  const std::string for_device = std::string(kChallengeSubject) + std::string(device_id) + ":";
  // Exactly this device's: ids may hold ':', the nonce (base64url) never does.
  if (!claims->subject.starts_with(for_device) ||
      claims->subject.find(':', for_device.size()) != std::string::npos)
    return unauthenticated("not a challenge issued to this device");
  // Its record of use went with the instance that issued it: a challenge from before a
  // restart could otherwise be answered twice.
  if (std::string_view(claims->subject).substr(for_device.size()).substr(0, instance_.size() + 1) !=
      instance_ + ".")
    return unauthenticated(
        "the challenge was issued before the server restarted; ask for a new one");
  auto d = registry_.device(device_id);
  if (!d) return unauthenticated("unknown device");
  auto key = security::from_base64url(d->public_key);
  if (!key.ok() ||
      !security::verify_ed25519(*key, challenge_message(device_id, challenge), signature))
    return unauthenticated("the signature does not verify");
  {
    // Single use: only an answer signed by the device's key uses a challenge up, so a forged
    // answer consumes nothing.
    MutexLock lock(mu_);
    if (used_.size() > 4096) std::erase_if(used_, [&](const auto& kv) { return kv.second <= now; });
    if (!used_.emplace(std::string(challenge), claims->expires).second)
      return unauthenticated("the challenge was used already");
  }
  DROVER_TRY(check_usable(device_id));
  const Timestamp expires = clock_.now() + options_.token_lifetime;
  // The token names the key it was issued for: a rotation revokes the tokens before it.
  return IssuedToken{signer_.issue(std::string(kDeviceSubject) + std::string(device_id) + "/" +
                                       d->public_key.substr(0, DeviceService::kKeyTagSize),
                                   expires),
                     expires};
}

Result<std::string> DeviceAuth::authorize(std::string_view token) {
  auto claims = signer_.verify(token, clock_.now());
  if (!claims.ok()) return claims.error();
  // "device:<id>/<key tag>": ids may hold '/', the tag (base64url, fixed size) never does.
  const std::string& subject = claims->subject;
  constexpr size_t kTag = DeviceService::kKeyTagSize;
  if (!subject.starts_with(kDeviceSubject) || subject.size() < kDeviceSubject.size() + kTag + 2 ||
      subject[subject.size() - kTag - 1] != '/')
    return unauthenticated("not a device token");
  std::string id =
      subject.substr(kDeviceSubject.size(), subject.size() - kDeviceSubject.size() - kTag - 1);
  const auto standing = registry_.standing(id);
  DROVER_TRY(usable(id, standing));
  if (!security::constant_time_equal(standing->key_tag,
                                     std::string_view(subject).substr(subject.size() - kTag)))
    return unauthenticated("the token was issued for a key the device has since rotated");
  return id;
}

Status DeviceAuth::rotate_key(std::string_view device_id, std::string_view new_public_key,
                              std::string_view signature) {
  if (new_public_key.size() != security::SigningKey::kPublicKeySize)
    return invalid_argument("public_key must be 32 bytes (Ed25519)");
  // A rotation to bytes that are no key would lock the device out for good.
  if (!security::is_ed25519_point(new_public_key))
    return invalid_argument("public_key is not an Ed25519 public key (not a point of the curve)");
  MutexLock lock(mu_);
  DROVER_TRY(check_usable(device_id));
  auto d = registry_.device(device_id);
  if (!d) return unauthenticated("unknown device");
  auto current = security::from_base64url(d->public_key);
  if (!current.ok() ||
      !security::verify_ed25519(*current, rotation_message(device_id, new_public_key), signature))
    return unauthenticated("the rotation is not signed by the current key");
  const std::string old_key = d->public_key;
  const std::string new_key = security::to_base64url(new_public_key);
  DROVER_TRY(audit(d->id, "device.key_rotated", {{"from", old_key}, {"to", new_key}}));
  // Only the key changes, and only while it is the one that signed and the device is still in
  // service (a decommission does not wait for this lock).
  auto rotated = registry_.update(device_id, [&](Device& now_d) -> Status {
    if (now_d.public_key != old_key) {
      return unauthenticated("the device's key changed meanwhile; sign with the current one");
    }
    if (now_d.decommissioned || now_d.enrollment != Enrollment::kAccepted) {
      return denied("device '" + now_d.id + "' is no longer in service");
    }
    now_d.public_key = new_key;
    return ok_status();
  });
  if (!rotated.ok()) return rotated.error();
  return ok_status();
}

Status DeviceAuth::audit(std::string_view device_id, std::string action,
                         std::map<std::string, std::string> detail) const {
  if (options_.audit == nullptr) return ok_status();
  auto recorded = options_.audit->record({.actor = "server",
                                          .action = std::move(action),
                                          .subject = std::string(device_id),
                                          .detail = std::move(detail)});
  if (!recorded.ok()) return recorded.error();
  return ok_status();
}

Status DeviceAuth::decide(std::string_view device_id, Enrollment to) {
  MutexLock lock(mu_);
  if (auto d = registry_.device(device_id); d && d->enrollment == Enrollment::kPending) {
    DROVER_TRY(audit(device_id, to == Enrollment::kAccepted ? "device.accepted" : "device.rejected",
                     {{"device_type", d->device_type},
                      {"hardware_revision", d->hardware_revision},
                      {"public_key", d->public_key}}));
  }
  auto decided = registry_.update(device_id, [to](Device& d) -> Status {
    if (d.enrollment != Enrollment::kPending) {
      return Error{ErrorCode::kFailedPrecondition,
                   "device '" + d.id + "' is " + to_string(d.enrollment) + ", not pending"};
    }
    d.enrollment = to;
    if (to == Enrollment::kRejected) {
      // Only the identity stays, so that the device is refused (not pending again) when it
      // comes back: what it brought along is of no use and no longer counted as pending.
      d.installed.clear();
      d.attributes.clear();
    }
    return ok_status();
  });
  if (!decided.ok()) return decided.error();
  return ok_status();
}

Status DeviceAuth::unreject(std::string_view device_id) {
  MutexLock lock(mu_);
  auto d = registry_.device(device_id);
  if (!d) return not_found("unknown device '" + std::string(device_id) + "'");
  if (d->enrollment != Enrollment::kRejected) {
    return Error{ErrorCode::kFailedPrecondition,
                 "device '" + d->id + "' is " + to_string(d->enrollment) + ", not rejected"};
  }
  DROVER_TRY(audit(device_id, "device.unrejected", {{"public_key", d->public_key}}));
  const Timestamp now = clock_.now();
  auto undone = registry_.update(device_id, [now](Device& r) -> Status {
    if (r.enrollment != Enrollment::kRejected) {
      return Error{ErrorCode::kFailedPrecondition, "device '" + r.id + "' is not rejected"};
    }
    r.enrollment = Enrollment::kPending;
    r.enrolled_at = now;  // its pending lifetime starts anew
    return ok_status();
  });
  if (!undone.ok()) return undone.error();
  return ok_status();
}

Result<CreatedEnrollmentToken> DeviceAuth::create_enrollment_token(EnrollmentTokenSpec spec) {
  if (options_.store == nullptr) {
    return Error{ErrorCode::kFailedPrecondition, "this server keeps no enrollment tokens"};
  }
  DROVER_TRY_ASSIGN(CreatedEnrollmentToken made,
                    make_enrollment_token(std::move(spec), clock_.now()));
  WriteBatch batch;
  batch.enrollment_tokens.push_back(made.record);
  MutexLock lock(mu_);
  DROVER_TRY(load_tokens());
  DROVER_TRY(options_.store->apply(batch));
  tokens_[made.record.id] = made.record;
  return made;
}

Result<std::vector<EnrollmentToken>> DeviceAuth::enrollment_tokens() {
  MutexLock lock(mu_);
  DROVER_TRY(load_tokens());
  std::vector<EnrollmentToken> out;
  out.reserve(tokens_.size());
  for (const auto& [id, t] : tokens_) out.push_back(t);
  return out;
}

Result<EnrollmentToken> DeviceAuth::revoke_enrollment_token(std::string_view id) {
  if (options_.store == nullptr) {
    return Error{ErrorCode::kFailedPrecondition, "this server keeps no enrollment tokens"};
  }
  // Under the lock enrollments decide and count uses under, on the record they count on:
  // neither write undoes the other.
  MutexLock lock(mu_);
  DROVER_TRY(load_tokens());
  auto it = tokens_.find(id);
  if (it == tokens_.end()) return not_found("no enrollment token '" + std::string(id) + "'");
  if (it->second.revoked_at != Timestamp{}) return it->second;
  EnrollmentToken revoked = it->second;
  revoked.revoked_at = clock_.now();
  WriteBatch batch;
  batch.enrollment_tokens.push_back(revoked);
  DROVER_TRY(options_.store->apply(batch));
  it->second = revoked;
  return revoked;
}

Status DeviceAuth::accept(std::string_view device_id) {
  return decide(device_id, Enrollment::kAccepted);
}
Status DeviceAuth::reject(std::string_view device_id) {
  return decide(device_id, Enrollment::kRejected);
}

}  // namespace drover
