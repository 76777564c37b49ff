#include "telemetry/bit_stream.h"

namespace drover::telemetry {

void BitWriter::write(uint64_t bits, int width) {
  // Between calls fewer than 8 bits are pending, so 56 more always fit in acc_.
  if (width > 56) {
    write(bits >> 32, width - 32);
    write(bits, 32);
    return;
  }
  if (width == 0) return;
  acc_ = (acc_ << width) | (bits & ((uint64_t{1} << width) - 1));
  used_ += width;
  while (used_ >= 8) {
    used_ -= 8;
    out_.push_back(static_cast<char>(acc_ >> used_));
  }
  acc_ &= (uint64_t{1} << used_) - 1;
}

void BitWriter::write_varint(uint64_t value) {
  while (value >= 0x80) {
    write((value & 0x7f) | 0x80, 8);
    value >>= 7;
  }
  write(value, 8);
}

std::string BitWriter::finish() && {
  if (used_ > 0) out_.push_back(static_cast<char>(acc_ << (8 - used_)));
  used_ = 0;
  acc_ = 0;
  return std::move(out_);
}

uint64_t BitReader::read(int width) {
  if (width == 0 || !ok_) return 0;
  if (static_cast<uint64_t>(width) > bits_left()) {
    ok_ = false;
    return 0;
  }
  uint64_t value = 0;
  int need = width;
  while (need > 0) {
    auto byte = static_cast<uint8_t>(data_[pos_ >> 3]);
    int offset = static_cast<int>(pos_ & 7);
    int avail = 8 - offset;
    int take = need < avail ? need : avail;
    uint64_t chunk = (byte >> (avail - take)) & ((1u << take) - 1);
    value = (take == 64) ? chunk : (value << take) | chunk;
    need -= take;
    pos_ += static_cast<uint64_t>(take);
  }
  return value;
}

uint64_t BitReader::read_varint() {
  uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    uint64_t byte = read(8);
    if (!ok_) return 0;
    if (shift == 63 && (byte & 0x7e) != 0) break;  // more than 64 bits
    value |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  ok_ = false;
  return 0;
}

}  // namespace drover::telemetry
