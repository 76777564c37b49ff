// GET /api/v1/rollouts/{id}/timeline: how a rollout's devices got where they are, over time
// (RolloutQueries::timeline, operator_api.h).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "transport/http/operator_access.h"
#include "transport/http/operator_api.h"

namespace drover::http {
namespace {

using json = nlohmann::json;

json timeline_json(const Timeline& t) {
  json at = json::array();
  for (const Timestamp x : t.at) at.push_back(x.time_since_epoch().count());
  json series = json::array();
  for (const Timeline::Series& s : t.series) {
    series.push_back({{"name", s.name},
                      {"offered", s.offered},
                      {"succeeded", s.succeeded},
                      {"failed", s.failed},
                      {"reverted", s.reverted}});
  }
  return {{"at", at}, {"series", series}, {"strata", t.strata}};
}

// Answers reused while young: a timeline reads every deployment of the rollout from the
// store (about 0.1 s for 15,000 on SQLite, 0.7 s for 100,000: docs/benchmarks.md), and every
// open console asks every 5 s. An answer is reused for ten times what it cost to make, and
// at least kSummaryMaxAge, so however many consoles are open the timelines of one rollout
// keep at most a tenth of a core busy; one asker at a time makes a new one per key.
class TimelineCache {
 public:
  using Steady = std::chrono::steady_clock;
  struct Entry {
    Steady::time_point made{};
    Steady::duration reuse{};
    std::string body;
    bool making = false;
  };

  // The fresh answer for `key`, or nullopt when the caller should make one (and then put it).
  std::optional<std::string> fresh(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      if (entries_.size() >= kMaxEntries) evict();
      entries_[key].making = true;
      return std::nullopt;
    }
    Entry& e = it->second;
    const bool young = !e.body.empty() && Steady::now() - e.made < e.reuse;
    if (young || (e.making && !e.body.empty())) return e.body;
    e.making = true;  // stale, or the first maker failed: this asker makes it
    return std::nullopt;
  }
  void put(const std::string& key, std::string body, Steady::duration cost) {
    std::lock_guard lock(mu_);
    Entry& e = entries_[key];
    e.made = Steady::now();
    e.reuse = std::max<Steady::duration>(cost * 10, kSummaryMaxAge);
    e.body = std::move(body);
    e.making = false;
  }
  void failed(const std::string& key) {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) it->second.making = false;
  }

 private:
  static constexpr size_t kMaxEntries = 256;
  void evict() {  // the oldest answer goes
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second.made < oldest->second.made) oldest = it;
    entries_.erase(oldest);
  }
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace

void add_rollout_timeline(Router& router, OperatorServices services, Clock& clock) {
  auto cache = std::make_shared<TimelineCache>();
  router.add(
      "GET", "/api/v1/rollouts/{id}/timeline",
      offloaded(guarded(
          services.tokens, Role::kViewer,
          [s = services, &clock, cache](const Request& req, const Params& p, const ApiToken&) {
            auto q = query_of(req, {"points", "stratum"});
            if (!q.ok()) return error_response(q.error());
            size_t points = 120;
            if (q->has("points")) {
              const std::string_view text = q->get("points");
              const auto [end, ec] =
                  std::from_chars(text.data(), text.data() + text.size(), points);
              if (ec != std::errc() || end != text.data() + text.size())
                return error_response(invalid_argument("points: not a number"));
            }
            const std::string id(p.get("id"));
            const std::string stratum(q->get("stratum"));
            const std::string key = id + '\n' + stratum + '\n' + std::to_string(points);
            if (auto body = cache->fresh(key)) return Response::json(200, std::move(*body));
            const auto started = TimelineCache::Steady::now();
            auto t = s.rollouts.timeline(id, stratum, points, clock.now());
            if (!t.ok()) {
              cache->failed(key);
              return error_response(t.error());
            }
            std::string body = timeline_json(*t).dump();
            cache->put(key, body, TimelineCache::Steady::now() - started);
            return Response::json(200, std::move(body));
          })));
}

}  // namespace drover::http
