// Fuzzes what a repository (or anything posing as one) hands the agent's TUF client: any
// bytes as root, timestamp, snapshot or targets metadata, and as a strict JSON document.
// Parsing never crashes or throws; a document that parses has a canonical form that is a
// fixed point (canonical text without control characters parses back to the same
// canonical text); metadata that parses
// has versions of at least 1, thresholds of at least 1 and the four top-level roles in a
// root, and succinct hash bins lead each path to one of their own roles; every message
// about it is printable ASCII.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "security/canonical_json.h"
#include "security/tuf_metadata.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool printable_ascii(const std::string& s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace sec = drover::security;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = sec::parse_strict_json(text);
  if (doc.ok()) {
    auto canonical = sec::canonical_json(*doc);
    // Control characters go into the canonical form raw (as the specification's reference
    // encoder writes them), which makes that form no longer JSON: the fixed point holds
    // for the rest.
    const bool control = canonical.ok() && std::any_of(canonical->begin(), canonical->end(),
                                                       [](char c) { return c >= 0 && c < 0x20; });
    if (canonical.ok() && !control) {
      auto again = sec::parse_strict_json(*canonical);
      check(again.ok());
      auto twice = sec::canonical_json(*again);
      check(twice.ok() && *twice == *canonical);
    }
  } else {
    check(doc.error().code == drover::ErrorCode::kInvalidArgument);
  }
  for (const char* type : {"root", "timestamp", "snapshot", "targets"}) {
    auto m = sec::tuf::parse_metadata(text, type);
    if (!m.ok()) {
      check(m.error().code == drover::ErrorCode::kInvalidArgument);
      check(printable_ascii(m.error().message));
      continue;
    }
    check(m->type == type && m->version >= 1);
    if (m->type == "root") {
      check(m->roles.size() == 4);
      for (const auto& [name, role] : m->roles) {
        check(role.threshold >= 1);
        // Checking signatures never crashes, whatever the keys and signatures are.
        (void)sec::tuf::verify_signatures(*m, m->keys, role, name);
      }
    }
    if (m->type == "timestamp") check(m->meta.count("snapshot.json") == 1);
    if (m->delegations) {
      for (const auto& d : m->delegations->roles) {
        check(d.keys.threshold >= 1);
        (void)d.trusted_for("firmware/a.img");
      }
      // Succinct hash bins: every target path leads to one of the bins, and only to it.
      if (const auto& s = m->delegations->succinct) {
        check(s->bit_length >= 1 && s->bit_length <= 32 && s->keys.threshold >= 1);
        const auto found = m->delegations->roles_for("firmware/a.img");
        check(found.size() == 1 && s->is_role(found.front().name));
        check(m->delegations->role(found.front().name).has_value());
      }
    }
    for (const auto& [path, target] : m->targets) {
      auto name = sec::tuf::encode_name(path);
      check(!name.ok() || (name->find('/') == std::string::npos && *name != "." && *name != ".."));
    }
  }
  return 0;
}
