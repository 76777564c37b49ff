// GET /api/v1/rollouts/{id}/timeline: how a rollout's devices got where they are, over time
// (RolloutQueries::timeline, operator_api.h).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
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
// at least kSummaryMaxAge; one asker at a time makes a new one per key while the others get
// the previous answer, or wait for the first one. So however many consoles are open, the
// timelines of one rollout keep at most a tenth of a core busy. At most kMaxEntries answers
// and kMaxBytes of them are kept; the least recently made go first.
class TimelineCache {
 public:
  using Steady = std::chrono::steady_clock;
  using Body = std::shared_ptr<const std::string>;

  // Who makes a key's answer: put() hands it over; gone without put() (an error, an
  // exception), the next asker makes it.
  class Maker {
   public:
    Maker(TimelineCache& cache, std::string key) : cache_(cache), key_(std::move(key)) {}
    ~Maker() {
      if (!done_) cache_.abandon(key_);
    }
    Maker(const Maker&) = delete;
    Maker& operator=(const Maker&) = delete;
    void put(Body body, Steady::duration cost) {
      cache_.put(key_, std::move(body), cost);
      done_ = true;
    }

   private:
    TimelineCache& cache_;
    std::string key_;
    bool done_ = false;
  };

  // The answer to give for `key`, or none: then the caller makes it (`maker` is set).
  Body fresh(const std::string& key, std::optional<Maker>& maker) {
    std::unique_lock lock(mu_);
    while (true) {
      Entry& e = entries_[key];  // looked up again after a wait: another may have trimmed it
      const bool young = e.body && Steady::now() - e.made < e.reuse;
      if (young || (e.making && e.body)) return e.body;  // fresh, or the one before
      if (!e.making) {
        e.making = true;
        break;
      }
      made_.wait(lock);  // the first answer is being made: wait for it
    }
    maker.emplace(*this, key);
    return nullptr;
  }

 private:
  static constexpr size_t kMaxEntries = 256;
  static constexpr size_t kMaxBytes = size_t{64} << 20;
  struct Entry {
    Steady::time_point made{};
    Steady::duration reuse{};
    Body body;
    bool making = false;
  };

  void put(const std::string& key, Body body, Steady::duration cost) {
    {
      std::lock_guard lock(mu_);
      Entry& e = entries_[key];
      if (e.body) bytes_ -= e.body->size();
      bytes_ += body->size();
      e.made = Steady::now();
      e.reuse = std::max<Steady::duration>(cost * 10, kSummaryMaxAge);
      e.body = std::move(body);
      e.making = false;
      trim(key);
    }
    made_.notify_all();
  }
  void abandon(const std::string& key) {
    {
      std::lock_guard lock(mu_);
      if (auto it = entries_.find(key); it != entries_.end()) {
        it->second.making = false;
        if (!it->second.body) entries_.erase(it);
      }
    }
    made_.notify_all();  // a waiter becomes the maker
  }
  // Drops the least recently made answers (never one being made, nor `keep`) while over
  // the bounds.
  void trim(const std::string& keep) {
    while (entries_.size() > kMaxEntries || bytes_ > kMaxBytes) {
      auto oldest = entries_.end();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->second.making || it->first == keep) continue;
        if (oldest == entries_.end() || it->second.made < oldest->second.made) oldest = it;
      }
      if (oldest == entries_.end()) return;
      if (oldest->second.body) bytes_ -= oldest->second.body->size();
      entries_.erase(oldest);
    }
  }

  std::mutex mu_;
  std::condition_variable made_;
  std::map<std::string, Entry> entries_;
  size_t bytes_ = 0;
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
            std::optional<TimelineCache::Maker> maker;
            if (auto body = cache->fresh(key, maker)) return Response::json(200, *body);
            const auto started = TimelineCache::Steady::now();
            auto t = s.rollouts.timeline(id, stratum, points, clock.now());
            if (!t.ok()) return error_response(t.error());  // the maker gives way
            auto body = std::make_shared<const std::string>(timeline_json(*t).dump());
            maker->put(body, TimelineCache::Steady::now() - started);
            return Response::json(200, *body);
          })));
}

}  // namespace drover::http
