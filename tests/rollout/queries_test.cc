// RolloutQueries: the plan preview agrees with what start() then does and writes nothing;
// what a rollback could not send back is named; a store that fails is said, never taken for
// "not uploaded"; deployments of a rollout or device that does not exist are kNotFound.
#include "rollout/queries.h"

#include <gtest/gtest.h>

#include "../common/fleet_fixture.h"
#include "../common/forwarding_store.h"

namespace drover {
namespace {

using testing::Fleet;
using testing::simple_plan;

TEST(RolloutQueries, PreviewWritesNothingAndStartMakesWhatItSaid) {
  Fleet f;
  f.add_devices(7, "rev-a");
  f.add_devices(5, "rev-b");
  f.add_devices(2, "rev-b", "open", "other-type");  // not compatible: excluded
  RolloutQueries q(f.store(), *f.engine);
  const RolloutPlan plan = simple_plan();
  auto preview = q.preview(plan);
  ASSERT_TRUE(preview.ok()) << preview.error().to_string();
  EXPECT_EQ(preview->targets, 12u);
  EXPECT_EQ(preview->excluded.size(), 2u);
  ASSERT_EQ(preview->stages.size(), 2u);
  EXPECT_EQ(preview->stages[1].cumulative, 12u);
  EXPECT_EQ(preview->strata.at("rev-a"), 7u);
  EXPECT_EQ(preview->strata.at("rev-b"), 5u);
  EXPECT_TRUE(q.list()->empty());  // nothing was written

  const std::string id = f.start(plan);
  auto progress = f.engine->progress(id);
  ASSERT_TRUE(progress.ok());
  ASSERT_EQ(progress->per_stage.size(), preview->stages.size());
  for (size_t i = 0; i < preview->stages.size(); ++i)
    EXPECT_EQ(progress->per_stage[i].total(), preview->stages[i].adds) << "stage " << i;
  ASSERT_EQ(q.list()->size(), 1u);
}

TEST(RolloutQueries, PreviewRefusesAnInvalidPlanAndAnArtifactNotUploaded) {
  Fleet f;
  f.add_devices(3, "rev-a");
  RolloutQueries q(f.store(), *f.engine);
  RolloutPlan plan = simple_plan();
  plan.stages.clear();
  EXPECT_EQ(q.preview(plan).error().code, ErrorCode::kInvalidArgument);
  plan = simple_plan();
  plan.artifact_version = "9.9.9";
  auto missing = q.preview(plan);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(missing.error().message.find("firmware@9.9.9"), std::string::npos);
}

TEST(RolloutQueries, RollbackPreviewNamesWhoCouldNotBeSentBack) {
  Fleet f;
  f.add_devices(4, "rev-a");                          // run 1.0.0, which is uploaded
  f.add_devices(3, "rev-b", "open", "ctl", "0.9.0");  // run 0.9.0, which is not
  RolloutQueries q(f.store(), *f.engine);
  auto r = q.rollback_preview(simple_plan());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->download, 4u);
  EXPECT_EQ(r->switch_back, 0u);
  EXPECT_EQ(r->not_revertible, 3u);
  ASSERT_EQ(r->gaps.size(), 1u);
  EXPECT_EQ(r->gaps[0].version, "0.9.0");
  EXPECT_EQ(r->gaps[0].devices, 3u);
}

// Fails the lookup of one artifact version, as a store whose disk went away would.
class FailingLookupStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  bool fail = false;
  Result<std::optional<Artifact>> get_artifact(std::string_view n, std::string_view v) override {
    if (fail && v == "1.0.0") return io_error("disk I/O error");
    return ForwardingStore::get_artifact(n, v);
  }
};

TEST(RolloutQueries, AStoreThatFailsIsSaidNotTakenForAnArtifactNotUploaded) {
  auto owned = std::make_unique<FailingLookupStore>(make_memory_store());
  FailingLookupStore* store = owned.get();
  Fleet f(testing::at("2026-06-01T12:00:00Z"), std::move(owned));
  f.add_devices(4, "rev-a");
  RolloutQueries q(f.store(), *f.engine);
  store->fail = true;
  auto r = q.rollback_preview(simple_plan());
  ASSERT_FALSE(r.ok()) << "4 devices would have been called not revertible";
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_FALSE(q.preview(simple_plan()).ok());
  store->fail = false;
  EXPECT_TRUE(q.preview(simple_plan()).ok());
}

TEST(RolloutQueries, DeploymentsAndHistoryOfWhatExistsOnly) {
  Fleet f;
  f.add_devices(3, "rev-a");
  RolloutQueries q(f.store(), *f.engine);
  EXPECT_EQ(q.deployments("no-such-rollout", std::nullopt, "", 10).error().code,
            ErrorCode::kNotFound);
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto offer = f.check_in(f.ids[0]);
  ASSERT_TRUE(offer.has_value());
  ASSERT_TRUE(f.report(f.ids[0], *offer, protocol::Report::kDownloading).ok());

  auto page = q.deployments(id, std::nullopt, "", 2);
  ASSERT_TRUE(page.ok()) << page.error().to_string();
  EXPECT_EQ(page->rows.size(), 2u);
  EXPECT_EQ(page->matched, 3u);
  EXPECT_TRUE(page->more);

  auto d = q.deployment(id, f.ids[0]);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->deployment.state, DeploymentState::kDownloading);
  ASSERT_GE(d->history.size(), 2u);  // offered, then downloading
  EXPECT_EQ(d->history.back().state, DeploymentState::kDownloading);
  EXPECT_EQ(q.deployment(id, "not-a-device").error().code, ErrorCode::kNotFound);
}

// The timeline counts each device from when it was offered and when it reached its outcome:
// a device updated at minute 20 shows at the points after it and not before; a stratum's
// own timeline holds only its devices.
TEST(RolloutQueries, TheTimelineCountsOutcomesFromWhenTheyHappened) {
  Fleet f;
  f.add_devices(4, "rev-a");
  f.add_devices(2, "rev-b");
  RolloutQueries q(f.store(), *f.engine);
  EXPECT_EQ(q.timeline("rollout-9999", "", 10, f.clock.now()).error().code, ErrorCode::kNotFound);
  const Timestamp start = f.clock.now();
  const std::string id = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  // Minute 10: every device is offered; rev-a's first two update; rev-b's first fails.
  f.clock.advance(minutes(10));
  std::map<std::string, UpdateOffer> offers;
  for (const std::string& d : f.ids) {
    auto o = f.check_in(d);
    ASSERT_TRUE(o.has_value()) << d;
    offers[d] = *o;
  }
  f.clock.advance(minutes(10));  // minute 20
  f.install(f.ids[0], offers[f.ids[0]]);
  f.install(f.ids[1], offers[f.ids[1]]);
  f.install(f.ids[4], offers[f.ids[4]], protocol::Report::kRolledBack);
  f.clock.advance(minutes(20));  // minute 40: rev-a's other two
  f.install(f.ids[2], offers[f.ids[2]]);
  f.install(f.ids[3], offers[f.ids[3]]);

  auto t = q.timeline(id, "", 5, f.clock.now());  // minutes 0, 10, 20, 30, 40
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  ASSERT_EQ(t->at.size(), 5u);
  EXPECT_EQ(t->at.front(), start);
  EXPECT_EQ(t->at.back(), start + minutes(40));
  ASSERT_EQ(t->series.size(), 2u);  // the whole rollout, and its one stage
  const Timeline::Series& all = t->series[0];
  EXPECT_EQ(all.name, "all");
  EXPECT_EQ(all.offered, (std::vector<uint32_t>{0, 6, 6, 6, 6}));
  EXPECT_EQ(all.succeeded, (std::vector<uint32_t>{0, 0, 2, 2, 4}));
  EXPECT_EQ(all.failed, (std::vector<uint32_t>{0, 0, 1, 1, 1}));
  EXPECT_EQ(t->series[1].name, "stage:all");
  EXPECT_EQ(t->series[1].succeeded, all.succeeded);
  EXPECT_EQ(t->strata.at("rev-a"), 4u);
  EXPECT_EQ(t->strata.at("rev-b"), 2u);

  auto b = q.timeline(id, "rev-b", 5, f.clock.now());
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  ASSERT_EQ(b->series.size(), 1u);
  EXPECT_EQ(b->series[0].name, "stratum:rev-b");
  EXPECT_EQ(b->series[0].offered.back(), 2u);
  EXPECT_EQ(b->series[0].succeeded.back(), 0u);
  EXPECT_EQ(b->series[0].failed.back(), 1u);
  EXPECT_EQ(q.timeline(id, "rev-z", 5, f.clock.now()).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(q.timeline(id, "", 1, f.clock.now()).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(q.timeline(id, "", 1001, f.clock.now()).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover
