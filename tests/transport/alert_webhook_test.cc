// The alert webhook against a real HTTP receiver on loopback, on simulated time: each change
// arrives signed (HMAC-SHA256 over timestamp and body) and is recorded as delivered; a
// receiver that is down or refuses is retried with backoff, changes made meanwhile folded
// into the newest; what was not delivered before a restart is sent after it, and only that;
// a delivery that could not be recorded is sent again (at least once); a change nobody took
// within a day is given up on, the log says so, and it is recorded as done — as are changes
// already that old when the webhook starts.
#include "transport/http/alert_webhook.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../common/shared_manual_clock.h"
#include "store/store.h"
#include "transport/http/server.h"

namespace drover::http {
namespace {

using drover::testing::SharedManualClock;

constexpr char kSecret[] = "webhook-secret-0123456789";

// The alerts as the Remediator keeps them, straight on a store; a failure of the record can
// be ordered.
class StoreAlerts final : public health::AlertRecords {
 public:
  explicit StoreAlerts(Store& store) : store_(store) {}
  Result<std::vector<Alert>> list(const Store::AlertQuery& query) override {
    return store_.list_alerts(query);
  }
  Status mark_notified(std::string_view id, uint64_t version) override {
    if (fail_marks > 0) {
      --fail_marks;
      return Error{ErrorCode::kIo, "disk full"};
    }
    auto a = store_.get_alert(id);
    if (!a.ok()) return a.error();
    if (!*a) return not_found("no alert");
    if (version <= (*a)->notified_version || version > (*a)->version) return ok_status();
    (*a)->notified_version = version;
    WriteBatch b;
    b.alerts = {**a};
    return store_.apply(b);
  }
  Status mark_notified_all(std::span<const std::pair<std::string, uint64_t>> done) override {
    ++batches;
    return AlertRecords::mark_notified_all(done);
  }
  Status settle() override { return ok_status(); }  // a memory store: nothing in flight
  std::atomic<int> fail_marks{0};
  std::atomic<int> batches{0};  // calls of mark_notified_all

 private:
  Store& store_;
};

// What the receiver was sent.
struct Received {
  std::string delivery, timestamp, signature, body;
  int answered = 0;
};

class AlertWebhookTest : public ::testing::Test {
 protected:
  AlertWebhookTest() : store_(make_memory_store()), alerts_(*store_) {}
  ~AlertWebhookTest() override {
    webhook_.reset();
    if (receiver_) receiver_->stop();
  }

  // A receiver on `port` (0: any) that answers `status` (read at each request).
  void start_receiver(uint16_t port = 0) {
    ServerOptions o;
    o.port = port;
    auto server = HttpServer::start(o, [this](const Request& r) {
      const int status = status_.load();
      MutexLock lock(mu_);
      received_.push_back({std::string(r.header("X-Drover-Delivery")),
                           std::string(r.header("X-Drover-Timestamp")),
                           std::string(r.header("X-Drover-Signature")), r.body, status});
      return Response::json(status, "{}");
    });
    ASSERT_TRUE(server.ok()) << server.error().to_string();
    receiver_ = std::move(*server);
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(receiver_->port()) + "/hook";
  }

  void start_webhook(std::string url, Duration give_up_after = hours(24)) {
    AlertWebhookOptions o;
    o.give_up_after = give_up_after;
    o.url = std::move(url);
    o.secret = kSecret;
    o.first_retry = seconds(1);
    o.max_retry = seconds(8);
    o.timeout = seconds(5);
    auto made = AlertWebhook::start(alerts_, clock_, o,
                                    [this](const std::string& level, const std::string& message) {
                                      MutexLock lock(mu_);
                                      log_.push_back(level + ": " + message);
                                    });
    ASSERT_TRUE(made.ok()) << made.error().to_string();
    webhook_ = std::move(*made);
  }

  // Writes an alert as the Remediator does, then tells the webhook (when there is one).
  Alert change(const std::string& id, uint64_t version) {
    Alert a;
    auto stored = store_->get_alert(id);
    EXPECT_TRUE(stored.ok());
    if (stored.ok() && *stored) a = **stored;
    a.id = id;
    a.device_id = "dev-1";
    a.rule = "no-data";
    a.condition = "no_data";
    a.summary = "checks in but sends nothing";
    if (a.opened_at == Timestamp{}) a.opened_at = clock_.now();
    a.updated_at = clock_.now();
    a.version = version;
    WriteBatch b;
    b.alerts = {a};
    EXPECT_TRUE(store_->apply(b).ok());
    if (webhook_) webhook_->notify(a);
    return a;
  }

  // Until `done`: whenever the webhook is waiting for a retry (it has armed a timer),
  // simulated time jumps to it; while it works, the test waits (in real time, a millisecond
  // at a time). So time moves only when the webhook is idle, and every attempt it would make
  // by then, it has made. At most `limit` of simulated time.
  template <typename Done>
  bool until(Done done, Duration limit = minutes(5)) {
    const Timestamp end = clock_.now() + limit;
    for (int spins = 0; spins < 20'000; ++spins) {
      if (done()) return true;
      const std::optional<Timestamp> due = clock_.next_due();
      if (due && *due <= end) {
        clock_.advance(std::max(Duration{0}, *due - clock_.now()));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return done();
  }
  size_t accepted() {
    MutexLock lock(mu_);
    size_t n = 0;
    for (const Received& r : received_) n += r.answered == 200 ? 1 : 0;
    return n;
  }
  std::vector<Received> received() {
    MutexLock lock(mu_);
    return received_;
  }
  uint64_t notified(const std::string& id) {
    auto a = store_->get_alert(id);
    return a.ok() && *a ? (*a)->notified_version : 0;
  }

  SharedManualClock clock_{Timestamp(seconds(1'700'000'000))};
  std::unique_ptr<Store> store_;
  StoreAlerts alerts_;
  std::unique_ptr<HttpServer> receiver_;
  std::unique_ptr<AlertWebhook> webhook_;
  std::atomic<int> status_{200};
  Mutex mu_;
  std::vector<Received> received_ GUARDED_BY(mu_);
  std::vector<std::string> log_ GUARDED_BY(mu_);
};

// The value a receiver computes: checked against OpenSSL's command line, outside this code:
// printf '1700000000.{"type":"alert"}' | openssl dgst -sha256 -hmac webhook-secret-0123456789
TEST(AlertWebhookSignature, IsHmacSha256OfTimestampDotBody) {
  EXPECT_EQ(AlertWebhook::signature(kSecret, 1'700'000'000, R"({"type":"alert"})"),
            "sha256=b688c36432321c8502598914db913d07ba73327382fc7f2ca1abadd15459fc51");
  EXPECT_NE(AlertWebhook::signature(kSecret, 1'700'000'001, R"({"type":"alert"})"),
            AlertWebhook::signature(kSecret, 1'700'000'000, R"({"type":"alert"})"));
}

TEST_F(AlertWebhookTest, EachChangeArrivesSignedAndIsRecordedAsDelivered) {
  ASSERT_NO_FATAL_FAILURE(start_receiver());
  change("alert-1", 1);  // before the webhook starts: found among the undelivered
  ASSERT_NO_FATAL_FAILURE(start_webhook(url()));
  ASSERT_TRUE(until([&] { return accepted() == 1; }));
  ASSERT_TRUE(until([&] { return notified("alert-1") == 1; }));
  change("alert-1", 2);
  ASSERT_TRUE(until([&] { return accepted() == 2; }));
  ASSERT_TRUE(until([&] { return notified("alert-1") == 2; }));

  const std::vector<Received> got = received();
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < got.size(); ++i) {
    const Received& r = got[i];
    EXPECT_EQ(r.delivery, "alert-1." + std::to_string(i + 1));
    const int64_t at = std::stoll(r.timestamp);
    EXPECT_EQ(r.signature, AlertWebhook::signature(kSecret, at, r.body));
    EXPECT_NE(r.signature, AlertWebhook::signature("another-secret-012345", at, r.body));
    auto doc = nlohmann::json::parse(r.body);
    EXPECT_EQ(doc.at("type"), "alert");
    EXPECT_EQ(doc.at("alert").at("id"), "alert-1");
    EXPECT_EQ(doc.at("alert").at("version"), i + 1);
    EXPECT_EQ(doc.at("alert").at("state"), "open");
    EXPECT_EQ(doc.at("alert").at("summary"), "checks in but sends nothing");
  }
  // The store's version and updated_at stayed the Remediator's.
  auto stored = store_->get_alert("alert-1");
  ASSERT_TRUE(stored.ok() && *stored);
  EXPECT_EQ((*stored)->version, 2u);
  EXPECT_EQ(webhook_->stats().delivered, 2u);
  EXPECT_EQ(webhook_->stats().pending, 0u);
}

TEST_F(AlertWebhookTest, AReceiverDownOrRefusingIsRetriedWithBackoffAndGetsTheNewestVersion) {
  ASSERT_NO_FATAL_FAILURE(start_receiver());
  const uint16_t port = receiver_->port();
  const std::string hook = url();
  receiver_->stop();  // down: connections refused
  receiver_.reset();
  ASSERT_NO_FATAL_FAILURE(start_webhook(hook));
  change("alert-1", 1);
  ASSERT_TRUE(until([&] { return webhook_->stats().failed_attempts >= 3; }));
  EXPECT_FALSE(webhook_->stats().last_error.empty());
  // Up again, but refusing (a misconfigured receiver answers 401): still retried.
  status_ = 401;
  ASSERT_NO_FATAL_FAILURE(start_receiver(port));
  ASSERT_TRUE(until([&] { return received().size() >= 3; }));
  change("alert-1", 2);  // a change meanwhile: it takes the older one's place
  change("alert-1", 3);
  status_ = 200;
  ASSERT_TRUE(until([&] { return accepted() == 1; }));
  ASSERT_TRUE(until([&] { return notified("alert-1") == 3; }));
  const std::vector<Received> got = received();
  EXPECT_EQ(got.back().delivery, "alert-1.3");  // the newest, whole
  // Attempts back off: 1, 2, 4 s while the receiver was down (not heard), then every 8 s.
  std::vector<int64_t> at;
  for (const Received& r : got) at.push_back(std::stoll(r.timestamp));
  ASSERT_EQ(at.size(), 4u);
  for (size_t i = 1; i < at.size(); ++i) EXPECT_EQ(at[i] - at[i - 1], 8) << i;
  // Nothing older reached the receiver after something newer.
  uint64_t newest = 0;
  for (const Received& r : got) {
    const uint64_t v = std::stoull(r.delivery.substr(r.delivery.find('.') + 1));
    EXPECT_GE(v, newest);
    newest = std::max(newest, v);
  }
  MutexLock lock(mu_);
  ASSERT_GE(log_.size(), 3u);
  EXPECT_NE(log_[0].find("alert-1.1 not delivered, retrying in 1s"), std::string::npos) << log_[0];
  EXPECT_NE(log_[1].find("retrying in 2s"), std::string::npos) << log_[1];
  for (const std::string& line : log_) {
    EXPECT_EQ(line.find("/hook"), std::string::npos) << "the URL's path is kept out: " << line;
  }
}

TEST_F(AlertWebhookTest, AfterARestartOnlyWhatWasNotDeliveredIsSentAndAnUnrecordedOneAgain) {
  ASSERT_NO_FATAL_FAILURE(start_receiver());
  ASSERT_NO_FATAL_FAILURE(start_webhook(url()));
  change("alert-1", 1);
  ASSERT_TRUE(until([&] { return notified("alert-1") == 1; }));
  // Delivered, but the record of it fails (the disk): sent again after a restart.
  alerts_.fail_marks = 1;
  change("alert-2", 1);
  ASSERT_TRUE(until([&] { return accepted() == 2; }));
  // Not delivered before the server stops: the receiver is refusing.
  status_ = 503;
  change("alert-3", 1);
  ASSERT_TRUE(until([&] { return received().size() >= 3; }));
  webhook_.reset();  // the server stops
  EXPECT_EQ(notified("alert-1"), 1u);
  EXPECT_EQ(notified("alert-2"), 0u);
  EXPECT_EQ(notified("alert-3"), 0u);
  const size_t before = received().size();

  status_ = 200;
  ASSERT_NO_FATAL_FAILURE(start_webhook(url()));  // the server starts again
  ASSERT_TRUE(until([&] { return notified("alert-2") == 1 && notified("alert-3") == 1; }));
  std::vector<std::string> after;
  for (const Received& r : received()) after.push_back(r.delivery);
  after.erase(after.begin(), after.begin() + static_cast<std::ptrdiff_t>(before));
  std::sort(after.begin(), after.end());
  EXPECT_EQ(after, (std::vector<std::string>{"alert-2.1", "alert-3.1"}));
  MutexLock lock(mu_);
  bool told = false;
  for (const std::string& line : log_) {
    told |= line.find("alert-2.1 was delivered but could not be recorded") != std::string::npos;
  }
  EXPECT_TRUE(told);
}

TEST_F(AlertWebhookTest, AChangeNobodyTookInTimeIsGivenUpOnAndLogged) {
  ASSERT_NO_FATAL_FAILURE(start_receiver());
  status_ = 500;
  ASSERT_NO_FATAL_FAILURE(start_webhook(url(), minutes(10)));  // a day in production
  change("alert-1", 1);
  ASSERT_TRUE(until([&] { return webhook_->stats().dropped == 1; }, minutes(15)));
  EXPECT_EQ(webhook_->stats().pending, 0u);
  // Recorded as done: no later start tries it again.
  EXPECT_TRUE(until([&] { return notified("alert-1") == 1; }));
  // Tried at 0, 1, 3, 7 and 15 s, then every 8 s up to 599 s; given up on at 607 s.
  const size_t tries = received().size();
  EXPECT_EQ(tries, 78u);
  clock_.advance(minutes(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(received().size(), tries);  // no more attempts
  MutexLock lock(mu_);
  ASSERT_FALSE(log_.empty());
  EXPECT_EQ(log_.back(),
            "error: alert webhook: gave up on alert-1.1, not delivered within 10m of the change");
}

// A server down for days, or a webhook configured on a server with a history of alerts:
// changes already past the give-up age are recorded as done without being sent.
TEST_F(AlertWebhookTest, ResolvedAlertsAlreadyTooOldAtStartAreRecordedAsDoneUnsent) {
  ASSERT_NO_FATAL_FAILURE(start_receiver());
  Alert old = change("alert-1", 3);
  old.state = AlertState::kResolved;  // long over
  old.resolved_at = old.updated_at;
  old.resolved_by = "drover";
  WriteBatch b;
  b.alerts = {old};
  ASSERT_TRUE(store_->apply(b).ok());
  change("alert-2", 2);  // as old, but still open: a person may have to act
  clock_.advance(hours(48));
  change("alert-3", 1);
  ASSERT_NO_FATAL_FAILURE(start_webhook(url()));
  EXPECT_EQ(notified("alert-1"), 3u);  // recorded as the webhook starts, all in one call
  EXPECT_EQ(alerts_.batches.load(), 1);
  ASSERT_TRUE(until([&] { return notified("alert-2") == 2 && notified("alert-3") == 1; }));
  std::vector<std::string> sent;
  for (const Received& r : received()) sent.push_back(r.delivery);
  std::sort(sent.begin(), sent.end());
  EXPECT_EQ(sent, (std::vector<std::string>{"alert-2.2", "alert-3.1"}));
  EXPECT_EQ(webhook_->stats().skipped, 1u);
  MutexLock lock(mu_);
  ASSERT_FALSE(log_.empty());
  EXPECT_EQ(log_.front(),
            "warn: alert webhook: 1 resolved alerts' changes older than 1d were not sent "
            "(recorded as done)");
}

TEST_F(AlertWebhookTest, BadOptionsAreRefused) {
  AlertWebhookOptions o;
  o.url = "http://127.0.0.1:1/hook";
  o.secret = "short";
  auto short_secret = AlertWebhook::start(alerts_, clock_, o);
  ASSERT_FALSE(short_secret.ok());
  EXPECT_EQ(short_secret.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(short_secret.error().message.find("at least 16 bytes"), std::string::npos);
  o.secret = kSecret;
  o.url = "ftp://example.com/hook";
  auto scheme = AlertWebhook::start(alerts_, clock_, o);
  ASSERT_FALSE(scheme.ok());
  EXPECT_EQ(scheme.error().code, ErrorCode::kInvalidArgument);
  o.url = "http://127.0.0.1:1/hook?token=1";
  auto query = AlertWebhook::start(alerts_, clock_, o);
  ASSERT_FALSE(query.ok());
  EXPECT_EQ(query.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover::http
