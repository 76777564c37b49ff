#include "app/keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "app/serve.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "base/units.h"
#include "fleet/repository_keys.h"
#include "fleet/update_repository.h"

namespace drover::app {
namespace {

int fail(const std::string& what, const char* command) {
  std::fprintf(stderr, "drover keys %s: %s\n", command, what.c_str());
  return 1;
}

// Records a key change in the data directory's audit log before it is made, as the server
// records its own (docs/security.md, "The audit log").
Status record_key_change(const KeysArgs& args, std::string action,
                         std::map<std::string, std::string> detail) {
  auto store = open_data_store(args.data);
  if (!store.ok()) return store.error();
  SystemClock clock;
  auto log = open_audit_log(**store, clock, args.data);
  Result<uint64_t> recorded =
      log.ok() ? (*log)->record({.actor = "cli:uid " + std::to_string(::getuid()),
                                 .action = std::move(action),
                                 .subject = "update metadata",
                                 .detail = std::move(detail)})
               : Result<uint64_t>(log.error());
  clock.stop();
  if (!recorded.ok()) return Error{recorded.error().code, "audit log: " + recorded.error().message};
  return ok_status();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

std::string tuf_dir(const KeysArgs& args) {
  return (std::filesystem::path(args.data) / "tuf").string();
}

// Whether `inner` lies in `outer` (both made absolute): root keys kept with the server are
// online keys in all but name.
// When that cannot be told, they are taken to be.
bool inside(const std::string& inner, const std::string& outer) {
  auto resolved = [](const std::string& p, std::error_code& ec) {
    auto full = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
    full = full.lexically_normal();
    if (!full.empty() && !full.has_filename()) full = full.parent_path();  // "dir/"
    return full;
  };
  std::error_code inner_ec, outer_ec;
  const auto a = resolved(inner, inner_ec);
  const auto b = resolved(outer, outer_ec);
  if (inner_ec || outer_ec) return true;
  const auto mismatch = std::mismatch(b.begin(), b.end(), a.begin(), a.end());
  return mismatch.first == b.end();
}

const char* delegation_name(RepositoryState::Delegation d) {
  switch (d) {
    case RepositoryState::Delegation::kNone:
      return "";
    case RepositoryState::Delegation::kServed:
      return "served";
    case RepositoryState::Delegation::kPending:
      return "pending";
    case RepositoryState::Delegation::kRemoved:
      return "removed";
  }
  return "";
}

const char* delegation_text(RepositoryState::Delegation d) {
  switch (d) {
    case RepositoryState::Delegation::kServed:
      return "delegated by the targets served now";
    case RepositoryState::Delegation::kPending:
      return "not yet in the targets served: signed into them at the server's next publish "
             "(or by drover keys sign-targets when the targets are signed offline)";
    case RepositoryState::Delegation::kRemoved:
      return "removed: left out of the targets at their next signing";
    case RepositoryState::Delegation::kNone:
      break;
  }
  return "";
}

// --json: what a command did, as one object on stdout.
int print_json(const nlohmann::json& j) {
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

void print_files(const std::vector<std::string>& files, const char* what) {
  for (const std::string& f : files) std::printf("  %s %s\n", what, f.c_str());
}

// Online keys of a role removed or replaced: needed until the targets no longer delegate
// to it.
void print_unused_keys(const std::vector<std::string>& files) {
  if (files.empty()) return;
  std::printf(
      "online keys of the old role, kept while the targets served still delegate to it: "
      "remove them once drover keys list no longer shows it\n");
  print_files(files, "");
}

}  // namespace

int run_keys_gen(const KeysArgs& args) {
  ::umask(077);  // the data directory, and every key file, readable by its owner only
  auto lifetime = parse_duration(args.root_lifetime);
  if (!lifetime.ok() || *lifetime < days(1))
    return fail("--root-lifetime must be a duration of at least 1d, e.g. 365d", "gen");
  if (inside(args.root_key_dir, args.data)) {
    return fail(
        "--root-key-dir must be outside the data directory: root keys are kept away "
        "from the server",
        "gen");
  }
  FileSystem& fs = real_file_system();
  std::error_code made;
  std::filesystem::create_directories(args.data, made);
  if (made) return fail("cannot create " + args.data + ": " + made.message(), "gen");
  if (Status st = record_key_change(args, "keys.gen",
                                    {{"root_keys", std::to_string(args.root_keys)},
                                     {"root_threshold", std::to_string(args.root_threshold)},
                                     {"root_lifetime", args.root_lifetime}});
      !st.ok()) {
    return fail(st.error().to_string(), "gen");
  }
  KeySetup setup;
  setup.root_keys = args.root_keys;
  setup.root_threshold = args.root_threshold;
  setup.root_lifetime = *lifetime;
  auto written =
      create_repository(fs, tuf_dir(args), args.root_key_dir, setup, SystemClock().now());
  if (!written.ok()) return fail(written.error().to_string(), "gen");
  if (args.json) {
    return print_json({{"root", tuf_dir(args) + "/metadata/1.root.json"},
                       {"root_keys", *written},
                       {"root_threshold", args.root_threshold},
                       {"online_keys", tuf_dir(args) + "/keys"}});
  }
  std::printf("signed update metadata: root version 1 in %s/metadata/1.root.json\n",
              tuf_dir(args).c_str());
  std::printf("root keys (%d of %d sign a root) — move them off this machine:\n",
              args.root_threshold, args.root_keys);
  print_files(*written, "");
  std::printf("online timestamp, snapshot and targets keys in %s/keys\n", tuf_dir(args).c_str());
  std::printf("devices trust %s/metadata/1.root.json: install it on them as their first root\n",
              tuf_dir(args).c_str());
  return 0;
}

int run_keys_list(const KeysArgs& args) {
  SystemClock clock;
  auto repo = UpdateRepository::open(real_file_system(), tuf_dir(args), clock);
  clock.stop();
  if (!repo.ok()) return fail(repo.error().to_string(), "list");
  const RepositoryState state = (*repo)->state();
  if (args.json) {
    nlohmann::json roles = nlohmann::json::array();
    for (const RepositoryState::Role& r : state.roles) {
      nlohmann::json role{{"role", r.name},
                          {"key_ids", r.key_ids},
                          {"threshold", r.threshold},
                          {"online_keys", r.online_keys},
                          {"version", r.version},
                          {"valid", r.valid},
                          {"expires", r.version == 0 ? "" : format_utc_timestamp(r.expires)}};
      if (r.delegation != RepositoryState::Delegation::kNone) {
        role["delegation"] = delegation_name(r.delegation);
        role["paths"] = r.paths;
        role["terminating"] = r.terminating;
      }
      roles.push_back(std::move(role));
    }
    std::printf(
        "%s\n",
        nlohmann::json{{"roles", roles}, {"signed_targets", state.signed_targets}}.dump(2).c_str());
    return 0;
  }
  int width = 10;
  for (const RepositoryState::Role& r : state.roles)
    width = std::max(width, static_cast<int>(r.name.size()));
  std::printf("%-*s %-8s %-21s %-6s %-10s %-7s %s\n", width, "ROLE", "VERSION", "EXPIRES", "VALID",
              "THRESHOLD", "ONLINE", "KEY IDS");
  for (const RepositoryState::Role& r : state.roles) {
    std::string ids;
    for (const std::string& id : r.key_ids) ids += (ids.empty() ? "" : ",") + id.substr(0, 16);
    const std::string threshold =
        std::to_string(r.threshold) + " of " + std::to_string(r.key_ids.size());
    std::printf("%-*s %-8s %-21s %-6s %-10s %-7zu %s\n", width, r.name.c_str(),
                r.version == 0 ? "-" : std::to_string(r.version).c_str(),
                r.version == 0 ? "-" : format_utc_timestamp(r.expires).c_str(),
                r.valid ? "yes" : "no", threshold.c_str(), r.online_keys, ids.c_str());
  }
  std::printf("signed targets: %zu\n", state.signed_targets);
  for (const RepositoryState::Role& r : state.roles) {
    if (r.delegation == RepositoryState::Delegation::kNone) continue;
    std::printf("delegated %s: %s%s, keys %s; %s\n", r.name.c_str(), join(r.paths).c_str(),
                r.terminating ? " (terminating)" : "", r.signed_offline() ? "offline" : "online",
                delegation_text(r.delegation));
  }
  const Timestamp now = SystemClock().now();
  for (const RepositoryState::Role& r : state.roles) {
    if (r.signed_offline() && r.version > 0 && r.expires - now <= days(30) &&
        r.delegation != RepositoryState::Delegation::kRemoved) {
      std::printf("EXPIRES SOON: %s version %lld, at %s; %s\n", r.name.c_str(),
                  static_cast<long long>(r.version), format_utc_timestamp(r.expires).c_str(),
                  r.name == "root"      ? "sign the next root (drover keys rotate-root)"
                  : r.name == "targets" ? "sign the targets again (drover keys sign-targets)"
                                        : "sign the role again (drover keys sign-targets --role)");
    }
  }
  if (std::any_of(state.roles.begin(), state.roles.end(),
                  [](const RepositoryState::Role& r) { return r.version > 0 && !r.valid; })) {
    std::printf(
        "VALID no: expired, or not signed by the keys the root names now; a running "
        "server signs it again at its next refresh if those keys are in %s/keys\n",
        tuf_dir(args).c_str());
  }
  return 0;
}

int run_keys_rotate_root(const KeysArgs& args) {
  ::umask(077);
  auto lifetime = parse_duration(args.root_lifetime);
  if (!lifetime.ok() || *lifetime < days(1))
    return fail("--root-lifetime must be a duration of at least 1d, e.g. 365d", "rotate-root");
  if (args.new_root_keys > 0 && inside(args.root_key_dir, args.data))
    return fail("--root-key-dir must be outside the data directory", "rotate-root");
  RootRotation rotation;
  rotation.signing_key_files = args.signing_keys;
  rotation.new_root_keys = args.new_root_keys;
  rotation.new_root_threshold = args.new_root_threshold;
  rotation.new_online_roles = args.rotate;
  rotation.root_lifetime = *lifetime;
  if (Status st =
          record_key_change(args, "keys.rotate_root",
                            {{"signing_keys", std::to_string(args.signing_keys.size())},
                             {"new_root_keys", std::to_string(args.new_root_keys)},
                             {"new_root_threshold", std::to_string(args.new_root_threshold)},
                             {"rotated_online_roles", join(args.rotate)},
                             {"root_lifetime", args.root_lifetime}});
      !st.ok()) {
    return fail(st.error().to_string(), "rotate-root");
  }
  auto written = rotate_root(real_file_system(), tuf_dir(args), args.root_key_dir, rotation,
                             SystemClock().now());
  if (!written.ok()) return fail(written.error().to_string(), "rotate-root");
  SystemClock clock;
  auto repo = UpdateRepository::open(real_file_system(), tuf_dir(args), clock);
  clock.stop();
  if (!repo.ok()) return fail(repo.error().to_string(), "rotate-root");
  if (args.json) {
    return print_json(
        {{"root_version", (*repo)->state().roles.front().version}, {"new_root_keys", *written}});
  }
  std::printf("root version %lld written; a running server signs with it within 10 minutes\n",
              static_cast<long long>((*repo)->state().roles.front().version));
  if (!written->empty()) {
    std::printf("new root keys — move them off this machine:\n");
    print_files(*written, "");
  }
  return 0;
}

int run_keys_sign_targets(const KeysArgs& args) {
  auto lifetime = parse_duration(args.targets_lifetime);
  if (!lifetime.ok() || *lifetime < days(1)) {
    return fail("--lifetime must be a duration of at least 1d, e.g. 90d", "sign-targets");
  }
  if (!std::filesystem::exists(std::filesystem::path(args.data) / "drover.db")) {
    return fail(args.data + " holds no server store (drover.db)", "sign-targets");
  }
  std::vector<Artifact> artifacts;
  {
    auto store = open_data_store(args.data);
    if (!store.ok()) return fail(store.error().to_string(), "sign-targets");
    auto listed = (*store)->list_artifacts();
    if (!listed.ok()) return fail(listed.error().to_string(), "sign-targets");
    artifacts = std::move(*listed);
  }
  std::string names;  // the role lists those of them its patterns give it
  for (const Artifact& a : artifacts) {
    names += (names.empty() ? "" : ",") + UpdateRepository::target_path(a);
  }
  if (Status st = record_key_change(
          args, "keys.sign_targets",
          {{"role", args.role}, {"artifacts", names}, {"lifetime", args.targets_lifetime}});
      !st.ok()) {
    return fail(st.error().to_string(), "sign-targets");
  }
  const Timestamp now = SystemClock().now();
  auto signed_targets = sign_targets_offline(real_file_system(), tuf_dir(args), artifacts,
                                             args.targets_keys, *lifetime, now, args.role);
  if (!signed_targets.ok()) return fail(signed_targets.error().to_string(), "sign-targets");
  const auto version = static_cast<long long>(signed_targets->version);
  if (args.json) {
    nlohmann::json targets = nlohmann::json::array();
    for (size_t i = 0; i < signed_targets->targets.size(); ++i) {
      targets.push_back(
          {{"path", signed_targets->targets[i]}, {"sha256", signed_targets->sha256[i]}});
    }
    return print_json({{"role", args.role},
                       {"version", version},
                       {"expires", format_utc_timestamp(now + *lifetime)},
                       {"file", tuf_dir(args) + "/metadata/" + std::to_string(version) + "." +
                                    args.role + ".json"},
                       {"targets", targets},
                       {"delegations", signed_targets->delegations}});
  }
  std::printf(
      "%s version %lld signed for %zu artifacts, valid until %s: %s/metadata/%lld.%s.json\n",
      args.role.c_str(), version, signed_targets->targets.size(),
      format_utc_timestamp(now + *lifetime).c_str(), tuf_dir(args).c_str(), version,
      args.role.c_str());
  for (size_t i = 0; i < signed_targets->targets.size(); ++i) {
    std::printf("  %s sha256 %s\n", signed_targets->targets[i].c_str(),
                signed_targets->sha256[i].c_str());
  }
  if (args.role == "targets") {
    // What devices will trust for whom: check it against what you meant to delegate.
    std::printf("delegating (in search order): %s\n",
                signed_targets->delegations.empty() ? "none" : "");
    for (const std::string& d : signed_targets->delegations) std::printf("  %s\n", d.c_str());
  }
  std::printf(
      "a running server takes them at its next refresh (within 10 minutes, or at the next "
      "upload); an artifact uploaded after this is not signed until you sign again\n");
  return 0;
}

int run_keys_delegate(const KeysArgs& args) {
  ::umask(077);
  if (!args.key_dir.empty() && inside(args.key_dir, args.data)) {
    return fail("--key-dir must be outside the data directory: keys kept there are online",
                "delegate");
  }
  TargetsDelegation d;
  d.role = args.role;
  d.paths = args.paths;
  d.terminating = args.terminating;
  d.keys = args.role_keys;
  d.threshold = args.role_threshold;
  d.offline_dir = args.key_dir;
  d.replace = args.replace;
  if (Status st = record_key_change(args, "keys.delegate",
                                    {{"role", d.role},
                                     {"paths", join(d.paths)},
                                     {"terminating", d.terminating ? "true" : "false"},
                                     {"keys", std::to_string(d.keys)},
                                     {"threshold", std::to_string(d.threshold)},
                                     {"offline", d.offline_dir.empty() ? "false" : "true"},
                                     {"replace", d.replace ? "true" : "false"}});
      !st.ok()) {
    return fail(st.error().to_string(), "delegate");
  }
  auto keys = delegate_targets(real_file_system(), tuf_dir(args), d);
  if (!keys.ok()) return fail(keys.error().to_string(), "delegate");
  if (args.json) {
    return print_json({{"role", d.role},
                       {"paths", d.paths},
                       {"terminating", d.terminating},
                       {"keys", d.keys},
                       {"threshold", d.threshold},
                       {"online", d.offline_dir.empty()},
                       {"key_files", keys->written},
                       {"unused_online_keys", keys->unused}});
  }
  std::printf("role %s delegated for %s%s (%d of %d keys sign)\n", d.role.c_str(),
              join(d.paths).c_str(), d.terminating ? ", terminating" : "", d.threshold, d.keys);
  if (d.offline_dir.empty()) {
    std::printf("its keys are online in %s/keys: the server signs its artifacts\n",
                tuf_dir(args).c_str());
  } else {
    std::printf(
        "its keys — give them to whoever signs its artifacts "
        "(drover keys sign-targets --role %s):\n",
        d.role.c_str());
    print_files(keys->written, "");
    std::printf(
        "until they sign, the artifacts its patterns match are NOT signed: a running server "
        "stops offering them at its next refresh (within 10 minutes)\n");
  }
  std::printf(
      "the targets delegate to it from their next signing (a running server's next refresh, "
      "within 10 minutes; or drover keys sign-targets when the targets keys are offline)\n");
  print_unused_keys(keys->unused);
  return 0;
}

int run_keys_undelegate(const KeysArgs& args) {
  if (Status st = record_key_change(args, "keys.undelegate", {{"role", args.role}}); !st.ok())
    return fail(st.error().to_string(), "undelegate");
  auto unused = undelegate_targets(real_file_system(), tuf_dir(args), args.role);
  if (!unused.ok()) return fail(unused.error().to_string(), "undelegate");
  if (args.json) return print_json({{"role", args.role}, {"unused_online_keys", *unused}});
  std::printf(
      "role %s removed; its artifacts go back to the top-level targets at their next signing "
      "(a running server's next refresh when the targets keys are online; else drover keys "
      "sign-targets)\n",
      args.role.c_str());
  print_unused_keys(*unused);
  return 0;
}

}  // namespace drover::app
