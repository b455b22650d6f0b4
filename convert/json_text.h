// Small text helpers shared by the writers and error messages: UTF-8
// validation, JSON string quoting, and a printable rendering of untrusted bytes.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

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

// How the JSON outputs show a string of untrusted bytes (GGUF tensor names are
// any bytes, and nlohmann's dump throws on invalid UTF-8): `s` itself when it
// is valid UTF-8, else its PrintableText (up to 1 MiB shown). The view form
// returns `s` or `scratch`, which it fills.
std::string_view Utf8OrPrintable(std::string_view s, std::string& scratch);
std::string Utf8OrPrintable(std::string_view s);

// `j` as nlohmann's dump(2) writes it, re-indented to be a value nested `depth`
// levels deep in a dump(2) document, appended to `out` (the streamed JSON
// writers put small members through nlohmann this way).
void AppendIndentedDump(std::string& out, const nlohmann::json& j, int depth);

}  // namespace bitsmith
