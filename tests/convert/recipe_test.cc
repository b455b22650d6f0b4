// REGEX=TYPE recipes: parsing, errors with line numbers, first match wins,
// escaping round trip, and the recipes shipped in recipes/.
#include "convert/recipe.h"

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "support/test_data.h"

namespace bitsmith {
namespace {

TEST_CASE("recipe: parse rules, comments, blank lines, whitespace, CRLF", "[recipe]") {
  const std::string text =
      "# header comment\n"
      "\n"
      "   ^token_embd\\.weight$ = q8_0  \r\n"
      "\t# indented comment\n"
      "ffn_down=Q6_K\n"
      "attn_.*(=x)?=bf16\n"     // the '=' inside the regex is kept
      ".*=q4_k";                 // no trailing newline
  auto rules = ParseRecipe(text, "r.txt");
  REQUIRE(rules.ok());
  REQUIRE(rules->size() == 4);
  CHECK((*rules)[0].pattern == "^token_embd\\.weight$");
  CHECK((*rules)[0].type == DType::kQ8_0);
  CHECK((*rules)[0].where == "r.txt:3");
  CHECK((*rules)[1].type == DType::kQ6_K);  // upper-case ggml spelling accepted
  CHECK((*rules)[2].pattern == "attn_.*(=x)?");
  CHECK((*rules)[2].type == DType::kBF16);
  CHECK((*rules)[3].where == "r.txt:7");

  // First match wins; regex_search finds the pattern anywhere in the name.
  CHECK(FirstMatch(*rules, "token_embd.weight")->type == DType::kQ8_0);
  CHECK(FirstMatch(*rules, "xtoken_embd.weight")->type == DType::kQ4_K);  // anchored rule misses
  CHECK(FirstMatch(*rules, "blk.3.ffn_down.weight")->type == DType::kQ6_K);
  CHECK(FirstMatch(*rules, "blk.3.attn_q.weight")->type == DType::kBF16);
  CHECK(FirstMatch(*rules, "output.weight")->type == DType::kQ4_K);
  CHECK(FirstMatch(std::span<const RecipeRule>(rules->data(), 2), "output.weight") == nullptr);

  auto empty = ParseRecipe("# only comments\n\n   \n", "e.txt");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("recipe: errors name the line and the problem", "[recipe]") {
  struct Bad {
    std::string text, needle;
  };
  for (const Bad& b : {
           Bad{"a=q4_k\nno equals sign\n", "bad.txt:2: expected REGEX=TYPE"},
           Bad{"a=q4_k\n\n[unclosed=q4_k\n", "bad.txt:3: bad regex '[unclosed'"},
           Bad{"a=q4_x\n", "bad.txt:1: unknown type 'q4_x'"},
           Bad{"a=q4_k # keep\n", "unknown type 'q4_k # keep'"},
           Bad{"=q4_k\n", "bad.txt:1: empty REGEX"},
           Bad{"a=\n", "bad.txt:1: empty TYPE"},
           Bad{"(ab=q4_k\n", "bad regex '(ab'"},
           // What RE2 refuses: stacked quantifiers (not ECMAScript either; libstdc++'s
           // std::regex accepted them and backtracked exponentially: a recipe-fuzz finding),
           // repetition counts above 1000, look-around, back-references.
           Bad{"(a|b)*+{1,3}[^/x]*+{1,3}=f16\n", "bad regex '(a|b)*+{1,3}[^/x]*+{1,3}': bad repetition operator: *+"},
           Bad{"a**=q4_k\n", "bad repetition operator: **"},
           Bad{"a{2}{3}=q4_k\n", "bad repetition operator: {2}{3}"},
           Bad{"a*??=q4_k\n", "bad repetition operator: *??"},
           Bad{"a{1001}=q4_k\n", "invalid repetition size: {1001}"},
           Bad{"((a{100}){100}){100}=q4_k\n", "invalid repetition size"},
           Bad{"(?=blk\\.1)ffn=q4_k\n", "invalid perl operator: (?="},
           Bad{"(a)\\1=q4_k\n", "bad regex '(a)\\1'"},
       }) {
    auto r = ParseRecipe(b.text, "bad.txt");
    INFO("recipe: " << b.text);
    REQUIRE(!r.ok());
    CHECK(r.error().kind == ErrorKind::kBadInput);
    INFO("message: " << r.error().message);
    CHECK(r.error().message.find(b.needle) != std::string::npos);
  }
  // Lazy quantifiers, groups, escaped and bracketed quantifier characters, nested quantified
  // groups, classes, a count that overflows (a literal '{', as in Perl) stay valid.
  for (const char* ok : {"a*?=q4_k", "x{2}?=q4_k", "(?:ab)+=q4_k", "a\\*+=q4_k", "[*+?]+=q4_k",
                         "[]*]+=q4_k", "(a*)*b=q4_k", "a{1000}=q4_k", "\\d+\\.\\w+=q4_k",
                         "a{2555555555555555555}=q4_k"}) {
    INFO(ok);
    CHECK(ParseRecipeRule(ok, "ok").ok());
  }
  auto one = ParseRecipeRule("blk\\.0=nope", "--keep");
  REQUIRE(!one.ok());
  CHECK(one.error().message.rfind("--keep: unknown type 'nope'", 0) == 0);
}

TEST_CASE("recipe: escaped names match exactly themselves", "[recipe]") {
  const std::string names[] = {
      "model.layers.0.self_attn.q_proj.weight", "blk.10.ffn_down_exps.weight",
      "a+b*c?d(e)[f]{g}|h^i$j\\k", "output.weight", "weird name with spaces",
      std::string("bytes\0not\xff\xfe" "utf8.", 16)};  // GGUF names are any bytes
  for (const std::string& n : names) {
    const std::string line = RecipeLine(n, DType::kQ4_K);
    auto rule = ParseRecipeRule(line, "gen");
    INFO(line);
    REQUIRE(rule.ok());
    CHECK(rule->type == DType::kQ4_K);
    CHECK(rule->regex.Search(n));
    CHECK(rule->regex.FullMatch(n));
    CHECK(!rule->regex.Search("x" + n));
    CHECK(!rule->regex.Search(n + "x"));
    // '.' is literal: a name with another character in its place does not match.
    std::string other = n;
    for (char& c : other)
      if (c == '.') c = '_';
    if (other != n) CHECK(!rule->regex.Search(other));
  }
  CHECK(EscapeRegex("blk.0.attn_q.weight") == "blk\\.0\\.attn_q\\.weight");
  CHECK(RecipeLine("blk.0.attn_q.weight", DType::kQ6_K) == "^blk\\.0\\.attn_q\\.weight$=q6_k");
}

TEST_CASE("recipe: matching is linear in the name (RE2), whatever the pattern", "[recipe]") {
  // Nested quantified groups made std::regex backtrack exponentially (2^n steps for n
  // 'a's); RE2 answers in one pass. No timing is asserted: a backtracking engine would
  // not finish this test within the ctest timeout.
  auto rule = ParseRecipeRule("(a*)*b=q4_k", "nested");
  REQUIRE(rule.ok());
  const std::string as(100000, 'a');
  CHECK(!rule->regex.Search(as));
  CHECK(rule->regex.Search(as + "b"));
  auto alt = ParseRecipeRule("^(a|aa)+$=q4_k", "alt");
  REQUIRE(alt.ok());
  CHECK(!alt->regex.Search(as + "c"));
  CHECK(alt->regex.FullMatch(as));
}

TEST_CASE("recipe: the shipped recipes parse", "[recipe]") {
  const auto dir = test::SourceDir() / "recipes";
  int files = 0;
  if (!std::filesystem::exists(dir)) return;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".txt") continue;
    const auto bytes = test::ReadFile(entry.path());
    auto rules = ParseRecipe(std::string(bytes.begin(), bytes.end()), entry.path().filename().string());
    INFO(entry.path());
    REQUIRE(rules.ok());
    CHECK(!rules->empty());
    ++files;
  }
  CHECK(files > 0);
}

}  // namespace
}  // namespace bitsmith
