#include "agent/telemetry_agent.h"

#include <algorithm>
#include <filesystem>

#include "base/units.h"

namespace drover::agent {
namespace {

int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

// Batches sent in one run_once at most, so a long drain still lets the rest of the loop run.
constexpr int kBatchesPerRun = 16;
constexpr Duration kRulesRetry = minutes(5);  // after a failed fetch of the rules

}  // namespace

TelemetryAgent::TelemetryAgent(TelemetryOptions options, ServerLink& server, Clock& clock,
                               uint64_t seed, FileSystem& fs, CommandRunner& commands)
    : o_(std::move(options)),
      server_(server),
      clock_(clock),
      fs_(fs),
      rng_(seed),
      collector_(o_.collectors, fs, commands) {}

Status TelemetryAgent::start() {
  auto queue = TelemetryQueue::open(o_.queue, fs_);
  if (!queue.ok()) return queue.error();
  queue_ = std::move(*queue);
  const std::string rules_path = (std::filesystem::path(o_.queue.dir) / "rules.json").string();
  if (auto saved = fs_.read(rules_path); saved.ok()) {
    auto rules = protocol::decode_telemetry_rules(*saved);
    if (rules.ok()) {
      aggregator_.set_rules(std::move(*rules), ms(clock_.now()));
    } else {
      log_.push_back("telemetry: forgetting " + rules_path + ": " + rules.error().message);
    }
  }
  if (!o_.statsd_socket.empty()) {
    auto socket = StatsdSocket::bind(o_.statsd_socket);
    if (!socket.ok()) return socket.error();
    socket_.emplace(std::move(*socket));
  }
  const Timestamp now = clock_.now();
  next_collect_ = now;
  next_flush_ = now + o_.statsd_flush;
  next_send_ = now;
  return ok_status();
}

void TelemetryAgent::statsd_readable() {
  if (socket_) socket_->drain(statsd_);
}

void TelemetryAgent::collect(Timestamp now) {
  Collected c = collector_.collect(ms(now));
  for (std::string& p : c.problems) log_.push_back("telemetry: " + p);
  bool queued = true;
  if (!c.urgent.empty()) {
    // Events (a reboot and its reason) are sent as they are, never aggregated.
    queued = append(Priority::kUrgent, c.urgent);
    unsent_ = true;
  }
  // A reboot goes on record only once its event is queued; else the next round tells it.
  if (queued) {
    if (Status st = collector_.boot_recorded(); !st.ok())
      log_.push_back("telemetry: " + st.error().to_string());
  }
  aggregator_.add(c.routine);
}

void TelemetryAgent::queue(std::vector<protocol::TelemetrySeries> ready) {
  if (ready.empty()) return;
  std::vector<protocol::TelemetrySeries> urgent, routine;
  for (auto& s : ready) (o_.urgent.count(s.metric) > 0 ? urgent : routine).push_back(std::move(s));
  for (auto [priority, part] :
       {std::pair{Priority::kUrgent, &urgent}, std::pair{Priority::kRoutine, &routine}}) {
    if (!part->empty()) append(priority, *part);
  }
  unsent_ = true;
}

bool TelemetryAgent::append(Priority priority, const std::vector<protocol::TelemetrySeries>& s) {
  Status st = queue_->append(priority, s);
  if (st.ok()) return true;
  // Samples that could not be queued are lost: counted, so the server hears of them.
  uint64_t n = 0;
  for (const auto& series : s) n += series.samples.size();
  log_.push_back("telemetry: queueing " + std::to_string(n) +
                 " samples failed (counted as dropped): " + st.error().to_string());
  if (Status counted = queue_->count_dropped(n); !counted.ok())
    log_.push_back("telemetry: " + counted.error().to_string());
  return false;
}

Duration TelemetryAgent::backoff() {
  const uint32_t shift = std::min<uint32_t>(failures_++, 30);
  const double ceiling =
      std::min(static_cast<double>(o_.backoff_max.count()),
               static_cast<double>(o_.backoff_initial.count()) * static_cast<double>(1u << shift));
  const double floor = static_cast<double>(o_.backoff_initial.count()) / 2;
  return Duration(static_cast<int64_t>(rng_.between(std::min(floor, ceiling), ceiling)));
}

void TelemetryAgent::fetch_rules() {
  const Timestamp now = clock_.now();
  if (now < next_rules_fetch_) return;
  auto rules = server_.telemetry_rules();
  if (!rules.ok()) {
    // Not again before a while: a server without rules for us is not asked every second.
    next_rules_fetch_ = now + kRulesRetry;
    log_.push_back("telemetry: fetching the rules (again in " + format_duration(kRulesRetry) +
                   "): " + rules.error().to_string());
    return;
  }
  fetch_rules_ = false;
  if (*rules == aggregator_.rules()) return;
  const std::string rules_path = (std::filesystem::path(o_.queue.dir) / "rules.json").string();
  if (Status st = write_atomically(fs_, rules_path, protocol::encode_telemetry_rules(*rules));
      !st.ok()) {
    log_.push_back("telemetry: saving the rules: " + st.error().to_string());
  }
  log_.push_back("telemetry: following rules " + (rules->etag.empty() ? "(none)" : rules->etag) +
                 " (" + std::to_string(rules->metrics.size()) + " metric rule(s))");
  aggregator_.set_rules(std::move(*rules), ms(clock_.now()));
}

void TelemetryAgent::send(Timestamp now) {
  if (o_.link_up_at) {
    const Timestamp up = o_.link_up_at(now);
    if (up > now) {
      next_send_ = up;
      return;
    }
  }
  if (fetch_rules_) fetch_rules();
  for (int i = 0; i < kBatchesPerRun; ++i) {
    auto batch = queue_->next_batch();
    if (!batch.ok()) {
      log_.push_back("telemetry: reading the queue: " + batch.error().to_string());
      next_send_ = now + backoff();
      return;
    }
    if (!*batch) {
      unsent_ = false;
      next_send_ = now + o_.send_every;
      return;
    }
    const OutgoingBatch& b = **batch;
    auto ack = server_.send_telemetry(b.body);
    if (!ack.ok() && ack.error().code == ErrorCode::kInvalidArgument) {
      log_.push_back("telemetry: the server refused batch " + std::to_string(b.sequence) + " (" +
                     std::to_string(b.samples) + " samples, dropped): " + ack.error().message);
      if (Status st = queue_->discard(b.sequence); !st.ok()) {
        log_.push_back("telemetry: " + st.error().to_string());
        next_send_ = now + backoff();
        return;
      }
      continue;
    }
    if (!ack.ok() || ack->sequence != b.sequence) {
      log_.push_back("telemetry: sending batch " + std::to_string(b.sequence) + ": " +
                     (ack.ok() ? "the answer names batch " + std::to_string(ack->sequence)
                               : ack.error().to_string()));
      next_send_ = now + backoff();
      return;
    }
    if (Status st = queue_->acknowledge(b.sequence); !st.ok()) {
      log_.push_back("telemetry: " + st.error().to_string());
      next_send_ = now + backoff();
      return;
    }
    failures_ = 0;
    ++batches_sent_;
    samples_sent_ += b.samples;
    if (ack->rules != aggregator_.rules().etag) fetch_rules_ = true;
    if (fetch_rules_) fetch_rules();
  }
  next_send_ = now;  // more may wait: the next run goes on
}

Duration TelemetryAgent::run_once() {
  const Timestamp now = clock_.now();
  // The rules first, when they are to be fetched and the link is up: what is collected now
  // follows them.
  if (fetch_rules_ && now >= next_send_ && (!o_.link_up_at || o_.link_up_at(now) <= now)) {
    fetch_rules();
  }
  if (o_.system && now >= next_collect_) {
    collect(now);
    next_collect_ = std::max(next_collect_ + o_.interval, now + o_.interval / 2);
  }
  if (socket_ && now >= next_flush_) {
    socket_->drain(statsd_);
    aggregator_.add(statsd_.flush(ms(now)));
    next_flush_ = std::max(next_flush_ + o_.statsd_flush, now + o_.statsd_flush / 2);
  }
  queue(aggregator_.take(ms(now)));
  if (now >= next_send_) {
    if (unsent_ || queue_->stats().samples > 0) {
      send(now);
    } else {
      next_send_ = now + o_.send_every;
    }
  }
  Timestamp due = next_send_;
  if (o_.system) due = std::min(due, next_collect_);
  if (socket_) due = std::min(due, next_flush_);
  const int64_t aggregate_due = aggregator_.next_due_ms();
  if (aggregate_due != INT64_MAX) due = std::min(due, Timestamp(Duration(aggregate_due)));
  return std::max(due - clock_.now(), Duration(0));
}

void TelemetryAgent::stop() {
  if (!queue_) return;
  const Timestamp now = clock_.now();
  if (socket_) {
    socket_->drain(statsd_);
    aggregator_.add(statsd_.flush(ms(now)));
  }
  queue(aggregator_.take(ms(now), true));
  if (Status st = collector_.note_clean_stop(); !st.ok())
    log_.push_back("telemetry: " + st.error().to_string());
}

TelemetryStatus TelemetryAgent::status() const {
  TelemetryStatus s;
  if (queue_) s.queue = queue_->stats();
  s.batches_sent = batches_sent_;
  s.samples_sent = samples_sent_;
  s.statsd_rejected = statsd_.rejected();
  s.rules = aggregator_.rules().etag;
  return s;
}

std::vector<std::string> TelemetryAgent::take_log() { return std::exchange(log_, {}); }

}  // namespace drover::agent
