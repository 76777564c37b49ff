// Helpers for the network benchmarks (bench/net.sh), speaking to a running drover serve:
//   net_load enroll URL N TOKEN_FILE [PREFIX TYPE]
//                                      enrolls N devices PREFIX-0 ... (default "bench",
//                                      type bms-controller; enrollment token "bench"), logs
//                                      each in, and writes their bearer tokens as a Lua list
//   net_load idle HOST PORT N SECONDS  opens N keep-alive connections, sends one health
//                                      request on each, and holds them all idle for SECONDS
//   net_load logins URL N THREADS SECONDS
//                                      enrolls N devices, then logs them in over and over
//                                      (challenge, Ed25519 signature, token) from THREADS
//                                      keep-alive connections for SECONDS; prints
//                                      "logins L per_second R p99_ms P"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "security/crypto.h"
#include "transport/http/client.h"

namespace {

using nlohmann::json;
using namespace drover;

int enroll(const std::string& url, int n, const std::string& out_path,
           const std::string& prefix = "bench", const std::string& type = "bms-controller") {
  auto client = http::HttpClient::create(url);
  if (!client.ok()) return std::fprintf(stderr, "%s\n", client.error().message.c_str()), 1;
  auto post = [&](const std::string& path, const json& body) {
    return (*client)->request("POST", path, body.dump(), {{"Content-Type", "application/json"}});
  };
  std::ofstream out(out_path);
  out << "return {\n";
  for (int i = 0; i < n; ++i) {
    const std::string id = prefix + "-" + std::to_string(i);
    auto key = security::SigningKey::generate();
    auto e = post("/api/device/v1/enroll",
                  {{"device_id", id},
                   {"device_type", type},
                   {"hardware_revision", i % 3 == 0 ? "rev-a" : "rev-b"},
                   {"public_key", security::to_base64url(key->public_key())},
                   {"enrollment_token", "bench"},
                   {"installed", {{"firmware", "4.2.0"}, {"bootloader", "2.1.0"}}}});
    if (!e.ok() || e->status != 200)
      return std::fprintf(stderr, "enroll %s failed\n", id.c_str()), 1;
    auto c = post("/api/device/v1/auth/challenge", {{"device_id", id}});
    const std::string challenge = json::parse(c->body)["challenge"];
    auto t =
        post("/api/device/v1/auth/token",
             {{"device_id", id},
              {"challenge", challenge},
              {"signature",
               security::to_base64url(key->sign("drover-auth-v1\n" + id + "\n" + challenge))}});
    if (!t.ok() || t->status != 200)
      return std::fprintf(stderr, "login %s failed\n", id.c_str()), 1;
    out << "  \"" << json::parse(t->body)["token"].get<std::string>() << "\",\n";
  }
  out << "}\n";
  return 0;
}

int idle(const std::string& host, int port, int n, int seconds_to_hold) {
  std::vector<int> fds;
  fds.reserve(static_cast<size_t>(n));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  const std::string request = "GET /api/v1/health HTTP/1.1\r\nHost: bench\r\n\r\n";
  int answered = 0;
  for (int i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::fprintf(stderr, "connection %d failed\n", i);
      return 1;
    }
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) return 1;
    char buf[1024];
    const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got > 12 && std::string(buf, 12) == "HTTP/1.1 200") ++answered;
    fds.push_back(fd);
  }
  std::printf("held %zu connections, %d answered 200\n", fds.size(), answered);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(seconds_to_hold));
  for (int fd : fds) ::close(fd);
  return answered == n ? 0 : 1;
}

struct BenchDevice {
  std::string id;
  security::SigningKey key;
};

int logins(const std::string& url, int n, int threads, int seconds_to_run) {
  std::vector<BenchDevice> devices;
  {
    auto client = http::HttpClient::create(url);
    if (!client.ok()) return std::fprintf(stderr, "%s\n", client.error().message.c_str()), 1;
    for (int i = 0; i < n; ++i) {
      // Ids of this process: runs against the same server do not collide.
      BenchDevice d{"login-" + std::to_string(::getpid()) + "-" + std::to_string(i),
                    std::move(security::SigningKey::generate()).value()};
      const json body = {{"device_id", d.id},
                         {"device_type", "bms-controller"},
                         {"hardware_revision", "rev-a"},
                         {"public_key", security::to_base64url(d.key.public_key())},
                         {"enrollment_token", "bench"},
                         {"installed", {{"firmware", "4.2.0"}}}};
      auto e = (*client)->request("POST", "/api/device/v1/enroll", body.dump(),
                                  {{"Content-Type", "application/json"}});
      if (!e.ok() || e->status != 200)
        return std::fprintf(stderr, "enroll %s failed\n", d.id.c_str()), 1;
      devices.push_back(std::move(d));
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto client = http::HttpClient::create(url);
      if (!client.ok()) {
        ++failures;
        return;
      }
      auto post = [&](const std::string& path, const json& body) {
        return (*client)->request("POST", path, body.dump(),
                                  {{"Content-Type", "application/json"}});
      };
      for (size_t i = static_cast<size_t>(t); !stop.load(); i += static_cast<size_t>(threads)) {
        const BenchDevice& d = devices[i % devices.size()];
        const auto start = std::chrono::steady_clock::now();
        auto c = post("/api/device/v1/auth/challenge", {{"device_id", d.id}});
        if (!c.ok() || c->status != 200) {
          ++failures;
          continue;
        }
        const std::string challenge = json::parse(c->body)["challenge"];
        auto tok = post("/api/device/v1/auth/token",
                        {{"device_id", d.id},
                         {"challenge", challenge},
                         {"signature", security::to_base64url(d.key.sign("drover-auth-v1\n" + d.id +
                                                                         "\n" + challenge))}});
        if (!tok.ok() || tok->status != 200) {
          ++failures;
          continue;
        }
        latencies[static_cast<size_t>(t)].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds_to_run));
  stop = true;
  for (auto& w : workers) w.join();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  const double p99 = all.empty() ? 0 : all[std::min(all.size() - 1, all.size() * 99 / 100)];
  std::printf("logins %zu per_second %.0f p99_ms %.2f failures %d\n", all.size(),
              static_cast<double>(all.size()) / seconds_to_run, p99, failures.load());
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 4 && a[0] == "enroll") return enroll(a[1], std::stoi(a[2]), a[3]);
  if (a.size() == 6 && a[0] == "enroll") return enroll(a[1], std::stoi(a[2]), a[3], a[4], a[5]);
  if (a.size() == 5 && a[0] == "idle")
    return idle(a[1], std::stoi(a[2]), std::stoi(a[3]), std::stoi(a[4]));
  if (a.size() == 5 && a[0] == "logins")
    return logins(a[1], std::stoi(a[2]), std::stoi(a[3]), std::stoi(a[4]));
  std::fprintf(
      stderr,
      "usage: net_load enroll URL N FILE [PREFIX TYPE] | net_load idle HOST PORT N SECONDS |"
      " net_load logins URL N THREADS SECONDS\n");
  return 2;
}
