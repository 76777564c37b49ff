// A state machine as one table of (state, event) -> state rows, looked up in O(1). The three
// machines (a rollout's, a deployment's, the agent's update) are each one constant of this
// type: the rows are the whole truth, a pair without a row is refused, and a duplicated pair
// does not compile. State and Event are enums numbered from 0 whose last enumerator is
// kCount (fewer than 255 states).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace drover {

// Never defined and never called at run time: a table that calls it (a duplicated pair) is not
// a constant expression, which is a compile error.
void two_rows_for_one_state_and_event();

template <typename State, typename Event>
struct Transition {
  State from;
  Event event;
  State to;
};

template <typename State, typename Event>
class StateTable {
 public:
  static constexpr size_t kStates = static_cast<size_t>(State::kCount);
  static constexpr size_t kEvents = static_cast<size_t>(Event::kCount);
  static_assert(kStates < 255, "a state is stored in a byte, 255 meaning no row");

  template <size_t N>
  consteval explicit StateTable(const Transition<State, Event> (&rows)[N]) {
    for (auto& per_state : next_) per_state.fill(kNoRow);
    for (const auto& r : rows) {
      uint8_t& cell = next_.at(index(r.from)).at(index(r.event));
      if (cell != kNoRow) two_rows_for_one_state_and_event();
      cell = static_cast<uint8_t>(index(r.to));
    }
  }

  // The state after `event` in `state`, or std::nullopt when the table has no such row.
  constexpr std::optional<State> next(State state, Event event) const {
    const size_t s = index(state);
    const size_t e = index(event);
    if (s >= kStates || e >= kEvents || next_[s][e] == kNoRow) return std::nullopt;
    return static_cast<State>(next_[s][e]);
  }

 private:
  static constexpr uint8_t kNoRow = 255;
  template <typename E>
  static constexpr size_t index(E v) {
    return static_cast<size_t>(v);
  }
  std::array<std::array<uint8_t, kEvents>, kStates> next_{};
};

}  // namespace drover
