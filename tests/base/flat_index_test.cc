#include "base/flat_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace drover {
namespace {

// Every value find() visits under `hash`, in visiting order (fn never stops it).
std::vector<uint64_t> all_under(const FlatIndex& index, uint64_t hash) {
  std::vector<uint64_t> seen;
  EXPECT_FALSE(index.find(hash, [&](uint64_t v) {
    seen.push_back(v);
    return false;
  }));
  return seen;
}

// A hash for test key i whose low bits spread over the table like a real hash's would.
uint64_t test_hash(uint64_t i) { return FlatIndex::hash("key-" + std::to_string(i)); }

// ---------------------------------------------------------------- the index

TEST(FlatIndex, AnEmptyIndexFindsNothing) {
  const FlatIndex index;
  EXPECT_EQ(index.size(), 0u);
  int calls = 0;
  for (uint64_t h : {uint64_t{0}, uint64_t{1}, uint64_t{42}, UINT64_MAX}) {
    EXPECT_FALSE(index.find(h, [&](uint64_t) {
      ++calls;
      return true;
    }));
    uint64_t value = 7;
    EXPECT_FALSE(index.first(h, value));
    EXPECT_EQ(value, 7u);  // untouched
    index.prefetch(h);     // no slots: must not touch memory
  }
  EXPECT_EQ(calls, 0);

  FlatIndex reserved;
  reserved.reserve(100);
  EXPECT_EQ(reserved.size(), 0u);
  EXPECT_TRUE(all_under(reserved, test_hash(1)).empty());
}

TEST(FlatIndex, FindsEachOfManyValuesUnderItsOwnHash) {
  FlatIndex index;
  constexpr uint64_t kN = 5000;
  for (uint64_t i = 0; i < kN; ++i) index.insert(test_hash(i), i * 3 + 1);
  EXPECT_EQ(index.size(), kN);
  for (uint64_t i = 0; i < kN; ++i) {
    // Other hashes' values may share the probe run; the one stored under this hash is there.
    const auto seen = all_under(index, test_hash(i));
    ASSERT_EQ(seen.size(), 1u) << i;
    EXPECT_EQ(seen[0], i * 3 + 1) << i;
  }
  for (uint64_t i = kN; i < kN + 100; ++i) EXPECT_TRUE(all_under(index, test_hash(i)).empty());
}

TEST(FlatIndex, ExtremeHashesAreStoredLikeAnyOther) {
  // 0 marks an empty slot inside the index, so a hash of 0 must still be findable.
  FlatIndex index;
  index.insert(0, 10);
  index.insert(UINT64_MAX, 20);
  index.insert(uint64_t{1} << 63, 30);
  EXPECT_EQ(all_under(index, 0), std::vector<uint64_t>{10});
  EXPECT_EQ(all_under(index, UINT64_MAX), std::vector<uint64_t>{20});
  EXPECT_EQ(all_under(index, uint64_t{1} << 63), std::vector<uint64_t>{30});
  // A value of 0 is a value like any other.
  index.insert(test_hash(1), 0);
  EXPECT_EQ(all_under(index, test_hash(1)), std::vector<uint64_t>{0});
}

TEST(FlatIndex, VisitsEveryValueStoredUnderTheSameHash) {
  FlatIndex index;
  const uint64_t shared = test_hash(7);
  index.insert(test_hash(1), 100);
  for (uint64_t v = 0; v < 5; ++v) index.insert(shared, v);
  index.insert(test_hash(2), 200);
  const auto seen = all_under(index, shared);
  EXPECT_EQ(std::multiset<uint64_t>(seen.begin(), seen.end()),
            (std::multiset<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(all_under(index, test_hash(1)), std::vector<uint64_t>{100});
  EXPECT_EQ(all_under(index, test_hash(2)), std::vector<uint64_t>{200});
}

TEST(FlatIndex, HashesThatShareTheirLowBitsAreKeptApart) {
  // Both start probing at the same slot whatever the table size; each must see only its own.
  const uint64_t a = 0x0000'0000'0000'1230;
  const uint64_t b = 0x7700'0000'0000'1230;
  FlatIndex index;
  for (uint64_t v = 0; v < 4; ++v) {
    index.insert(a, v);
    index.insert(b, 100 + v);
  }
  const auto in_a = all_under(index, a);
  const auto in_b = all_under(index, b);
  EXPECT_EQ(std::set<uint64_t>(in_a.begin(), in_a.end()), (std::set<uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(std::set<uint64_t>(in_b.begin(), in_b.end()), (std::set<uint64_t>{100, 101, 102, 103}));
  EXPECT_EQ(in_a.size(), 4u);
  EXPECT_EQ(in_b.size(), 4u);
}

TEST(FlatIndex, FindStopsAtTheFirstValueFnAccepts) {
  FlatIndex index;
  const uint64_t h = test_hash(3);
  for (uint64_t v = 10; v < 15; ++v) index.insert(h, v);

  int calls = 0;
  EXPECT_TRUE(index.find(h, [&](uint64_t) { return ++calls == 3; }));
  EXPECT_EQ(calls, 3);

  // Accepting one particular value: the walk ends on it, having visited it exactly once.
  std::vector<uint64_t> visited;
  EXPECT_TRUE(index.find(h, [&](uint64_t v) {
    visited.push_back(v);
    return v == 12;
  }));
  ASSERT_FALSE(visited.empty());
  EXPECT_EQ(visited.back(), 12u);
  EXPECT_EQ(std::count(visited.begin(), visited.end(), uint64_t{12}), 1);
  EXPECT_LE(visited.size(), 5u);

  // Never accepted: every value is visited once and find reports false.
  calls = 0;
  EXPECT_FALSE(index.find(h, [&](uint64_t) {
    ++calls;
    return false;
  }));
  EXPECT_EQ(calls, 5);
}

TEST(FlatIndex, FirstGivesAValueStoredUnderTheHash) {
  FlatIndex index;
  index.insert(test_hash(1), 11);
  index.insert(test_hash(2), 21);
  index.insert(test_hash(2), 22);
  uint64_t v = 0;
  ASSERT_TRUE(index.first(test_hash(1), v));
  EXPECT_EQ(v, 11u);
  ASSERT_TRUE(index.first(test_hash(2), v));
  EXPECT_TRUE(v == 21 || v == 22) << v;
  // first() returns what a stopping find() would have stopped on.
  uint64_t found_first = 0;
  index.find(test_hash(2), [&](uint64_t x) {
    found_first = x;
    return true;
  });
  EXPECT_EQ(v, found_first);
  v = 99;
  EXPECT_FALSE(index.first(test_hash(3), v));
  EXPECT_EQ(v, 99u);
}

TEST(FlatIndex, GrowingPastTheReservationKeepsEveryValue) {
  FlatIndex index;
  index.reserve(4);
  const uint64_t shared = test_hash(999'999);
  constexpr uint64_t kN = 3000;
  std::multiset<uint64_t> expected_shared;
  for (uint64_t i = 0; i < kN; ++i) {
    index.insert(test_hash(i), i);
    if (i % 50 == 0) {  // a run of equal hashes carried through every rehash
      index.insert(shared, 1'000'000 + i);
      expected_shared.insert(1'000'000 + i);
    }
    // Spot-check mid-growth: the earliest value is never lost.
    if ((i & (i - 1)) == 0) {
      ASSERT_EQ(all_under(index, test_hash(0)), std::vector<uint64_t>{0}) << "after " << i;
    }
  }
  EXPECT_EQ(index.size(), kN + expected_shared.size());
  for (uint64_t i = 0; i < kN; ++i) {
    ASSERT_EQ(all_under(index, test_hash(i)), std::vector<uint64_t>{i}) << i;
  }
  const auto seen = all_under(index, shared);
  EXPECT_EQ(std::multiset<uint64_t>(seen.begin(), seen.end()), expected_shared);

  // Reserving less than is held changes nothing; reserving more keeps everything too.
  index.reserve(1);
  index.reserve(100'000);
  EXPECT_EQ(index.size(), kN + expected_shared.size());
  for (uint64_t i = 0; i < kN; i += 97) {
    EXPECT_EQ(all_under(index, test_hash(i)), std::vector<uint64_t>{i}) << i;
  }
  const auto seen_after = all_under(index, shared);
  EXPECT_EQ(std::multiset<uint64_t>(seen_after.begin(), seen_after.end()), expected_shared);
}

TEST(FlatIndex, ClearForgetsEverythingAndTheIndexIsReusable) {
  FlatIndex index;
  for (uint64_t i = 0; i < 100; ++i) index.insert(test_hash(i), i);
  index.clear();
  EXPECT_EQ(index.size(), 0u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_TRUE(all_under(index, test_hash(i)).empty()) << i;
  uint64_t v = 0;
  EXPECT_FALSE(index.first(test_hash(5), v));

  index.insert(test_hash(5), 55);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(all_under(index, test_hash(5)), std::vector<uint64_t>{55});
  EXPECT_TRUE(all_under(index, test_hash(6)).empty());
}

// ---------------------------------------------------------------- the key hash

TEST(FlatIndexHash, EqualKeysHashEqually) {
  // Separate buffers with the same bytes, at different alignments.
  const std::string a = "device-000123";
  const std::string buffer = "xyz" + a + "tail";
  EXPECT_EQ(FlatIndex::hash(a), FlatIndex::hash(std::string_view(buffer).substr(3, a.size())));
  EXPECT_EQ(FlatIndex::hash(""), FlatIndex::hash(std::string_view()));
}

TEST(FlatIndexHash, KeysDifferingByOneByteOrLengthHashApart) {
  EXPECT_NE(FlatIndex::hash("ab"), FlatIndex::hash("ac"));
  EXPECT_NE(FlatIndex::hash("ab"), FlatIndex::hash("ba"));
  EXPECT_NE(FlatIndex::hash("ab"), FlatIndex::hash("a"));
  EXPECT_NE(FlatIndex::hash("ab"), FlatIndex::hash("abc"));
  EXPECT_NE(FlatIndex::hash(""), FlatIndex::hash(std::string_view("\0", 1)));
  // Trailing zero bytes are part of the key.
  EXPECT_NE(FlatIndex::hash("ab"), FlatIndex::hash(std::string_view("ab\0", 3)));
  EXPECT_NE(FlatIndex::hash(std::string_view("ab\0", 3)),
            FlatIndex::hash(std::string_view("ab\0\0", 4)));
  // Exactly one word against one word and a zero tail.
  EXPECT_NE(FlatIndex::hash("abcdefgh"), FlatIndex::hash(std::string_view("abcdefgh\0", 9)));
  // Bytes with the high bit set.
  EXPECT_NE(FlatIndex::hash("\xff"), FlatIndex::hash("\x7f"));
}

TEST(FlatIndexHash, EveryByteOfLongKeysCounts) {
  for (size_t len : {7u, 8u, 9u, 15u, 16u, 17u, 24u, 31u, 128u}) {
    std::string key;
    for (size_t i = 0; i < len; ++i) key.push_back(static_cast<char>('a' + i % 26));
    const uint64_t h = FlatIndex::hash(key);
    EXPECT_EQ(h, FlatIndex::hash(std::string(key))) << len;
    std::set<uint64_t> seen{h};
    for (size_t i = 0; i < len; ++i) {
      std::string changed = key;
      changed[i] = static_cast<char>(changed[i] ^ 1);
      const uint64_t hc = FlatIndex::hash(changed);
      EXPECT_NE(hc, h) << "length " << len << ", byte " << i;
      seen.insert(hc);
    }
    EXPECT_EQ(seen.size(), len + 1) << len;  // every one-byte change hashes differently
    EXPECT_NE(FlatIndex::hash(key + '\0'), h) << len;
    EXPECT_NE(FlatIndex::hash(key.substr(0, len - 1)), h) << len;
  }
}

TEST(FlatIndexHash, ManyShortIdsHashDistinctly) {
  // Device ids as fleets name them: no two of these may share a hash.
  std::set<uint64_t> hashes;
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i) hashes.insert(FlatIndex::hash("dev-" + std::to_string(i)));
  EXPECT_EQ(hashes.size(), static_cast<size_t>(kN));
}

}  // namespace
}  // namespace drover
