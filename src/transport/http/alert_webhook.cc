#include "transport/http/alert_webhook.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "base/units.h"
#include "security/crypto.h"
#include "transport/http/alert_api.h"

namespace drover::http {
namespace {

constexpr size_t kMinSecret = 16;
constexpr size_t kBacklogPage = 1000;
// The receiver's answer is read only for the log; a larger one is taken as a failed
// delivery (the client refuses it before reading it).
constexpr uint64_t kMaxAnswer = uint64_t{4} << 20;

int64_t unix_seconds(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string delivery_id(const Alert& a) { return a.id + "." + std::to_string(a.version); }

}  // namespace

std::string AlertWebhook::signature(std::string_view secret, int64_t unix_seconds,
                                    std::string_view body) {
  std::string signed_text = std::to_string(unix_seconds);
  signed_text += '.';
  signed_text += body;
  return "sha256=" + security::to_hex(security::hmac_sha256(secret, signed_text));
}

Result<std::unique_ptr<AlertWebhook>> AlertWebhook::start(health::AlertRecords& alerts,
                                                          Clock& clock, AlertWebhookOptions options,
                                                          LogFn log) {
  if (options.secret.size() < kMinSecret) {
    return invalid_argument("the alert webhook's secret must be at least " +
                            std::to_string(kMinSecret) + " bytes");
  }
  if (options.first_retry <= Duration{0} || options.max_retry < options.first_retry) {
    return invalid_argument("alert webhook: retries need 0 < first_retry <= max_retry");
  }
  std::unique_ptr<AlertWebhook> hook(
      new AlertWebhook(alerts, clock, std::move(options), std::move(log)));
  const std::string& url = hook->options_.url;
  const size_t scheme = url.find("://");
  const size_t slash = scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
  hook->base_url_ = slash == std::string::npos ? url : url.substr(0, slash);
  hook->path_ = slash == std::string::npos ? "/" : url.substr(slash);
  if (hook->path_.find_first_of("?# ") != std::string::npos) {
    return invalid_argument("alert webhook URL '" + url + "': a path without query or fragment");
  }
  ClientOptions client_options;
  client_options.connect_timeout = hook->options_.timeout;
  client_options.request_timeout = hook->options_.timeout;
  client_options.max_answer_bytes = kMaxAnswer;
  client_options.ca_file = hook->options_.ca_file;
  client_options.user_agent = "drover-alert-webhook";
  auto client = HttpClient::create(hook->base_url_, client_options);
  if (!client.ok()) {
    return Error{client.error().code, "alert webhook: " + client.error().message};
  }
  hook->client_ = std::move(*client);

  // The backlog: every alert whose newest version the webhook is not done with. Resolved
  // ones already past give_up_after are recorded as done, unsent; an unresolved one is sent
  // however old (a person may still have to act on it).
  const Timestamp too_old = clock.now() - hook->options_.give_up_after;
  std::vector<Alert> stale;
  Store::AlertQuery query;
  query.unnotified_only = true;
  query.limit = kBacklogPage;
  for (;;) {
    auto page = alerts.list(query);
    if (!page.ok()) return Error{page.error().code, "alert webhook: " + page.error().message};
    for (const Alert& a : *page) {
      if (a.updated_at < too_old && a.state == AlertState::kResolved) {
        stale.push_back(a);
      } else {
        hook->notify(a);
      }
    }
    if (page->size() < kBacklogPage) break;
    query.before = page->back().opened_at;
    query.before_id = page->back().id;
  }
  if (!stale.empty()) {
    // One write for all of them (one commit), not one each.
    std::vector<std::pair<std::string, uint64_t>> done;
    done.reserve(stale.size());
    for (const Alert& a : stale) done.emplace_back(a.id, a.version);
    const Status marked = alerts.mark_notified_all(done);
    {
      MutexLock lock(hook->shared_->mu);
      hook->shared_->stats.skipped += stale.size();
    }
    if (!marked.ok() && hook->log_) {
      hook->log_("warn", "alert webhook: " + std::to_string(stale.size()) +
                             " resolved alerts' changes older than " +
                             format_duration(hook->options_.give_up_after) +
                             " were not sent, and could not be recorded as done (they are "
                             "judged again after a restart): " +
                             marked.error().to_string());
    } else if (hook->log_) {
      hook->log_("warn", "alert webhook: " + std::to_string(stale.size()) +
                             " resolved alerts' changes older than " +
                             format_duration(hook->options_.give_up_after) +
                             " were not sent (recorded as done)");
    }
  }
  hook->thread_ = std::thread([h = hook.get()] { h->run(); });
  return hook;
}

AlertWebhook::AlertWebhook(health::AlertRecords& alerts, Clock& clock, AlertWebhookOptions options,
                           LogFn log)
    : alerts_(alerts), clock_(clock), options_(std::move(options)), log_(std::move(log)) {}

AlertWebhook::~AlertWebhook() { stop(); }

void AlertWebhook::stop() {
  {
    MutexLock lock(shared_->mu);
    shared_->stop = true;
  }
  shared_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

AlertWebhookStats AlertWebhook::stats() const {
  MutexLock lock(shared_->mu);
  AlertWebhookStats out = shared_->stats;
  out.pending = shared_->pending.size();
  return out;
}

void AlertWebhook::notify(const Alert& alert) {
  if (alert.notified_version >= alert.version) return;  // the webhook is done with it
  const Timestamp now = clock_.now();  // before the lock: a test's clock takes its own
  {
    MutexLock lock(shared_->mu);
    auto [it, added] = shared_->pending.try_emplace(alert.id);
    Pending& p = it->second;
    if (!added && p.alert.version >= alert.version) return;
    // A newer version takes the older one's place and its turn: a receiver that is down
    // is not asked more often for it.
    p.alert = alert;
    if (added) {
      p.next_attempt = now;
      p.backoff = options_.first_retry;
      shared_->due.emplace(now, alert.id);
    }
    shared_->woken = true;
  }
  shared_->cv.notify_all();
}

void AlertWebhook::mark_done(const Alert& alert, const char* why) {
  const Status marked = alerts_.mark_notified(alert.id, alert.version);
  if (!marked.ok() && log_) {
    log_("warn", "alert webhook: " + delivery_id(alert) + " was " + why +
                     " but could not be recorded (it is sent again after a restart): " +
                     marked.error().to_string());
  }
}

void AlertWebhook::wait_until(Timestamp at) {
  Clock::TimerId timer = 0;
  const bool timed = at != Timestamp::max();
  if (timed) {
    timer = clock_.schedule_at(at, [shared = shared_] {
      {
        MutexLock lock(shared->mu);
        shared->woken = true;
      }
      shared->cv.notify_all();
    });
  }
  {
    Shared& s = *shared_;
    MutexLock lock(s.mu);
    s.cv.wait(s.mu, [&s]() REQUIRES(s.mu) { return s.woken || s.stop; });
    s.woken = false;
  }
  if (timed) clock_.cancel(timer);
}

Status AlertWebhook::deliver(const Alert& alert) {
  const std::string body = R"({"type":"alert","alert":)" + alert_document(alert) + "}";
  const int64_t at = unix_seconds(clock_.now());
  const Headers headers = {{"Content-Type", "application/json"},
                           {"X-Drover-Event", "alert"},
                           {"X-Drover-Delivery", delivery_id(alert)},
                           {"X-Drover-Timestamp", std::to_string(at)},
                           {"X-Drover-Signature", signature(options_.secret, at, body)}};
  auto answer = client_->request("POST", path_, body, headers);
  std::string error;
  if (!answer.ok()) {
    client_->close();
    error = answer.error().to_string();
  } else if (answer->status < 200 || answer->status >= 300) {
    error = "HTTP " + std::to_string(answer->status) + " " + answer->body.substr(0, 200);
  } else {
    return ok_status();
  }
  // The path may carry the receiver's token (chat webhooks do): it stays out of the log.
  for (size_t at_path = error.find(path_); path_.size() > 1 && at_path != std::string::npos;
       at_path = error.find(path_, at_path)) {
    error.replace(at_path, path_.size(), "/…");
  }
  return Error{ErrorCode::kIo, error};
}

void AlertWebhook::run() {
  for (;;) {
    // Under the lock, what to do next: deliver `alert`, give up on it, or wait until `at`.
    const Timestamp now = clock_.now();
    Alert alert;
    bool give_up = false;
    Timestamp at = Timestamp::max();
    {
      MutexLock lock(shared_->mu);
      if (shared_->stop) return;
      if (!shared_->due.empty()) {
        const auto& [next_attempt, id] = *shared_->due.begin();
        if (next_attempt > now) {
          at = next_attempt;
        } else {
          auto it = shared_->pending.find(id);
          Pending& p = it->second;
          alert = p.alert;
          give_up = p.attempts > 0 && now - alert.updated_at > options_.give_up_after;
          if (give_up) {
            shared_->due.erase(shared_->due.begin());
            shared_->pending.erase(it);
            ++shared_->stats.dropped;
          }
        }
      }
    }
    if (alert.id.empty()) {
      wait_until(at);
      continue;
    }
    if (give_up) {
      if (log_) {
        log_("error", "alert webhook: gave up on " + delivery_id(alert) +
                          ", not delivered within " + format_duration(options_.give_up_after) +
                          " of the change");
      }
      mark_done(alert, "given up on");
      continue;
    }
    // Only what the store has durable leaves the server.
    Status sent = alerts_.settle();
    if (sent.ok()) sent = deliver(alert);
    if (sent.ok()) mark_done(alert, "delivered");  // before the next delivery
    const Timestamp after = clock_.now();
    Duration wait{0};
    {
      MutexLock lock(shared_->mu);
      auto it = shared_->pending.find(alert.id);
      Pending& p = it->second;  // only this thread removes entries
      shared_->due.erase({p.next_attempt, alert.id});
      ++p.attempts;
      if (sent.ok()) {
        ++shared_->stats.delivered;
        if (p.alert.version <= alert.version) {
          shared_->pending.erase(it);
        } else {
          p.next_attempt = after;  // a newer version came meanwhile
          p.backoff = options_.first_retry;
          shared_->due.emplace(p.next_attempt, alert.id);
        }
      } else {
        ++shared_->stats.failed_attempts;
        shared_->stats.last_error = sent.error().to_string();
        wait = p.backoff;
        p.next_attempt = after + wait;
        p.backoff = std::min(p.backoff * 2, options_.max_retry);
        shared_->due.emplace(p.next_attempt, alert.id);
      }
    }
    if (!sent.ok() && log_) {
      log_("warn", "alert webhook: " + delivery_id(alert) + " not delivered, retrying in " +
                       format_duration(wait) + ": " + sent.error().to_string());
    }
  }
}

}  // namespace drover::http
