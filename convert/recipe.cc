// REGEX=TYPE recipes (see recipe.h for the format).
#include "convert/recipe.h"

#include <string>

#include <fmt/format.h>

namespace bitsmith {

namespace {

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

// The first place where a quantifier (*, +, ?, {n}, {n,}, {n,m}) follows another
// quantifier, other than the lazy '?' right after one ("a*?"), or npos. ECMAScript
// forbids stacked quantifiers ("a*+" is a SyntaxError in JavaScript), but
// libstdc++'s std::regex accepts them and then backtracks exponentially on them
// (a recipe-fuzz finding: "(a|b)*+{1,3}" hung regex_search for seconds on an
// 18-character name). Escapes and [...] classes are skipped.
size_t StackedQuantifier(std::string_view p) {
  bool prev_quant = false;  // the previous token was a quantifier
  bool prev_lazy_ok = false;  // ... and a '?' may still make it lazy
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    size_t quant_end = std::string_view::npos;  // index of the quantifier's last char
    if (c == '*' || c == '+' || c == '?') {
      quant_end = i;
    } else if (c == '{' && i + 1 < p.size() && p[i + 1] >= '0' && p[i + 1] <= '9') {
      const size_t close = p.find('}', i);
      if (close != std::string_view::npos) quant_end = close;
    }
    if (quant_end != std::string_view::npos) {
      if (prev_quant && !(c == '?' && prev_lazy_ok)) return i;
      prev_lazy_ok = !(prev_quant && c == '?');  // "a*?" is done; "a*" may take a '?'
      prev_quant = true;
      i = quant_end;
      continue;
    }
    prev_quant = false;
    if (c == '\\') {
      ++i;  // the escaped character
    } else if (c == '[') {
      size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      if (j < p.size() && p[j] == ']') ++j;  // a leading ']' is literal
      for (; j < p.size() && p[j] != ']'; ++j)
        if (p[j] == '\\') ++j;
      i = j;
    }
  }
  return std::string_view::npos;
}

}  // namespace

Result<RecipeRule> ParseRecipeRule(std::string_view text, std::string_view where) {
  const std::string_view line = Trim(text);
  // 1. Split at the last '=': the type name never contains one.
  const size_t eq = line.rfind('=');
  if (eq == std::string_view::npos)
    return MakeError(ErrorKind::kBadInput, "{}: expected REGEX=TYPE, found '{}'", where, line);
  const std::string_view pattern = Trim(line.substr(0, eq));
  const std::string_view type_name = Trim(line.substr(eq + 1));
  if (pattern.empty())
    return MakeError(ErrorKind::kBadInput,
                     "{}: empty REGEX in '{}' (write '.*={}' to match every tensor)", where, line,
                     type_name);
  if (type_name.empty())
    return MakeError(ErrorKind::kBadInput, "{}: empty TYPE in '{}' (expected e.g. {}=q4_k)",
                     where, line, pattern);
  // 2. The type, by any spelling FindDType accepts.
  const std::optional<DType> type = FindDType(type_name);
  if (!type)
    return MakeError(ErrorKind::kBadInput,
                     "{}: unknown type '{}' in '{}' (expected a type name such as q4_k, q8_0, "
                     "bf16, f32; `bitsmith formats` lists them all)",
                     where, type_name, line);
  // 3. The regex (std::regex reports a bad one by throwing; stacked quantifiers it
  // would accept and then backtrack on exponentially are refused first).
  if (const size_t at = StackedQuantifier(pattern); at != std::string_view::npos)
    return MakeError(ErrorKind::kBadInput,
                     "{}: bad regex '{}': quantifier '{}' at offset {} follows another quantifier (not valid "
                     "ECMAScript)",
                     where, pattern, pattern[at], at);
  RecipeRule rule;
  rule.pattern = std::string(pattern);
  rule.type = *type;
  rule.where = std::string(where);
  try {
    rule.regex = std::regex(rule.pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return MakeError(ErrorKind::kBadInput, "{}: bad regex '{}': {}", where, pattern, e.what());
  }
  return rule;
}

Result<std::vector<RecipeRule>> ParseRecipe(std::string_view text, std::string_view source) {
  std::vector<RecipeRule> rules;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = Trim(text.substr(pos, end - pos));
    ++line_no;
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;
    BITSMITH_ASSIGN_OR_RETURN(RecipeRule rule,
                              ParseRecipeRule(line, fmt::format("{}:{}", source, line_no)));
    rules.push_back(std::move(rule));
  }
  return rules;
}

const RecipeRule* FirstMatch(std::span<const RecipeRule> rules, std::string_view name) {
  for (const RecipeRule& r : rules)
    if (std::regex_search(name.begin(), name.end(), r.regex)) return &r;
  return nullptr;
}

std::string EscapeRegex(std::string_view literal) {
  constexpr std::string_view kMeta = "\\^$.|?*+()[]{}";
  std::string out;
  out.reserve(literal.size() + 8);
  for (char c : literal) {
    if (kMeta.find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string RecipeLine(std::string_view tensor_name, DType type) {
  return fmt::format("^{}$={}", EscapeRegex(tensor_name), GetDType(type).name);
}

}  // namespace bitsmith
