// A manufacturer's PKI for factory-identity tests, made by the openssl command in a temp
// directory, valid for two days from now: a root CA, an intermediate CA it signed, a rogue
// CA, and device certificates (subject CN = device id, OU "type=…", OU "revision=…").
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace drover::testing {

class FactoryPki {
 public:
  FactoryPki() {
    char tmpl[] = "/tmp/drover-factory-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ok_ = make_root("maker-ca") && make_root("rogue-ca") &&
          make_signed("maker-int", "maker-ca", "/CN=maker-int", "ec", kCaExtensions);
  }
  ~FactoryPki() { std::filesystem::remove_all(dir_); }
  FactoryPki(const FactoryPki&) = delete;
  FactoryPki& operator=(const FactoryPki&) = delete;

  bool ok() const { return ok_; }
  std::string pem(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // A device certificate `name` for `subject` (e.g. "/CN=dev-1/OU=type=ctl/OU=revision=a"),
  // with a key of `kind` ("ec", "ed25519" or "rsa"), signed by `issuer`; `name`-chain.pem
  // holds it and, when the issuer is the intermediate, the intermediate after it.
  bool device(const std::string& name, const std::string& subject,
              const std::string& issuer = "maker-int", const std::string& kind = "ec",
              const std::string& extensions = kLeafExtensions) {
    if (!make_signed(name, issuer, subject, kind, extensions)) return false;
    std::ofstream(dir_ + "/" + name + "-chain.pem")
        << read(pem(name)) << (issuer == "maker-int" ? read(pem("maker-int")) : "");
    return true;
  }
  std::string chain(const std::string& name) const {
    return read(dir_ + "/" + name + "-chain.pem");
  }

  static constexpr const char* kLeafExtensions =
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n";
  static constexpr const char* kCaExtensions =
      "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";

 private:
  bool run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
  }
  static std::string newkey(const std::string& kind) {
    if (kind == "ed25519") return "-newkey ed25519";
    if (kind == "rsa") return "-newkey rsa:2048";
    return "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
  }
  bool make_root(const std::string& name) {
    return run("openssl req -x509 " + newkey("ec") + " -nodes -keyout " + key(name) + " -out " +
               pem(name) + " -days 2 -subj /CN=" + name);
  }
  bool make_signed(const std::string& name, const std::string& issuer, const std::string& subject,
                   const std::string& kind, const std::string& extensions) {
    const std::string ext = dir_ + "/" + name + ".ext";
    std::ofstream(ext) << extensions;
    return run("openssl req " + newkey(kind) + " -nodes -keyout " + key(name) + " -out " + dir_ +
               "/" + name + ".csr -subj '" + subject + "'") &&
           run("openssl x509 -req -in " + dir_ + "/" + name + ".csr -CA " + pem(issuer) +
               " -CAkey " + key(issuer) + " -CAcreateserial -out " + pem(name) +
               " -days 2 -extfile " + ext);
  }

  std::string dir_;
  bool ok_ = false;
};

}  // namespace drover::testing
