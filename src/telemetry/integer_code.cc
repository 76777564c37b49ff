#include "telemetry/integer_code.h"

#include <algorithm>
#include <vector>

namespace drover::telemetry {
namespace {

using CodeLengths = std::array<uint8_t, kLengthSymbols>;

// Huffman code lengths for the symbols with a nonzero count, at most kMaxCodeLength long.
// A single used symbol gets length 0 (it needs no bits). When the optimal code is deeper
// than the limit, the counts are flattened (halved, kept nonzero) until it fits: slightly
// worse than optimal, only for sequences with extremely skewed lengths.
CodeLengths code_lengths(LengthHistogram counts) {
  CodeLengths lengths{};
  for (;;) {
    struct Node {
      uint64_t weight;
      int left;
      int right;
    };
    std::vector<Node> nodes;
    std::vector<int> queue;  // indexes into nodes, a min-heap by weight
    for (int s = 0; s < kLengthSymbols; ++s) {
      if (counts[s] == 0) continue;
      nodes.push_back({counts[s], -1, s});
      queue.push_back(static_cast<int>(nodes.size()) - 1);
    }
    if (queue.size() <= 1) {
      lengths.fill(0);
      return lengths;
    }
    auto heavier = [&](int a, int b) {
      return nodes[a].weight != nodes[b].weight ? nodes[a].weight > nodes[b].weight : a > b;
    };
    std::make_heap(queue.begin(), queue.end(), heavier);
    while (queue.size() > 1) {
      std::pop_heap(queue.begin(), queue.end(), heavier);
      int a = queue.back();
      queue.pop_back();
      std::pop_heap(queue.begin(), queue.end(), heavier);
      int b = queue.back();
      queue.pop_back();
      nodes.push_back({nodes[a].weight + nodes[b].weight, a, b});
      queue.push_back(static_cast<int>(nodes.size()) - 1);
      std::push_heap(queue.begin(), queue.end(), heavier);
    }
    // Depth of every leaf: walk from the root.
    lengths.fill(0);
    std::vector<std::pair<int, int>> stack{{queue.front(), 0}};
    int deepest = 0;
    while (!stack.empty()) {
      auto [node, depth] = stack.back();
      stack.pop_back();
      if (nodes[node].left < 0) {
        lengths[nodes[node].right] = static_cast<uint8_t>(depth);
        deepest = std::max(deepest, depth);
      } else {
        stack.emplace_back(nodes[node].left, depth + 1);
        stack.emplace_back(nodes[node].right, depth + 1);
      }
    }
    if (deepest <= kMaxCodeLength) return lengths;
    for (auto& c : counts) {
      if (c != 0) c = std::max<uint32_t>(1, c / 2);
    }
  }
}

// The range of used symbols: [first, last], or first > last when none is used.
std::pair<int, int> used_range(const LengthHistogram& counts) {
  int first = 0;
  while (first < kLengthSymbols && counts[first] == 0) ++first;
  int last = kLengthSymbols - 1;
  while (last >= 0 && counts[last] == 0) --last;
  return {first, last};
}

uint64_t payload_bits(int length) { return length <= 1 ? 0 : static_cast<uint64_t>(length - 1); }

// Canonical codes: shorter lengths first, then by symbol; codes count up within a length.
std::array<uint32_t, kLengthSymbols> canonical_codes(const CodeLengths& lengths) {
  std::array<uint32_t, kLengthSymbols> codes{};
  uint32_t code = 0;
  for (int len = 1; len <= kMaxCodeLength; ++len) {
    for (int s = 0; s < kLengthSymbols; ++s) {
      if (lengths[s] == len) codes[s] = code++;
    }
    code <<= 1;
  }
  return codes;
}

}  // namespace

LengthHistogram histogram_of(std::span<const uint64_t> values) {
  LengthHistogram h{};
  for (uint64_t v : values) ++h[bit_length(v)];
  return h;
}

uint64_t coded_bits(const LengthHistogram& histogram) {
  auto [first, last] = used_range(histogram);
  uint64_t bits = 14;
  if (first > last) return bits;
  CodeLengths lengths = code_lengths(histogram);
  if (first < last) bits += 4 * static_cast<uint64_t>(last - first + 1);
  for (int s = first; s <= last; ++s) {
    bits += uint64_t{histogram[s]} * (lengths[s] + payload_bits(s));
  }
  return bits;
}

void write_integers(BitWriter& out, std::span<const uint64_t> values) {
  LengthHistogram histogram = histogram_of(values);
  auto [first, last] = used_range(histogram);
  if (first > last) {  // no values: an empty table
    out.write(0, 7);
    out.write(0, 7);
    return;
  }
  out.write(static_cast<uint64_t>(first), 7);
  out.write(static_cast<uint64_t>(last), 7);
  CodeLengths lengths = code_lengths(histogram);
  if (first < last) {
    for (int s = first; s <= last; ++s) out.write(lengths[s], 4);
  }
  auto codes = canonical_codes(lengths);
  for (uint64_t v : values) {
    int len = bit_length(v);
    out.write(codes[len], lengths[len]);
    if (len > 1) out.write(v, len - 1);  // write() keeps the low bits: the leading one drops
  }
}

bool read_integers(BitReader& in, std::span<uint64_t> out) {
  int first = static_cast<int>(in.read(7));
  int last = static_cast<int>(in.read(7));
  if (!in.ok() || last >= kLengthSymbols || first > last) return out.empty() && in.ok();
  auto decode_payload = [&in](int len) -> uint64_t {
    if (len <= 1) return static_cast<uint64_t>(len);
    return (uint64_t{1} << (len - 1)) | in.read(len - 1);
  };
  if (first == last) {
    for (auto& v : out) v = decode_payload(first);
    return in.ok();
  }
  // Canonical decoding tables: how many codes of each length, the first code of each
  // length, and the symbols in code order.
  std::array<int, kMaxCodeLength + 1> per_length{};
  std::array<uint8_t, kLengthSymbols> by_code{};
  int used = 0;
  CodeLengths lengths{};
  for (int s = first; s <= last; ++s) {
    lengths[s] = static_cast<uint8_t>(in.read(4));
    if (lengths[s] != 0) ++per_length[lengths[s]];
  }
  if (!in.ok()) return false;
  // A prefix code must be complete and not oversubscribed (Kraft sum exactly 1): an
  // encoder never writes anything else, and it makes every bit sequence decodable.
  uint64_t kraft = 0;
  for (int len = 1; len <= kMaxCodeLength; ++len) {
    kraft += static_cast<uint64_t>(per_length[len]) << (kMaxCodeLength - len);
  }
  if (kraft != (uint64_t{1} << kMaxCodeLength)) return false;
  for (int len = 1; len <= kMaxCodeLength; ++len) {
    for (int s = first; s <= last; ++s) {
      if (lengths[s] == len) by_code[used++] = static_cast<uint8_t>(s);
    }
  }
  for (auto& v : out) {
    uint32_t code = 0;
    int first_code = 0;  // the first canonical code of the current length
    int index = 0;       // where the current length's symbols start in by_code
    for (int len = 1; len <= kMaxCodeLength; ++len) {
      code = (code << 1) | static_cast<uint32_t>(in.read(1));
      int offset = static_cast<int>(code) - first_code;
      if (offset < per_length[len]) {
        v = decode_payload(by_code[index + offset]);
        break;
      }
      index += per_length[len];
      first_code = (first_code + per_length[len]) << 1;
    }
    if (!in.ok()) return false;
  }
  return true;
}

}  // namespace drover::telemetry
