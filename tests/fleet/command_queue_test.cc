// CommandQueue: commands are written before anyone can see them, sent until the device
// reports, closed by a result, an expiry or a cancellation; an id is one command; a restart
// (a new queue over the same SQLite file) resumes where the last one stopped; a failed write
// changes nothing.
#include "fleet/command_queue.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>

#include "../common/forwarding_store.h"

namespace drover {
namespace {

using protocol::CommandAction;
using protocol::CommandOutcome;

// A memory store whose next write fails when told.
class FlakyStore final : public testing::ForwardingStore {
 public:
  FlakyStore() : ForwardingStore(make_memory_store()) {}
  Status apply(const WriteBatch& b) override {
    if (fail_) return io_error("disk full");
    return ForwardingStore::apply(b);
  }
  bool fail_ = false;
};

const Timestamp kStart = Timestamp(Duration(1'780'000'000'000));

CommandRequest reboot(const std::string& device, const std::string& id = "") {
  CommandRequest r;
  r.id = id;
  r.device_id = device;
  r.action = CommandAction::kReboot;
  r.requested_by = "test";
  return r;
}

TEST(CommandQueue, ACommandIsSentUntilTheDeviceReportsAndThenKeptAsHistory) {
  FlakyStore store;
  ManualClock clock(kStart);
  CommandQueue q(store, clock);
  bool created = false;
  auto c = q.queue(reboot("dev-1"), &created);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_TRUE(created);
  EXPECT_EQ(c->id, "cmd-1");
  EXPECT_EQ(c->state, CommandState::kQueued);
  EXPECT_EQ(c->expires_at, kStart + hours(24));
  // Written before it was queued.
  auto stored = store.get_command("cmd-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ(**stored, *c);

  EXPECT_TRUE(q.for_check_in("dev-2")->empty());  // another device's check-in
  clock.advance(minutes(5));
  auto sent = q.for_check_in("dev-1");
  ASSERT_TRUE(sent.ok());
  ASSERT_EQ(sent->size(), 1u);
  EXPECT_EQ((*sent)[0].state, CommandState::kSent);
  EXPECT_EQ((*sent)[0].sent_at, kStart + minutes(5));
  EXPECT_EQ((**store.get_command("cmd-1")).state, CommandState::kSent);
  // Sent again at the next check-in (the answer may have been lost); the first send stays.
  clock.advance(minutes(5));
  EXPECT_EQ((*q.for_check_in("dev-1"))[0].sent_at, kStart + minutes(5));

  auto done = q.record_result({"dev-1", "cmd-1", CommandOutcome::kSucceeded, 0, "bye"});
  ASSERT_TRUE(done.ok()) << done.error().to_string();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
  EXPECT_EQ(done->output, "bye");
  EXPECT_EQ(q.open_count(), 0u);
  EXPECT_TRUE(q.for_check_in("dev-1")->empty());
  // A result sent again changes nothing; another device's report of it is not found.
  auto again = q.record_result({"dev-1", "cmd-1", CommandOutcome::kFailed, 1, "late"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, CommandState::kSucceeded);
  EXPECT_EQ(q.record_result({"dev-2", "cmd-1", CommandOutcome::kFailed, 1, ""}).error().code,
            ErrorCode::kNotFound);
  auto history = q.history("dev-1", 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].state, CommandState::kSucceeded);
}

TEST(CommandQueue, AnIdIsOneCommandARetryGetsTheFirstAndAnotherUseIsRefused) {
  FlakyStore store;
  ManualClock clock(kStart);
  CommandQueue q(store, clock);
  bool created = false;
  ASSERT_TRUE(q.queue(reboot("dev-1", "fix-42"), &created).ok());
  EXPECT_TRUE(created);
  auto retry = q.queue(reboot("dev-1", "fix-42"), &created);
  ASSERT_TRUE(retry.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(q.open_count(), 1u);
  EXPECT_EQ(q.queue(reboot("dev-2", "fix-42")).error().code, ErrorCode::kAlreadyExists);
  CommandRequest other = reboot("dev-1", "fix-42");
  other.action = CommandAction::kClearUpdate;
  EXPECT_EQ(q.queue(other).error().code, ErrorCode::kAlreadyExists);
  // Ended, the id is still taken.
  ASSERT_TRUE(q.record_result({"dev-1", "fix-42", CommandOutcome::kSucceeded, 0, ""}).ok());
  ASSERT_TRUE(q.queue(reboot("dev-1", "fix-42"), &created).ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(q.open_count(), 0u);
}

TEST(CommandQueue, BadRequestsAndTooManyOpenCommandsAreRefusedWithNothingWritten) {
  FlakyStore store;
  ManualClock clock(kStart);
  CommandQueue q(store, clock, {.max_open_per_device = 2});
  CommandRequest no_name = reboot("dev-1");
  no_name.action = CommandAction::kRestartService;
  EXPECT_EQ(q.queue(no_name).error().code, ErrorCode::kInvalidArgument);
  CommandRequest shell = no_name;
  shell.argument = "sensord; rm -rf /";
  EXPECT_EQ(q.queue(shell).error().code, ErrorCode::kInvalidArgument);
  CommandRequest arg = reboot("dev-1");
  arg.argument = "now";
  EXPECT_EQ(q.queue(arg).error().code, ErrorCode::kInvalidArgument);
  CommandRequest forever = reboot("dev-1");
  forever.lifetime = days(31);
  EXPECT_EQ(q.queue(forever).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(q.queue(reboot("dev-1", "a b")).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE((*store.list_open_commands()).empty());
  // Nothing drawn from the id sequence for them either.
  ASSERT_TRUE(q.queue(reboot("dev-1")).ok());
  ASSERT_TRUE(q.queue(reboot("dev-1")).ok());
  EXPECT_EQ((*store.list_open_commands())[0].id, "cmd-1");
  auto third = q.queue(reboot("dev-1"));
  EXPECT_EQ(third.error().code, ErrorCode::kResourceExhausted);
  EXPECT_TRUE(q.queue(reboot("dev-2")).ok());  // the limit is per device
}

TEST(CommandQueue, AFailedWriteChangesNothingAndSendsNothing) {
  FlakyStore store;
  ManualClock clock(kStart);
  CommandQueue q(store, clock);
  ASSERT_TRUE(q.queue(reboot("dev-1", "c1")).ok());
  store.fail_ = true;
  EXPECT_EQ(q.queue(reboot("dev-1", "c2")).error().code, ErrorCode::kIo);
  EXPECT_EQ(q.open_count(), 1u);
  auto sent = q.for_check_in("dev-1");
  EXPECT_FALSE(sent.ok());  // the first send could not be written: nothing goes out
  EXPECT_EQ(q.open_for("dev-1")[0].state, CommandState::kQueued);
  EXPECT_FALSE(q.record_result({"dev-1", "c1", CommandOutcome::kSucceeded, 0, ""}).ok());
  EXPECT_FALSE(q.cancel("c1", "me").ok());
  EXPECT_EQ(q.open_count(), 1u);
  store.fail_ = false;
  ASSERT_EQ(q.for_check_in("dev-1")->size(), 1u);
}

TEST(CommandQueue, ExpiryAndCancellationCloseACommandAndAResultStillTellsTheTruth) {
  FlakyStore store;
  ManualClock clock(kStart);
  CommandQueue q(store, clock);
  CommandRequest soon = reboot("dev-1", "soon");
  soon.lifetime = minutes(10);
  ASSERT_TRUE(q.queue(soon).ok());
  ASSERT_TRUE(q.queue(reboot("dev-1", "later")).ok());
  ASSERT_TRUE(q.queue(reboot("dev-2", "other")).ok());
  clock.advance(minutes(10));
  auto sent = q.for_check_in("dev-1");  // the expired one is closed, not sent
  ASSERT_EQ(sent->size(), 1u);
  EXPECT_EQ((*sent)[0].id, "later");
  EXPECT_EQ((**store.get_command("soon")).state, CommandState::kExpired);

  auto cancelled = q.cancel("later", "token:abc (ops)");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, CommandState::kCancelled);
  EXPECT_EQ(cancelled->cancelled_by, "token:abc (ops)");
  EXPECT_EQ(q.cancel("later", "x").error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(q.cancel("nope", "x").error().code, ErrorCode::kNotFound);
  // The device had it before the cancellation and ran it: that is what happened.
  auto ran = q.record_result({"dev-1", "later", CommandOutcome::kSucceeded, 0, ""});
  ASSERT_TRUE(ran.ok());
  EXPECT_EQ(ran->state, CommandState::kSucceeded);

  clock.advance(hours(24));
  auto swept = q.expire_due();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 1u);
  EXPECT_EQ((**store.get_command("other")).state, CommandState::kExpired);
  EXPECT_EQ(q.open_count(), 0u);
}

TEST(CommandQueue, ARestartResumesTheOpenCommandsFromTheStore) {
  std::string dir = (std::filesystem::temp_directory_path() / "drover-commands-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/fleet.db";
  ManualClock clock(kStart);
  {
    auto store = open_sqlite_store(path);
    ASSERT_TRUE(store.ok());
    CommandQueue q(**store, clock);
    ASSERT_TRUE(q.queue(reboot("dev-1")).ok());
    ASSERT_TRUE(q.queue(reboot("dev-1")).ok());
    ASSERT_EQ(q.for_check_in("dev-1")->size(), 2u);
    ASSERT_TRUE(q.record_result({"dev-1", "cmd-1", CommandOutcome::kFailed, 3, "no"}).ok());
  }
  auto store = open_sqlite_store(path);
  ASSERT_TRUE(store.ok());
  CommandQueue q(**store, clock);
  ASSERT_TRUE(q.load().ok());
  EXPECT_EQ(q.open_count(), 1u);
  auto sent = q.for_check_in("dev-1");
  ASSERT_EQ(sent->size(), 1u);
  EXPECT_EQ((*sent)[0].id, "cmd-2");
  EXPECT_EQ((*sent)[0].state, CommandState::kSent);
  // New ids go on from the durable sequence: never one used before.
  EXPECT_EQ(q.queue(reboot("dev-1"))->id, "cmd-3");
  auto history = q.history("dev-1", 10);
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[2].id, "cmd-1");
  EXPECT_EQ((*history)[2].exit_code, 3);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover
