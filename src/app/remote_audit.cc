// The `drover audit` verbs (docs/api/operator.md, "Audit log"): ls, show, checkpoint and
// verify, which re-derives the whole log here, from the records the server serves, with
// nothing taken on the server's word but the key — and that only when no saved checkpoint
// pins it.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "app/remote_state.h"
#include "base/file_system.h"
#include "fleet/audit_log.h"
#include "security/crypto.h"
#include "security/merkle.h"
#include "store/store.h"

namespace drover::app {
namespace {

constexpr size_t kRecordsPage = 1000;

// Bytes from hex; "" (which no check accepts as a hash) for anything else.
std::string hex_or_empty(const std::string& hex) {
  auto bytes = security::from_hex(hex);
  return bytes.ok() ? std::move(*bytes) : std::string();
}

std::string detail_text(const json& detail) {
  std::string out;
  for (const auto& [k, v] : detail.items()) {
    if (k == "request_id" || k == "remote" || k == "role") continue;
    std::string value = text_of(v);
    if (value.size() > 60) value = value.substr(0, 57) + "...";
    out += (out.empty() ? "" : " ") + k + "=" + value;
  }
  return out.empty() ? "-" : out;
}

void entries_table(const json& doc) {
  std::vector<std::vector<std::string>> rows = {
      {"#", "AT", "ACTOR", "ACTION", "SUBJECT", "DETAIL"}};
  for (const json& e : doc["entries"]) {
    rows.push_back({text_of(e["index"]), time_of(e["at"]), text_of(e["actor"]),
                    text_of(e["action"]), text_of(e["subject"]), detail_text(e["detail"])});
  }
  print_table(rows);
  std::printf("%zu of %s entries\n", doc["entries"].size(), text_of(doc["size"]).c_str());
}

// The server's checkpoint key, 32 raw bytes; std::nullopt (said why) when unusable.
std::optional<std::string> server_key(RemoteCommands::State& st) {
  auto key = st.call("GET", "/api/v1/audit/key");
  if (!key) return std::nullopt;
  auto raw = security::from_hex(text_of((*key)["public"]));
  if (!raw.ok() || raw->size() != 32) {
    std::fprintf(stderr, "drover: the server's audit key is not an Ed25519 key\n");
    return std::nullopt;
  }
  return std::move(*raw);
}

int show_entry(RemoteCommands::State& st) {
  auto doc = st.call("GET", "/api/v1/audit/entries/" + http::url_encode(st.id));
  if (!doc) return 1;
  auto key = server_key(st);
  if (!key) return 1;
  // The inclusion proof is checked here against the signed checkpoint.
  const json& inc = (*doc)["inclusion"];
  auto cp = parse_audit_checkpoint(inc["checkpoint"].dump(), *key);
  std::string verdict;
  if (!cp.ok()) {
    verdict = "NOT VERIFIED: " + cp.error().message;
  } else {
    std::vector<std::string> proof;
    for (const json& h : inc["proof"]) proof.push_back(hex_or_empty(text_of(h)));
    const Status included =
        security::verify_inclusion((*doc)["index"].get<uint64_t>(), cp->size,
                                   hex_or_empty(text_of((*doc)["leaf_hash"])), proof, cp->root);
    verdict = included.ok() ? "included in the signed log of " + std::to_string(cp->size) +
                                  " entries (key " + cp->key_id.substr(0, 16) + ")"
                            : "NOT VERIFIED: " + included.error().message;
  }
  if (st.json_out) {
    (*doc)["verified"] = verdict.starts_with("included");
    std::printf("%s\n", doc->dump(2).c_str());
  } else {
    std::printf("#%s  %s\n", text_of((*doc)["index"]).c_str(), time_of((*doc)["at"]).c_str());
    std::printf("actor:   %s\naction:  %s\nsubject: %s\n", text_of((*doc)["actor"]).c_str(),
                text_of((*doc)["action"]).c_str(), text_of((*doc)["subject"]).c_str());
    for (const auto& [k, v] : (*doc)["detail"].items()) {
      std::printf("  %s: %s\n", k.c_str(), text_of(v).c_str());
    }
    std::printf("%s\n", verdict.c_str());
  }
  return verdict.starts_with("included") ? 0 : 1;
}

// Prints the outcome of a verification; 0 when it passed.
int report(RemoteCommands::State& st, const Result<AuditVerification>& v, bool saved) {
  if (!v.ok()) {
    if (st.json_out) {
      std::printf("%s\n",
                  json({{"verified", false}, {"error", v.error().message}}).dump(2).c_str());
    } else {
      std::fprintf(stderr, "drover: the audit log does NOT verify: %s\n",
                   v.error().message.c_str());
    }
    return 1;
  }
  if (st.json_out) {
    std::printf("%s\n", json({{"verified", true},
                              {"size", v->size},
                              {"root", security::to_hex(v->root)},
                              {"checkpoints", v->checkpoints}})
                            .dump(2)
                            .c_str());
  } else {
    std::printf("verified: %llu entries, %llu signed checkpoints, root %s%s\n",
                static_cast<unsigned long long>(v->size),
                static_cast<unsigned long long>(v->checkpoints), security::to_hex(v->root).c_str(),
                saved ? "; an append-only extension of the saved checkpoint" : "");
  }
  return 0;
}

// `verify --data DIR`: the server's own files, read here without a server — the database,
// the key, and the newest checkpoint the server wrote beside them.
int verify_local(RemoteCommands::State& st, const std::optional<std::string>& saved) {
  const std::string db = st.data + "/drover.db";
  if (!real_file_system().read(st.data + "/audit.key").ok() || !std::filesystem::exists(db)) {
    std::fprintf(stderr, "drover: %s holds no audit log (drover.db and audit.key)\n",
                 st.data.c_str());
    return 1;
  }
  auto pem = real_file_system().read(st.data + "/audit.key");
  auto key = security::SigningKey::from_pem(pem.ok() ? *pem : std::string());
  if (!key.ok()) {
    std::fprintf(stderr, "drover: %s/audit.key is not an Ed25519 key\n", st.data.c_str());
    return 1;
  }
  auto store = open_sqlite_store(db);
  if (!store.ok()) {
    std::fprintf(stderr, "drover: %s\n", store.error().to_string().c_str());
    return 1;
  }
  // The server's checkpoint file before the records: a server appending meanwhile then
  // only makes the records longer than the file says.
  auto own = real_file_system().read(st.data + "/audit.checkpoint");
  auto records = (*store)->read_audit(0, SIZE_MAX);
  if (!records.ok()) {
    std::fprintf(stderr, "drover: %s\n", records.error().to_string().c_str());
    return 1;
  }
  if (own.ok()) {
    auto v = verify_audit_log(*records, key->public_key(), *own);
    if (!v.ok()) {
      std::fprintf(stderr, "drover: against the server's checkpoint file:\n");
      return report(st, v, true);
    }
  }
  return report(st, verify_audit_log(*records, key->public_key(), saved), saved.has_value());
}

int verify_remote(RemoteCommands::State& st) {
  std::optional<std::string> saved;
  if (!st.file.empty()) {
    saved = read_input(st.file);
    if (!saved) return 1;
  }
  if (!st.data.empty()) return verify_local(st, saved);
  auto key = server_key(st);
  if (!key) return 1;
  std::vector<AuditRecord> records;
  for (;;) {
    auto page = st.call("GET", "/api/v1/audit/records?from=" + std::to_string(records.size()) +
                                   "&limit=" + std::to_string(kRecordsPage));
    if (!page) return 1;
    const json& list = (*page)["records"];
    for (const json& r : list) {
      if (!r["index"].is_number_unsigned() || !r["entry"].is_string() ||
          !r["checkpoint"].is_string()) {
        std::fprintf(stderr, "drover: the server sent a malformed audit record\n");
        return 1;
      }
      records.push_back({r["index"].get<uint64_t>(), r["entry"].get<std::string>(),
                         r["checkpoint"].get<std::string>()});
    }
    if (list.size() < kRecordsPage) break;
  }
  return report(st, verify_audit_log(records, *key, saved), saved.has_value());
}

}  // namespace

void add_audit_verbs(CLI::App& app, RemoteCommands::State& s) {
  CLI::App* audit = app.add_subcommand("audit", "the tamper-evident audit log");
  audit->require_subcommand(1);
  CLI::App* ls = s.verb(*audit, "ls", "list audit entries (the newest, or from --from)",
                        [](RemoteCommands::State& st) {
                          std::string from = st.from;
                          if (from.empty()) {
                            auto head = st.call("GET", "/api/v1/audit/entries?limit=1");
                            if (!head) return 1;
                            const uint64_t size = (*head)["size"].get<uint64_t>();
                            from = std::to_string(size > st.limit ? size - st.limit : 0);
                          }
                          return st.show(st.call("GET", "/api/v1/audit/entries?from=" + from +
                                                            "&limit=" + std::to_string(st.limit)),
                                         &entries_table);
                        });
  ls->add_option("--from", s.from, "the first entry's index (default: the newest --limit)");
  ls->add_option("--limit", s.limit, "at most this many (1-1000)")->capture_default_str();
  s.verb(*audit, "show", "one entry, with its inclusion in the signed log checked here",
         &show_entry)
      ->add_option("index", s.id, "the entry's index")
      ->required();
  s.verb(*audit, "checkpoint", "print the newest signed checkpoint (save it for verify)",
         [](RemoteCommands::State& st) {
           auto doc = st.call("GET", "/api/v1/audit/checkpoint");
           if (!doc) return 1;
           std::printf("%s\n", doc->dump().c_str());
           return 0;
         });
  CLI::App* verify =
      s.verb(*audit, "verify",
             "re-derive the whole log here: every checkpoint's signature and root, and that it "
             "extends a saved checkpoint",
             &verify_remote);
  verify->add_option("--checkpoint", s.file,
                     "a checkpoint saved earlier (drover audit checkpoint > FILE)");
  verify->add_option("--data", s.data,
                     "verify the server's data directory here instead of asking the server");
}

}  // namespace drover::app
