// A device's requests over real HTTP for tests of the real binary: enrollment, login, and
// any request with its token, each on a fresh connection.
#pragma once

#include <string>

#include "../common/raw_http_client.h"
#include "fleet/device_auth.h"
#include "security/crypto.h"

namespace drover::testing {

// One device request over a fresh connection.
inline std::string device_request(uint16_t port, const std::string& path, const std::string& body,
                                  const std::string& token = {}) {
  RawClient c(port);
  std::string head = "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
  if (!token.empty()) head += "Authorization: Bearer " + token + "\r\n";
  c.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  return c.response();
}

// A string field of the answer's JSON body, or "".
inline std::string string_field(const std::string& response, const std::string& name) {
  const std::string b = body_of(response);
  const size_t at = b.find("\"" + name + "\":\"");
  if (at == std::string::npos) return std::string();
  const size_t start = at + name.size() + 4;
  return b.substr(start, b.find('"', start) - start);
}

// Enrolls device `id` with `key` and the enrollment token; the answer.
inline std::string enroll(uint16_t port, const std::string& id, const security::SigningKey& key,
                          const std::string& enrollment_token) {
  return device_request(port, "/api/device/v1/enroll",
                        R"({"device_id":")" + id +
                            R"(","device_type":"ctl","hardware_revision":"rev-a",)" +
                            R"("public_key":")" + security::to_base64url(key.public_key()) +
                            R"(","enrollment_token":")" + enrollment_token +
                            R"(","installed":{"firmware":"1.0.0"}})");
}

// Signs a fresh challenge; the answer of POST /auth/token.
inline std::string log_in(uint16_t port, const std::string& id, const security::SigningKey& key) {
  const std::string c =
      device_request(port, "/api/device/v1/auth/challenge", R"({"device_id":")" + id + "\"}");
  const std::string challenge = string_field(c, "challenge");
  const std::string sig =
      security::to_base64url(key.sign(DeviceAuth::challenge_message(id, challenge)));
  return device_request(port, "/api/device/v1/auth/token",
                        R"({"device_id":")" + id + R"(","challenge":")" + challenge +
                            R"(","signature":")" + sig + "\"}");
}

// GET `path` with the device's token (none when empty): the whole answer.
inline std::string device_get(uint16_t port, const std::string& path,
                              const std::string& token = {}) {
  RawClient c(port);
  std::string head = "GET " + path + " HTTP/1.1\r\nHost: t\r\n";
  if (!token.empty()) head += "Authorization: Bearer " + token + "\r\n";
  c.send(head + "\r\n");
  return c.response();
}

}  // namespace drover::testing
