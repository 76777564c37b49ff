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

using Outcome = CommandOutcome;

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
  const std::string admin = create_token(data);
  ASSERT_FALSE(admin.empty());
  const std::string cli = std::string(DROVER_BIN) + " device ls --json --server " + url +
                          " --token " + admin + " --ca-file " + pki.pem("ca");
  const std::string with_cert =
      " --client-cert " + pki.pem("client") + " --client-key " + pki.key("client");

  const Outcome ok = run_command(cli + with_cert);
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(json::parse(ok.out)["matched"], 0);
  const Outcome no_cert = run_command(cli);
  EXPECT_EQ(no_cert.code, 1);
  EXPECT_NE(no_cert.out.find("is the server at"), std::string::npos) << no_cert.out;
  const Outcome foreign = run_command(cli + " --client-cert " + pki.pem("rogue-client") +
                                      " --client-key " + pki.key("rogue-client"));
  EXPECT_EQ(foreign.code, 1) << foreign.out;
  const Outcome untrusted =
      run_command(std::string(DROVER_BIN) + " device ls --server " + url + " --token " + admin +
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
  const Outcome agent =
      run_command(std::string(DROVER_AGENT_BIN) + " --config " + config + " --once");
  EXPECT_EQ(agent.code, 0) << agent.out;
  const Outcome listed = run_command(cli + with_cert);
  ASSERT_EQ(listed.code, 0) << listed.out;
  const json devices = json::parse(listed.out)["devices"];
  ASSERT_EQ(devices.size(), 1u) << listed.out;
  EXPECT_EQ(devices[0]["id"], "ctl-1");
  EXPECT_EQ(devices[0]["installed"]["app"], "1.0.0");
}

}  // namespace
}  // namespace drover::testing
