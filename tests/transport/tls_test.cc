// TLS and mutual TLS between HttpServer and HttpClient, with certificates made for the test
// by the openssl command: a working pair, and every way it must fail (unknown CA, wrong
// name, expired certificates, TLS below 1.2, plain HTTP to a TLS port, no or a foreign
// client certificate), the server serving on.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../common/pki.h"
#include "transport/http/client.h"
#include "transport/http/server.h"

namespace drover::http {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new drover::testing::Pki(); }
  static void TearDownTestSuite() { delete pki_; }

  void serve(bool mutual, const std::string& certificate = "server") {
    ASSERT_TRUE(pki_->ok()) << "openssl could not make the test certificates";
    ServerOptions o;
    o.tls_cert_file = pki_->pem(certificate);
    o.tls_key_file = pki_->key(certificate);
    if (mutual) o.tls_client_ca_file = pki_->pem("ca");
    o.header_timeout = seconds(2);
    auto s = HttpServer::start(o, [](const Request& r) {
      return Response::json(200, "{\"path\":\"" + std::string(r.path()) + "\"}");
    });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    server_ = std::move(*s);
  }
  Result<ClientResponse> get(const std::string& host, ClientOptions o) {
    o.connect_timeout = seconds(3);
    o.request_timeout = seconds(3);
    auto c = HttpClient::create(host + ":" + std::to_string(server_->port()), o);
    if (!c.ok()) return c.error();
    return (*c)->request("GET", "/hello");
  }
  ClientOptions trusting() const {
    ClientOptions o;
    o.ca_file = pki_->pem("ca");
    return o;
  }

  static drover::testing::Pki* pki_;
  std::unique_ptr<HttpServer> server_;
};
drover::testing::Pki* TlsTest::pki_ = nullptr;

TEST_F(TlsTest, AClientThatTrustsTheCaTalksHttps) {
  serve(false);
  auto r = get("https://localhost", trusting());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"path":"/hello"})");
}

TEST_F(TlsTest, AnUnknownCaOrAWrongNameIsRefused) {
  serve(false);
  ClientOptions rogue;
  rogue.ca_file = pki_->pem("rogue-ca");
  auto unknown = get("https://localhost", rogue);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kIo);
  EXPECT_NE(unknown.error().message.find("TLS handshake"), std::string::npos);
  // The certificate is for "localhost", not for the address.
  EXPECT_FALSE(get("https://127.0.0.1", trusting()).ok());
  // Still serving.
  EXPECT_TRUE(get("https://localhost", trusting()).ok());
}

TEST_F(TlsTest, PlainHttpToATlsPortGetsNoAnswerAndTheServerServesOn) {
  serve(false);
  auto plain = get("http://localhost", {});
  EXPECT_FALSE(plain.ok() && plain->status == 200);
  EXPECT_TRUE(get("https://localhost", trusting()).ok());
}

// TLS 1.2 is spoken only with forward-secret (ECDHE) AEAD suites; TLS 1.3 as it comes.
TEST_F(TlsTest, OnlyForwardSecretCipherSuitesAreAccepted) {
  serve(false);
  auto handshake = [&](const std::string& args) {
    const std::string cmd =
        "openssl s_client -connect 127.0.0.1:" + std::to_string(server_->port()) + " " + args +
        " < /dev/null > /dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  };
  EXPECT_TRUE(handshake("-tls1_3"));
  EXPECT_TRUE(handshake("-tls1_2 -cipher ECDHE"));
  for (const char* weak : {"AES128-SHA", "AES256-GCM-SHA384", "AES128-SHA256", "DHE-RSA-AES128-SHA",
                           "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA"}) {
    EXPECT_FALSE(handshake(std::string("-tls1_2 -cipher ") + weak)) << weak;
  }
  EXPECT_FALSE(handshake("-tls1_1"));
}

TEST_F(TlsTest, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  serve(true);
  EXPECT_FALSE(get("https://localhost", trusting()).ok()) << "no client certificate";
  ClientOptions foreign = trusting();
  foreign.cert_file = pki_->pem("rogue-client");
  foreign.key_file = pki_->key("rogue-client");
  EXPECT_FALSE(get("https://localhost", foreign).ok()) << "a certificate from another CA";
  ClientOptions good = trusting();
  good.cert_file = pki_->pem("client");
  good.key_file = pki_->key("client");
  auto r = get("https://localhost", good);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
}

TEST_F(TlsTest, AnExpiredServerCertificateIsRefused) {
  serve(false, "expired-server");
  auto r = get("https://localhost", trusting());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("TLS handshake"), std::string::npos) << r.error().message;
}

TEST_F(TlsTest, AnExpiredClientCertificateIsRefusedAndTheServerServesOn) {
  serve(true);
  ClientOptions expired = trusting();
  expired.cert_file = pki_->pem("expired-client");
  expired.key_file = pki_->key("expired-client");
  EXPECT_FALSE(get("https://localhost", expired).ok()) << "an expired client certificate";
  ClientOptions good = trusting();
  good.cert_file = pki_->pem("client");
  good.key_file = pki_->key("client");
  EXPECT_TRUE(get("https://localhost", good).ok());
}

TEST_F(TlsTest, UnusableTlsFilesAreClearErrors) {
  ASSERT_TRUE(pki_->ok());
  ServerOptions o;
  o.tls_cert_file = pki_->pem("server");
  auto no_key = HttpServer::start(o, [](const Request&) { return Response{}; });
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.error().code, ErrorCode::kInvalidArgument);
  o.tls_key_file = "/nonexistent/server.key";
  auto missing = HttpServer::start(o, [](const Request&) { return Response{}; });
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/server.key"), std::string::npos);
  o.tls_key_file = pki_->key("client");  // not the certificate's key
  EXPECT_FALSE(HttpServer::start(o, [](const Request&) { return Response{}; }).ok());
  ServerOptions ca_only;
  ca_only.tls_client_ca_file = pki_->pem("ca");
  EXPECT_FALSE(HttpServer::start(ca_only, [](const Request&) { return Response{}; }).ok());
  ClientOptions bad;
  bad.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(HttpClient::create("https://localhost:1", bad).ok());
}

}  // namespace
}  // namespace drover::http
