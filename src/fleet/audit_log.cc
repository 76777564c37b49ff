#include "fleet/audit_log.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "base/try_assign.h"
#include "security/canonical_json.h"
#include "security/tuf_key.h"

namespace drover {
namespace {

using nlohmann::json;
using security::MerkleTree;

constexpr std::string_view kCheckpointType = "audit-checkpoint";
constexpr size_t kReadPage = 4096;

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

Error corrupt(uint64_t index, const std::string& why) {
  return {ErrorCode::kCorruption, "audit log entry " + std::to_string(index) + ": " + why};
}

// An entry's bytes: compact JSON with sorted keys and standard escapes (control characters
// included, which canonical JSON of signed metadata would leave raw), invalid UTF-8 replaced.
// Entries hold only strings, integers and objects of them, so this form is unique.
std::string entry_text(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A temporary file name of this writer's own (another process may write the same file).
std::string temp_suffix() {
  auto bytes = security::random_bytes(8);
  return "." + (bytes.ok() ? security::to_hex(*bytes) : std::to_string(::getpid())) + ".tmp";
}

std::string sign_checkpoint(const security::SigningKey& key, const std::string& key_id,
                            uint64_t size, const std::string& root, Timestamp at) {
  const json body = {
      {"_type", kCheckpointType}, {"size", size}, {"root", security::to_hex(root)}, {"at", ms(at)}};
  const std::string message = *security::canonical_json(body);
  const json doc = {
      {"signed", body},
      {"signatures",
       json::array({{{"keyid", key_id}, {"sig", security::to_hex(key.sign(message))}}})}};
  return *security::canonical_json(doc);
}

Result<int64_t> integer_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) {
    return invalid_argument(std::string("'") + name + "' is missing or not an integer");
  }
  return it->get<int64_t>();
}

Result<std::string> string_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) {
    return invalid_argument(std::string("'") + name + "' is missing or not a string");
  }
  return it->get<std::string>();
}

}  // namespace

namespace {

// A checkpoint's fields, when it names `key_id` among its signers; the signature itself is
// checked only with `verify` (a log being opened checks every root, and the signature of
// the newest only: that one signed root covers every entry before it).
Result<AuditCheckpoint> read_checkpoint(std::string_view text, const security::PublicKey& key,
                                        const std::string& key_id, bool verify) {
  auto doc = security::parse_strict_json(text);
  if (!doc.ok()) return invalid_argument("checkpoint: " + doc.error().message);
  if (!doc->is_object() || !doc->contains("signed") || !(*doc)["signed"].is_object()) {
    return invalid_argument("checkpoint: no 'signed' object");
  }
  const json& body = (*doc)["signed"];
  DROVER_TRY_ASSIGN(std::string type, string_field(body, "_type"));
  if (type != kCheckpointType) return invalid_argument("checkpoint: _type is '" + type + "'");
  DROVER_TRY_ASSIGN(int64_t size, integer_field(body, "size"));
  DROVER_TRY_ASSIGN(int64_t at, integer_field(body, "at"));
  DROVER_TRY_ASSIGN(std::string root_hex, string_field(body, "root"));
  auto root = security::from_hex(root_hex);
  if (size < 0 || !root.ok() || root->size() != 32) {
    return invalid_argument("checkpoint: a negative size or a root that is not 32 hex bytes");
  }
  auto sigs = doc->find("signatures");
  if (sigs == doc->end() || !sigs->is_array()) {
    return invalid_argument("checkpoint: no 'signatures' array");
  }
  for (const json& s : *sigs) {
    if (!s.is_object()) continue;
    auto id = string_field(s, "keyid");
    auto sig = string_field(s, "sig");
    if (!id.ok() || !sig.ok() || *id != key_id) continue;
    auto raw = security::from_hex(*sig);
    if (!raw.ok() || (verify && !key.verify(*security::canonical_json(body), *raw))) {
      return invalid_argument("checkpoint of size " + std::to_string(size) +
                              ": the signature does not verify");
    }
    return AuditCheckpoint{.size = static_cast<uint64_t>(size),
                           .root = std::move(*root),
                           .at = Timestamp(std::chrono::milliseconds(at)),
                           .key_id = key_id,
                           .text = std::string(text)};
  }
  return invalid_argument("checkpoint of size " + std::to_string(size) +
                          ": not signed by the log's key " + key_id);
}

}  // namespace

Result<AuditCheckpoint> parse_audit_checkpoint(std::string_view text, std::string_view public_key) {
  auto key = security::PublicKey::ed25519(public_key);
  if (!key.ok()) return invalid_argument("checkpoint: the log's key is not an Ed25519 key");
  return read_checkpoint(text, *key, key->key_id(), true);
}

Result<AuditEntry> parse_audit_entry(uint64_t index, std::string_view bytes) {
  auto doc = security::parse_strict_json(bytes);
  if (!doc.ok()) return invalid_argument("entry: " + doc.error().message);
  if (entry_text(*doc) != bytes) return invalid_argument("entry: not in its canonical form");
  if (!doc->is_object()) return invalid_argument("entry: not an object");
  AuditEntry e;
  e.index = index;
  DROVER_TRY_ASSIGN(int64_t at, integer_field(*doc, "at"));
  e.at = Timestamp(std::chrono::milliseconds(at));
  DROVER_TRY_ASSIGN(e.event.actor, string_field(*doc, "actor"));
  DROVER_TRY_ASSIGN(e.event.action, string_field(*doc, "action"));
  DROVER_TRY_ASSIGN(e.event.subject, string_field(*doc, "subject"));
  auto detail = doc->find("detail");
  if (detail == doc->end() || !detail->is_object()) {
    return invalid_argument("entry: 'detail' is missing or not an object");
  }
  for (const auto& [k, v] : detail->items()) {
    if (!v.is_string()) return invalid_argument("entry: detail '" + k + "' is not a string");
    e.event.detail[k] = v.get<std::string>();
  }
  e.bytes = std::string(bytes);
  e.leaf_hash = security::merkle_leaf_hash(bytes);
  return e;
}

namespace {

// The log's key, parsed once.
struct LogKey {
  security::PublicKey key;
  std::string id;
};

Result<LogKey> log_key(std::string_view public_key) {
  auto key = security::PublicKey::ed25519(public_key);
  if (!key.ok()) return invalid_argument("the log's key is not an Ed25519 key");
  std::string id = key->key_id();
  return LogKey{std::move(*key), std::move(id)};
}

// Adds `record` (the next index) to `tree` and checks its checkpoint: its root always, its
// signature with `verify`.
Status check_record(MerkleTree& tree, const AuditRecord& record, const LogKey& key, bool verify) {
  if (record.index != tree.size()) {
    return corrupt(tree.size(), record.index > tree.size() ? "missing (the next stored is " +
                                                                 std::to_string(record.index) + ")"
                                                           : "stored twice or out of order");
  }
  if (auto entry = parse_audit_entry(record.index, record.entry); !entry.ok()) {
    return corrupt(record.index, entry.error().message);
  }
  DROVER_TRY(tree.append(security::merkle_leaf_hash(record.entry)));
  // A record that fails leaves the tree as it was.
  const auto refuse = [&](const std::string& why) {
    tree.truncate(record.index);
    return corrupt(record.index, why);
  };
  auto cp = read_checkpoint(record.checkpoint, key.key, key.id, verify);
  if (!cp.ok()) return refuse(cp.error().message);
  if (cp->size != tree.size()) {
    return refuse("its checkpoint is of size " + std::to_string(cp->size));
  }
  if (cp->root != tree.root()) {
    return refuse(
        "the log up to here does not have the root its checkpoint signed: an entry up to here "
        "was changed, removed, reordered or inserted");
  }
  return ok_status();
}

// Whether the saved checkpoint describes a prefix of `tree`.
Status check_saved(const MerkleTree& tree, const AuditCheckpoint& saved) {
  if (saved.size > tree.size()) {
    return Error{ErrorCode::kCorruption,
                 "the saved checkpoint covers " + std::to_string(saved.size) +
                     " entries and the log has " + std::to_string(tree.size()) +
                     ": entries were removed"};
  }
  if (*tree.root(saved.size) != saved.root) {
    return Error{ErrorCode::kCorruption,
                 "the log's first " + std::to_string(saved.size) +
                     " entries do not have the saved checkpoint's root: the history was "
                     "rewritten"};
  }
  return ok_status();
}

}  // namespace

Result<AuditVerification> verify_audit_log(std::span<const AuditRecord> records,
                                           std::string_view public_key,
                                           std::optional<std::string_view> saved) {
  std::optional<AuditCheckpoint> saved_cp;
  if (saved) {
    auto cp = parse_audit_checkpoint(*saved, public_key);
    if (!cp.ok()) return invalid_argument("the saved checkpoint: " + cp.error().message);
    saved_cp = std::move(*cp);
  }
  DROVER_TRY_ASSIGN(LogKey key, log_key(public_key));
  MerkleTree tree;
  for (const AuditRecord& r : records) DROVER_TRY(check_record(tree, r, key, true));
  if (saved_cp) DROVER_TRY(check_saved(tree, *saved_cp));
  return AuditVerification{.size = tree.size(), .root = tree.root(), .checkpoints = tree.size()};
}

AuditLog::AuditLog(Store& store, FileSystem& fs, Clock& clock, AuditLogOptions options,
                   security::SigningKey key)
    : store_(store),
      fs_(fs),
      clock_(clock),
      options_(std::move(options)),
      key_(std::move(key)),
      public_key_(key_.public_key()),
      // The key's own public half: always an Ed25519 point.
      verify_key_(security::PublicKey::ed25519(public_key_).value()),
      key_id_(verify_key_.key_id()) {}

std::string AuditLog::key_id() const { return key_id_; }

Result<std::unique_ptr<AuditLog>> AuditLog::open(Store& store, FileSystem& fs, Clock& clock,
                                                 AuditLogOptions options) {
  std::optional<security::SigningKey> key;
  auto pem = fs.read(options.key_path);
  if (pem.ok()) {
    auto k = security::SigningKey::from_pem(*pem);
    if (!k.ok()) {
      return Error{ErrorCode::kCorruption, options.key_path + " is not an Ed25519 private key"};
    }
    key.emplace(std::move(*k));
  } else if (pem.error().code == ErrorCode::kNotFound) {
    DROVER_TRY_ASSIGN(security::SigningKey made, security::SigningKey::generate());
    if (Status st = write_atomically(fs, options.key_path, made.private_pem(), temp_suffix());
        !st.ok()) {
      return io_error(options.key_path + ": " + st.error().message);
    }
    // Another process making the key at the same moment may have renamed its own over ours:
    // the key is the one on disk.
    auto written = fs.read(options.key_path);
    if (!written.ok()) return io_error(options.key_path + ": " + written.error().message);
    auto k = security::SigningKey::from_pem(*written);
    if (!k.ok()) {
      return Error{ErrorCode::kCorruption, options.key_path + " is not an Ed25519 private key"};
    }
    key.emplace(std::move(*k));
  } else {
    return io_error(options.key_path + ": " + pem.error().message);
  }

  std::optional<std::string> saved;
  if (auto file = fs.read(options.checkpoint_path); file.ok()) {
    saved = std::move(*file);
  } else if (file.error().code != ErrorCode::kNotFound) {
    return io_error(options.checkpoint_path + ": " + file.error().message);
  }

  std::unique_ptr<AuditLog> log(
      new AuditLog(store, fs, clock, std::move(options), std::move(*key)));
  MutexLock lock(log->mu_);
  DROVER_TRY(log->catch_up());
  if (saved) {
    auto cp = parse_audit_checkpoint(*saved, log->public_key_);
    if (!cp.ok()) {
      return Error{ErrorCode::kCorruption,
                   log->options_.checkpoint_path + ": " + cp.error().message};
    }
    DROVER_TRY(check_saved(log->tree_, *cp));
  }
  return log;
}

Status AuditLog::catch_up() {
  // The fast way, at every start and read: the new entries' leaves appended to the tree, and
  // the newest checkpoint's root and signature checked against it — one signed root covers
  // every entry before it. Anything else (a gap, another root, a bad signature) is looked
  // into record by record, to name the first that fails.
  const uint64_t before = tree_.size();
  std::optional<AuditRecord> newest;
  bool gap = false;
  for (bool more = true; more && !gap;) {
    auto page = store_.read_audit(tree_.size(), kReadPage);
    if (!page.ok()) {
      tree_.truncate(before);
      return page.error();
    }
    for (AuditRecord& r : *page) {
      gap = r.index != tree_.size();
      if (gap) break;
      DROVER_TRY(tree_.append(security::merkle_leaf_hash(r.entry)));
      newest = std::move(r);
    }
    more = page->size() == kReadPage;
  }
  if (!gap && !newest) return ok_status();
  if (!gap) {
    auto cp = read_checkpoint(newest->checkpoint, verify_key_, key_id_, true);
    if (cp.ok() && cp->size == tree_.size() && cp->root == tree_.root()) {
      newest_ = std::move(*cp);
      return ok_status();
    }
  }
  tree_.truncate(before);
  const LogKey key{verify_key_, key_id_};
  std::optional<AuditRecord> last;
  for (;;) {
    auto page = store_.read_audit(tree_.size(), kReadPage);
    if (!page.ok()) {
      tree_.truncate(before);
      return page.error();
    }
    for (AuditRecord& r : *page) {
      if (Status st = check_record(tree_, r, key, true); !st.ok()) {
        tree_.truncate(before);
        return st;
      }
      last = std::move(r);
    }
    if (page->size() < kReadPage) break;
  }
  // Every record checks out when read again (what was read first changed since): the log
  // is as verified now.
  if (last) newest_ = *read_checkpoint(last->checkpoint, verify_key_, key_id_, false);
  return ok_status();
}

Result<uint64_t> AuditLog::record(AuditEvent event) {
  MutexLock lock(mu_);
  // Another process may have appended since: two tries, then the conflict is reported.
  for (int attempt = 0;; ++attempt) {
    DROVER_TRY(catch_up());
    const Timestamp now = clock_.now();
    json detail = json::object();
    for (const auto& [k, v] : event.detail) detail[k] = v;
    const json doc = {{"at", ms(now)},
                      {"actor", event.actor},
                      {"action", event.action},
                      {"subject", event.subject},
                      {"detail", std::move(detail)}};
    auto bytes = std::optional<std::string>(entry_text(doc));
    const uint64_t index = tree_.size();
    DROVER_TRY(tree_.append(security::merkle_leaf_hash(*bytes)));
    const AuditRecord rec{
        .index = index,
        .entry = std::move(*bytes),
        .checkpoint = sign_checkpoint(key_, key_id_, tree_.size(), tree_.root(), now)};
    Status st = store_.append_audit(rec);
    if (!st.ok()) tree_.truncate(index);
    if (!st.ok() && st.error().code == ErrorCode::kConflict && attempt == 0) continue;
    if (!st.ok()) return st.error();
    newest_ = *read_checkpoint(rec.checkpoint, verify_key_, key_id_, false);  // signed here
    // The file is a second copy for catching a truncated table; the row is what counts, and
    // it is stored: a file that cannot be written now is written at the next append.
    file_error_ = write_atomically(fs_, options_.checkpoint_path, rec.checkpoint, temp_suffix());
    return rec.index;
  }
}

uint64_t AuditLog::size() {
  MutexLock lock(mu_);
  (void)catch_up();  // a failed read shows what was known
  return tree_.size();
}

Result<std::vector<AuditRecord>> AuditLog::records(uint64_t from, size_t limit) {
  return store_.read_audit(from, limit);
}

Result<std::vector<AuditEntry>> AuditLog::entries(uint64_t from, size_t limit) {
  MutexLock lock(mu_);
  DROVER_TRY(catch_up());
  auto page = store_.read_audit(from, limit);
  if (!page.ok()) return page.error();
  std::vector<AuditEntry> out;
  out.reserve(page->size());
  for (const AuditRecord& r : *page) {
    if (r.index >= tree_.size()) break;  // appended since catch_up; read at the next call
    auto e = parse_audit_entry(r.index, r.entry);
    if (!e.ok()) return corrupt(r.index, e.error().message);
    if (e->leaf_hash != *tree_.leaf(r.index)) {
      return corrupt(r.index, "changed in the database since it was verified");
    }
    out.push_back(std::move(*e));
  }
  return out;
}

Result<AuditCheckpoint> AuditLog::checkpoint() {
  MutexLock lock(mu_);
  DROVER_TRY(catch_up());
  if (!newest_) return not_found("the audit log is empty");
  return *newest_;
}

Result<std::vector<std::string>> AuditLog::inclusion_proof(uint64_t index, uint64_t size) {
  MutexLock lock(mu_);
  DROVER_TRY(catch_up());
  return tree_.inclusion_proof(index, size);
}

Result<std::vector<std::string>> AuditLog::consistency_proof(uint64_t old_size, uint64_t new_size) {
  MutexLock lock(mu_);
  DROVER_TRY(catch_up());
  return tree_.consistency_proof(old_size, new_size);
}

Status record_rollout_change(AuditLog& log, const Rollout& before, const Rollout& after) {
  AuditEvent e{.actor = "server", .action = "rollout.state", .subject = after.id, .detail = {}};
  e.detail["from"] = before.id.empty() ? "" : to_string(before.state);
  e.detail["to"] = to_string(after.state);
  e.detail["artifact"] = after.plan.artifact_name + "@" + after.plan.artifact_version;
  if (!after.created_by.empty()) e.detail["created_by"] = after.created_by;
  std::string halted;
  for (const HaltedStratum& h : after.halted) {
    bool known = false;
    for (const HaltedStratum& b : before.halted) known = known || b.key == h.key;
    if (known) continue;
    halted += (halted.empty() ? "" : "; ") + (h.key.empty() ? "(all)" : h.key) + ": " + h.reason;
  }
  if (!halted.empty()) e.detail["halted"] = halted;
  if (after.halted.size() < before.halted.size()) {
    e.detail["resumed_strata"] = std::to_string(before.halted.size() - after.halted.size());
  }
  auto recorded = log.record(std::move(e));
  if (!recorded.ok()) return recorded.error();
  return ok_status();
}

}  // namespace drover
