// A fleet over a store that counts its writes and can be told to fail them, for tests that
// check what reaches the store (nothing, on a check-in that changes nothing) and that a
// failed write changes nothing.
#pragma once

#include <memory>

#include "fleet_fixture.h"
#include "forwarding_store.h"

namespace drover::testing {

class CountingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  int writes = 0;
  bool fail = false;  // every apply() fails with kIo while set
  Status apply(const WriteBatch& b) override {
    if (fail) return io_error("disk full");
    ++writes;
    return ForwardingStore::apply(b);
  }
};

struct Counted {
  Counted() {
    auto owned = std::make_unique<CountingStore>(make_memory_store());
    store = owned.get();
    fleet = std::make_unique<Fleet>(at("2026-06-01T12:00:00Z"), std::move(owned));
  }
  CountingStore* store;
  std::unique_ptr<Fleet> fleet;
};

}  // namespace drover::testing
