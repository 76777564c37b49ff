// Bit-level writing and reading for the chunk codec: bits are packed most significant first
// into bytes. The reader never reads past its input; a read beyond the end marks it failed
// (sticky) and returns zeros, so a decoder checks ok() once per section, not per bit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace drover::telemetry {

class BitWriter {
 public:
  // Appends the low `width` bits of `bits` (width 0..64).
  void write(uint64_t bits, int width);
  // Unsigned LEB128-style, seven bits a group, for header fields.
  void write_varint(uint64_t value);
  // Pads the last byte with zero bits and returns the bytes written.
  std::string finish() &&;
  uint64_t bit_count() const { return out_.size() * 8 + used_; }

 private:
  std::string out_;
  uint64_t acc_ = 0;  // the pending bits, right-aligned
  int used_ = 0;      // how many bits of acc_ are pending (< 8 between calls)
};

class BitReader {
 public:
  explicit BitReader(std::string_view bytes) : data_(bytes) {}
  // The next `width` bits (0..64), or 0 with ok() false once the input is exhausted.
  uint64_t read(int width);
  bool read_bit() { return read(1) != 0; }
  // A varint of at most ten groups; a longer or truncated one fails the reader.
  uint64_t read_varint();
  bool ok() const { return ok_; }
  uint64_t bits_left() const { return data_.size() * 8 - pos_; }

 private:
  std::string_view data_;
  uint64_t pos_ = 0;  // in bits
  bool ok_ = true;
};

inline uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t unzigzag(uint64_t z) { return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1)); }

}  // namespace drover::telemetry
