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
  // 3. The regex (RE2: a bad one is refused with RE2's reason).
  Result<NameRegex> regex = NameRegex::Compile(pattern);
  if (!regex.ok())
    return MakeError(ErrorKind::kBadInput, "{}: bad regex '{}': {}", where, pattern,
                     regex.error().message);
  RecipeRule rule;
  rule.pattern = std::string(pattern);
  rule.regex = std::move(*regex);
  rule.type = *type;
  rule.where = std::string(where);
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
    if (r.regex.Search(name)) return &r;
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
