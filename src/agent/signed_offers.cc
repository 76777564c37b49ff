#include "agent/signed_offers.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/try_assign.h"
#include "base/units.h"
#include "model/version.h"
#include "security/canonical_json.h"
#include "security/crypto.h"

namespace drover::agent {
namespace {

namespace tuf = security::tuf;
using nlohmann::json;
using security::printable;

Error refused(const std::string& what) { return Error{ErrorCode::kFailedPrecondition, what}; }

// Whether the signed list `field` of `custom` holds `value`; an empty list matches every
// value when `empty_is_any`.
bool lists(const json& custom, const char* field, const std::string& value, bool empty_is_any) {
  const auto it = custom.find(field);
  if (it == custom.end() || !it->is_array()) return false;
  if (it->empty()) return empty_is_any;
  return std::any_of(it->begin(), it->end(),
                     [&](const json& v) { return v.is_string() && v.get<std::string>() == value; });
}

}  // namespace

SignedOffers::SignedOffers(SignedOffersOptions options, tuf::Updater updater)
    : o_(std::move(options)), updater_(std::move(updater)) {}

Result<std::unique_ptr<SignedOffers>> SignedOffers::open(SignedOffersOptions options,
                                                         tuf::MetadataFetcher& fetcher,
                                                         Clock& clock, FileSystem& fs) {
  DROVER_TRY(fs.make_dir(options.metadata_dir));
  auto trusted = fs.read(options.metadata_dir + "/root.json");
  if (!trusted.ok() && trusted.error().code != ErrorCode::kNotFound) return trusted.error();
  if (!trusted.ok()) {
    auto initial = fs.read(options.initial_root);
    if (!initial.ok()) {
      return Error{initial.error().code,
                   "the initial root " + options.initial_root + ": " + initial.error().message};
    }
    DROVER_TRY(tuf::Updater::init(fs, options.metadata_dir, *initial));
  }
  DROVER_TRY_ASSIGN(
      tuf::Updater updater,
      tuf::Updater::open({options.metadata_dir, options.metadata_url, {}}, fetcher, clock, fs));
  return std::unique_ptr<SignedOffers>(new SignedOffers(std::move(options), std::move(updater)));
}

Status SignedOffers::check(const Offer& offer, const Inventory& installed) {
  if (Status st = updater_.refresh(); !st.ok()) {
    if (st.error().code == ErrorCode::kIo) return st.error();
    return refused("the signed update metadata does not verify: " + st.error().message);
  }
  const std::string path = offer.component + "/" + offer.version;
  auto target = updater_.find_target(path);
  if (!target.ok()) {
    if (target.error().code == ErrorCode::kIo) return target.error();
    return refused("no signed target " + printable(path) + ": " + target.error().message);
  }
  const tuf::TargetFile& file = target->file;
  if (file.length != offer.size) {
    return refused("the offer's image is " + format_bytes(offer.size) + ", the signed target " +
                   printable(path) + "'s is " + format_bytes(file.length));
  }
  const auto hash = file.hashes.find("sha256");
  if (hash == file.hashes.end() || security::to_hex(hash->second) != offer.sha256) {
    return refused("the offer's image hash is not the signed target " + printable(path) + "'s");
  }
  auto custom = security::parse_strict_json(file.custom.empty() ? "null" : file.custom);
  if (!custom.ok() || !custom->is_object()) {
    return refused("the signed target " + printable(path) + " carries no Drover metadata");
  }
  const auto version = custom->find("version");
  if (version == custom->end() || !version->is_string() ||
      version->get<std::string>() != offer.version) {
    return refused("the signed target " + printable(path) + " is not version " +
                   printable(offer.version));
  }
  if (!lists(*custom, "device_types", o_.device_type, false)) {
    return refused("the signed target " + printable(path) + " is not built for device type " +
                   printable(o_.device_type));
  }
  if (!lists(*custom, "hardware_revisions", o_.hardware_revision, true)) {
    return refused("the signed target " + printable(path) + " is not built for hardware revision " +
                   printable(o_.hardware_revision));
  }
  const auto depends = custom->find("depends");
  if (depends != custom->end() && !depends->is_array())
    return refused("the signed target " + printable(path) + "'s depends is not a list");
  if (depends != custom->end()) {
    for (const json& d : *depends) {
      auto text = [&d](const char* field) {
        const auto it = d.is_object() ? d.find(field) : d.end();
        return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      const std::string component = text("component");
      auto constraint = VersionConstraint::parse(text("constraint"));
      if (component.empty() || !constraint.ok()) {
        return refused("the signed target " + printable(path) + " has a dependency " +
                       printable(d.dump()) + " this agent cannot read");
      }
      const auto runs = installed.find(component);
      auto running = runs == installed.end() ? Result<Version>(not_found(component))
                                             : Version::parse(runs->second);
      if (!running.ok() || !constraint->matches(*running)) {
        return refused("the signed target " + printable(path) + " needs " + printable(component) +
                       " " + printable(constraint->text()) + ", and this device runs " +
                       (runs == installed.end() ? std::string("none") : printable(runs->second)));
      }
    }
  }
  return ok_status();
}

}  // namespace drover::agent
