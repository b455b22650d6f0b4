// Recipes: REGEX=TYPE rules that choose a storage type per tensor name.
//
// The format of `convert --recipe FILE`, `convert --tensor-type REGEX=TYPE`,
// `plan --keep REGEX=TYPE` / `--min-type REGEX=TYPE` and the recipe `plan -o`
// writes (llama-quantize's --tensor-type syntax, see recipes/*.txt):
//   - one rule per line: REGEX=TYPE, split at the LAST '=' (a type name never
//     holds '=', a regex may: "(?=...)");
//   - leading/trailing whitespace (and a trailing '\r') is trimmed from the line,
//     and from REGEX and TYPE on either side of the '=';
//   - blank lines and lines whose first non-blank character is '#' are skipped
//     (whole-line comments only: "q4_k # note" is an unknown type, reported);
//   - REGEX is an ECMAScript std::regex searched anywhere in the tensor name
//     (std::regex_search, as llama-quantize does): anchor it with ^...$ to match
//     one name exactly;
//   - TYPE is any name formats/dtype.h FindDType knows ("q4_k", "Q4_K", "bf16");
//   - the first rule that matches a tensor wins.
// Whether a type suits a tensor (row length, 1-D tensors) is the converter's
// business, not the parser's.
#pragma once

#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/dtype.h"
#include "formats/error.h"

namespace bitsmith {

struct RecipeRule {
  std::string pattern;  // REGEX as written (trimmed)
  std::regex regex;     // compiled, std::regex::ECMAScript
  DType type;
  std::string where;    // "recipe.txt:12" or "--keep": names the rule in messages
};

// Parses one rule. `where` names it in errors (e.g. "--tensor-type" or
// "recipe.txt:3"). Errors (kBadInput): no '=' ("expected REGEX=TYPE"), empty
// REGEX or TYPE, a regex std::regex rejects (with its message), an unknown type.
Result<RecipeRule> ParseRecipeRule(std::string_view text, std::string_view where);

// Parses a whole recipe. `source` names the file in errors, which carry the
// 1-based line number ("recipe.txt:7: unknown type 'q4_x' ..."). Rules keep
// file order (first match wins).
Result<std::vector<RecipeRule>> ParseRecipe(std::string_view text, std::string_view source);

// The first rule whose regex is found in `name`, or nullptr.
const RecipeRule* FirstMatch(std::span<const RecipeRule> rules, std::string_view name);

// `literal` with every ECMAScript metacharacter ( \ ^ $ . | ? * + ( ) [ ] { } )
// escaped by a backslash, so the regex matches exactly that text.
std::string EscapeRegex(std::string_view literal);

// One anchored recipe line for a tensor: "^<escaped name>$=<type name>".
std::string RecipeLine(std::string_view tensor_name, DType type);

}  // namespace bitsmith
