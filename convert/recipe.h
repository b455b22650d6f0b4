// Recipes: REGEX=TYPE rules that choose a storage type per tensor name.
//
// The format of `convert --recipe FILE`, `convert --tensor-type REGEX=TYPE`,
// `plan --keep REGEX=TYPE` / `--min-type REGEX=TYPE` and the recipe `plan -o`
// writes (llama-quantize's --tensor-type syntax, see recipes/*.txt):
//   - one rule per line: REGEX=TYPE, split at the LAST '=' (a type name never
//     holds '=', a regex may: "a=b=q4_k" is the regex "a=b");
//   - leading/trailing whitespace (and a trailing '\r') is trimmed from the line,
//     and from REGEX and TYPE on either side of the '=';
//   - blank lines and lines whose first non-blank character is '#' are skipped
//     (whole-line comments only: "q4_k # note" is an unknown type, reported);
//   - REGEX is searched anywhere in the tensor name (as llama-quantize's
//     std::regex_search): anchor it with ^...$ to match one name exactly. The
//     engine is RE2 (convert/name_regex.h: linear time; llama-quantize's
//     ECMAScript minus look-around and back-references);
//   - TYPE is any name formats/dtype.h FindDType knows ("q4_k", "Q4_K", "bf16");
//   - the first rule that matches a tensor wins.
// Whether a type suits a tensor (row length, 1-D tensors) is the converter's
// business, not the parser's.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/dtype.h"
#include "formats/error.h"
#include "convert/name_regex.h"

namespace bitsmith {

struct RecipeRule {
  std::string pattern;  // REGEX as written (trimmed)
  NameRegex regex;      // compiled (RE2)
  DType type;
  std::string where;    // "recipe.txt:12" or "--keep": names the rule in messages
};

// Parses one rule. `where` names it in errors (e.g. "--tensor-type" or
// "recipe.txt:3"). Errors (kBadInput): no '=' ("expected REGEX=TYPE"), empty
// REGEX or TYPE, a regex RE2 rejects (with its reason), an unknown type.
Result<RecipeRule> ParseRecipeRule(std::string_view text, std::string_view where);

// Parses a whole recipe. `source` names the file in errors, which carry the
// 1-based line number ("recipe.txt:7: unknown type 'q4_x' ..."). Rules keep
// file order (first match wins).
Result<std::vector<RecipeRule>> ParseRecipe(std::string_view text, std::string_view source);

// The first rule whose regex is found in `name`, or nullptr.
const RecipeRule* FirstMatch(std::span<const RecipeRule> rules, std::string_view name);

// `literal` with every regex metacharacter ( \ ^ $ . | ? * + ( ) [ ] { } )
// escaped by a backslash, so the regex matches exactly that text.
std::string EscapeRegex(std::string_view literal);

// One anchored recipe line for a tensor: "^<escaped name>$=<type name>".
std::string RecipeLine(std::string_view tensor_name, DType type);

}  // namespace bitsmith
