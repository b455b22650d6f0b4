// Tensor-name regexes on RE2 (see name_regex.h).
#include "convert/name_regex.h"

#include <re2/re2.h>

namespace bitsmith {

Result<NameRegex> NameRegex::Compile(std::string_view pattern) {
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);  // bytes in, bytes matched
  options.set_log_errors(false);                       // errors are returned, not printed
  auto re = std::make_shared<const RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) return MakeError(ErrorKind::kBadInput, "{}", re->error());
  NameRegex out;
  out.pattern_ = std::string(pattern);
  out.re_ = std::move(re);
  return out;
}

bool NameRegex::Search(std::string_view name) const {
  return re_ && RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *re_);
}

bool NameRegex::FullMatch(std::string_view name) const {
  return re_ && RE2::FullMatch(re2::StringPiece(name.data(), name.size()), *re_);
}

}  // namespace bitsmith
