// Golden lists: a test builds a text (every (state, event) pair of a state table and what it
// leads to, say) and compares it with a file checked in next to it, so that any change to
// what the code does shows up as a diff someone reviews. DROVER_UPDATE_GOLDEN=1 rewrites
// the files instead (then read the diff before committing it).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "base/result.h"

namespace drover::testing {

inline void expect_golden(const std::string& path, const std::string& actual) {
  if (std::getenv("DROVER_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "no golden file " << path << " (DROVER_UPDATE_GOLDEN=1 writes it)";
  const std::string expected{std::istreambuf_iterator<char>(in), {}};
  EXPECT_EQ(actual, expected) << "differs from " << path
                              << "; if the change is meant, DROVER_UPDATE_GOLDEN=1 rewrites it";
}

// One line per (state, event) pair, in enum order: "from --event--> to", or "refused" where
// `next` answers an error (which must be kConflict: a refused pair changes nothing).
template <typename State, typename Event, typename Next>
std::string every_pair(Next next) {
  std::string out;
  for (size_t s = 0; s < static_cast<size_t>(State::kCount); ++s) {
    for (size_t e = 0; e < static_cast<size_t>(Event::kCount); ++e) {
      const auto from = static_cast<State>(s);
      const auto event = static_cast<Event>(e);
      auto to = next(from, event);
      out += std::string(to_string(from)) + " --" + to_string(event) + "--> ";
      if (to.ok()) {
        out += to_string(*to);
      } else {
        EXPECT_EQ(to.error().code, ErrorCode::kConflict) << out;
        out += "refused";
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace drover::testing
