// UTF-8 for text that comes from programs and devices (a command's output, a message): JSON
// carries only valid UTF-8, and nlohmann's dump() throws on anything else, so such text is
// made valid before it is stored or sent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace drover {

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool is_valid_utf8(std::string_view text);

// `text` with every byte that is not part of a well-formed sequence replaced by '?': valid
// UTF-8 of the same length.
std::string utf8_sanitized(std::string_view text);

// The last `max` bytes of utf8_sanitized(text), starting on a character boundary (so at
// most `max` bytes, valid UTF-8).
std::string utf8_tail(std::string_view text, size_t max);
// The first `max` bytes of utf8_sanitized(text), ending on a character boundary (so at most
// `max` bytes, valid UTF-8): for a message whose start says what it is about.
std::string utf8_head(std::string_view text, size_t max);

}  // namespace drover
