// Framed records, the unit of every telemetry file that is appended to (write-ahead log
// segments, checkpoints, chunk indexes): a little-endian u32 CRC-32 of the length and the
// payload, a little-endian u32 length, the payload. A crash can leave a file ending in a
// partial record; a reader stops at the first record that is incomplete or fails its
// checksum, and the writer cuts the file back to there. Layout in docs/formats.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace drover::telemetry {

inline constexpr uint32_t kMaxRecordBytes = 64u << 20;
inline constexpr size_t kRecordHeaderBytes = 8;

// Appends one framed record holding `payload` (at most kMaxRecordBytes) to `out`.
void append_record(std::string& out, std::string_view payload);

struct RecordScan {
  std::vector<std::string_view> records;  // views into the scanned bytes
  uint64_t valid_bytes = 0;               // where the last whole, intact record ends
  bool damaged = false;                   // something followed that was not a whole record
};

// The records at the start of `bytes`, up to the first damaged or incomplete one.
RecordScan scan_records(std::string_view bytes);

// A little writer and reader of the payloads' fields: varints, zigzag varints, raw
// little-endian doubles, length-prefixed strings. The reader fails (sticky) instead of
// reading past the end.
class FieldWriter {
 public:
  explicit FieldWriter(std::string& out) : out_(out) {}
  void varint(uint64_t v);
  void signed_varint(int64_t v);
  void f64(double v);
  void bytes(std::string_view s);  // length-prefixed
 private:
  std::string& out_;
};

class FieldReader {
 public:
  explicit FieldReader(std::string_view in) : in_(in) {}
  uint64_t varint();
  int64_t signed_varint();
  double f64();
  std::string_view bytes();
  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }

 private:
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace drover::telemetry
