// `bitsmith info`: the summary, the 100-column layout, --tensors, --json (shape
// checked field by field, sizes recomputed here by hand), exit codes.
#include <filesystem>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "convert/gguf.h"
#include "convert/safetensors.h"
#include "support/deepseek_fixture.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

test::RunResult Info(const std::string& args) {
  return test::Run("'" + test::BitsmithExe().string() + "' info " + args);
}

size_t Utf8Columns(const std::string& line) {
  size_t n = 0;
  for (unsigned char c : line) n += (c & 0xC0) != 0x80;
  return n;
}

void CheckFitsWidth(const std::string& out) {
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    INFO("line " << i++ << ": " << line);
    CHECK(Utf8Columns(line) <= 100);
  }
}

const char* const kSamples[] = {
    "tiny-rwkv-5v2-730K/model.safetensors", "tiny-rwkv-5v2-730K/model-f16.safetensors",
    "tiny-rwkv-5v2-730K/model-q5_0.gguf",   "tiny-rwkv-5v2-730K/model-q5_1.gguf",
    "tiny-rwkv-7v0-834K/model.safetensors", "tiny-rwkv-7v0-834K/model-f16.safetensors",
    "tiny-rwkv-7v0-834K/model-q5_0.gguf",   "tiny-rwkv-7v0-834K/model-q5_1.gguf",
    "silero-vad-16k/model.safetensors",     "ppocr-v4/det.safetensors",
    "ppocr-v4/rec.safetensors",             "realmix-dev/model.safetensors",
    "tiny-rwkv-5v2-730K",                   "realmix-dev"};

TEST_CASE("info works on every sample and fits 100 columns", "[convert][info][cli]") {
  if (!test::HaveShared("../shared/models")) return;
  for (const char* rel : kSamples) {
    const fs::path p = test::SharedDir() / "models" / rel;
    INFO(p);
    const auto r = Info("--tensors '" + p.string() + "'");
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    CheckFitsWidth(r.out);
    CHECK_THAT(r.out, Catch::Contains("what the tensors would weigh"));
    for (const char* fmt : {"bf16", "f16", "e4m3fn", "q8_0", "q6_k", "q5_k", "q4_k", "q3_k", "q2_k", "iq4_xs"})
      CHECK_THAT(r.out, Catch::Contains(std::string("\n  ") + fmt + " "));
  }
  const auto r = Info("'" + (test::SharedDir() / "models" / "tiny-rwkv-5v2-730K" / "model-q5_0.gguf").string() + "'");
  CHECK_THAT(r.out, Catch::Contains("parameters   731,904 (731.9 K)"));
  CHECK_THAT(r.out, Catch::Contains("GGUF v3, 1 file, alignment 32"));
  CHECK_THAT(r.out, Catch::Contains("general.architecture"));
  CHECK_THAT(r.out, Catch::Contains("rwkv-cpp-tiny"));
  // 86 matrices of row length 64 cannot take q4_k: they fall back to q5_0.
  CHECK_THAT(r.out, Catch::Contains("86 tensors -> q5_0"));
}

// The JSON, checked against an independent computation of every number.
TEST_CASE("info --json: fields, row-major shapes, sizes recomputed", "[convert][info][cli]") {
  if (!test::HaveShared("../shared/models")) return;
  for (const char* rel : kSamples) {
    const fs::path p = test::SharedDir() / "models" / rel;
    INFO(p);
    const auto r = Info("--json '" + p.string() + "'");
    REQUIRE(r.status == 0);
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"format", "tensors", "params", "bytes", "by_dtype", "metadata", "sizes", "fallbacks"})
      CHECK(j.contains(key));
    uint64_t params = 0, tbytes = 0;
    std::map<std::string, uint64_t> count;
    // Hand-computed q4_k and q8_0 sizes: llama.cpp's rule, written out here.
    uint64_t q4k = 0, bf16 = 0;
    for (const auto& t : j["tensors"]) {
      const auto shape = t["shape"].get<std::vector<uint64_t>>();
      uint64_t n = 1;
      for (uint64_t d : shape) n *= d;
      CHECK(t["params"] == n);
      params += n;
      tbytes += t["bytes"].get<uint64_t>();
      ++count[t["dtype"]];
      bf16 += 2 * n;
      size_t lead = 0;
      while (lead < shape.size() && shape[lead] == 1) ++lead;
      const bool one_d = shape.size() - lead < 2;
      const uint64_t row = shape.empty() ? 1 : shape.back();
      if (one_d) q4k += 4 * n;                      // f32
      else if (row % 256 == 0) q4k += n / 256 * 144;  // q4_k
      else if (row % 32 == 0) q4k += n / 32 * 22;   // q5_0
      else q4k += 2 * n;                            // f16
    }
    CHECK(j["params"] == params);
    CHECK(j["tensor_bytes"] == tbytes);
    for (const auto& [name, row] : j["by_dtype"].items()) CHECK(row["tensors"] == count[name]);
    CHECK(j["sizes"]["q4_k"] == q4k);
    CHECK(j["sizes"]["bf16"] == bf16);
    CHECK(j["sizes"].size() == 10);
  }
  // GGUF: ne {64, 256} is shape [256, 64]; lower-case dtypes; typed metadata.
  const auto r = Info("--json '" + (test::SharedDir() / "models" / "tiny-rwkv-5v2-730K" / "model-q5_0.gguf").string() + "'");
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["format"] == "gguf");
  CHECK(j["tensors"][0]["name"] == "emb.weight");
  CHECK(j["tensors"][0]["shape"] == nlohmann::json::array({256, 64}));
  CHECK(j["by_dtype"]["q5_0"]["tensors"] == 96);
  CHECK(j["by_dtype"]["f32"]["tensors"] == 174);
  CHECK(j["metadata"]["general.alignment"] == 32);
  CHECK(j["metadata"]["general.architecture"] == "rwkv-cpp-tiny");
  CHECK(j["bytes"] == 664800);
}

TEST_CASE("info --json FILE keeps the human output - --block - errors exit 2", "[convert][info][cli]") {
  if (!test::HaveShared("../shared/models")) return;
  test::TempDir tmp;
  const std::string model = "'" + (test::SharedDir() / "models" / "realmix-dev").string() + "'";
  const auto r = Info("--json '" + (tmp / "info.json").string() + "' " + model);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("parameters"));
  const auto j = nlohmann::json::parse(test::ReadFile(tmp / "info.json"));
  CHECK(j["block"] == "128x128");
  const auto none = nlohmann::json::parse(Info("--json --block none " + model).out);
  CHECK(none["block"] == "none");
  CHECK(none["sizes"]["e4m3fn"] < j["sizes"]["e4m3fn"]);
  CHECK(none["sizes"]["bf16"] == j["sizes"]["bf16"]);

  const auto bad = Info("--block 0x5 " + model);
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Catch::Contains("--block"));
  const auto missing = Info("'" + (tmp / "nope.safetensors").string() + "'");
  CHECK(missing.status == 2);
  CHECK_THAT(missing.err, Catch::Contains("no such file or directory"));
  CHECK(Info("").status == 2);  // PATH is required
}

TEST_CASE("info abbreviates long GGUF arrays and lists split files", "[convert][info][cli]") {
  test::TempDir tmp;
  std::vector<std::string> tokens(151936);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = "tok" + std::to_string(i);
  std::vector<GgufKV> kv = {{"general.architecture", GgufValue::Str("qwen2")},
                            {"tokenizer.ggml.tokens", GgufValue::StrArray(tokens)}};
  std::vector<GgufTensorSpec> specs = {{"token_embd.weight", {256, 8}, 12}, {"output_norm.weight", {256}, 0}};
  auto plans = PlanGgufSplit((tmp / "m.gguf").string(), 3, kv, specs, 1);
  REQUIRE(plans.ok());
  REQUIRE(plans->size() == 2);
  for (const auto& p : *plans) {
    auto out = BeginPlannedFile(p);
    REQUIRE(out.ok());
    REQUIRE(out->Commit().ok());
  }
  const auto r = Info("--tensors '" + (*plans)[1].path + "'");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("tokenizer.ggml.tokens"));
  CHECK_THAT(r.out, Catch::Contains("[151,936 strings]"));
  CHECK_THAT(r.out, Catch::Contains("GGUF v3, 2 files (split)"));
  CHECK_THAT(r.out, Catch::Contains("== m-00002-of-00002.gguf"));
  CheckFitsWidth(r.out);
  const auto j = nlohmann::json::parse(Info("--json '" + (*plans)[0].path + "'").out);
  CHECK(j["metadata"]["tokenizer.ggml.tokens"]["count"] == 151936);
  CHECK(j["files"].size() == 2);
  CHECK(j["tensors"][1]["file"] == "m-00002-of-00002.gguf");
}

TEST_CASE("info on a DeepSeek-V3-shaped checkpoint (163 sparse shards)", "[convert][info][cli]") {
  test::TempDir tmp;
  const auto summary = test::MakeDeepSeekV3Sparse(tmp.path());
  const auto r = Info("'" + tmp.path().string() + "'");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CheckFitsWidth(r.out);
  CHECK_THAT(r.out, Catch::Contains(std::to_string(summary.shards) + " shards"));
  CHECK_THAT(r.out, Catch::Contains("e4m3fn"));
  const auto j = nlohmann::json::parse(Info("--json '" + tmp.path().string() + "'").out);
  CHECK(j["tensor_bytes"] == summary.total_bytes);
  CHECK(j["sizes"]["bf16"] == 2 * summary.weight_params);
  CHECK(j["by_dtype"].contains("e4m3fn"));
}

}  // namespace
}  // namespace bitsmith
