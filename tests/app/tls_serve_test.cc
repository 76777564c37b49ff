// drover serve over HTTPS with mutual TLS, as a real process: the CLI and drover-agent reach
// it only with the CA to trust and a client certificate that CA signed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../common/pki.h"
#include "../common/serve_process.h"

namespace drover::testing {
namespace {

using nlohmann::json;

struct Outcome {
  int code = -1;
  std::string out;
};

// Runs a shell command; its stderr joins its stdout unless `with_stderr` is false.
Outcome run(const std::string& command, bool with_stderr = true) {
  Outcome r;
  FILE* p = ::popen((command + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(TlsServe, TheCliAndTheAgentNeedTheCaAndAClientCertificate) {
  Pki pki;
  ASSERT_TRUE(pki.ok()) << "openssl could not make the test certificates";
  const std::string dir = temp_dir();
  const std::string data = dir + "/data";
  ServeProcess serve(data, "127.0.0.1:0", "factory", false,
                     {"--tls-cert", pki.pem("server"), "--tls-key", pki.key("server"),
                      "--client-ca", pki.pem("ca")});
  ASSERT_TRUE(serve.wait_for("listening on https://")) << serve.output();
  const std::string url = "https://localhost:" + std::to_string(serve.port());
  const Outcome token =
      run(std::string(DROVER_BIN) + " token create --data " + data + " --name t", false);
  ASSERT_EQ(token.code, 0);
  const std::string admin = token.out.substr(0, token.out.find('\n'));
  const std::string cli = std::string(DROVER_BIN) + " device ls --json --server " + url +
                          " --token " + admin + " --ca-file " + pki.pem("ca");
  const std::string with_cert =
      " --client-cert " + pki.pem("client") + " --client-key " + pki.key("client");

  const Outcome ok = run(cli + with_cert);
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(json::parse(ok.out)["matched"], 0);
  const Outcome no_cert = run(cli);
  EXPECT_EQ(no_cert.code, 1);
  EXPECT_NE(no_cert.out.find("is the server at"), std::string::npos) << no_cert.out;
  const Outcome foreign = run(cli + " --client-cert " + pki.pem("rogue-client") + " --client-key " +
                              pki.key("rogue-client"));
  EXPECT_EQ(foreign.code, 1) << foreign.out;
  const Outcome untrusted =
      run(std::string(DROVER_BIN) + " device ls --server " + url + " --token " + admin +
          " --ca-file " + pki.pem("rogue-ca") + with_cert);
  EXPECT_EQ(untrusted.code, 1) << untrusted.out;

  // The agent enrolls and checks in over mutual TLS.
  std::ofstream(dir + "/app.bin") << "v1";
  const std::string config = dir + "/agent.json";
  std::ofstream(config)
      << json{{"server", url},
              {"data_dir", dir + "/agent"},
              {"device", {{"id", "ctl-1"}, {"type", "ctl"}, {"hardware_revision", "rev-a"}}},
              {"enrollment_token", "factory"},
              {"tls",
               {{"ca_file", pki.pem("ca")},
                {"cert_file", pki.pem("client")},
                {"key_file", pki.key("client")}}},
              {"installed", {{"app", "1.0.0"}}},
              {"component", "app"},
              {"module", {{"type", "file"}, {"target", dir + "/app.bin"}}}}
             .dump();
  const Outcome agent = run(std::string(DROVER_AGENT_BIN) + " --config " + config + " --once");
  EXPECT_EQ(agent.code, 0) << agent.out;
  const Outcome listed = run(cli + with_cert);
  ASSERT_EQ(listed.code, 0) << listed.out;
  const json devices = json::parse(listed.out)["devices"];
  ASSERT_EQ(devices.size(), 1u) << listed.out;
  EXPECT_EQ(devices[0]["id"], "ctl-1");
  EXPECT_EQ(devices[0]["installed"]["app"], "1.0.0");
}

}  // namespace
}  // namespace drover::testing
