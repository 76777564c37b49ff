// JSON for signing: a strict parser for signed documents, and the canonical form their
// signatures are over (OLPC canonical JSON, as TUF specification 1.0 uses it).
//
// The canonical form has one spelling for each document: no whitespace, object keys sorted
// by their UTF-8 bytes, strings as UTF-8 with only `"` and `\` escaped, integers in decimal,
// no floating-point numbers. Control characters in strings are written raw, as the
// specification's reference encoder writes them (so signatures agree), which makes such a
// canonical form bytes to sign rather than JSON to parse. Signing and verifying both go
// through it, so a document that was reformatted, or whose keys were reordered, on the way
// still verifies, and nothing that changes its meaning does.
//
// The strict parser exists because a signature over canonical bytes is only as good as the
// agreement between the parser that checked it and the code that acts on the document: a
// document with a key twice (`{"version": 1, "version": 9}`) could be read one way by the
// verifier and another way by a different reader. Such documents, and documents nested
// deeper than a metadata file needs, are refused.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "base/result.h"

namespace drover::security {

struct StrictJsonLimits {
  size_t max_bytes = size_t{16} << 20;
  int max_depth = 32;  // nested objects and arrays
};

// Parses `text` as one JSON value (RFC 8259, UTF-8). kInvalidArgument, naming the problem,
// for malformed JSON, invalid UTF-8, a key repeated within an object, nesting deeper than
// `limits.max_depth`, or more than `limits.max_bytes` bytes. Never throws.
Result<nlohmann::json> parse_strict_json(std::string_view text, StrictJsonLimits limits = {});

// Text from a signed document (a key, a role name, a target path) as it may appear in an
// error message: printable ASCII kept, every other byte as \xNN, at most `max_bytes` of it
// ("..." after a cut). A message so made is valid UTF-8 whatever the document held, and
// cannot be made long or multi-line by it.
std::string printable(std::string_view text, size_t max_bytes = 64);

// The canonical form of `value`. kInvalidArgument for a floating-point number anywhere in it
// (canonical JSON has none: 1.0 and 1 would otherwise be two spellings of one value).
Result<std::string> canonical_json(const nlohmann::json& value);

}  // namespace drover::security
