// Field readers and writers shared by the model codec's source files (codec.cc,
// codec_rollout.cc). Include only from those.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/clock.h"
#include "base/json_reader.h"
#include "base/result.h"

namespace drover::codec {

// Timestamps are stored as milliseconds since the epoch.
inline int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

// r's `key` as a timestamp; the epoch when absent.
inline Timestamp timestamp_at(const JsonReader& r, const char* key) {
  if (!r.has(key)) return Timestamp{};
  const auto& v = r.raw().at(key);
  if (!v.is_number_integer()) r.fail(key, "must be an integer (milliseconds since the epoch)");
  return Timestamp(Duration(v.get<int64_t>()));
}

// r's `key` (required) read by `parse`, its error named after the key.
template <typename E>
E enum_at(const JsonReader& r, const char* key, Result<E> (*parse)(std::string_view)) {
  return r.take(key, parse(r.str(key)));
}

}  // namespace drover::codec
