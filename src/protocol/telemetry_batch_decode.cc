// The telemetry batch's decoder, apart from the encoder: a sender (the agent) links only
// what it calls, and this half brings the CBOR reader and the zstd decompressor.
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "protocol/telemetry_batch.h"

namespace drover::protocol {
namespace {

using json = nlohmann::json;

// An untrusted name as an error message quotes it: at most 64 bytes of it.
std::string shown(std::string_view s) {
  return "'" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "...'" : "'");
}

// Builds the batch straight from the CBOR events (no document in between): the schema is
// fixed, every key is checked once, and a limit stops the parse as soon as it is passed.
class BatchReader final : public json::json_sax_t {
 public:
  explicit BatchReader(TelemetryBatch& out) : out_(out) {}

  Error error() const { return error_; }

  bool null() override { return fail("null is not a value here"); }
  bool boolean(bool) override { return fail("a boolean is not a value here"); }
  bool number_integer(number_integer_t v) override { return integer(v, v < 0); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v > static_cast<uint64_t>(INT64_MAX)) {
      if (ctx() == Ctx::kTop) return top_number(v);
      return fail("a number is out of range");
    }
    return integer(static_cast<int64_t>(v), false);
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (ctx() != Ctx::kValues) return fail("a fraction is not a value here");
    return value(v);
  }
  bool string(string_t& s) override {
    if (ctx() == Ctx::kSeries && key_ == "m") {
      series().metric = std::move(s);
      return true;
    }
    if (ctx() == Ctx::kLabels) {
      if (!is_valid_label_value(s)) {
        return fail("label " + shown(key_) + ": values are printable, at most 128 bytes");
      }
      series().labels.emplace_back(key_, std::move(s));
      return true;
    }
    return fail("a string is not a value here");
  }
  bool binary(binary_t&) override { return fail("binary data is not a value here"); }

  bool start_object(std::size_t) override {
    if (stack_.empty()) {
      if (started_) return fail("more than one map");
      started_ = true;
      return push(Ctx::kTop);
    }
    if (ctx() == Ctx::kSeriesArray) {
      if (out_.series.size() >= kMaxBatchSeries) {
        return exhausted("more than " + std::to_string(kMaxBatchSeries) + " series in a batch");
      }
      out_.series.emplace_back();
      times_ = 0;
      values_ = 0;
      return push(Ctx::kSeries);
    }
    if (ctx() == Ctx::kSeries && key_ == "l") return push(Ctx::kLabels);
    return fail("an object is not a value here");
  }
  bool key(string_t& k) override {
    std::vector<std::string>& seen = seen_.back();
    if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
      return fail("the key " + shown(k) + " appears twice in one map");
    }
    seen.push_back(k);
    key_ = std::move(k);
    static const std::vector<std::string> kTopKeys = {"stream", "seq", "dropped", "series"};
    static const std::vector<std::string> kSeriesKeys = {"m", "l", "t", "v"};
    if (ctx() == Ctx::kTop && std::find(kTopKeys.begin(), kTopKeys.end(), key_) == kTopKeys.end()) {
      return fail("unknown key " + shown(key_));
    }
    if (ctx() == Ctx::kSeries &&
        std::find(kSeriesKeys.begin(), kSeriesKeys.end(), key_) == kSeriesKeys.end()) {
      return fail("unknown key " + shown(key_) + " in a series");
    }
    if (ctx() == Ctx::kLabels) {
      if (!is_valid_label_name(key_)) return fail("label name " + shown(key_) + " is not valid");
      if (seen.size() > kMaxSeriesLabels) {
        return exhausted("more than " + std::to_string(kMaxSeriesLabels) + " labels on a series");
      }
    }
    return true;
  }
  bool end_object() override {
    Ctx done = ctx();
    pop();
    if (done == Ctx::kSeries) return finish_series();
    if (done == Ctx::kTop) {
      const auto& seen = seen_top_;
      for (const char* required : {"stream", "seq", "series"}) {
        if (std::find(seen.begin(), seen.end(), required) == seen.end()) {
          return fail(std::string("'") + required + "' is missing");
        }
      }
      if (out_.sequence == 0) return fail("seq starts at 1");
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (ctx() == Ctx::kTop && key_ == "series") return push(Ctx::kSeriesArray);
    if (ctx() == Ctx::kSeries && key_ == "t") return push(Ctx::kTimes);
    if (ctx() == Ctx::kSeries && key_ == "v") return push(Ctx::kValues);
    return fail("an array is not a value here");
  }
  bool end_array() override {
    pop();
    return true;
  }
  bool parse_error(std::size_t at, const std::string&, const json::exception& e) override {
    error_ = invalid_argument("telemetry batch: not valid CBOR at byte " + std::to_string(at) +
                              ": " + e.what());
    return false;
  }

 private:
  enum class Ctx { kNone, kTop, kSeriesArray, kSeries, kLabels, kTimes, kValues };

  // kNone outside the top-level map: before it (a body that is not a map) and after it.
  Ctx ctx() const { return stack_.empty() ? Ctx::kNone : stack_.back(); }
  bool push(Ctx c) {
    if (stack_.size() >= 4) return fail("nested too deeply");
    stack_.push_back(c);
    seen_.emplace_back();
    return true;
  }
  void pop() {
    if (stack_.back() == Ctx::kTop) seen_top_ = seen_.back();
    stack_.pop_back();
    seen_.pop_back();
    if (!stack_.empty() && (stack_.back() == Ctx::kSeries || stack_.back() == Ctx::kTop)) {
      key_.clear();
    }
  }
  TelemetrySeries& series() { return out_.series.back(); }

  bool fail(const std::string& what) {
    error_ = invalid_argument("telemetry batch: " + what);
    return false;
  }
  bool exhausted(const std::string& what) {
    error_ = Error{ErrorCode::kResourceExhausted, "telemetry batch: " + what};
    return false;
  }

  bool top_number(uint64_t v) {
    if (key_ == "stream") {
      out_.stream = v;
    } else if (key_ == "seq") {
      out_.sequence = v;
    } else if (key_ == "dropped") {
      out_.dropped = v;
    } else {
      return fail("a number is not a value here");
    }
    return true;
  }

  bool integer(int64_t v, bool negative) {
    switch (ctx()) {
      case Ctx::kTop:
        if (negative) return fail(key_ + " cannot be negative");
        return top_number(static_cast<uint64_t>(v));
      case Ctx::kTimes:
        return time(v);
      case Ctx::kValues:
        return value(static_cast<double>(v));
      default:
        return fail("a number is not a value here");
    }
  }

  // "t": the first time in ms, then the step to each next one (> 0).
  bool time(int64_t v) {
    auto& samples = series().samples;
    if (++total_ > kMaxBatchSamples) {
      return exhausted("more than " + std::to_string(kMaxBatchSamples) + " samples in a batch");
    }
    int64_t t = v;
    if (times_ > 0) {
      if (v <= 0) return fail("series " + shown(series().metric) + ": times must increase");
      if (__builtin_add_overflow(samples[times_ - 1].t_ms, v, &t)) t = kMaxSampleTimeMs;
    }
    if (t <= -kMaxSampleTimeMs || t >= kMaxSampleTimeMs) {
      return fail("series " + shown(series().metric) + ": a time is out of range");
    }
    if (times_ < samples.size()) {
      samples[times_].t_ms = t;
    } else {
      samples.push_back({t, 0});
    }
    ++times_;
    return true;
  }
  bool value(double v) {
    auto& samples = series().samples;
    if (values_ >= kMaxBatchSamples) return exhausted("too many values");
    if (values_ < samples.size()) {
      samples[values_].value = v;
    } else {
      samples.push_back({0, v});
    }
    ++values_;
    return true;
  }

  bool finish_series() {
    TelemetrySeries& s = series();
    if (s.metric.empty()) return fail("a series without 'm'");
    if (!is_valid_metric_name(s.metric)) return fail("metric " + shown(s.metric) + " is not valid");
    if (times_ != values_) {
      return fail("series " + shown(s.metric) + ": " + std::to_string(times_) + " times but " +
                  std::to_string(values_) + " values");
    }
    std::sort(s.labels.begin(), s.labels.end());
    return true;
  }

  TelemetryBatch& out_;
  Error error_{ErrorCode::kInvalidArgument, "telemetry batch: malformed"};
  std::vector<Ctx> stack_;
  std::vector<std::vector<std::string>> seen_;  // the keys of each open map
  std::vector<std::string> seen_top_;
  std::string key_;
  size_t times_ = 0;
  size_t values_ = 0;
  size_t total_ = 0;
  bool started_ = false;
};

// zstd, with the output bounded: a small body cannot expand into gigabytes.
Result<std::string> decompress(std::string_view body) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (!ctx) return Error{ErrorCode::kInternal, "zstd: no memory"};
  // A frame may ask for a window of up to 2 GiB; at most 16 MiB is ever written here.
  ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, 24);
  std::string out;
  ZSTD_inBuffer in{body.data(), body.size(), 0};
  size_t last = 1;
  while (in.pos < in.size || last != 0) {
    size_t before = out.size();
    if (before >= kMaxBatchDecodedBytes) {
      return Error{ErrorCode::kResourceExhausted,
                   "telemetry batch: more than 16 MiB when decompressed"};
    }
    out.resize(std::min(kMaxBatchDecodedBytes, before + (size_t{64} << 10)));
    ZSTD_outBuffer o{out.data() + before, out.size() - before, 0};
    last = ZSTD_decompressStream(ctx.get(), &o, &in);
    out.resize(before + o.pos);
    if (ZSTD_isError(last)) {
      return invalid_argument(std::string("telemetry batch: not valid zstd: ") +
                              ZSTD_getErrorName(last));
    }
    if (in.pos == in.size && o.pos == 0 && last != 0) {
      return invalid_argument("telemetry batch: the zstd frame is cut short");
    }
  }
  return out;
}

// Walks the CBOR items of `in` without recursion and refuses an indefinite-length string
// whose chunks are not definite-length strings of its own type (RFC 8949, 3.2.3). The CBOR
// reader recurses once per such chunk: a body of nested indefinite-length strings (0x7f
// 0x7f 0x7f ...) would otherwise take one stack frame per byte and overflow the stack
// (found by fuzz_telemetry_batch). Everything else is left to the reader.
Status check_string_chunks(std::string_view in) {
  constexpr uint64_t kUntilBreak = UINT64_MAX;
  std::vector<uint64_t> open;  // items left in each open array or map (kUntilBreak: to 0xff)
  size_t pos = 0;
  const auto cut = [] { return invalid_argument("telemetry batch: not valid CBOR: cut short"); };
  // The argument of an initial byte's additional information (`info` < 28).
  const auto argument = [&](uint8_t info, uint64_t& v) {
    if (info < 24) {
      v = info;
      return true;
    }
    const size_t bytes = size_t{1} << (info - 24);
    if (in.size() - pos < bytes) return false;
    v = 0;
    for (size_t i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[pos++]);
    return true;
  };
  // One item is complete: count it against the arrays and maps it closes.
  const auto completed = [&] {
    while (!open.empty() && open.back() != kUntilBreak && --open.back() == 0) open.pop_back();
  };
  while (pos < in.size()) {
    const auto b = static_cast<uint8_t>(in[pos++]);
    const uint8_t major = b >> 5, info = b & 0x1f;
    if (b == 0xff) {  // a break ends an indefinite-length array or map
      if (open.empty() || open.back() != kUntilBreak)
        return invalid_argument("telemetry batch: not valid CBOR: a break outside a container");
      open.pop_back();
      completed();
      continue;
    }
    if (info >= 28 && info <= 30)
      return invalid_argument("telemetry batch: not valid CBOR: reserved additional information");
    uint64_t n = 0;
    if (info == 31) {
      if (major == 2 || major == 3) {
        // Chunks up to the break, each a definite-length string of the same type.
        for (;;) {
          if (pos >= in.size()) return cut();
          const auto c = static_cast<uint8_t>(in[pos++]);
          if (c == 0xff) break;
          if ((c >> 5) != major || (c & 0x1f) >= 28) {
            return invalid_argument(
                "telemetry batch: not valid CBOR: a chunk of an indefinite-length string is "
                "not a definite-length string of its type");
          }
          if (!argument(c & 0x1f, n)) return cut();
          if (in.size() - pos < n) return cut();
          pos += static_cast<size_t>(n);
        }
        completed();
        continue;
      }
      if (major == 4 || major == 5) {
        open.push_back(kUntilBreak);
        continue;
      }
      return invalid_argument("telemetry batch: not valid CBOR: indefinite length on a number");
    }
    if (!argument(info, n)) return cut();
    switch (major) {
      case 2:
      case 3:
        if (in.size() - pos < n) return cut();
        pos += static_cast<size_t>(n);
        completed();
        break;
      case 4:
      case 5:
        // Each item takes a byte at least: a count beyond what is left is cut short.
        if (n > in.size() - pos) return cut();
        if (major == 5) n *= 2;
        if (n == 0) {
          completed();
        } else {
          open.push_back(n);
        }
        break;
      case 6:
        break;  // a tag: the item it tags follows
      default:
        completed();  // integers, simple values, floats (their bytes read as the argument)
    }
  }
  return ok_status();
}

}  // namespace

Result<TelemetryBatch> decode_telemetry_batch(std::string_view body, bool compressed) {
  std::string plain;
  if (compressed) {
    auto d = decompress(body);
    if (!d.ok()) return d.error();
    plain = std::move(*d);
    body = plain;
  } else if (body.size() > kMaxBatchDecodedBytes) {
    return Error{ErrorCode::kResourceExhausted, "telemetry batch: more than 16 MiB"};
  }
  DROVER_TRY(check_string_chunks(body));
  TelemetryBatch batch;
  BatchReader reader(batch);
  bool ok = false;
  try {
    ok = json::sax_parse(body.begin(), body.end(), &reader, json::input_format_t::cbor, true);
  } catch (const json::exception& e) {
    return invalid_argument(std::string("telemetry batch: not valid CBOR: ") + e.what());
  }
  if (!ok) return reader.error();
  return batch;
}

}  // namespace drover::protocol
