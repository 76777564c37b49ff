// Certificates for TLS tests, made by the openssl command in a temp directory: a CA, a
// rogue CA, a server certificate for "localhost", client certificates from each CA, and an
// expired server and client certificate from the CA (valid until a day before they were
// made).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace drover::testing {

// A CA, a server certificate for "localhost" and client certificates, in a temp directory.
class Pki {
 public:
  Pki() {
    char tmpl[] = "/tmp/drover-tls-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ok_ = make_ca("ca") && make_ca("rogue-ca") && make_leaf("server", "ca", "localhost") &&
          make_leaf("client", "ca", "ctl-1") && make_leaf("rogue-client", "rogue-ca", "ctl-1") &&
          make_leaf("expired-server", "ca", "localhost", -1) &&
          make_leaf("expired-client", "ca", "ctl-1", -1);
  }
  ~Pki() { std::filesystem::remove_all(dir_); }
  bool ok() const { return ok_; }
  std::string pem(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir_ + "/" + name + ".key"; }

 private:
  bool run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
  }
  bool make_ca(const std::string& name) {
    return run(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
        key(name) + " -out " + pem(name) + " -days 2 -subj /CN=" + name);
  }
  bool make_leaf(const std::string& name, const std::string& ca, const std::string& cn,
                 int days = 2) {
    const std::string ext = dir_ + "/" + name + ".ext";
    std::ofstream(ext) << "subjectAltName=DNS:" << cn << "\n";
    return run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
               key(name) + " -out " + dir_ + "/" + name + ".csr -subj /CN=" + cn) &&
           run("openssl x509 -req -in " + dir_ + "/" + name + ".csr -CA " + pem(ca) + " -CAkey " +
               key(ca) + " -CAcreateserial -out " + pem(name) + " -days " + std::to_string(days) +
               " -extfile " + ext);
  }

  std::string dir_;
  bool ok_ = false;
};

}  // namespace drover::testing
