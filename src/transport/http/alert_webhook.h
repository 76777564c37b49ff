// AlertWebhook: every change of an alert POSTed to a receiver the operator names (a chat
// bridge, a pager, a ticket system), signed so the receiver can tell it came from this
// server, and retried until the receiver takes it (docs/api/operator.md "Alert webhook").
//
// A delivery is {"type": "alert", "alert": <the alert as GET /api/v1/alerts/{id} shows it>},
// the alert's whole state at its newest version: changes that come faster than the receiver
// takes them are folded into one (a receiver keeps the highest version of each alert). Its
// headers: X-Drover-Delivery "<alert id>.<version>" (the same on every retry: the receiver's
// key against duplicates), X-Drover-Timestamp (Unix seconds when it was signed) and
// X-Drover-Signature "sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>".
//
// Nothing is lost to a restart, and nothing leaves that a crash could take back. A change is
// sent only once the store has it durable (AlertRecords::settle). A version counts as
// delivered only when the receiver answered 2xx, and that is written to the alert
// (notified_version) before the next delivery; at start, every alert whose newest version
// the webhook is not done with is sent again — at least once, so a receiver dedupes by
// X-Drover-Delivery. Any other answer, or none, is retried with backoff (per alert, doubling
// from first_retry to max_retry; one delivery at a time). A change still undelivered
// give_up_after after it was made, after at least one attempt, is given up on: the log says
// so, and it is recorded as done (notified_version) so no later start tries it again.
// Resolved alerts whose last change is already that old when the webhook starts (a server
// down for days, a webhook configured on a server with a history of alerts) are recorded as
// done unsent, counted in one log line; an unresolved one is sent however old.
//
// Thread-safety: notify() and stats() from any thread (notify() is the Remediator's listener,
// called with its lock held: it only queues); deliveries run on the webhook's own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/result.h"
#include "health/remediator.h"
#include "model/alert.h"
#include "transport/http/client.h"

namespace drover::http {

struct AlertWebhookOptions {
  std::string url;      // http[s]://host[:port]/path
  std::string secret;   // the HMAC key, shared with the receiver: at least 16 bytes
  std::string ca_file;  // https: the CA certificates (PEM) to trust; empty: the system's
  Duration first_retry = seconds(1);
  Duration max_retry = minutes(5);
  Duration give_up_after = hours(24);
  Duration timeout = seconds(10);  // connecting, and each step of a request
};

struct AlertWebhookStats {
  uint64_t delivered = 0;        // versions the receiver accepted
  uint64_t failed_attempts = 0;  // deliveries that will be tried again
  uint64_t dropped = 0;          // changes given up on (older than give_up_after)
  uint64_t skipped = 0;          // changes already that old at start: never sent
  size_t pending = 0;            // alerts with a version still to deliver
  std::string last_error;
};

class AlertWebhook {
 public:
  // Called with a line for the log (a failed attempt, a change given up on), from the
  // webhook's thread.
  using LogFn = std::function<void(const std::string& level, const std::string& message)>;

  // Checks the options, queues every alert whose newest version its receiver does not have,
  // and starts the thread. kInvalidArgument for a bad URL, a short secret, an unusable
  // ca_file; the store's error when the alerts cannot be listed.
  static Result<std::unique_ptr<AlertWebhook>> start(health::AlertRecords& alerts, Clock& clock,
                                                     AlertWebhookOptions options, LogFn log = {});
  ~AlertWebhook();  // stop()
  AlertWebhook(const AlertWebhook&) = delete;
  AlertWebhook& operator=(const AlertWebhook&) = delete;

  // Queues the alert's newest version (an older one than queued changes nothing).
  void notify(const Alert& alert);
  // Stops the thread: a delivery under way is finished (bounded by the timeout); what is
  // still queued stays undelivered in the store, for the next start.
  void stop();
  // What it has done so far, and how much is queued.
  AlertWebhookStats stats() const;

  // The X-Drover-Signature value for `body` signed at `unix_seconds`.
  static std::string signature(std::string_view secret, int64_t unix_seconds,
                               std::string_view body);

 private:
  AlertWebhook(health::AlertRecords& alerts, Clock& clock, AlertWebhookOptions options, LogFn log);
  void run();
  // One attempt; the error when it did not land (the URL's path left out: it may hold a
  // token).
  Status deliver(const Alert& alert);
  // Records that the webhook is done with `alert`'s version; a failure is logged.
  void mark_done(const Alert& alert, const char* why);
  // Waits until `at` on the clock, a notify() or stop(), whichever comes first.
  void wait_until(Timestamp at);

  health::AlertRecords& alerts_;
  Clock& clock_;
  const AlertWebhookOptions options_;
  LogFn log_;
  std::string base_url_;
  std::string path_;
  std::unique_ptr<HttpClient> client_;  // the thread's only

  struct Pending {
    Alert alert;
    Timestamp next_attempt{};
    Duration backoff{0};
    uint64_t attempts = 0;  // of any of its versions
  };
  // What the thread waits on and works from; a clock timer may outlive the webhook, so it
  // holds this, not the webhook.
  struct Shared {
    Mutex mu;
    CondVar cv;
    bool woken GUARDED_BY(mu) = false;
    bool stop GUARDED_BY(mu) = false;
    std::map<std::string, Pending> pending GUARDED_BY(mu);           // by alert id
    std::set<std::pair<Timestamp, std::string>> due GUARDED_BY(mu);  // (next attempt, id)
    AlertWebhookStats stats GUARDED_BY(mu);
  };
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::thread thread_;
};

}  // namespace drover::http
