#include "telemetry/record_log.h"

#include <zlib.h>

#include <bit>
#include <cstring>

#include "telemetry/bit_stream.h"

namespace drover::telemetry {
namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  return v;
}

// zlib's CRC-32 over the length field and the payload, so a damaged length is caught too.
uint32_t checksum(std::string_view length_field, std::string_view payload) {
  uLong crc = crc32_z(0, nullptr, 0);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(length_field.data()), length_field.size());
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(payload.data()), payload.size());
  return static_cast<uint32_t>(crc);
}

}  // namespace

void append_record(std::string& out, std::string_view payload) {
  std::string length;
  put_u32(length, static_cast<uint32_t>(payload.size()));
  put_u32(out, checksum(length, payload));
  out += length;
  out += payload;
}

RecordScan scan_records(std::string_view bytes) {
  RecordScan scan;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < kRecordHeaderBytes) break;
    uint32_t crc = get_u32(bytes.substr(at));
    std::string_view length_field = bytes.substr(at + 4, 4);
    uint32_t length = get_u32(length_field);
    if (length > kMaxRecordBytes || bytes.size() - at - kRecordHeaderBytes < length) break;
    std::string_view payload = bytes.substr(at + kRecordHeaderBytes, length);
    if (checksum(length_field, payload) != crc) break;
    scan.records.push_back(payload);
    at += kRecordHeaderBytes + length;
  }
  scan.valid_bytes = at;
  scan.damaged = at < bytes.size();
  return scan;
}

void FieldWriter::varint(uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out_.append(buf, n);
}
void FieldWriter::signed_varint(int64_t v) { varint(zigzag(v)); }
void FieldWriter::f64(double v) {
  auto bits = std::bit_cast<uint64_t>(v);
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  out_.append(buf, 8);
}
void FieldWriter::bytes(std::string_view s) {
  varint(s.size());
  out_ += s;
}

uint64_t FieldReader::varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in_.empty()) break;
    auto byte = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    if (shift == 63 && byte > 1) break;
    v |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return v;
  }
  ok_ = false;
  in_ = {};
  return 0;
}
int64_t FieldReader::signed_varint() { return unzigzag(varint()); }
double FieldReader::f64() {
  if (in_.size() < 8) {
    ok_ = false;
    in_ = {};
    return 0;
  }
  uint64_t bits = 0;
  for (int i = 7; i >= 0; --i)
    bits = (bits << 8) | static_cast<uint8_t>(in_[static_cast<size_t>(i)]);
  in_.remove_prefix(8);
  return std::bit_cast<double>(bits);
}
std::string_view FieldReader::bytes() {
  uint64_t n = varint();
  if (!ok_ || n > in_.size()) {
    ok_ = false;
    in_ = {};
    return {};
  }
  std::string_view s = in_.substr(0, n);
  in_.remove_prefix(n);
  return s;
}

}  // namespace drover::telemetry
