// Small text helpers shared by the writers and error messages: UTF-8
// validation, JSON string quoting, and a printable rendering of untrusted bytes.
#pragma once

#include <string>
#include <string_view>

namespace bitsmith {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// `s` (valid UTF-8) as a JSON string literal with quotes: '"' and '\\' escaped,
// control characters as \n, \t, ... or \u00XX; other characters unchanged.
std::string JsonQuote(std::string_view s);
// The same text appended to `out` (no temporary string: the index and header
// writers quote ~46 k names for DeepSeek-V3).
void AppendJsonQuoted(std::string& out, std::string_view s);

// Untrusted bytes made safe to print in an error message: printable ASCII and
// valid UTF-8 kept, other bytes as \xNN, at most `max_len` bytes of input shown.
std::string PrintableText(std::string_view s, size_t max_len = 200);

}  // namespace bitsmith
