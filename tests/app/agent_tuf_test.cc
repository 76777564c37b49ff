// `drover-agent tuf`, the TUF client on its own, run as a process against a repository
// served over real HTTP: the contract other implementations' test suites drive (init without
// the network; refresh; download in order, stopping at the first failure, never fetching a
// good copy twice, never writing outside --target-dir), and a hostile server's tricks ending
// in exit status 1, a reason on stderr, and nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "../common/serve_process.h"
#include "../common/tuf_repository.h"
#include "transport/http/server.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class AgentTufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = http::HttpServer::start({}, [this](const http::Request& r) {
      const std::lock_guard lock(mu_);
      ++requests_[std::string(r.path())];
      auto it = repo_.files.find(base_ + std::string(r.path()));
      // Object stores answer 403 for a file that is not there; others 404.
      if (it == repo_.files.end())
        return http::Response::error(missing_status_, "not_found", "no such file");
      http::Response answer = http::Response::json(200, it->second);
      answer.content_type = "application/octet-stream";
      return answer;
    });
    ASSERT_TRUE(server.ok()) << server.error().to_string();
    server_ = std::move(*server);
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
    pub_ = std::make_unique<Publisher>(repo_, base_ + "/metadata/", base_ + "/targets/");
    publish();
    dir_ = temp_dir();
    write(dir_ + "/root.json", pub_->root_file());
  }
  void TearDown() override {
    server_->stop();
    fs::remove_all(dir_);
  }
  void publish() {
    const std::lock_guard lock(mu_);
    pub_->publish();
  }
  void serve(const std::string& path, std::string body) {
    const std::lock_guard lock(mu_);
    repo_.files[base_ + path] = std::move(body);
  }
  int requests(const std::string& path) {
    const std::lock_guard lock(mu_);
    return requests_[path];
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  CommandOutcome tuf(const std::string& args) {
    return run_command(std::string(DROVER_AGENT_BIN) + " tuf --metadata-dir " + dir_ + "/meta " +
                       args);
  }
  std::string metadata_url() const { return " --metadata-url " + base_ + "/metadata/"; }
  std::string download(const std::string& names, const std::string& target_dir) {
    return metadata_url() + " --target-base-url " + base_ + "/targets/ --target-dir " + target_dir +
           names + " download";
  }

  std::mutex mu_;
  FakeRepository repo_;
  std::map<std::string, int> requests_;
  int missing_status_ = 404;
  std::unique_ptr<Publisher> pub_;
  std::unique_ptr<http::HttpServer> server_;
  std::string base_, dir_;
};

TEST_F(AgentTufTest, InitRefreshAndDownloadFollowTheirContract) {
  // init reads only the file it is given: no request reaches the repository.
  CommandOutcome init = tuf("init " + dir_ + "/root.json");
  ASSERT_EQ(init.code, 0) << init.out;
  EXPECT_EQ(read_file(dir_ + "/meta/root.json"), pub_->root_file());
  {
    const std::lock_guard lock(mu_);
    EXPECT_TRUE(requests_.empty());
  }
  CommandOutcome refresh = tuf(metadata_url() + " refresh");
  ASSERT_EQ(refresh.code, 0) << refresh.out;
  for (const char* f : {"timestamp.json", "snapshot.json", "targets.json"})
    EXPECT_TRUE(fs::exists(dir_ + "/meta/" + f)) << f;

  // Targets in order; the first failure stops the command with 1.
  const std::string targets = dir_ + "/targets";
  CommandOutcome two = tuf(
      download(" --target-name firmware/bms-4.2.0.img --target-name firmware/none.img", targets));
  EXPECT_EQ(two.code, 1);
  EXPECT_NE(two.out.find("firmware/none.img: not_found"), std::string::npos) << two.out;
  EXPECT_EQ(read_file(targets + "/firmware%2Fbms-4.2.0.img"), "image 4.2.0");
  // Already there with the right hashes: not downloaded again.
  const std::string served =
      "/targets/firmware/" + to_hex(sha256("image 4.2.0")) + ".bms-4.2.0.img";
  EXPECT_EQ(requests(served), 1);
  CommandOutcome again = tuf(download(" --target-name firmware/bms-4.2.0.img", targets));
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(requests(served), 1);

  // A repository that answers 403 for the next root (as object stores do): the newest root
  // is the trusted one, as with 404.
  {
    const std::lock_guard lock(mu_);
    missing_status_ = 403;
  }
  CommandOutcome forbidden = tuf(metadata_url() + " refresh");
  EXPECT_EQ(forbidden.code, 0) << forbidden.out;

  // Names as long as a file name may be once ".tmp" is added: written; longer: refused,
  // saying so.
  const std::string longest(251, 'n'), too_long(252, 'n');
  pub_->targets[longest] = "long";
  pub_->targets[too_long] = "longer";
  pub_->timestamp_version = pub_->snapshot_version = pub_->targets_version = 3;
  publish();
  CommandOutcome fits = tuf(download(" --target-name " + longest, targets));
  ASSERT_EQ(fits.code, 0) << fits.out;
  EXPECT_EQ(read_file(targets + "/" + longest), "long");
  CommandOutcome no_fit = tuf(download(" --target-name " + too_long, targets));
  EXPECT_EQ(no_fit.code, 1);
  EXPECT_NE(no_fit.out.find("too long for a file name"), std::string::npos) << no_fit.out;

  // A name that would climb out of --target-dir lands inside it.
  pub_->targets["../escape.img"] = "escaped?";
  pub_->timestamp_version = pub_->snapshot_version = pub_->targets_version = 4;
  publish();
  CommandOutcome climb = tuf(download(" --target-name ../escape.img", targets));
  ASSERT_EQ(climb.code, 0) << climb.out;
  EXPECT_EQ(read_file(targets + "/..%2Fescape.img"), "escaped?");
  EXPECT_FALSE(fs::exists(dir_ + "/escape.img"));
}

TEST_F(AgentTufTest, AHostileServerGetsExitStatusOneAndNothingWritten) {
  // A root whose signature does not verify is not trusted: nothing is written.
  json unsigned_root = json::parse(pub_->root_file());
  unsigned_root["signatures"] = json::array();
  write(dir_ + "/bad-root.json", unsigned_root.dump());
  CommandOutcome bad_init = tuf("init " + dir_ + "/bad-root.json");
  EXPECT_EQ(bad_init.code, 1);
  EXPECT_NE(bad_init.out.find("unauthenticated"), std::string::npos) << bad_init.out;
  EXPECT_FALSE(fs::exists(dir_ + "/meta/root.json"));
  // Without a trusted root, refresh fails before any request.
  EXPECT_EQ(tuf(metadata_url() + " refresh").code, 1);
  EXPECT_EQ(requests("/metadata/2.root.json"), 0);

  ASSERT_EQ(tuf("init " + dir_ + "/root.json").code, 0);
  // A tampered image: refused, and no file in --target-dir.
  const std::string served =
      "/targets/firmware/" + to_hex(sha256("image 4.2.0")) + ".bms-4.2.0.img";
  serve(served, "image 4.2.0 with a backdoor");
  const std::string targets = dir_ + "/targets";
  CommandOutcome tampered = tuf(download(" --target-name firmware/bms-4.2.0.img", targets));
  EXPECT_EQ(tampered.code, 1);
  EXPECT_NE(tampered.out.find("more than the 11 bytes allowed"), std::string::npos) << tampered.out;
  EXPECT_FALSE(fs::exists(targets + "/firmware%2Fbms-4.2.0.img"));
  serve(served, "image 4.2.1");  // the same length, other bytes
  CommandOutcome swapped = tuf(download(" --target-name firmware/bms-4.2.0.img", targets));
  EXPECT_EQ(swapped.code, 1);
  EXPECT_NE(swapped.out.find("sha256 differs"), std::string::npos) << swapped.out;
  EXPECT_FALSE(fs::exists(targets + "/firmware%2Fbms-4.2.0.img"));

  // An endless timestamp: the client stops reading at its limit.
  serve("/metadata/timestamp.json", std::string(8 << 20, ' '));
  const std::string trusted = read_file(dir_ + "/meta/timestamp.json");
  CommandOutcome endless = tuf(metadata_url() + " refresh");
  EXPECT_EQ(endless.code, 1);
  EXPECT_NE(endless.out.find("timestamp.json: more than the 16384 bytes allowed"),
            std::string::npos)
      << endless.out;
  EXPECT_EQ(read_file(dir_ + "/meta/timestamp.json"), trusted);
  // The command needs its repository.
  CommandOutcome no_url = tuf("refresh");
  EXPECT_EQ(no_url.code, 1);
  EXPECT_NE(no_url.out.find("--metadata-url is required"), std::string::npos);
}

}  // namespace
}  // namespace drover::testing
