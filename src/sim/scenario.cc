#include "sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "base/enum_names.h"
#include "base/json_reader.h"
#include "base/random.h"
#include "base/units.h"
#include "model/codec_json.h"
#include "model/version.h"

namespace drover::sim {
namespace {

constexpr EnumNames<LinkKind, 3> kLinkNames{{
    {LinkKind::kAlwaysOn, "always_on"},
    {LinkKind::kCellular, "cellular"},
    {LinkKind::kIntermittent, "intermittent"},
}};

constexpr EnumNames<DefectKind, 9> kDefectNames{{
    {DefectKind::kInstallFails, "install_fails"},
    {DefectKind::kBootFails, "boot_fails"},
    {DefectKind::kFailsAfter, "fails_after"},
    {DefectKind::kGoesSilent, "goes_silent"},
    {DefectKind::kDrainsBattery, "drains_battery"},
    {DefectKind::kLeaksMemory, "leaks_memory"},
    {DefectKind::kReboots, "reboots"},
    {DefectKind::kCrashes, "crashes"},
    {DefectKind::kGlitches, "glitches"},
}};

void check_name(const JsonReader& r, const char* key, const std::string& value) {
  if (!is_valid_name(value))
    r.fail(key, "'" + value + "' is not a valid name ([A-Za-z0-9._:-], 1-128 chars)");
}

double share_of(const JsonReader& r) {
  const double s = r.number_or("share", 1);
  if (!(s > 0)) r.fail("share", "must be positive");
  return s;
}

// A synthetic digest for scenario artifacts that do not give one (the twin never checks
// content): stable per name@version.
std::string synthetic_sha256(const std::string& key) {
  std::string hex;
  static const char* digits = "0123456789abcdef";
  for (uint64_t i = 0; i < 4; ++i) {
    uint64_t h = stable_hash(key, i);
    for (int k = 0; k < 16; ++k) {
      hex += digits[h & 0xf];
      h >>= 4;
    }
  }
  return hex;
}

Scenario read_scenario(const JsonReader& r) {
  r.allow_only({"name",
                "description",
                "seed",
                "start",
                "horizon",
                "drain",
                "rollout_start_after",
                "devices",
                "device_types",
                "site_groups",
                "connectivity",
                "checkin_jitter",
                "install_time",
                "reboot_time",
                "installed",
                "artifacts",
                "rollout",
                "defects",
                "engine_tick",
                "quiet_hours",
                "keeps_previous",
                "lost"});
  Scenario s;
  s.name = r.str("name");
  check_name(r, "name", s.name);
  s.seed = r.uint_or("seed", 1, UINT64_MAX);
  s.start = r.take("start", parse_utc_timestamp(r.str("start")));
  s.horizon = r.duration_or("horizon", s.horizon);
  s.drain = r.duration_or("drain", s.drain);
  s.rollout_start_after = r.duration_or("rollout_start_after", s.rollout_start_after);
  if (r.has("lost")) {
    const JsonReader l = r.child("lost");
    l.allow_only({"share", "within"});
    s.lost.share = l.number_or("share", 0);
    if (!(s.lost.share >= 0 && s.lost.share <= 1)) l.fail("share", "must be within [0, 1]");
    s.lost.within = l.duration_or("within", s.lost.within);
    if (s.lost.within <= Duration(0)) l.fail("within", "must be positive");
  }
  s.keeps_previous = r.number_or("keeps_previous", s.keeps_previous);
  if (!(s.keeps_previous >= 0 && s.keeps_previous <= 1))
    r.fail("keeps_previous", "must be a share within [0, 1]");
  s.engine_tick = r.duration_or("engine_tick", s.engine_tick);
  if (s.engine_tick < Duration(100) || s.engine_tick > hours(1))
    r.fail("engine_tick", "must be within [100ms, 1h]");
  if (s.horizon <= Duration(0) || s.horizon > days(366))
    r.fail("horizon", "must be within (0, 366d]");
  if (s.drain < Duration(0) || s.drain > days(7)) r.fail("drain", "must be within [0, 7d]");
  if (s.rollout_start_after >= s.horizon)
    r.fail("rollout_start_after", "must be before the horizon");
  s.devices = static_cast<uint32_t>(r.uint_or("devices", s.devices, 10'000'000));
  if (s.devices == 0) r.fail("devices", "must be at least 1");

  for (const auto& t : r.array("device_types")) {
    t.allow_only({"name", "share", "hardware_revisions"});
    DeviceTypeSpec spec;
    spec.name = t.str("name");
    check_name(t, "name", spec.name);
    spec.share = share_of(t);
    for (const auto& h : t.array("hardware_revisions")) {
      h.allow_only({"name", "share"});
      Share rev{h.str("name"), share_of(h)};
      check_name(h, "name", rev.name);
      spec.hardware_revisions.push_back(rev);
    }
    if (spec.hardware_revisions.empty())
      t.fail("hardware_revisions", "needs at least one revision");
    s.device_types.push_back(std::move(spec));
  }
  if (s.device_types.empty()) r.fail("device_types", "needs at least one device type");

  std::set<std::string> prefixes;
  for (const auto& g : r.array("site_groups")) {
    g.allow_only({"prefix", "count", "time_zone", "maintenance_windows"});
    SiteGroupSpec spec;
    spec.prefix = g.str("prefix");
    check_name(g, "prefix", spec.prefix);
    if (!prefixes.insert(spec.prefix).second) g.fail("prefix", "used by two site groups");
    spec.count = static_cast<uint32_t>(g.uint_or("count", 1, 100'000));
    if (spec.count == 0) g.fail("count", "must be at least 1");
    spec.time_zone = g.str_or("time_zone", "UTC");
    g.take("time_zone", locate_time_zone(spec.time_zone));
    for (const auto& w : g.array("maintenance_windows"))
      spec.maintenance_windows.push_back(read_window(w));
    s.site_groups.push_back(std::move(spec));
  }
  if (s.site_groups.empty()) r.fail("site_groups", "needs at least one site group");

  for (const auto& c : r.array("connectivity")) {
    c.allow_only({"name", "kind", "share", "poll_interval", "bandwidth", "online"});
    ConnectivitySpec spec;
    spec.name = c.str("name");
    check_name(c, "name", spec.name);
    spec.kind = c.take("kind", enum_parse(kLinkNames, c.str("kind"), "connectivity kind"));
    spec.share = share_of(c);
    spec.poll_interval = c.duration_or("poll_interval", spec.poll_interval);
    if (spec.poll_interval < seconds(1)) c.fail("poll_interval", "must be at least 1s");
    if (c.has("bandwidth"))
      spec.bandwidth_bps = c.take("bandwidth", parse_bitrate(c.str("bandwidth")));
    for (const auto& w : c.array("online")) spec.online.push_back(read_window(w));
    if ((spec.kind == LinkKind::kIntermittent) != !spec.online.empty()) {
      c.fail("online", "intermittent links need online windows, and only they have them");
    }
    s.connectivity.push_back(std::move(spec));
  }
  if (s.connectivity.empty()) r.fail("connectivity", "needs at least one connectivity class");

  s.checkin_jitter = r.number_or("checkin_jitter", s.checkin_jitter);
  if (!(s.checkin_jitter >= 0 && s.checkin_jitter < 1))
    r.fail("checkin_jitter", "must be within [0, 1)");
  s.install_time = r.duration_or("install_time", s.install_time);
  s.reboot_time = r.duration_or("reboot_time", s.reboot_time);

  s.installed = read_installed(r);
  for (const auto& c : s.installed) {
    check_name(r, "installed", c.component);
    r.take("installed", Version::parse(c.version));
  }

  for (const auto& a : r.array("artifacts")) {
    // Scenario artifacts may leave out the digest: a stable synthetic one stands in.
    if (!a.raw().is_object()) a.fail("", "must be an object");
    if (!a.has("sha256")) {
      nlohmann::json copy = a.raw();
      copy["sha256"] = synthetic_sha256(a.str("name") + "@" + a.str("version"));
      s.artifacts.push_back(read_artifact(JsonReader(copy, a.path())));
    } else {
      s.artifacts.push_back(read_artifact(a));
    }
  }
  s.rollout = read_plan(r.child("rollout"));
  bool found = false;
  for (const auto& a : s.artifacts) {
    found = found || (a.name == s.rollout.artifact_name && a.version == s.rollout.artifact_version);
  }
  if (!found) r.fail("rollout.artifact", "names an artifact the scenario does not list");

  for (const auto& d : r.array("defects")) {
    d.allow_only({"hardware_revision", "site_prefix", "time_zone", "connectivity", "version",
                  "kind", "probability", "after", "factor", "bytes_per_day"});
    DefectSpec spec;
    spec.hardware_revision = d.str_or("hardware_revision", "");
    spec.site_prefix = d.str_or("site_prefix", "");
    spec.time_zone = d.str_or("time_zone", "");
    spec.connectivity = d.str_or("connectivity", "");
    // A scope that matches nothing in the fleet is a typo, not a defect that never shows.
    auto known = [](const auto& items, auto field, const std::string& want) {
      return want.empty() || std::any_of(items.begin(), items.end(),
                                         [&](const auto& i) { return i.*field == want; });
    };
    bool revision_known = spec.hardware_revision.empty();
    for (const auto& t : s.device_types) {
      revision_known =
          revision_known || known(t.hardware_revisions, &Share::name, spec.hardware_revision);
    }
    if (!revision_known)
      d.fail("hardware_revision", "names no revision of the scenario's device types");
    if (!known(s.site_groups, &SiteGroupSpec::prefix, spec.site_prefix))
      d.fail("site_prefix", "names no site group of the scenario");
    if (!known(s.site_groups, &SiteGroupSpec::time_zone, spec.time_zone))
      d.fail("time_zone", "is the zone of no site group of the scenario");
    if (!known(s.connectivity, &ConnectivitySpec::name, spec.connectivity))
      d.fail("connectivity", "names no connectivity class of the scenario");
    spec.version = d.str_or("version", "");
    spec.kind = d.take("kind", enum_parse(kDefectNames, d.str("kind"), "defect kind"));
    spec.probability = d.number_or("probability", 1);
    if (!(spec.probability >= 0 && spec.probability <= 1))
      d.fail("probability", "must be within [0, 1]");
    spec.after = d.duration_or("after", Duration(0));
    const bool timed = spec.kind == DefectKind::kFailsAfter || spec.kind == DefectKind::kGoesSilent;
    if (timed != d.has("after"))
      d.fail("after", "fails_after and goes_silent need 'after', and only they have one");
    spec.factor = d.number_or("factor", 1);
    const bool scaled = spec.kind == DefectKind::kDrainsBattery ||
                        spec.kind == DefectKind::kReboots || spec.kind == DefectKind::kCrashes ||
                        spec.kind == DefectKind::kGlitches;
    if (scaled != d.has("factor")) {
      d.fail("factor",
             "drains_battery, reboots, crashes and glitches need 'factor', and only they have one");
    }
    if (!(spec.factor > 0 && spec.factor <= 100)) d.fail("factor", "must be within (0, 100]");
    spec.bytes_per_day = d.number_or("bytes_per_day", 0);
    if ((spec.kind == DefectKind::kLeaksMemory) != d.has("bytes_per_day"))
      d.fail("bytes_per_day", "leaks_memory needs 'bytes_per_day', and only it has one");
    if (!(spec.bytes_per_day >= 0 && spec.bytes_per_day <= 1e12))
      d.fail("bytes_per_day", "must be within [0, 1e12]");
    s.defects.push_back(spec);
  }
  double quiet_share = 0;
  for (const auto& q : r.array("quiet_hours")) {
    q.allow_only({"share", "windows"});
    QuietHoursSpec spec;
    spec.share = q.number_or("share", 0);
    if (!(spec.share > 0 && spec.share <= 1)) q.fail("share", "must be within (0, 1]");
    quiet_share += spec.share;
    for (const auto& w : q.array("windows")) spec.windows.push_back(read_window(w));
    if (spec.windows.empty() || spec.windows.size() > kMaxQuietHours)
      q.fail("windows", "needs 1 to " + std::to_string(kMaxQuietHours) + " windows");
    s.quiet_hours.push_back(std::move(spec));
  }
  if (quiet_share > 1 + 1e-9) r.fail("quiet_hours", "the shares add up to more than 1");
  if (s.quiet_hours.size() > 16) r.fail("quiet_hours", "at most 16 entries");
  return s;
}

}  // namespace

const char* to_string(LinkKind k) { return enum_name(kLinkNames, k); }
const char* to_string(DefectKind k) { return enum_name(kDefectNames, k); }

Result<Scenario> parse_scenario(std::string_view json_text) {
  return parse_json_document<Scenario>(json_text, "",
                                       [](const JsonReader& r) { return read_scenario(r); });
}

Result<Scenario> load_scenario(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot read scenario file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > 16 * kMiB)
    return invalid_argument("scenario file '" + path + "' is over 16 MiB");
  auto s = parse_scenario(text.str());
  if (!s.ok()) return invalid_argument(path + ": " + s.error().message);
  return s;
}

}  // namespace drover::sim
