// Tensor-name regular expressions: recipes (`convert --recipe/--tensor-type`),
// `plan --keep/--min-type` and `report --tensors`.
//
// The engine is RE2 (Debian's libre2), not std::regex: RE2 matches in time linear
// in the name and compiles in bounded memory whatever the pattern, where
// libstdc++'s std::regex backtracks exponentially on nested quantifiers
// ("(a*)*b") and overflowed a signed counter on "{2555555555555555555}" (two
// recipe-fuzz findings, docs/RELIABILITY.md).
//
// Dialect: RE2 syntax, which for what recipes use is llama-quantize's ECMAScript:
// . [] [^] | () (?:) * + ? {n} {n,} {n,m} and their lazy forms, ^ $, \d \w \s \b,
// backslash-escaped punctuation. Not supported (reported as a bad regex): look-
// around "(?=...)", back-references "\1", stacked quantifiers "a*+", repetition
// counts above 1000. Patterns and names are bytes (Latin-1 mode): any byte
// string, UTF-8 or not, is a name, as with std::regex over char.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "formats/error.h"

namespace re2 {
class RE2;
}

namespace bitsmith {

class NameRegex {
 public:
  // Compiles `pattern`; a bad one is kBadInput with RE2's reason ("missing ),
  // unmatched (", "bad repetition operator: *+", "invalid perl operator: (?=").
  static Result<NameRegex> Compile(std::string_view pattern);

  // True when the pattern matches somewhere in `name` (std::regex_search, as
  // llama-quantize applies --tensor-type; anchor with ^...$ to match all of it).
  bool Search(std::string_view name) const;
  // True when the pattern matches all of `name`.
  bool FullMatch(std::string_view name) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<const re2::RE2> re_;  // immutable and thread-safe: rules are copied freely
};

}  // namespace bitsmith
