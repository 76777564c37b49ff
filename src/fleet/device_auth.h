// DeviceAuth: who a device is. Enrollment binds a device id to an Ed25519 public key; a
// device then proves it holds the private key by signing a fresh server challenge and
// receives a short-lived bearer token; every later request presents the token, and
// authorize() turns it back into a device id — only for a device that is still accepted and
// in service (zero trust: nothing is taken on the network's word).
//
// Enrollment. What vouches for a device: a scoped enrollment token (fleet/enrollment_tokens.h:
// its device types, hardware revisions and sites, uses, lifetime), a pre-shared token
// (unscoped, from the server's flags), or a manufacturer's certificate
// (security/factory_identity.h: its chain, and the id, type and revision it names). Then:
//   - a new id that is vouched for is accepted at once; one that is not is created pending
//     until an operator accepts it (a claim); a wrong token or certificate is refused;
//   - a device an operator provisioned (no key yet) gets its key bound only when vouched for,
//     so knowing an id is not enough to take a device over or park a key on it;
//   - a claim — pending, or rejected by an operator — is unverified: the same id vouched for
//     with another key replaces it, its type, revision and inventory with it (nobody can lock
//     a device out by claiming its id first); a rejected key itself stays refused until an
//     admin undoes the rejection (unreject);
//   - otherwise enrolling again with the same key changes nothing, and another key is
//     refused (key rotation, signed by the current key, keeps the device and its history).
// A scoped token's use is counted in the same write as the device it enrolls.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/result.h"
#include "fleet/audit_log.h"
#include "fleet/device_service.h"
#include "fleet/enrollment_tokens.h"
#include "model/device.h"
#include "security/crypto.h"
#include "security/factory_identity.h"
#include "store/store.h"

namespace drover {

struct AuthOptions {
  std::vector<std::string> enrollment_tokens;  // pre-shared; any of them admits a device
  Duration token_lifetime = minutes(15);
  Duration challenge_lifetime = seconds(60);
  // Devices that may wait for an operator at once: an enrollment without a token beyond it
  // is refused (kResourceExhausted) until some are accepted or rejected. Pending devices
  // are what an unauthenticated client can make the server store.
  size_t max_pending = 10'000;
  // What a device enrolling without a token may bring: installed components.
  size_t max_pending_components = 16;
  // A device nobody accepted or rejected within this long after it enrolled is removed
  // (it may enroll again, as new), so that claims left waiting neither fill max_pending for
  // good nor stay in the store. Swept every pending_sweep on the clock. 0: kept until
  // decided (no timer).
  Duration pending_lifetime{0};
  Duration pending_sweep = minutes(1);
  // Told after each sweep that removed something (how many) or failed (why), on the clock's
  // timer thread.
  std::function<void(const Result<size_t>&)> on_expiry = nullptr;
  // Where enrollment decisions and key changes are recorded before they take effect: a
  // device accepted with a token, accepted or rejected by an operator, a key rotated. (A
  // pending claim is no decision and is not recorded: anyone may make one.) An error stops
  // the change. Null: not recorded.
  AuditLog* audit = nullptr;
  // Where scoped enrollment tokens are kept: the registry's store (the use a token's
  // enrollment counts is written with the device). Null: none are made or accepted, only
  // the pre-shared ones.
  Store* store = nullptr;
  // The manufacturer CAs whose certificates admit a device. Null: no factory identity.
  std::optional<security::FactoryTrust> factory;
};

struct EnrollRequest {
  std::string device_id;
  std::string device_type;
  std::string hardware_revision;
  std::string public_key;        // 32 raw bytes
  std::string enrollment_token;  // may be empty
  std::vector<InstalledComponent> installed;
  std::string site;  // where a new device is (may be empty); a site-scoped token checks it
  // Factory identity (may be empty): the certificate chain (PEM, leaf first) and the leaf
  // key's signature of security::factory_enrollment_message of the fields above.
  std::string factory_certificate;
  std::string factory_signature;
};

struct IssuedToken {
  std::string token;
  Timestamp expires{};
};

class DeviceAuth {
 public:
  // Starts the sweep of expired pending enrollments when options.pending_lifetime is set;
  // the destructor cancels it (under SystemClock, stop the clock first: see Clock).
  DeviceAuth(DeviceService& registry, Clock& clock, security::TokenSigner signer,
             AuthOptions options);
  ~DeviceAuth();
  DeviceAuth(const DeviceAuth&) = delete;
  DeviceAuth& operator=(const DeviceAuth&) = delete;

  // The device's enrollment state afterwards. kInvalidArgument for a malformed request or
  // key (or, without a token, more than max_pending_components) or certificate,
  // kResourceExhausted when max_pending devices wait already, kUnauthenticated for a wrong,
  // expired, revoked or used-up enrollment token or a certificate that does not verify,
  // kPermissionDenied for a device outside the token's scope or a rejected key, kAlreadyExists
  // when the id is bound to another key, kFailedPrecondition for a decommissioned device or
  // one whose recorded type or revision the certificate contradicts; plus the store's errors.
  // Nothing is written on error.
  Result<Enrollment> enroll(const EnrollRequest& request);

  // A fresh single-use challenge for the device to sign, signed by the server (not stored):
  // it expires after challenge_lifetime, and a device may hold several — no request of
  // anyone else's can cancel one. It names this DeviceAuth's instance (drawn at
  // construction), so a challenge from before a restart, when the record of used ones was
  // lost, is not taken. kNotFound for an unknown device or one without a key.
  Result<std::string> challenge(std::string_view device_id);

  // Checks the device's signature of `challenge` (the bytes signed are
  // challenge_message(device_id, challenge)) and issues a bearer token. Only a verified
  // answer uses the challenge up (a forged one changes nothing). kUnauthenticated for a
  // challenge this server did not issue to this device (or issued before it restarted), an
  // expired or used one, or a bad signature; kPermissionDenied for a device that is pending,
  // rejected or decommissioned.
  Result<IssuedToken> authenticate(std::string_view device_id, std::string_view challenge,
                                   std::string_view signature);
  static std::string challenge_message(std::string_view device_id, std::string_view challenge);

  // The device a bearer token speaks for. kUnauthenticated for a bad or expired token, or
  // one issued for the key the device had before a rotation; kPermissionDenied once the
  // device is no longer accepted or is decommissioned.
  Result<std::string> authorize(std::string_view token);

  // Replaces the device's key. `signature` is the current key's signature of
  // rotation_message(device_id, new_public_key). Errors as authenticate(); nothing changes.
  Status rotate_key(std::string_view device_id, std::string_view new_public_key,
                    std::string_view signature);
  static std::string rotation_message(std::string_view device_id, std::string_view new_public_key);

  // Operator decisions on a pending device. kNotFound for an unknown device,
  // kFailedPrecondition when it is not pending.
  Status accept(std::string_view device_id);
  Status reject(std::string_view device_id);
  // Undoes a rejection: the device is pending again (with the key it had), for an operator to
  // accept or reject, and its pending lifetime starts anew. kNotFound for an unknown device,
  // kFailedPrecondition when it is not rejected.
  Status unreject(std::string_view device_id);

  // Scoped enrollment tokens. kFailedPrecondition without options.store.
  Result<CreatedEnrollmentToken> create_enrollment_token(EnrollmentTokenSpec spec);
  Result<std::vector<EnrollmentToken>> enrollment_tokens();
  // Revokes at once; revoking twice changes nothing. kNotFound for an unknown id.
  Result<EnrollmentToken> revoke_enrollment_token(std::string_view id);

  // Removes the devices pending for longer than pending_lifetime, durably before it returns
  // (a pending device without an enrollment time, kept from before they were recorded, is
  // given the sweep's time and expires a lifetime later). How many; 0 without a lifetime.
  // The sweep's timer calls it.
  Result<size_t> expire_pending();

 private:
  void schedule_expiry();
  bool token_valid(std::string_view token) const;
  // Reads the scoped tokens from the store once; from then on tokens_ is what counts (it
  // holds writes the group commit has not made durable yet, which the store would not show).
  Status load_tokens() REQUIRES(mu_);
  // The scoped token `text` names, when there is one by its id; nullopt otherwise.
  Result<std::optional<EnrollmentToken>> find_token(std::string_view text) REQUIRES(mu_);
  Status decide(std::string_view device_id, Enrollment to);
  // options_.audit->record of a decision about `device_id`, when there is an audit log.
  Status audit(std::string_view device_id, std::string action,
               std::map<std::string, std::string> detail) const;
  Status check_usable(std::string_view device_id) const;  // accepted and in service
  static Status usable(std::string_view device_id,
                       const std::optional<DeviceService::Standing>& standing);

  DeviceService& registry_;
  Clock& clock_;
  security::TokenSigner signer_;
  AuthOptions options_;
  Clock::TimerId expiry_timer_ = 0;   // the sweep's (0: none); set on the clock's timer thread
  Mutex mu_{LockLevel::kDeviceAuth};  // serialises enrollment decisions and guards used_
  // This instance's mark in every challenge it issues (base64url: no '.' or ':').
  std::string instance_;
  // Challenges answered already, until they expire (a challenge is used once).
  std::unordered_map<std::string, Timestamp> used_ GUARDED_BY(mu_);
  // The scoped enrollment tokens by id, once loaded.
  std::map<std::string, EnrollmentToken, std::less<>> tokens_ GUARDED_BY(mu_);
  bool tokens_loaded_ GUARDED_BY(mu_) = false;
};

}  // namespace drover
