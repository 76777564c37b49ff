#include "app/agent_tuf.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "agent/tuf_fetcher.h"
#include "base/clock.h"
#include "base/file_system.h"
#include "security/tuf_client.h"

namespace drover::app {
namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "drover-agent tuf: %s\n", what.c_str());
  return 1;
}

}  // namespace

void add_tuf_command(CLI::App& app, TufCommand& c) {
  CLI::App* tuf = app.add_subcommand(
      "tuf", "the TUF client on its own: trust a root, refresh metadata, download targets");
  tuf->add_option("--metadata-dir", c.metadata_dir, "the trusted metadata (created by init)")
      ->required();
  tuf->add_option("--metadata-url", c.metadata_url, "the repository's metadata base URL");
  tuf->add_option("--target-name", c.target_names, "a target path to download (repeatable)");
  tuf->add_option("--target-base-url", c.target_base_url, "the repository's targets base URL");
  tuf->add_option("--target-dir", c.target_dir, "where downloaded targets are written");
  tuf->require_subcommand(1);
  CLI::App* init = tuf->add_subcommand("init", "trust TRUSTED_ROOT_FILE (no network access)");
  init->add_option("TRUSTED_ROOT_FILE", c.trusted_root_file, "a root metadata file")->required();
  init->callback([&c] { c.verb = "init"; });
  tuf->add_subcommand("refresh", "one update cycle of the metadata")->callback([&c] {
    c.verb = "refresh";
  });
  tuf->add_subcommand("download", "refresh, then download each --target-name in order")
      ->callback([&c] { c.verb = "download"; });
}

int run_tuf_command(const TufCommand& c) {
  FileSystem& fs = real_file_system();
  std::error_code ec;
  if (c.verb == "init") {
    auto root = fs.read(c.trusted_root_file);
    if (!root.ok()) return fail(root.error().to_string());
    std::filesystem::create_directories(c.metadata_dir, ec);
    if (ec) return fail("cannot create " + c.metadata_dir + ": " + ec.message());
    Status s = security::tuf::Updater::init(fs, c.metadata_dir, *root);
    if (!s.ok()) return fail(c.trusted_root_file + ": " + s.error().to_string());
    return 0;
  }
  if (c.metadata_url.empty()) return fail("--metadata-url is required for " + c.verb);
  if (c.verb == "download" && (c.target_base_url.empty() || c.target_dir.empty()))
    return fail("download needs --target-base-url and --target-dir");
  // Time is read through the C library (clock_gettime), so tools that shift the process's
  // clock shift this client's idea of expiry too.
  SystemClock clock;
  agent::HttpMetadataFetcher fetcher;
  auto updater = security::tuf::Updater::open(
      {.metadata_dir = c.metadata_dir, .metadata_url = c.metadata_url, .limits = {}}, fetcher,
      clock, fs);
  if (!updater.ok()) return fail(updater.error().to_string());
  if (Status s = updater->refresh(); !s.ok()) return fail("refresh: " + s.error().to_string());
  if (c.verb == "refresh") return 0;
  std::filesystem::create_directories(c.target_dir, ec);
  if (ec) return fail("cannot create " + c.target_dir + ": " + ec.message());
  for (const std::string& name : c.target_names) {
    auto target = updater->find_target(name);
    if (!target.ok()) return fail(name + ": " + target.error().to_string());
    Status s = updater->download_target(*target, c.target_base_url, c.target_dir);
    if (!s.ok()) return fail(name + ": " + s.error().to_string());
  }
  return 0;
}

}  // namespace drover::app
