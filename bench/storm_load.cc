// The rollout-storm benchmark's load generator and baseline (bench/storm.sh):
//   storm_load storm URL TOKEN_FILE CONNECTIONS MAX_SECONDS FROM TO
//       drives every device of TOKEN_FILE (net_load enroll's list, devices in order) through
//       an update as the real agent does, over CONNECTIONS keep-alive connections, each a
//       closed loop (one request at a time): a check-in that gets the offer, then the
//       reports downloading, installing, rebooting, a check-in from the new image (a new
//       inventory), succeeded, and an idle check-in. Stops when every device is done or after
//       MAX_SECONDS. Prints one JSON object: counts, rates and latency percentiles.
//   storm_load commits DIR SECONDS
//       the raw single-commit rate of SQLite on the disk of DIR: WAL, synchronous=FULL, one
//       row per transaction, for SECONDS. Prints {"commits_per_second": R}.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "transport/http/client.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::vector<std::string> read_tokens(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find('"');
    const size_t b = line.rfind('"');
    if (a != std::string::npos && b > a) out.push_back(line.substr(a + 1, b - a - 1));
  }
  return out;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int storm(const std::string& url, const std::string& token_file, int connections, int max_seconds,
          const std::string& from, const std::string& to) {
  const std::vector<std::string> tokens = read_tokens(token_file);
  if (tokens.empty()) return std::fprintf(stderr, "no tokens in %s\n", token_file.c_str()), 1;
  struct Lane {
    std::vector<double> checkin_ms, report_ms;
    uint64_t done = 0, failures = 0;
    std::string first_failure;
  };
  std::vector<Lane> lanes(static_cast<size_t>(connections));
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::seconds(max_seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      Lane& lane = lanes[static_cast<size_t>(t)];
      auto client = drover::http::HttpClient::create(url);
      if (!client.ok()) {
        ++lane.failures;
        return;
      }
      auto fail = [&](const std::string& what) {
        if (lane.failures++ == 0) lane.first_failure = what;
        return false;
      };
      for (;;) {
        const size_t i = next.fetch_add(1);
        if (i >= tokens.size() || stop.load() || Clock::now() >= deadline) return;
        const drover::http::Headers headers = {{"Authorization", "Bearer " + tokens[i]},
                                               {"Content-Type", "application/json"}};
        auto call = [&](const std::string& path, const json& body,
                        std::vector<double>& into) -> std::optional<json> {
          const auto t0 = Clock::now();
          auto r = (*client)->request("POST", path, body.dump(), headers);
          into.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          if (!r.ok()) return fail(path + ": " + r.error().message), std::nullopt;
          if (r->status != 200)
            return fail(path + ": " + std::to_string(r->status) + " " + r->body), std::nullopt;
          return json::parse(r->body);
        };
        auto checkin = [&](const std::string& version, const char* state) {
          return call("/api/device/v1/checkin",
                      {{"installed", {{"firmware", version}, {"bootloader", "2.1.0"}}},
                       {"update_state", state}},
                      lane.checkin_ms);
        };
        auto offer = checkin(from, "idle");
        if (!offer) continue;
        if (!(*offer)["offer"].is_object()) {
          fail("device " + std::to_string(i) + " got no offer");
          continue;
        }
        const std::string rollout = (*offer)["offer"]["rollout_id"];
        const std::string status = "/api/device/v1/deployments/" + rollout + "/status";
        auto report = [&](const char* what) {
          return call(status, {{"version", to}, {"status", what}, {"message", ""}}, lane.report_ms)
              .has_value();
        };
        if (!report("downloading") || !report("installing") || !report("rebooting")) continue;
        if (!checkin(to, "rebooting")) continue;
        if (!report("succeeded")) continue;
        if (!checkin(to, "idle")) continue;
        ++lane.done;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::vector<double> checkins, reports;
  uint64_t done = 0, failures = 0;
  std::string first_failure;
  for (const Lane& l : lanes) {
    checkins.insert(checkins.end(), l.checkin_ms.begin(), l.checkin_ms.end());
    reports.insert(reports.end(), l.report_ms.begin(), l.report_ms.end());
    done += l.done;
    failures += l.failures;
    if (first_failure.empty()) first_failure = l.first_failure;
  }
  const json out = {{"devices", tokens.size()},
                    {"updated", done},
                    {"failures", failures},
                    {"first_failure", first_failure},
                    {"seconds", seconds},
                    {"checkins", checkins.size()},
                    {"reports", reports.size()},
                    {"checkins_per_second", static_cast<double>(checkins.size()) / seconds},
                    {"reports_per_second", static_cast<double>(reports.size()) / seconds},
                    {"checkin_p50_ms", percentile(checkins, 0.50)},
                    {"checkin_p99_ms", percentile(checkins, 0.99)},
                    {"report_p50_ms", percentile(reports, 0.50)},
                    {"report_p99_ms", percentile(reports, 0.99)}};
  std::printf("%s\n", out.dump().c_str());
  return failures == 0 && done == tokens.size() ? 0 : 1;
}

int commits(const std::string& dir, int seconds) {
  const std::string path = (std::filesystem::path(dir) / "raw-commits.db").string();
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
  auto exec = [&](const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); };
  if (exec("PRAGMA journal_mode = WAL") != SQLITE_OK || exec("PRAGMA synchronous = FULL") ||
      exec("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)") != SQLITE_OK)
    return 1;
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES (?1)", -1, &insert, nullptr);
  const std::string row(200, 'x');  // about a deployment's size
  uint64_t n = 0;
  const auto started = Clock::now();
  const auto until = started + std::chrono::seconds(seconds);
  while (Clock::now() < until) {
    exec("BEGIN IMMEDIATE");
    sqlite3_bind_text(insert, 1, row.data(), static_cast<int>(row.size()), SQLITE_STATIC);
    sqlite3_step(insert);
    sqlite3_reset(insert);
    if (exec("COMMIT") != SQLITE_OK) return 1;
    ++n;
  }
  const double s = std::chrono::duration<double>(Clock::now() - started).count();
  sqlite3_finalize(insert);
  sqlite3_close(db);
  std::printf("{\"commits_per_second\": %.1f}\n", static_cast<double>(n) / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 7 && a[0] == "storm")
    return storm(a[1], a[2], std::stoi(a[3]), std::stoi(a[4]), a[5], a[6]);
  if (a.size() == 3 && a[0] == "commits") return commits(a[1], std::stoi(a[2]));
  std::fprintf(stderr,
               "usage: storm_load storm URL TOKEN_FILE CONNECTIONS MAX_SECONDS FROM TO |"
               " storm_load commits DIR SECONDS\n");
  return 2;
}
