#include "agent/update_machine.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "../common/golden.h"

namespace drover::agent {
namespace {

using S = UpdateStep;
using E = UpdateEvent;

TEST(UpdateMachine, TheHappyPathEndsIdleAfterCommitting) {
  S s = S::kIdle;
  for (E e :
       {E::kOffer, E::kDownloaded, E::kVerified, E::kWindowOpen, E::kInstalled, E::kBootedNew}) {
    auto next = next_step(s, e);
    ASSERT_TRUE(next.ok()) << to_string(s) << " " << to_string(e);
    s = *next;
  }
  EXPECT_EQ(s, S::kCommitting);
  EXPECT_EQ(*next_step(s, E::kCommitted), S::kIdle);
}

TEST(UpdateMachine, FailuresBeforeTheSlotIsTouchedEndTheAttemptAfterItRollBack) {
  EXPECT_EQ(*next_step(S::kDownloading, E::kFailed), S::kIdle);
  EXPECT_EQ(*next_step(S::kVerifying, E::kFailed), S::kIdle);
  EXPECT_EQ(*next_step(S::kReady, E::kFailed), S::kIdle);
  EXPECT_EQ(*next_step(S::kReady, E::kDropped), S::kIdle);  // called off before the install
  EXPECT_EQ(*next_step(S::kInstalling, E::kFailed), S::kRollingBack);
  EXPECT_EQ(*next_step(S::kRebooting, E::kBootedOld), S::kRollingBack);
  EXPECT_EQ(*next_step(S::kCommitting, E::kFailed), S::kRollingBack);
  EXPECT_EQ(*next_step(S::kCommitting, E::kCommitTimeout), S::kRollingBack);
  EXPECT_EQ(*next_step(S::kRollingBack, E::kRolledBack), S::kIdle);
  // A switch back has nothing to fetch: the kept image waits for its window like any other.
  EXPECT_EQ(*next_step(S::kIdle, E::kOfferKept), S::kReady);
  EXPECT_FALSE(next_step(S::kDownloading, E::kOfferKept).ok());
}

// Every (step, event) pair is either a row or refused with kConflict; exactly 18 are rows.
// Once a slot is touched, the only way back to Idle is a commit or a finished rollback.
TEST(UpdateMachine, TheTableIsClosedAndNeverDropsATouchedSlot) {
  int rows = 0;
  for (int si = 0; si < kUpdateStepCount; ++si) {
    for (int ei = 0; ei < kUpdateEventCount; ++ei) {
      const auto s = static_cast<S>(si);
      const auto e = static_cast<E>(ei);
      auto next = next_step(s, e);
      if (!next.ok()) {
        EXPECT_EQ(next.error().code, ErrorCode::kConflict);
        continue;
      }
      ++rows;
      if (touches_slots(s) && *next == S::kIdle) {
        EXPECT_TRUE(e == E::kCommitted || e == E::kRolledBack)
            << to_string(s) << " --" << to_string(e) << "--> idle";
      }
    }
  }
  EXPECT_EQ(rows, 19);
}

// Every (step, event) pair against the golden list: a change to the table is a change to
// golden/update_machine.txt.
TEST(UpdateMachine, TheTableIsTheGoldenList) {
  const std::string all = testing::every_pair<S, E>(next_step);
  testing::expect_golden(std::string(GOLDEN_DIR) + "/update_machine.txt", all);
}

TEST(UpdateMachine, NamesRoundTrip) {
  std::set<std::string> names;
  for (int si = 0; si < kUpdateStepCount; ++si) {
    const auto s = static_cast<S>(si);
    names.insert(to_string(s));
    EXPECT_EQ(*parse_update_step(to_string(s)), s);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kUpdateStepCount));
  EXPECT_FALSE(parse_update_step("exploding").ok());
}

}  // namespace
}  // namespace drover::agent
