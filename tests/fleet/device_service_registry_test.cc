// DeviceService's operator-side use cases: update, decommission and the paged listing.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "../common/counting_store.h"
#include "../common/fleet_fixture.h"
#include "fleet/device_service.h"

namespace drover::testing {
namespace {

Device device(std::string id, std::string rev = "rev-a", std::string site = "open") {
  Device d;
  d.id = std::move(id);
  d.device_type = "ctl";
  d.hardware_revision = std::move(rev);
  d.site = std::move(site);
  d.connectivity = "ethernet";
  return d;
}

std::vector<std::string> ids_of(const DevicePage& page) {
  std::vector<std::string> out;
  for (const Device& d : page.devices) out.push_back(d.id);
  return out;
}

// ---------------------------------------------------------------- update

TEST(DeviceServiceUpdate, ChangesAreValidatedWrittenAndSurviveARestart) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(2, "rev-a");
  const std::string id = f.ids[0];
  const Device before = *f.service->device(id);
  const int writes = c.store->writes;
  auto changed = f.service->update(id, [](Device& d) {
    d.site = "north";
    d.tags = {"zeta", "alpha"};
    return ok_status();
  });
  ASSERT_TRUE(changed.ok()) << changed.error().to_string();
  EXPECT_EQ(changed->site, "north");
  EXPECT_EQ(changed->tags, (std::vector<std::string>{"alpha", "zeta"}));  // validated: sorted
  EXPECT_EQ(changed->installed, before.installed);
  EXPECT_EQ(c.store->writes, writes + 1);
  EXPECT_EQ(*f.service->device(id), *changed);
  EXPECT_EQ(f.store().get_device(id)->value(), *changed);
  EXPECT_EQ(*f.service->device(f.ids[1]), f.store().get_device(f.ids[1])->value());
  f.restart();
  EXPECT_EQ(*f.service->device(id), *changed);
}

TEST(DeviceServiceUpdate, AChangeThatChangesNothingWritesNothing) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(1, "rev-a");
  const int writes = c.store->writes;
  auto same = f.service->update(f.ids[0], [](Device&) { return ok_status(); });
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *f.service->device(f.ids[0]));
  EXPECT_EQ(c.store->writes, writes);
}

TEST(DeviceServiceUpdate, RefusedChangesWriteNothing) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(1, "rev-a");
  const std::string id = f.ids[0];
  const Device before = *f.service->device(id);
  const int writes = c.store->writes;

  auto unknown = f.service->update("nobody", [](Device&) { return ok_status(); });
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);

  // The change's own error comes back as it is.
  auto refused = f.service->update(id, [](Device& d) -> Status {
    d.site = "elsewhere";
    return Error{ErrorCode::kFailedPrecondition, "not now"};
  });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(refused.error().message, "not now");

  auto renamed = f.service->update(id, [](Device& d) {
    d.id = "someone-else";
    return ok_status();
  });
  ASSERT_FALSE(renamed.ok());
  EXPECT_EQ(renamed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(f.service->device("someone-else").has_value());

  auto invalid = f.service->update(id, [](Device& d) {
    d.tags = {"dup", "dup"};
    return ok_status();
  });
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, ErrorCode::kInvalidArgument);

  auto bad_site = f.service->update(id, [](Device& d) {
    d.site = "../etc";
    return ok_status();
  });
  ASSERT_FALSE(bad_site.ok());
  EXPECT_EQ(bad_site.error().code, ErrorCode::kInvalidArgument);

  // A store that refuses the write leaves the registry as it was.
  c.store->fail = true;
  auto io = f.service->update(id, [](Device& d) {
    d.site = "north";
    return ok_status();
  });
  ASSERT_FALSE(io.ok());
  EXPECT_EQ(io.error().code, ErrorCode::kIo);
  c.store->fail = false;

  EXPECT_EQ(c.store->writes, writes);
  EXPECT_EQ(*f.service->device(id), before);
  EXPECT_EQ(f.store().get_device(id)->value(), before);
  EXPECT_EQ(f.service->device_count(), 1u);
}

TEST(DeviceServiceUpdate, AnUpdatedInventoryIsSharedLikeACheckedInOne) {
  Fleet f;
  f.add_devices(3, "rev-a");
  EXPECT_EQ(f.service->distinct_inventories(), 1u);
  ASSERT_TRUE(f.service
                  ->update(f.ids[0],
                           [](Device& d) {
                             d.set_installed("firmware", "1.5.0");
                             return ok_status();
                           })
                  .ok());
  EXPECT_EQ(f.service->distinct_inventories(), 2u);
  // The device's next check-in with the same inventory changes nothing.
  auto r = f.service->check_in({f.ids[0], f.installed(f.ids[0]), UpdateState::kIdle});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*f.service->device(f.ids[0])->installed_version("firmware"), "1.5.0");
  ASSERT_TRUE(f.service
                  ->update(f.ids[0],
                           [](Device& d) {
                             d.set_installed("firmware", "1.0.0");
                             return ok_status();
                           })
                  .ok());
  EXPECT_EQ(f.service->distinct_inventories(), 1u);
}

// ---------------------------------------------------------------- decommission

TEST(DeviceServiceDecommission, RefusesCheckInsFromThenOnAndIsIdempotent) {
  Counted c;
  Fleet& f = *c.fleet;
  f.add_devices(2, "rev-a");
  const std::string id = f.ids[0];
  const int writes = c.store->writes;
  auto d = f.service->decommission(id);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_TRUE(d->decommissioned);
  EXPECT_TRUE(f.store().get_device(id)->value().decommissioned);
  EXPECT_EQ(c.store->writes, writes + 1);
  auto r = f.service->check_in({id, f.installed(id), UpdateState::kIdle});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  // The other device is untouched.
  EXPECT_FALSE(f.service->device(f.ids[1])->decommissioned);
  EXPECT_TRUE(f.service->check_in({f.ids[1], f.installed(f.ids[1]), UpdateState::kIdle}).ok());

  auto again = f.service->decommission(id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *d);
  EXPECT_EQ(c.store->writes, writes + 1);

  auto unknown = f.service->decommission("nobody");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(f.service->device_count(), 2u);

  f.restart();
  EXPECT_EQ(f.service->check_in({id, f.installed(id), UpdateState::kIdle}).error().code,
            ErrorCode::kFailedPrecondition);
}

TEST(DeviceServiceDecommission, ADecommissionedDeviceIsNoRolloutTarget) {
  Fleet f;
  f.add_devices(4, "rev-a");
  ASSERT_TRUE(f.service->decommission(f.ids[2]).ok());
  const std::string rollout = f.start(simple_plan({{"all", 100, 0, Duration(0)}}));
  auto r = f.engine->get(rollout);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->targets, 3u);
  auto dep = f.store().get_deployment(rollout, f.ids[2]);
  ASSERT_TRUE(dep.ok());
  EXPECT_FALSE(dep->has_value());
}

// ---------------------------------------------------------------- list

TEST(DeviceServiceList, AnEmptyRegistryHasOneEmptyPage) {
  Fleet f;
  for (size_t limit : {size_t{1}, size_t{100}}) {
    DeviceQuery q;
    q.limit = limit;
    const DevicePage page = f.service->list(q);
    EXPECT_TRUE(page.devices.empty());
    EXPECT_EQ(page.matched, 0u);
    EXPECT_EQ(page.next, "");
    q.after = "anything";
    EXPECT_TRUE(f.service->list(q).devices.empty());
  }
}

TEST(DeviceServiceList, ALimitLargerThanTheMatchesIsOnePage) {
  Fleet f;
  f.add_devices(3, "rev-a");
  DeviceQuery q;
  q.limit = 50;
  const DevicePage page = f.service->list(q);
  EXPECT_EQ(ids_of(page),
            (std::vector<std::string>{"rev-a-open-1", "rev-a-open-2", "rev-a-open-3"}));
  EXPECT_EQ(page.matched, 3u);
  EXPECT_EQ(page.next, "");
  // The records are the registry's, whole.
  EXPECT_EQ(page.devices[1], *f.service->device("rev-a-open-2"));
  // Exactly as many as the limit: still the last page.
  q.limit = 3;
  EXPECT_EQ(f.service->list(q).next, "");
  EXPECT_EQ(f.service->list(q).devices.size(), 3u);
  // One fewer: a next page, starting after the last id shown.
  q.limit = 2;
  const DevicePage first = f.service->list(q);
  EXPECT_EQ(ids_of(first), (std::vector<std::string>{"rev-a-open-1", "rev-a-open-2"}));
  EXPECT_EQ(first.next, "rev-a-open-2");
  q.after = first.next;
  const DevicePage second = f.service->list(q);
  EXPECT_EQ(ids_of(second), (std::vector<std::string>{"rev-a-open-3"}));
  EXPECT_EQ(second.matched, 3u);
  EXPECT_EQ(second.next, "");
}

TEST(DeviceServiceList, AfterBeyondTheLastIdIsAnEmptyLastPage) {
  Fleet f;
  f.add_devices(5, "rev-a");
  DeviceQuery q;
  q.after = "rev-a-open-5";  // the largest id
  DevicePage page = f.service->list(q);
  EXPECT_TRUE(page.devices.empty());
  EXPECT_EQ(page.matched, 5u);  // matched ignores `after`
  EXPECT_EQ(page.next, "");
  q.after = "zzz";
  page = f.service->list(q);
  EXPECT_TRUE(page.devices.empty());
  EXPECT_EQ(page.next, "");
  // An `after` that is no id starts at the next id in order.
  q.after = "rev-a-open-2x";
  EXPECT_EQ(ids_of(f.service->list(q)),
            (std::vector<std::string>{"rev-a-open-3", "rev-a-open-4", "rev-a-open-5"}));
  q.after = "a";
  EXPECT_EQ(f.service->list(q).devices.size(), 5u);
}

TEST(DeviceServiceList, PagesCoverEveryMatchOnceInIdOrder) {
  Fleet f;
  // Provisioned out of id order, in several batches, so positions are not id order.
  std::vector<std::string> all;
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<Device> ds;
    for (int i = 0; i < 37; ++i) {
      const int n = (i * 53 + batch * 7) % 149;
      Device d = device("dev-" + std::to_string(n) + "-" + std::to_string(batch),
                        n % 3 == 0 ? "rev-b" : "rev-a");
      all.push_back(d.id);
      ds.push_back(d);
    }
    ASSERT_TRUE(f.service->provision(ds).ok());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  for (size_t limit : {size_t{1}, size_t{7}, size_t{37}, size_t{147}, size_t{148}, size_t{1000}}) {
    DeviceQuery q;
    q.limit = limit;
    std::vector<std::string> seen;
    int pages = 0;
    while (true) {
      const DevicePage page = f.service->list(q);
      ++pages;
      ASSERT_LE(page.devices.size(), limit);
      EXPECT_EQ(page.matched, all.size());
      for (const Device& d : page.devices) seen.push_back(d.id);
      if (page.next.empty()) break;
      ASSERT_EQ(page.devices.size(), limit);
      ASSERT_EQ(page.next, page.devices.back().id);
      q.after = page.next;
      ASSERT_LT(pages, 1000) << "paging does not end";
    }
    EXPECT_EQ(seen, all) << "limit " << limit;
    EXPECT_EQ(pages, static_cast<int>((all.size() + limit - 1) / limit)) << "limit " << limit;
  }
  // With a filter, matched counts the filtered set only.
  DeviceQuery q;
  q.filter.hardware_revisions = {"rev-b"};
  q.limit = 10;
  std::vector<std::string> rev_b;
  for (const std::string& id : all) {
    if (f.service->device(id)->hardware_revision == "rev-b") rev_b.push_back(id);
  }
  ASSERT_GT(rev_b.size(), 10u);
  std::vector<std::string> seen;
  for (;;) {
    const DevicePage page = f.service->list(q);
    EXPECT_EQ(page.matched, rev_b.size());
    for (const Device& d : page.devices) seen.push_back(d.id);
    if (page.next.empty()) break;
    q.after = page.next;
  }
  EXPECT_EQ(seen, rev_b);
}

TEST(DeviceServiceList, FiltersEnrollmentAndDecommissioned) {
  Fleet f;
  Device a = device("a", "rev-a", "open");
  a.tags = {"east", "pilot"};
  Device b = device("b", "rev-b", "open");
  b.tags = {"pilot"};
  b.connectivity = "lte";
  Device c = device("c", "rev-a", "north");
  c.enrollment = Enrollment::kPending;
  Device d = device("d", "rev-a", "open");
  d.decommissioned = true;
  d.device_type = "gateway";
  ASSERT_TRUE(f.service->provision({d, c, b, a}).ok());

  auto run = [&](const DeviceQuery& q) {
    const DevicePage page = f.service->list(q);
    EXPECT_EQ(page.matched, page.devices.size());
    return ids_of(page);
  };
  using V = std::vector<std::string>;
  DeviceQuery q;
  EXPECT_EQ(run(q), (V{"a", "b", "c", "d"}));
  q.filter.hardware_revisions = {"rev-a"};
  EXPECT_EQ(run(q), (V{"a", "c", "d"}));
  q.filter.hardware_revisions = {"rev-a", "rev-b"};  // any of
  EXPECT_EQ(run(q), (V{"a", "b", "c", "d"}));
  q = {};
  q.filter.tags = {"pilot"};
  EXPECT_EQ(run(q), (V{"a", "b"}));
  q.filter.tags = {"pilot", "east"};  // all of
  EXPECT_EQ(run(q), (V{"a"}));
  q = {};
  q.filter.sites = {"north"};
  EXPECT_EQ(run(q), (V{"c"}));
  q = {};
  q.filter.connectivity = {"lte"};
  EXPECT_EQ(run(q), (V{"b"}));
  q = {};
  q.filter.device_types = {"gateway"};
  EXPECT_EQ(run(q), (V{"d"}));
  q = {};
  q.enrollment = Enrollment::kPending;
  EXPECT_EQ(run(q), (V{"c"}));
  q.enrollment = Enrollment::kAccepted;
  EXPECT_EQ(run(q), (V{"a", "b", "d"}));
  q.enrollment = Enrollment::kRejected;
  EXPECT_EQ(run(q), V{});
  q = {};
  q.decommissioned = true;
  EXPECT_EQ(run(q), (V{"d"}));
  q.decommissioned = false;
  EXPECT_EQ(run(q), (V{"a", "b", "c"}));
  // Everything at once.
  q.filter.hardware_revisions = {"rev-a"};
  q.filter.sites = {"open"};
  q.enrollment = Enrollment::kAccepted;
  EXPECT_EQ(run(q), (V{"a"}));
  // Decommissioning through the service is seen by the listing.
  ASSERT_TRUE(f.service->decommission("a").ok());
  EXPECT_EQ(run(q), V{});
}

// A limit so large that limit + 1 wraps around must not break the listing (the HTTP API
// caps the limit, but DeviceQuery is a public type); limit 0 counts only.
TEST(DeviceServiceList, TheLargestLimitIsOnePage) {
  Fleet f;
  f.add_devices(3, "rev-a");
  DeviceQuery q;
  q.limit = SIZE_MAX;
  const DevicePage page = f.service->list(q);
  EXPECT_EQ(page.devices.size(), 3u);
  EXPECT_EQ(page.next, "");
  q.limit = 0;
  const DevicePage count = f.service->list(q);
  EXPECT_TRUE(count.devices.empty());
  EXPECT_EQ(count.matched, 3u);
}

}  // namespace
}  // namespace drover::testing
