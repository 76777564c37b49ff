// AuditLog: what was done to the fleet, by whom, in a log nobody can quietly rewrite — not
// even someone with the database in hand.
//
// Each entry is compact JSON with sorted keys of {"at", "actor", "action", "subject",
// "detail"} (one form per entry: what is read back must be in it); the log
// is an RFC 6962/9162 Merkle tree over the entries (leaf SHA-256(0x00 ‖ entry), node
// SHA-256(0x01 ‖ l ‖ r)). Every append stores, in the same row, a checkpoint of the tree it
// completes — {"signed": {"_type": "audit-checkpoint", "size", "root", "at"}, "signatures":
// [{"keyid", "sig"}]}, Ed25519 over the canonical JSON of "signed", as signed update metadata
// is signed — and writes the newest checkpoint to a file beside the database as well.
//
// What that buys (docs/security.md, "The audit log"): an entry edited, removed, reordered or
// inserted in the database no longer matches the signed roots; removing the newest entries
// together with their checkpoints is caught by the checkpoint file, and by any checkpoint an
// auditor saved earlier (`drover audit checkpoint`, then `drover audit verify --checkpoint`):
// a log that is not an append-only extension of a saved checkpoint fails. Whoever holds the
// signing key (the server's data directory) can sign a rewritten history; only checkpoints
// saved elsewhere catch that, which is why auditors keep them.
//
// Entries are written before what they record takes effect ("a rollout paused" is durable
// before the rollout pauses): a crash in between leaves an entry whose effect is missing,
// never an effect without its entry.
//
// Thread-safety: all methods may be called from several threads; appends are serialized.
// Another process appending to the same database (`drover token create --data`) is noticed
// at the next append, which reads what it added first.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/file_system.h"
#include "base/mutex.h"
#include "base/result.h"
#include "model/rollout.h"
#include "security/crypto.h"
#include "security/merkle.h"
#include "security/tuf_key.h"
#include "store/store.h"

namespace drover {

// What happened, as it is recorded.
struct AuditEvent {
  std::string actor;    // "token:<id>:<name>", "device:<id>", "server", "cli:<user>"
  std::string action;   // e.g. "POST /api/v1/rollouts/{id}/pause", "rollout.state"
  std::string subject;  // what it was done to: a path, a rollout id, a device id
  std::map<std::string, std::string> detail;
};

// An entry read back.
struct AuditEntry {
  uint64_t index = 0;
  Timestamp at{};
  AuditEvent event;
  std::string bytes;      // the JSON the tree hashes
  std::string leaf_hash;  // 32 raw bytes
};

// A signed statement of the log's size and root at a time.
struct AuditCheckpoint {
  uint64_t size = 0;
  std::string root;  // 32 raw bytes
  Timestamp at{};
  std::string key_id;  // hex, of the Ed25519 key that signed it
  std::string text;    // the whole signed document, as stored and served
};

// Reads a checkpoint document and checks its signature under `public_key` (32 raw bytes).
// kInvalidArgument saying what is wrong: not JSON, a field missing or of the wrong type, a
// signature by another key or that does not verify.
Result<AuditCheckpoint> parse_audit_checkpoint(std::string_view text, std::string_view public_key);

// Reads an entry's JSON. kInvalidArgument for anything else (bytes not in the one form an
// entry is written in included: the tree hashes exactly what is stored).
Result<AuditEntry> parse_audit_entry(uint64_t index, std::string_view bytes);

// What a verification found: the log's size and root, and how many checkpoints it checked.
struct AuditVerification {
  uint64_t size = 0;
  std::string root;  // 32 raw bytes
  uint64_t checkpoints = 0;
};

// Verifies a whole log, records in index order from 0: every index present once and in
// order, every entry well-formed, every record's checkpoint signed by `public_key` and naming
// the root of the tree up to and including it, and `saved` (a checkpoint kept from earlier,
// if any) signed by the same key and the root of the log's first saved.size entries.
// kCorruption naming the first record that fails and why; kInvalidArgument for a saved
// checkpoint that does not parse or verify.
Result<AuditVerification> verify_audit_log(std::span<const AuditRecord> records,
                                           std::string_view public_key,
                                           std::optional<std::string_view> saved = std::nullopt);

struct AuditLogOptions {
  std::string key_path;         // the Ed25519 checkpoint key (PEM); made when absent
  std::string checkpoint_path;  // the newest checkpoint, rewritten after each append
};

class AuditLog {
 public:
  // Opens the log in `store`, verifying every stored record and the checkpoint file against
  // it. kCorruption when they do not verify (the message says where); kIo when the key or
  // the store cannot be read.
  static Result<std::unique_ptr<AuditLog>> open(Store& store, FileSystem& fs, Clock& clock,
                                                AuditLogOptions options);

  // Appends `event`, durable (with its checkpoint) before this returns; its index. kIo from
  // the store (nothing recorded), kConflict when another process kept appending first.
  // The checkpoint file is written after the row; a failure there does not fail the record
  // (the row is what counts) and is kept in file_error().
  Result<uint64_t> record(AuditEvent event) EXCLUDES(mu_);
  // The last checkpoint file write's outcome.
  Status file_error() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return file_error_;
  }

  // Reads first what another process appended (as every read below does), so that what is
  // shown is the whole log.
  uint64_t size() EXCLUDES(mu_);
  // Entries index >= from, at most `limit`, in order. Read back from the store and checked
  // against the tree this log holds (kCorruption if they no longer match).
  Result<std::vector<AuditEntry>> entries(uint64_t from, size_t limit) EXCLUDES(mu_);
  // The raw records, for verification elsewhere (the operator API's `drover audit verify`).
  Result<std::vector<AuditRecord>> records(uint64_t from, size_t limit) EXCLUDES(mu_);
  // The newest checkpoint (kNotFound for an empty log).
  Result<AuditCheckpoint> checkpoint() EXCLUDES(mu_);
  Result<std::vector<std::string>> inclusion_proof(uint64_t index, uint64_t size) EXCLUDES(mu_);
  Result<std::vector<std::string>> consistency_proof(uint64_t old_size, uint64_t new_size)
      EXCLUDES(mu_);
  // The checkpoint key's public half, 32 raw bytes.
  const std::string& public_key() const { return public_key_; }
  std::string key_id() const;

 private:
  AuditLog(Store& store, FileSystem& fs, Clock& clock, AuditLogOptions options,
           security::SigningKey key);
  // Reads what another writer appended since; kCorruption if it does not verify (the log is
  // then as it was).
  Status catch_up() REQUIRES(mu_);

  Store& store_;
  FileSystem& fs_;
  Clock& clock_;
  const AuditLogOptions options_;
  const security::SigningKey key_;
  const std::string public_key_;
  const security::PublicKey verify_key_;  // public_key_, parsed once
  const std::string key_id_;

  mutable Mutex mu_{LockLevel::kAuditLog};
  security::MerkleTree tree_ GUARDED_BY(mu_);
  std::optional<AuditCheckpoint> newest_ GUARDED_BY(mu_);
  Status file_error_ GUARDED_BY(mu_);
};

// Records a rollout's change of state or of halted strata (EngineOptions::audit): actor
// "server", action "rollout.state", subject the rollout's id; detail from, to, the artifact,
// who created it, and each newly halted stratum with its reason.
Status record_rollout_change(AuditLog& log, const Rollout& before, const Rollout& after);

}  // namespace drover
