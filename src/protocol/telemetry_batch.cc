#include "protocol/telemetry_batch.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>

namespace drover::protocol {
namespace {

bool is_printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

// The CBOR items a batch is made of (RFC 8949), in their shortest heads.
class CborWriter {
 public:
  void head(uint8_t major, uint64_t n) {
    const auto m = static_cast<uint8_t>(major << 5);
    if (n < 24) {
      out_.push_back(static_cast<char>(m | n));
    } else if (n <= 0xff) {
      out_.push_back(static_cast<char>(m | 24));
      big_endian(n, 1);
    } else if (n <= 0xffff) {
      out_.push_back(static_cast<char>(m | 25));
      big_endian(n, 2);
    } else if (n <= 0xffffffff) {
      out_.push_back(static_cast<char>(m | 26));
      big_endian(n, 4);
    } else {
      out_.push_back(static_cast<char>(m | 27));
      big_endian(n, 8);
    }
  }
  void uint(uint64_t v) { head(0, v); }
  void integer(int64_t v) {
    if (v >= 0) {
      head(0, static_cast<uint64_t>(v));
    } else {
      head(1, ~static_cast<uint64_t>(v));  // -1 - v
    }
  }
  void text(std::string_view s) {
    head(3, s.size());
    out_.append(s);
  }
  void number(double v) {
    const auto narrow = static_cast<float>(v);
    if (!std::isnan(v) && static_cast<double>(narrow) == v) {
      out_.push_back(static_cast<char>(0xfa));
      big_endian(std::bit_cast<uint32_t>(narrow), 4);
    } else {
      out_.push_back(static_cast<char>(0xfb));
      big_endian(std::bit_cast<uint64_t>(v), 8);
    }
  }
  std::string bytes() && { return std::move(out_); }

 private:
  void big_endian(uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

}  // namespace

bool is_valid_label_value(std::string_view s) {
  return s.size() <= kMaxLabelValueBytes && is_printable(s);
}

bool is_valid_label_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || (s[0] >= '0' && s[0] <= '9') || s.substr(0, 2) == "__") {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool is_valid_metric_name(std::string_view s) {
  if (s.empty() || s.size() > 128 || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == ':';
  });
}

size_t TelemetryBatch::sample_count() const {
  size_t n = 0;
  for (const auto& s : series) n += s.samples.size();
  return n;
}

std::string encode_telemetry_cbor(const TelemetryBatch& batch) {
  // Written here rather than through a JSON document: a document would turn every NaN into
  // the one canonical NaN, and a NaN's payload can mean something (Prometheus marks a
  // series stale with one). Values are float32 where that is exact, else float64.
  CborWriter w;
  w.head(5, batch.dropped > 0 ? 4 : 3);
  w.text("stream");
  w.uint(batch.stream);
  w.text("seq");
  w.uint(batch.sequence);
  if (batch.dropped > 0) {
    w.text("dropped");
    w.uint(batch.dropped);
  }
  w.text("series");
  w.head(4, batch.series.size());
  for (const TelemetrySeries& s : batch.series) {
    w.head(5, s.labels.empty() ? 3 : 4);
    w.text("m");
    w.text(s.metric);
    if (!s.labels.empty()) {
      w.text("l");
      w.head(5, s.labels.size());
      for (const auto& [k, v] : s.labels) {
        w.text(k);
        w.text(v);
      }
    }
    w.text("t");
    w.head(4, s.samples.size());
    int64_t previous = 0;
    for (size_t i = 0; i < s.samples.size(); ++i) {
      w.integer(i == 0 ? s.samples[i].t_ms : s.samples[i].t_ms - previous);
      previous = s.samples[i].t_ms;
    }
    w.text("v");
    w.head(4, s.samples.size());
    for (const telemetry::Sample& x : s.samples) w.number(x.value);
  }
  return std::move(w).bytes();
}

std::string encode_telemetry_batch(const TelemetryBatch& batch, int level) {
  std::string cbor = encode_telemetry_cbor(batch);
  std::string out(ZSTD_compressBound(cbor.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), cbor.data(), cbor.size(), level);
  if (ZSTD_isError(n)) std::abort();  // only for a bad level: a programming error
  out.resize(n);
  return out;
}

}  // namespace drover::protocol
