// Fuzz target: recipe / --tensor-type parsing (convert/recipe.h).
//
// Input layout: the text before the first NUL byte is a recipe file; what
// follows is up to 8 tensor names separated by '\n' (each cut to 48 bytes; the
// engine is RE2, linear in the name, so the cut only keeps executions short).
// Properties:
//  1. ParseRecipe never crashes or throws (a bad regex is an Error naming
//     "<source>:<line>"); an error always names the source;
//  2. every parsed rule's `where` is "fuzz.recipe:<n>" with n a line of the text;
//  3. FirstMatch never throws and returns the first rule whose regex is found
//     (NameRegex::Search);
//  4. for every name: RecipeLine(name, type) parses back as one rule with that
//     type, and its regex matches the name exactly (NameRegex::FullMatch) -- the
//     escaping of plan's recipe output is complete;
//  5. ParseRecipeRule on each line (the --tensor-type path) agrees with
//     ParseRecipe about whether the line is valid.
// Seeds: fuzz/corpus/recipe/ (recipes/*.txt-like text); dictionary:
// fuzz/recipe.dict.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "convert/recipe.h"
#include "formats/dtype.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "recipe_fuzz: property violated: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitsmith;
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  const std::string_view text = all.substr(0, nul);
  std::vector<std::string> names;
  if (nul != std::string_view::npos) {
    std::string_view rest = all.substr(nul + 1);
    while (!rest.empty() && names.size() < 8) {
      const size_t nl = rest.find('\n');
      names.emplace_back(rest.substr(0, std::min<size_t>(nl, 48)));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  if (text.size() > 2048) return 0;  // long recipes add nothing but regex compile time

  // 1-2. The whole recipe.
  auto rules = ParseRecipe(text, "fuzz.recipe");
  size_t n_lines = 1;
  for (char c : text) n_lines += c == '\n';
  if (!rules.ok()) {
    if (rules.error().message.find("fuzz.recipe:") == std::string::npos) Fail("error names the line", rules.error().message);
  } else {
    for (const RecipeRule& r : *rules) {
      if (r.where.rfind("fuzz.recipe:", 0) != 0) Fail("where", r.where);
      const long line = std::atol(r.where.c_str() + 12);
      if (line < 1 || static_cast<size_t>(line) > n_lines) Fail("line number", r.where);
    }
    // 3. Matching.
    for (const std::string& name : names) {
      const RecipeRule* m = nullptr;
      try {
        m = FirstMatch(*rules, name);
      } catch (const std::exception& e) {
        Fail("FirstMatch threw", e.what());
      }
      for (const RecipeRule& r : *rules) {
        const bool found = r.regex.Search(name);
        if (&r == m) {
          if (!found) Fail("FirstMatch returned a rule that does not match", r.pattern);
          break;
        }
        if (found) Fail("FirstMatch skipped a matching rule", r.pattern);
      }
    }
  }

  // 5. Line by line, as --tensor-type: valid exactly when ParseRecipe accepts it alone.
  size_t pos = 0, checked = 0;
  while (pos <= text.size() && checked < 8) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    const std::string_view trimmed = line.substr(std::min(line.find_first_not_of(" \t\r\n\v\f"), line.size()));
    if (trimmed.empty() || trimmed.front() == '#') continue;
    ++checked;
    auto one = ParseRecipeRule(line, "--tensor-type");
    auto alone = ParseRecipe(line, "line");
    if (one.ok() != alone.ok()) Fail("ParseRecipeRule and ParseRecipe disagree", std::string(line));
    if (one.ok() && (alone->size() != 1 || (*alone)[0].type != one->type || (*alone)[0].pattern != one->pattern))
      Fail("ParseRecipeRule and ParseRecipe parse differently", std::string(line));
  }

  // 4. Anchored escaped names match exactly themselves.
  const DType types[] = {DType::kQ4_K, DType::kBF16, DType::kQ8_0, DType::kF32};
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const DType t = types[i % 4];
    const std::string line = RecipeLine(name, t);
    auto r = ParseRecipeRule(line, "plan");
    if (!r.ok()) Fail("RecipeLine does not parse", line + ": " + r.error().message);
    if (r->type != t) Fail("RecipeLine type", line);
    if (!r->regex.FullMatch(name)) Fail("RecipeLine regex does not match its name", line);
    // And nothing else of the other names (unless equal).
    for (const std::string& other : names)
      if (other != name && r->regex.FullMatch(other)) Fail("RecipeLine regex matches another name", line + " vs " + other);
  }
  return 0;
}
