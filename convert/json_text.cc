#include "convert/json_text.h"

#include <fmt/format.h>

namespace bitsmith {
namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 when it is malformed.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are malformed.
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  AppendJsonQuoted(out, s);
  return out;
}

void AppendJsonQuoted(std::string& out, std::string_view s) {
  // 1. The common case: nothing to escape, one append.
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') break;
    ++i;
  }
  out += '"';
  out.append(s.data(), i);
  // 2. From the first character that needs an escape on.
  for (char ch : s.substr(i)) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += ch;
    }
  }
  out += '"';
}

std::string PrintableText(std::string_view s, size_t max_len) {
  std::string out;
  const size_t end = std::min(s.size(), max_len);
  for (size_t i = 0; i < end;) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    const size_t n = c >= 0x80 ? Utf8SequenceLength(s, i) : 0;
    if (n > 1 && i + n <= end) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    }
  }
  if (s.size() > max_len) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

std::string_view Utf8OrPrintable(std::string_view s, std::string& scratch) {
  if (IsValidUtf8(s)) return s;
  scratch = PrintableText(s, size_t{1} << 20);
  return scratch;
}

std::string Utf8OrPrintable(std::string_view s) {
  std::string scratch;
  return std::string(Utf8OrPrintable(s, scratch));
}

void AppendIndentedDump(std::string& out, const nlohmann::json& j, int depth) {
  const std::string text = j.dump(2);
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.append(text, start, nl + 1 - start);
    out.append(2 * static_cast<size_t>(depth), ' ');
  }
  out.append(text, start);
}

}  // namespace bitsmith
