// convert: GGUF output (quantize with --to / --tensor-type / --recipe /
// --imatrix, fallbacks, --strict), FP8 -> block type equal to the two-step
// path, requantize and dequantize of the GGUF samples in ../shared/models,
// GGUF splits, --dry-run sizes = written sizes, `verify`, and the output-
// directory rules (non-empty OUT, --force, --resume on a complete OUT, a full
// disk). Expected quantized bytes come from the scalar reference codecs
// (QuantizeRows / DequantizeRows with Impl::kReference) applied to values
// decoded here by independent arithmetic (convert_fixture.h).
#include <catch2/catch.hpp>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "codecs/quant.h"
#include "convert/checkpoint.h"
#include "convert/convert.h"
#include "convert/gguf.h"
#include "convert/imatrix.h"
#include "convert/manifest.h"
#include "convert/recipe.h"
#include "convert/tensor_plan.h"
#include "convert_fixture.h"
#include "support/malformed_files.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;
using test::TestTensor;
using Shards = std::vector<std::pair<std::string, std::vector<TestTensor>>>;

Result<ConvertReport> Run(const ConvertOptions& o, ConversionPlan* plan_out = nullptr, int threads = 2,
                          bool resume = false, bool force = false) {
  BITSMITH_ASSIGN_OR_RETURN(ConversionPlan plan, BuildConversionPlan(o));
  RunControl c;
  c.threads = threads;
  c.resume = resume;
  c.force = force;
  auto r = RunConversion(plan, c);
  if (plan_out) *plan_out = std::move(plan);
  return r;
}

ConvertOptions Opts(const fs::path& in, const fs::path& out, std::optional<DType> to = std::nullopt) {
  ConvertOptions o;
  o.input = in.string();
  o.output = out.string();
  o.to = to;
  return o;
}

std::vector<uint8_t> FileBytes(const fs::path& p) { return test::ReadFile(p); }

// Values of a F32/BF16 test tensor, decoded here.
std::vector<float> Values(const TestTensor& t) {
  const uint64_t n = test::Elements(t.shape);
  std::vector<float> v(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (t.st_dtype == "F32") std::memcpy(&v[i], t.bytes.data() + 4 * i, 4);
    else v[i] = test::BF16ToF32(static_cast<uint16_t>(t.bytes[2 * i] | (t.bytes[2 * i + 1] << 8)));
  }
  return v;
}

std::vector<uint8_t> RefQuantize(DType t, const std::vector<float>& v, uint64_t n_per_row,
                                 const float* imatrix = nullptr) {
  const uint64_t rows = v.size() / n_per_row;
  std::vector<uint8_t> out(rows * *RowBytes(t, n_per_row));
  REQUIRE(QuantizeRows(t, v, out, static_cast<int64_t>(n_per_row), imatrix, Impl::kReference).ok());
  return out;
}

void CheckBytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i])
      FAIL(what << ": byte " << i << " differs: expected " << int(want[i]) << ", found " << int(got[i]));
}

// A small float checkpoint: rows of 512 and 256 (fit k-quants), a row of 96
// (falls back), 1-D norms and biases.
std::vector<TestTensor> FloatTensors() {
  return {
      test::FloatTensor("a.weight", {8, 512}, 21, "F32", 0.5f),
      test::FloatTensor("b.weight", {4, 256}, 22, "BF16", 0.02f),
      test::FloatTensor("c.weight", {3, 96}, 23, "F32"),
      test::FloatTensor("norm.weight", {512}, 24, "F32"),
      test::FloatTensor("x.bias", {96}, 25, "BF16"),
  };
}

const TestTensor& Named(const std::vector<TestTensor>& ts, const std::string& n) {
  for (const TestTensor& t : ts)
    if (t.name == n) return t;
  FAIL("no tensor " << n);
  throw 0;
}

const TensorPlan& PlanOf(const ConversionPlan& p, const std::string& n) {
  for (const TensorPlan& t : p.tensors)
    if (t.name == n) return t;
  FAIL("no plan for " << n);
  throw 0;
}

TEST_CASE("convert: safetensors -> GGUF --to q4_k: bytes of QuantizeRows, 1-D f32, fallbacks, --strict",
          "[convert][gguf]") {
  test::TempDir tmp;
  const auto ts = FloatTensors();
  test::WriteShard(tmp / "in.safetensors", ts);
  ConversionPlan plan;
  REQUIRE(Run(Opts(tmp / "in.safetensors", tmp / "out.gguf", DType::kQ4_K), &plan).ok());
  auto ck = OpenCheckpoint((tmp / "out.gguf").string());
  REQUIRE(ck.ok());
  REQUIRE(ck->format == FileFormat::kGguf);
  REQUIRE(ck->tensors.size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) CHECK(ck->tensors[i].name == ts[i].name);  // order kept

  for (const char* n : {"a.weight", "b.weight"}) {
    const TestTensor& t = Named(ts, n);
    const auto got = test::ReadConverted(*ck, n);
    CHECK(got.info.dtype == DType::kQ4_K);
    CHECK(got.info.shape == t.shape);  // row-major, ne reversed by the reader
    CheckBytes(got.bytes, RefQuantize(DType::kQ4_K, Values(t), t.shape.back()), n);
  }
  // Row of 96: q4_k cannot take it; the fallback is listed in the plan.
  {
    const TestTensor& t = Named(ts, "c.weight");
    const auto got = test::ReadConverted(*ck, "c.weight");
    const TensorPlan& tp = PlanOf(plan, "c.weight");
    CHECK(tp.fallback);
    CHECK(got.info.dtype == tp.to);
    CHECK(tp.to != DType::kQ4_K);
    CHECK_THAT(tp.note, Catch::Contains("96"));
    CHECK(plan.fallbacks == 1);
    CheckBytes(got.bytes, RefQuantize(tp.to, Values(t), 96), "c.weight");
    const nlohmann::json j = nlohmann::json::parse(PlanJsonText(plan));
    bool listed = false;
    for (const auto& e : j["tensors"])
      if (e["name"] == "c.weight") listed = e["fallback"].is_string();
    CHECK(listed);
  }
  // 1-D tensors stay f32 (BF16 bias widened exactly).
  for (const char* n : {"norm.weight", "x.bias"}) {
    const TestTensor& t = Named(ts, n);
    const auto got = test::ReadConverted(*ck, n);
    CHECK(got.info.dtype == DType::kF32);
    const std::vector<float> v = Values(t);
    std::vector<uint8_t> want(v.size() * 4);
    std::memcpy(want.data(), v.data(), want.size());
    CheckBytes(got.bytes, want, n);
  }
  // --strict: the fallback is an error naming the tensor.
  ConvertOptions s = Opts(tmp / "in.safetensors", tmp / "strict.gguf", DType::kQ4_K);
  s.strict = true;
  auto r = BuildConversionPlan(s);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("c.weight"));
  CHECK(!fs::exists(tmp / "strict.gguf"));
  // A block type into a safetensors output is refused.
  CHECK(!BuildConversionPlan(Opts(tmp / "in.safetensors", tmp / "o.safetensors", DType::kQ4_K)).ok());
  // MX / NVFP4 blocks fit neither output: one message whatever OUT is (not "must be
  // a .gguf file" for a directory and "cannot be stored in GGUF" for a .gguf).
  for (const DType mx : {DType::kMXFP8_E4M3, DType::kMXFP4_OCP, DType::kNVFP4})
    for (const char* out : {"mx.gguf", "mx.safetensors", "mxdir"}) {
      INFO(GetDType(mx).name << " -> " << out);
      auto e = BuildConversionPlan(Opts(tmp / "in.safetensors", tmp / out, mx));
      REQUIRE(!e.ok());
      CHECK(e.error().kind == ErrorKind::kBadUsage);
      CHECK_THAT(e.error().message, Catch::Contains("is not a conversion target") && Catch::Contains("GGUF"));
      CHECK(!fs::exists(tmp / out));
    }
}

TEST_CASE("convert: --tensor-type (first match wins) and --recipe give the same file", "[convert][gguf]") {
  test::TempDir tmp;
  const auto ts = FloatTensors();
  test::WriteShard(tmp / "in.safetensors", ts);
  ConvertOptions o = Opts(tmp / "in.safetensors", tmp / "tt.gguf", DType::kQ4_K);
  for (const char* r : {"^a\\.weight$=q8_0", "weight=q6_k", "a\\.weight=q2_k"}) {
    auto rule = ParseRecipeRule(r, "--tensor-type");
    REQUIRE(rule.ok());
    o.rules.push_back(*rule);
  }
  REQUIRE(Run(o).ok());
  auto ck = OpenCheckpoint((tmp / "tt.gguf").string());
  REQUIRE(ck.ok());
  const TestTensor& a = Named(ts, "a.weight");
  const TestTensor& b = Named(ts, "b.weight");
  CheckBytes(test::ReadConverted(*ck, "a.weight").bytes, RefQuantize(DType::kQ8_0, Values(a), 512), "a.weight");
  CheckBytes(test::ReadConverted(*ck, "b.weight").bytes, RefQuantize(DType::kQ6_K, Values(b), 256), "b.weight");
  CHECK(test::ReadConverted(*ck, "norm.weight").info.dtype == DType::kF32);

  const std::string recipe = "# a recipe\n^a\\.weight$=q8_0\n\n  # indented comment\nweight=q6_k\na\\.weight=q2_k\n";
  test::WriteText(tmp / "r.txt", recipe);
  auto rules = ParseRecipe(recipe, (tmp / "r.txt").string());
  REQUIRE(rules.ok());
  REQUIRE(rules->size() == 3);
  ConvertOptions o2 = Opts(tmp / "in.safetensors", tmp / "recipe.gguf", DType::kQ4_K);
  o2.rules = *rules;
  REQUIRE(Run(o2).ok());
  CHECK(FileBytes(tmp / "tt.gguf") == FileBytes(tmp / "recipe.gguf"));
  // The CLI reads the same recipe file.
  const auto cli = test::Run("'" + test::BitsmithExe().string() + "' convert '" + (tmp / "in.safetensors").string() +
                             "' '" + (tmp / "cli.gguf").string() + "' --to q4_k --recipe '" +
                             (tmp / "r.txt").string() + "' -q");
  INFO(cli.out << cli.err);
  REQUIRE(cli.status == 0);
  CHECK(FileBytes(tmp / "tt.gguf") == FileBytes(tmp / "cli.gguf"));
}

// A GGUF imatrix as llama-imatrix writes it: "<name>.in_sum2" [n_per_row, 1]
// and "<name>.counts" [1, 1], F32.
void WriteGgufImatrix(const fs::path& p, const std::map<std::string, std::pair<float, std::vector<float>>>& e) {
  std::vector<GgufKV> kv = {{"general.type", GgufValue::Str("imatrix")},
                            {"imatrix.datasets", GgufValue::StrArray({"test.txt"})},
                            {"imatrix.chunk_count", GgufValue::U32(4)},
                            {"imatrix.chunk_size", GgufValue::U32(512)}};
  std::vector<GgufTensorSpec> specs;
  std::vector<std::vector<float>> data;
  for (const auto& [name, cv] : e) {
    specs.push_back({name + ".in_sum2", {cv.second.size(), 1}, 0});
    data.push_back(cv.second);
    specs.push_back({name + ".counts", {1, 1}, 0});
    data.push_back({cv.first});
  }
  auto plan = PlanGguf(p.string(), 3, kv, specs);
  REQUIRE(plan.ok());
  auto out = BeginPlannedFile(*plan);
  REQUIRE(out.ok());
  for (size_t i = 0; i < data.size(); ++i) {
    std::vector<uint8_t> b(data[i].size() * 4);
    std::memcpy(b.data(), data[i].data(), b.size());
    REQUIRE(out->WriteAt(plan->tensors[i].offset, b).ok());
  }
  REQUIRE(out->Commit().ok());
}

TEST_CASE("convert: --imatrix in both llama.cpp formats - types that need one list the tensors without",
          "[convert][gguf][imatrix]") {
  test::TempDir tmp;
  const auto ts = FloatTensors();
  test::WriteShard(tmp / "in.safetensors", ts);
  test::Rng r(77);
  std::map<std::string, std::pair<int32_t, std::vector<float>>> legacy;
  std::map<std::string, std::pair<float, std::vector<float>>> gg;
  for (const auto& [name, n] : {std::pair<std::string, size_t>{"a.weight", 512}, {"c.weight", 96}}) {
    std::vector<float> sums(n);
    for (float& s : sums) s = 4.0f * (0.01f + r.Uniform());  // sums of squares over 4 calls
    legacy[name] = {4, sums};
    gg[name] = {4.0f, sums};
  }
  const std::vector<uint8_t> dat = WriteLegacyImatrix(legacy, 4, "test.txt");
  {
    std::ofstream f(tmp / "im.dat", std::ios::binary);
    f.write(reinterpret_cast<const char*>(dat.data()), static_cast<std::streamsize>(dat.size()));
  }
  WriteGgufImatrix(tmp / "im.gguf", gg);

  ConvertOptions o = Opts(tmp / "in.safetensors", tmp / "dat.gguf", DType::kQ4_K);
  o.imatrix = (tmp / "im.dat").string();
  ConversionPlan plan;
  REQUIRE(Run(o, &plan).ok());
  // b.weight has no entry: listed (and quantized without one).
  CHECK(std::find(plan.imatrix_missing.begin(), plan.imatrix_missing.end(), "b.weight") != plan.imatrix_missing.end());
  o.output = (tmp / "gguf.gguf").string();
  o.imatrix = (tmp / "im.gguf").string();
  REQUIRE(Run(o).ok());
  CHECK(FileBytes(tmp / "dat.gguf") == FileBytes(tmp / "gguf.gguf"));

  auto ck = OpenCheckpoint((tmp / "dat.gguf").string());
  REQUIRE(ck.ok());
  std::vector<float> imp(512);
  for (size_t i = 0; i < 512; ++i) imp[i] = legacy["a.weight"].second[i] / 4.0f;
  const auto want = RefQuantize(DType::kQ4_K, Values(Named(ts, "a.weight")), 512, imp.data());
  CheckBytes(test::ReadConverted(*ck, "a.weight").bytes, want, "a.weight with imatrix");
  CHECK(want != RefQuantize(DType::kQ4_K, Values(Named(ts, "a.weight")), 512));  // the imatrix mattered
  // The imatrix is used for c.weight's fallback type too (q5_0 uses one).
  const TensorPlan& c = PlanOf(plan, "c.weight");
  std::vector<float> impc(96);
  for (size_t i = 0; i < 96; ++i) impc[i] = legacy["c.weight"].second[i] / 4.0f;
  CheckBytes(test::ReadConverted(*ck, "c.weight").bytes,
             RefQuantize(c.to, Values(Named(ts, "c.weight")), 96, GetBlockCodec(c.to)->uses_imatrix ? impc.data() : nullptr),
             "c.weight with imatrix");

  // iq2_xxs requires an imatrix: without one, and with one lacking b.weight,
  // the error lists the tensors.
  ConvertOptions q = Opts(tmp / "in.safetensors", tmp / "iq.gguf", DType::kIQ2_XXS);
  auto e1 = BuildConversionPlan(q);
  REQUIRE(!e1.ok());
  CHECK_THAT(e1.error().message, Catch::Contains("a.weight") && Catch::Contains("b.weight"));
  q.imatrix = (tmp / "im.gguf").string();
  auto e2 = BuildConversionPlan(q);
  REQUIRE(!e2.ok());
  CHECK_THAT(e2.error().message, Catch::Contains("b.weight"));
  CHECK_THAT(e2.error().message, !Catch::Contains("a.weight"));
  // A wrong-sized entry is an error naming the tensor and both sizes.
  legacy["a.weight"].second.resize(256);
  const std::vector<uint8_t> bad = WriteLegacyImatrix(legacy, 4, "test.txt");
  {
    std::ofstream f(tmp / "bad.dat", std::ios::binary);
    f.write(reinterpret_cast<const char*>(bad.data()), static_cast<std::streamsize>(bad.size()));
  }
  o.imatrix = (tmp / "bad.dat").string();
  auto e3 = BuildConversionPlan(o);
  REQUIRE(!e3.ok());
  CHECK_THAT(e3.error().message, Catch::Contains("a.weight") && Catch::Contains("256") && Catch::Contains("512"));
}

// FP8 weights whose rows fit q4_k, with 128x128 block scales (ragged rows).
Shards Fp8GgufShards() {
  return {{"model-00001-of-00002.safetensors",
           {test::Fp8Tensor("w1.weight", {200, 512}, 31), test::ScaleTensor("w1.weight_scale_inv", {2, 4}, 32),
            test::FloatTensor("n.weight", {512}, 33), test::Fp8Tensor("w2.weight", {130, 256}, 34)}},
          {"model-00002-of-00002.safetensors",
           {test::ScaleTensor("w2.weight_scale_inv", {2, 2}, 35, "BF16"), test::FloatTensor("e.weight", {16, 256}, 36)}}};
}

TEST_CASE("convert: FP8 -> q4_k in one pass equals cast to BF16 then quantize, byte for byte", "[convert][gguf][fp8]") {
  test::TempDir tmp;
  const Shards shards = Fp8GgufShards();
  test::WriteCheckpoint(tmp / "in", shards, test::DeepSeekConfig());
  REQUIRE(Run(Opts(tmp / "in", tmp / "one.gguf", DType::kQ4_K)).ok());
  REQUIRE(Run(Opts(tmp / "in", tmp / "bf16", DType::kBF16)).ok());
  REQUIRE(Run(Opts(tmp / "bf16", tmp / "two.gguf", DType::kQ4_K)).ok());
  auto one = OpenCheckpoint((tmp / "one.gguf").string());
  auto two = OpenCheckpoint((tmp / "two.gguf").string());
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  REQUIRE(one->tensors.size() == 4);  // scales dropped
  for (const char* n : {"w1.weight", "w2.weight", "n.weight", "e.weight"}) {
    INFO(n);
    const auto a = test::ReadConverted(*one, n);
    const auto b = test::ReadConverted(*two, n);
    CHECK(a.info.dtype == b.info.dtype);
    CheckBytes(a.bytes, b.bytes, n);
  }
  CHECK(!one->Find("w1.weight_scale_inv"));
  // --fp8-via f32: quantized from the unrounded f32 products (computed here).
  ConvertOptions f = Opts(tmp / "in", tmp / "f32.gguf", DType::kQ4_K);
  f.fp8_via_f32 = true;
  REQUIRE(Run(f).ok());
  auto ck = OpenCheckpoint((tmp / "f32.gguf").string());
  REQUIRE(ck.ok());
  const TestTensor& w = test::FindTest(shards, "w1.weight");
  const TestTensor& s = test::FindTest(shards, "w1.weight_scale_inv");
  std::vector<float> y(200 * 512);
  for (uint64_t i = 0; i < 200; ++i)
    for (uint64_t j = 0; j < 512; ++j)
      y[i * 512 + j] = test::E4M3ToFloat(w.bytes[i * 512 + j]) * test::ScaleValue(s, (i / 128) * 4 + j / 128);
  CheckBytes(test::ReadConverted(*ck, "w1.weight").bytes, RefQuantize(DType::kQ4_K, y, 512), "w1.weight via f32");
  // verify knows --fp8-via.
  VerifyOptions v{(tmp / "in").string(), (tmp / "f32.gguf").string(), "", true, false, 2};
  auto vr = VerifyConversion(v);
  REQUIRE(vr.ok());
  CHECK(vr->ok());
  v.fp8_via_f32 = false;
  vr = VerifyConversion(v);
  REQUIRE(vr.ok());
  CHECK(vr->mismatches >= 1);
}

// The GGUF samples in ../shared/models.
const char* const kGgufSamples[] = {"tiny-rwkv-5v2-730K/model-q5_0.gguf", "tiny-rwkv-5v2-730K/model-q5_1.gguf",
                                    "tiny-rwkv-7v0-834K/model-q5_0.gguf"};

TEST_CASE("convert: GGUF -> GGUF without a type option is byte-identical", "[convert][gguf][samples]") {
  if (!test::HaveShared("../shared/models GGUF samples")) return;
  test::TempDir tmp;
  for (const char* rel : kGgufSamples) {
    INFO(rel);
    const fs::path in = test::SharedDir() / "models" / rel;
    REQUIRE(Run(Opts(in, tmp / "copy.gguf")).ok());
    CHECK(FileBytes(tmp / "copy.gguf") == FileBytes(in));
  }
}

TEST_CASE("convert: requantize the GGUF samples (metadata kept, general.file_type, --allow-requantize)",
          "[convert][gguf][samples]") {
  if (!test::HaveShared("../shared/models GGUF samples")) return;
  test::TempDir tmp;
  for (const char* rel : kGgufSamples) {
    INFO(rel);
    const fs::path in = test::SharedDir() / "models" / rel;
    auto src = OpenCheckpoint(in.string());
    REQUIRE(src.ok());
    ConvertOptions o = Opts(in, tmp / "rq.gguf", DType::kQ8_0);
    auto refused = BuildConversionPlan(o);
    REQUIRE(!refused.ok());
    CHECK_THAT(refused.error().message, Catch::Contains("--allow-requantize"));
    o.allow_requantize = true;
    REQUIRE(Run(o).ok());
    auto out = OpenCheckpoint((tmp / "rq.gguf").string());
    REQUIRE(out.ok());
    // Metadata: every input key kept with its value, in order; file_type set.
    const GgufFile& gi = src->gguf[0];
    const GgufFile& go = out->gguf[0];
    for (const GgufKV& kv : gi.kv) {
      if (kv.key == "general.file_type") continue;
      const GgufValue* v = go.Find(kv.key);
      REQUIRE(v);
      CHECK(*v == kv.value);
    }
    size_t pos = 0;
    for (const GgufKV& kv : go.kv)  // input keys appear in the input's order
      if (pos < gi.kv.size() && kv.key == gi.kv[pos].key) ++pos;
    CHECK(pos == gi.kv.size());
    REQUIRE(go.Find("general.file_type"));
    CHECK(go.Find("general.file_type")->AsUInt() == uint64_t{7});  // LLAMA_FTYPE_MOSTLY_Q8_0
    REQUIRE(go.Find("general.quantization_version"));
    CHECK(go.alignment == gi.alignment);
    // Tensors: same order and shapes; quantized ones requantized from the
    // reference dequantization, the others unchanged.
    REQUIRE(out->tensors.size() == src->tensors.size());
    auto fi = InputFile::Open(in.string());
    REQUIRE(fi.ok());
    size_t requantized = 0;
    for (size_t k = 0; k < src->tensors.size(); ++k) {
      const TensorInfo& a = src->tensors[k];
      INFO(a.name);
      CHECK(out->tensors[k].name == a.name);
      CHECK(out->tensors[k].shape == a.shape);
      const auto got = test::ReadConverted(*out, a.name);
      auto raw = fi->ReadRange(a.offset, a.nbytes);
      REQUIRE(raw.ok());
      if (a.dtype && GetDType(*a.dtype).is_block()) {
        std::vector<float> f(a.elements());
        REQUIRE(DequantizeRows(*a.dtype, *raw, f, Impl::kReference).ok());
        REQUIRE(got.info.dtype == DType::kQ8_0);
        CheckBytes(got.bytes, RefQuantize(DType::kQ8_0, f, a.row_length()), a.name);
        ++requantized;
      } else if (a.rank() == 1) {
        CHECK(got.info.dtype == a.dtype);
        CHECK(got.bytes == *raw);
      }
    }
    CHECK(requantized > 0);
    VerifyOptions v{in.string(), (tmp / "rq.gguf").string(), "", false, false, 2};
    auto vr = VerifyConversion(v);
    REQUIRE(vr.ok());
    CHECK(vr->ok());
  }
}

TEST_CASE("convert: GGUF -> safetensors dequantizes (row-major shapes, metadata as strings)",
          "[convert][gguf][samples]") {
  if (!test::HaveShared("../shared/models GGUF samples")) return;
  test::TempDir tmp;
  const fs::path in = test::SharedDir() / "models" / "tiny-rwkv-5v2-730K/model-q5_1.gguf";
  auto src = OpenCheckpoint(in.string());
  REQUIRE(src.ok());
  for (DType to : {DType::kF32, DType::kBF16}) {
    const fs::path outp = tmp / (to == DType::kF32 ? "f32.safetensors" : "bf16.safetensors");
    REQUIRE(Run(Opts(in, outp, to)).ok());
    auto out = OpenCheckpoint(outp.string());
    REQUIRE(out.ok());
    REQUIRE(out->format == FileFormat::kSafetensors);
    REQUIRE(out->tensors.size() == src->tensors.size());
    // __metadata__: every GGUF key as a string.
    REQUIRE(out->shards[0].has_metadata);
    const auto& meta = out->shards[0].metadata;
    auto find = [&](const std::string& k) -> std::optional<std::string> {
      for (const auto& [mk, mv] : meta)
        if (mk == k) return mv;
      return std::nullopt;
    };
    CHECK(find("general.architecture") == std::optional<std::string>("rwkv-cpp-tiny"));
    CHECK(find("general.quantization_version") == std::optional<std::string>("2"));
    for (const GgufKV& kv : src->gguf[0].kv) CHECK(find(kv.key).has_value());
    auto fi = InputFile::Open(in.string());
    REQUIRE(fi.ok());
    for (const TensorInfo& a : src->tensors) {
      INFO(a.name);
      const auto got = test::ReadConverted(*out, a.name);
      CHECK(got.info.dtype == to);
      CHECK(got.info.shape == a.shape);  // = ne reversed
      auto raw = fi->ReadRange(a.offset, a.nbytes);
      REQUIRE(raw.ok());
      std::vector<float> f(a.elements());
      if (GetDType(*a.dtype).is_block()) {
        REQUIRE(DequantizeRows(*a.dtype, *raw, f, Impl::kReference).ok());
      } else {
        REQUIRE(a.dtype == DType::kF32);
        std::memcpy(f.data(), raw->data(), raw->size());
      }
      for (size_t i = 0; i < f.size(); ++i) {
        if (to == DType::kF32) {
          float h;
          std::memcpy(&h, got.bytes.data() + 4 * i, 4);
          if (std::bit_cast<uint32_t>(h) != std::bit_cast<uint32_t>(f[i])) FAIL("element " << i);
        } else {
          const uint16_t h = static_cast<uint16_t>(got.bytes[2 * i] | (got.bytes[2 * i + 1] << 8));
          if (h != test::F32ToBF16(f[i])) FAIL("element " << i << " value " << f[i]);
        }
      }
    }
  }
  // The shape rule checked on a GGUF we write: ne = {5, 3} is shape {3, 5}.
  CHECK(src->gguf[0].tensors[1].ne.size() == src->tensors[1].shape.size());
}

uint64_t SizeSum(const ConversionPlan& p) {
  uint64_t n = 0;
  for (const OutputFilePlan& f : p.files) {
    std::error_code ec;
    const uint64_t s = fs::file_size(f.planned.path, ec);
    INFO(f.planned.path);
    REQUIRE(!ec);
    CHECK(s == f.planned.size);
    n += s;
  }
  return n;
}

TEST_CASE("convert: GGUF splits (--split-max-size): llama.cpp naming and keys, same tensors", "[convert][gguf]") {
  if (!test::HaveShared("../shared/models safetensors sample")) return;
  test::TempDir tmp;
  const fs::path in = test::SharedDir() / "models" / "tiny-rwkv-5v2-730K/model.safetensors";
  REQUIRE(Run(Opts(in, tmp / "whole.gguf", DType::kQ8_0)).ok());
  ConvertOptions o = Opts(in, tmp / "sp.gguf", DType::kQ8_0);
  o.split_max_size = 300'000;
  ConversionPlan plan;
  REQUIRE(Run(o, &plan).ok());
  REQUIRE(plan.files.size() == 3);
  CHECK(SizeSum(plan) == plan.file_bytes_out);
  for (int i = 0; i < 3; ++i) {
    const fs::path p = tmp / GgufSplitPath("sp", i, 3);
    CHECK(p.filename().string() == "sp-0000" + std::to_string(i + 1) + "-of-00003.gguf");
    auto g = ReadGgufFile(p.string());
    REQUIRE(g.ok());
    REQUIRE(g->Find("split.no"));
    CHECK(g->Find("split.no")->type == GgufType::kU16);
    CHECK(g->Find("split.no")->AsUInt() == uint64_t(i));
    CHECK(g->Find("split.count")->AsUInt() == uint64_t{3});
    CHECK(g->Find("split.tensors.count")->type == GgufType::kI32);
    CHECK(g->Find("split.tensors.count")->AsInt() == int64_t{270});
    if (i == 0) CHECK(g->Find("general.file_type"));
    else CHECK(!g->Find("general.file_type"));
  }
  CHECK(!fs::exists(tmp / "sp.gguf"));
  auto whole = OpenCheckpoint((tmp / "whole.gguf").string());
  auto split = OpenCheckpoint((tmp / "sp-00001-of-00003.gguf").string());
  REQUIRE(whole.ok());
  REQUIRE(split.ok());
  REQUIRE(split->tensors.size() == whole->tensors.size());
  for (size_t k = 0; k < whole->tensors.size(); ++k) {
    CHECK(split->tensors[k].name == whole->tensors[k].name);
    CHECK(test::ReadConverted(*split, whole->tensors[k].name).bytes ==
          test::ReadConverted(*whole, whole->tensors[k].name).bytes);
  }
  VerifyOptions v{in.string(), (tmp / "sp-00001-of-00003.gguf").string(), "", false, false, 2};
  auto vr = VerifyConversion(v);
  REQUIRE(vr.ok());
  CHECK(vr->ok());
}

// Found by the convert fuzz target: `verify IN OUT.gguf` after `convert IN
// OUT.gguf --split-max-size` said "OUT.gguf: no such file or directory".
TEST_CASE("convert: OUT.gguf names the split set convert wrote for it (verify / info / OpenCheckpoint)",
          "[convert][gguf]") {
  test::TempDir tmp;
  test::WriteCheckpoint(tmp / "in", Fp8GgufShards(), test::DeepSeekConfig());
  ConvertOptions o = Opts(tmp / "in", tmp / "split.gguf", DType::kQ8_0);
  o.split_max_size = 150'000;
  ConversionPlan plan;
  REQUIRE(Run(o, &plan).ok());
  REQUIRE(plan.files.size() > 1);
  REQUIRE(!fs::exists(tmp / "split.gguf"));
  auto by_out = OpenCheckpoint((tmp / "split.gguf").string());
  REQUIRE(by_out.ok());
  CHECK(by_out->files.size() == plan.files.size());
  CHECK(by_out->files[0] == plan.files[0].planned.path);
  auto vr = VerifyConversion({(tmp / "in").string(), (tmp / "split.gguf").string(), "", false, false, 1});
  REQUIRE(vr.ok());
  CHECK(vr->ok());
  const auto r = test::Run("'" + test::BitsmithExe().string() + "' verify '" + (tmp / "in").string() + "' '" +
                           (tmp / "split.gguf").string() + "'");
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  // Two split sets of that name: which one is meant is not guessed.
  fs::copy_file(plan.files[0].planned.path, tmp / "split-00001-of-00009.gguf");
  auto two = OpenCheckpoint((tmp / "split.gguf").string());
  REQUIRE(!two.ok());
  CHECK(two.error().kind == ErrorKind::kBadInput);
  CHECK_THAT(two.error().message, Catch::Matchers::Contains("several GGUF split sets") &&
                                      Catch::Matchers::Contains("split-00001-of-00009.gguf"));
  // Nothing of that name: the usual error.
  auto none = OpenCheckpoint((tmp / "other.gguf").string());
  REQUIRE(!none.ok());
  CHECK_THAT(none.error().message, Catch::Matchers::Contains("other.gguf: no such file or directory"));
}

// Found by the convert fuzz target: a conversion failing in split 2 left split
// 1 renamed into place -- an incomplete set that looks finished.
TEST_CASE("convert: a GGUF split set appears whole or not at all", "[convert][gguf]") {
  test::TempDir tmp;
  test::TestTensor bad = test::FloatTensor("b.weight", {4, 256}, 2);
  bad.bytes[2 * 256 * 2 + 6] = 0xC0, bad.bytes[2 * 256 * 2 + 7] = 0x7F;  // a NaN (bf16 0x7FC0, little-endian) in row 2
  test::WriteCheckpoint(tmp / "in", {{"model.safetensors", {test::FloatTensor("a.weight", {64, 256}, 1), bad}}}, nullptr);
  ConvertOptions o = Opts(tmp / "in", tmp / "out" / "split.gguf", DType::kQ8_0);
  o.split_max_size = 1;  // a split per tensor
  fs::create_directories(tmp / "out");
  ConversionPlan plan;
  const auto r = Run(o, &plan);
  REQUIRE(plan.files.size() == 2);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Catch::Matchers::Contains("b.weight") && Catch::Matchers::Contains("nan"));
  CHECK(fs::is_empty(tmp / "out"));  // neither split 1 nor a temporary
  // The same set without the NaN: both splits, no temporary.
  test::WriteCheckpoint(tmp / "in2", {{"model.safetensors", {test::FloatTensor("a.weight", {64, 256}, 1),
                                                             test::FloatTensor("b.weight", {4, 256}, 2)}}}, nullptr);
  o.input = (tmp / "in2").string();
  REQUIRE(Run(o).ok());
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp / "out")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"split-00001-of-00002.gguf", "split-00002-of-00002.gguf"});
}

TEST_CASE("convert: --dry-run sizes equal the written sizes", "[convert][dryrun]") {
  test::TempDir tmp;
  test::WriteCheckpoint(tmp / "in", Fp8GgufShards(), test::DeepSeekConfig());
  test::WriteCheckpoint(tmp / "ds", test::DeepSeekShards(), test::DeepSeekConfig());
  struct Case {
    fs::path in;
    std::string out;
    std::optional<DType> to;
    uint64_t shard = 0, split = 0;
  };
  const Case cases[] = {
      {tmp / "ds", "bf16", DType::kBF16},
      {tmp / "ds", "bf16-resharded", DType::kBF16, 100'000},
      {tmp / "ds", "f32.safetensors", DType::kF32},
      {tmp / "in", "q4k.gguf", DType::kQ4_K},
      {tmp / "in", "split.gguf", DType::kQ8_0, 0, 150'000},
      {tmp / "ds", "fp8", DType::kE4M3FN},
  };
  for (const Case& c : cases) {
    INFO(c.out);
    ConvertOptions o = Opts(c.in, tmp / c.out, c.to);
    o.max_shard_size = c.shard;
    o.split_max_size = c.split;
    if (c.to == DType::kE4M3FN) o.input = (tmp / "bf16").string();
    auto dry = BuildConversionPlan(o);  // what --dry-run prints
    REQUIRE(dry.ok());
    ConversionPlan plan;
    REQUIRE(Run(o, &plan).ok());
    CHECK(SizeSum(plan) == dry->file_bytes_out);
    uint64_t data = 0;
    auto ck = OpenCheckpoint(plan.files.size() > 1 && plan.out_kind == OutputKind::kGguf
                                 ? plan.files[0].planned.path
                                 : (tmp / c.out).string());
    REQUIRE(ck.ok());
    for (const TensorInfo& t : ck->tensors) data += t.nbytes;
    CHECK(data == dry->bytes_out);
  }
  // The CLI's --dry-run --json totals, and nothing written.
  const auto r = test::Run("'" + test::BitsmithExe().string() + "' convert '" + (tmp / "ds").string() + "' '" +
                           (tmp / "dry").string() + "' --to bf16 --dry-run --json");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE(!j.is_discarded());
  INFO(r.out);
  auto ck = OpenCheckpoint((tmp / "bf16").string());
  REQUIRE(ck.ok());
  CHECK(j["totals"]["file_bytes_out"].get<uint64_t>() == ck->disk_bytes());
  CHECK(!fs::exists(tmp / "dry"));
}

TEST_CASE("convert JSON summary: streamed, nlohmann's own text", "[convert][dryrun]") {
  test::TempDir tmp;
  test::WriteCheckpoint(tmp / "ds", test::DeepSeekShards(), test::DeepSeekConfig());
  // The plan's JSON is written piece by piece; it must be the text nlohmann's
  // dump(2) writes for the same document (sorted keys, indents, escapes).
  auto plan = BuildConversionPlan(Opts(tmp / "ds", tmp / "out", DType::kBF16));
  REQUIRE(plan.ok());
  const nlohmann::json extra = {{"seconds", 0.125}, {"dry_run", true}, {"zz_last", {1, 2}}};
  const std::string text = PlanJsonText(*plan, extra);
  const auto j = nlohmann::json::parse(text, nullptr, false);
  REQUIRE(!j.is_discarded());
  CHECK(j.dump(2) == text);
  CHECK(j["tensors"].size() == plan->tensors.size());
  CHECK(j["dropped"].size() == plan->dropped.size());
  CHECK(j["seconds"] == 0.125);
  CHECK(j["zz_last"][1] == 2);
  std::string pieces;
  size_t calls = 0;
  WritePlanJson(*plan, extra, [&](std::string_view s) { pieces.append(s), ++calls; });
  CHECK(pieces == text);
  CHECK(calls >= 1);
  for (const auto& t : j["tensors"]) CHECK(t["shape"].is_array());

}

TEST_CASE("JSON output of convert, report, plan and verify: a tensor name that is not UTF-8", "[convert][dryrun]") {
  // A GGUF tensor name is any bytes: one that is not UTF-8 is shown as
  // PrintableText, as `info` shows it -- not a JSON exception (nlohmann's dump
  // throws on it; every --json output failed with exit 1 before).
  test::TempDir tmp;
  test::GgufBytes g;
  g.Header(1, 0).Tensor("bad\xff\x01name.weight", {32, 2}, 0, 0).PadTo(32);  // f32 [2, 32]
  for (int i = 0; i < 64; ++i) g.U32(std::bit_cast<uint32_t>(static_cast<float>(i % 7) - 3.0f));
  test::WriteText(tmp / "bad.gguf", std::string(g.bytes.begin(), g.bytes.end()));
  const std::string exe = "'" + test::BitsmithExe().string() + "' ";
  const std::string in = "'" + (tmp / "bad.gguf").string() + "' ";
  const std::string shown = "bad\\xff\\x01name.weight";
  // Whether `shown` is a string value or key anywhere in `j`.
  std::function<bool(const nlohmann::json&)> has = [&](const nlohmann::json& j) {
    if (j.is_string()) return j.get<std::string>() == shown;
    if (j.is_object())
      for (const auto& [k, v] : j.items())
        if (k == shown || has(v)) return true;
    if (j.is_array())
      for (const auto& v : j)
        if (has(v)) return true;
    return false;
  };
  auto json_of = [](const test::RunResult& r) {
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    REQUIRE(!j.is_discarded());
    return j;
  };
  {
    const auto j = json_of(test::Run(exe + "convert " + in + "'" + (tmp / "o.gguf").string() +
                                     "' --to q8_0 --dry-run --json"));
    CHECK(j["tensors"][0]["name"] == shown);
    CHECK(j["tensors"][0]["to"] == "q8_0");
    CHECK(!fs::exists(tmp / "o.gguf"));
  }
  {
    const auto j = json_of(test::Run(exe + "convert " + in + "'" + (tmp / "o.gguf").string() + "' --to q8_0 --json"));
    CHECK(j["tensors"][0]["name"] == shown);
    CHECK(fs::exists(tmp / "o.gguf"));
  }
  {
    const auto j = json_of(test::Run(exe + "verify " + in + "'" + (tmp / "o.gguf").string() + "' --json"));
    CHECK(has(j));
  }
  {
    const auto j = json_of(test::Run(exe + "report " + in + "--types q8_0 --json"));
    CHECK(has(j));
  }
  {
    const auto j = json_of(test::Run(exe + "plan " + in + "--target-bpw 9 --json"));
    CHECK(has(j));
  }
}

TEST_CASE("convert: a GGUF block tensor to FP8 gets block scales and NaN is refused", "[convert][gguf]") {
  // A convert fuzz finding (session 5): q8_0 -> e5m2 was planned as a plain
  // dequantize -- unscaled, non-saturating codes, NaN written as NaN codes, no
  // _scale_inv beside a config.json announcing block scales -- while verify
  // (rightly) expected FP8 quantization. The input: the fuzz seed "gguf_copy"
  // (an f32 and a q8_0 tensor [2, 32]) without its 3 option bytes.
  test::TempDir tmp;
  std::vector<uint8_t> gguf;
  for (auto& [name, bytes] : test::FuzzSeeds("convert"))
    if (name == "gguf_copy") gguf.assign(bytes.begin() + 3, bytes.end());
  REQUIRE(!gguf.empty());
  const fs::path in = tmp / "model.gguf";
  test::WriteText(in, std::string(gguf.begin(), gguf.end()));
  for (DType to : {DType::kE4M3FN, DType::kE5M2}) {
    INFO(GetDType(to).name);
    const fs::path out = tmp / ("fp8-" + std::string(GetDType(to).name));
    ConversionPlan plan;
    REQUIRE(Run(Opts(in, out, to), &plan).ok());
    for (const TensorPlan& tp : plan.tensors) {
      INFO(tp.name);
      CHECK(tp.op == TensorOp::kQuantizeFp8);
      CHECK(tp.out_scale_name == tp.name + "_scale_inv");
    }
    auto ck = OpenCheckpoint(out.string());
    REQUIRE(ck.ok());
    REQUIRE(ck->Find("blk.0.attn_k.weight_scale_inv") != nullptr);
    CHECK(ck->Find("blk.0.attn_k.weight")->dtype == to);
    VerifyOptions v{in.string(), out.string(), "", false, false, 1};
    auto vr = VerifyConversion(v);
    REQUIRE(vr.ok());
    CHECK(vr->ok());
  }
  // The q8_0 block scale made NaN (fp16 0x7E00): every value of that block is
  // NaN, and FP8 quantization refuses it, naming the tensor; nothing written.
  auto ck = OpenCheckpoint(in.string());
  REQUIRE(ck.ok());
  const TensorInfo* k = ck->Find("blk.0.attn_k.weight");
  REQUIRE(k != nullptr);
  gguf[k->offset + 34] = 0x00, gguf[k->offset + 35] = 0x7E;  // second block's d
  test::WriteText(in, std::string(gguf.begin(), gguf.end()));
  const auto r = Run(Opts(in, tmp / "nan", DType::kE5M2));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::kBadInput);
  CHECK_THAT(r.error().message, Catch::Contains("blk.0.attn_k.weight") && Catch::Contains("non-finite"));
  CHECK(!fs::exists(tmp / "nan"));
}

TEST_CASE("convert: a GGUF tensor with n_dims 0 keeps n_dims 0", "[convert][gguf]") {
  // ggml reads n_dims 0 as one element (ne all 1); bitsmith reads it as shape []
  // and wrote it back as n_dims 1, ne {1}, which verify flagged (a convert fuzz
  // finding). Canonical layout: the copy is byte-identical; a requantize of the
  // other tensor verifies.
  test::TempDir tmp;
  test::GgufBytes b;
  b.Header(2, 1).KvStr("general.architecture", "llama");
  b.Tensor("scale", {}, 0, 0).Tensor("blk.0.attn_q.weight", {32, 2}, 0, 32);
  b.PadTo(32);
  const float one = 1.5f;
  b.U32(std::bit_cast<uint32_t>(one));
  b.PadTo(32);
  for (int i = 0; i < 64; ++i) {
    const float v = 0.01f * static_cast<float>(i - 32);
    b.U32(std::bit_cast<uint32_t>(v));
  }
  const fs::path in = tmp / "in.gguf";
  test::WriteText(in, std::string(b.bytes.begin(), b.bytes.end()));
  auto ck = OpenCheckpoint(in.string());
  REQUIRE(ck.ok());
  CHECK(ck->warnings.empty());  // canonical: laid out as ggml writes
  CHECK(ck->Find("scale")->shape.empty());
  REQUIRE(Run(Opts(in, tmp / "copy.gguf")).ok());
  CHECK(test::ReadFile(tmp / "copy.gguf") == b.bytes);
  REQUIRE(Run(Opts(in, tmp / "q8.gguf", DType::kQ8_0)).ok());
  auto q = OpenCheckpoint((tmp / "q8.gguf").string());
  REQUIRE(q.ok());
  CHECK(q->Find("scale")->shape.empty());
  CHECK(q->Find("blk.0.attn_q.weight")->dtype == DType::kQ8_0);
  VerifyOptions v{in.string(), (tmp / "q8.gguf").string(), "", false, false, 1};
  auto vr = VerifyConversion(v);
  REQUIRE(vr.ok());
  CHECK(vr->ok());
}

TEST_CASE("convert: a tensor with no elements but a dimension of 2^61", "[convert][gguf]") {
  // shape [2^61, 0] (ggml ne {0, 2^61}): zero bytes, a valid header. The
  // pipeline walked its 2^61 rows into work items (a convert fuzz finding: out
  // of memory); it now has nothing to do for it.
  test::TempDir tmp;
  test::GgufBytes b;
  b.Header(2, 0);
  b.Tensor("empty", {0, uint64_t{1} << 61}, 0, 0).Tensor("w", {32, 2}, 0, 0);
  b.PadTo(32);
  for (int i = 0; i < 64; ++i) {
    const float v = 0.25f * static_cast<float>(i % 9 - 4);
    b.U32(std::bit_cast<uint32_t>(v));
  }
  const fs::path in = tmp / "in.gguf";
  test::WriteText(in, std::string(b.bytes.begin(), b.bytes.end()));
  for (DType to : {DType::kQ8_0, DType::kF16}) {
    INFO(GetDType(to).name);
    const fs::path out = tmp / (std::string(GetDType(to).name) + ".gguf");
    ConversionPlan plan;
    REQUIRE(Run(Opts(in, out, to), &plan).ok());
    auto ck = OpenCheckpoint(out.string());
    REQUIRE(ck.ok());
    CHECK(ck->Find("empty")->shape == std::vector<uint64_t>{uint64_t{1} << 61, 0});
    CHECK(ck->Find("empty")->nbytes == 0);
    VerifyOptions v{in.string(), out.string(), "", false, false, 1};
    auto vr = VerifyConversion(v);
    REQUIRE(vr.ok());
    CHECK(vr->ok());
  }
}

TEST_CASE("verify: identical, or the first difference per tensor", "[convert][verify]") {
  test::TempDir tmp;
  const Shards shards = test::DeepSeekShards();
  test::WriteCheckpoint(tmp / "in", shards, test::DeepSeekConfig());
  REQUIRE(Run(Opts(tmp / "in", tmp / "out", DType::kBF16)).ok());
  VerifyOptions v{(tmp / "in").string(), (tmp / "out").string(), "", false, false, 2};
  auto ok = VerifyConversion(v);
  REQUIRE(ok.ok());
  CHECK(ok->ok());
  CHECK(ok->tensors.size() == 9);
  for (const TensorVerdict& t : ok->tensors) CHECK(t.identical);
  const std::string exe = "'" + test::BitsmithExe().string() + "' verify '" + (tmp / "in").string() + "' '" +
                          (tmp / "out").string() + "'";
  auto r = test::Run(exe);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("9 of 9 tensors identical"));

  // Corrupt element (row 9, column 82) of q_a_proj (300 columns, bf16).
  auto ck = OpenCheckpoint((tmp / "out").string());
  REQUIRE(ck.ok());
  const TensorInfo* t = ck->Find("model.layers.0.self_attn.q_a_proj.weight");
  REQUIRE(t);
  {
    std::fstream f(t->file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(t->offset + 2 * (9 * 300 + 82) + 1));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(t->offset + 2 * (9 * 300 + 82) + 1));
    c = static_cast<char>(c ^ 0x01);
    f.write(&c, 1);
  }
  auto bad = VerifyConversion(v);
  REQUIRE(bad.ok());
  CHECK(!bad->ok());
  CHECK(bad->mismatches == 1);
  for (const TensorVerdict& tv : bad->tensors)
    if (!tv.identical) {
      CHECK(tv.name == t->name);
      CHECK_THAT(tv.detail, Catch::Contains("element 2782") && Catch::Contains("row 9, column 82"));
    }
  r = test::Run(exe);
  CHECK(r.status != 0);
  CHECK_THAT(r.out, Catch::Contains("DIFFERS") && Catch::Contains("row 9, column 82"));

  // A missing tensor is a structural problem.
  test::WriteShard(tmp / "one.safetensors", {test::FloatTensor("model.norm.weight", {96}, 13, "F32")});
  v.output = (tmp / "one.safetensors").string();
  auto miss = VerifyConversion(v);
  REQUIRE(miss.ok());
  CHECK(!miss->ok());
  CHECK(!miss->problems.empty());
}

TEST_CASE("convert: non-empty OUT refused without --resume/--force - --resume on a complete OUT",
          "[convert][outdir]") {
  test::TempDir tmp;
  test::WriteCheckpoint(tmp / "in", test::DeepSeekShards(), test::DeepSeekConfig());
  fs::create_directories(tmp / "out");
  test::WriteText(tmp / "out" / "old-00001-of-00001.safetensors", "junk");
  test::WriteText(tmp / "out" / "notes.txt", "keep me");
  auto r = Run(Opts(tmp / "in", tmp / "out", DType::kBF16));
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("not empty") && Catch::Contains("--resume") &&
                                    Catch::Contains("--force"));
  CHECK(!fs::exists(tmp / "out" / std::string(kPartialDirName)));
  CHECK(fs::exists(tmp / "out" / "old-00001-of-00001.safetensors"));

  ConvertOptions o = Opts(tmp / "in", tmp / "out", DType::kBF16);
  auto f = Run(o, nullptr, 2, false, /*force=*/true);
  REQUIRE(f.ok());
  CHECK(!fs::exists(tmp / "out" / "old-00001-of-00001.safetensors"));  // stale weight file removed
  CHECK(fs::exists(tmp / "out" / "notes.txt"));
  CHECK(!fs::exists(tmp / "out" / std::string(kPartialDirName)));
  REQUIRE(Run(Opts(tmp / "in", tmp / "ref", DType::kBF16)).ok());
  for (const char* n : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                        "model.safetensors.index.json", "config.json"})
    CHECK(FileBytes(tmp / "out" / n) == FileBytes(tmp / "ref" / n));

  auto again = Run(o, nullptr, 2, /*resume=*/true);
  REQUIRE(again.ok());
  CHECK(again->nothing_to_do);
  // --resume on a missing OUT starts the conversion.
  auto fresh = Run(Opts(tmp / "in", tmp / "new", DType::kBF16), nullptr, 2, /*resume=*/true);
  REQUIRE(fresh.ok());
  CHECK(FileBytes(tmp / "new" / "model-00001-of-00002.safetensors") ==
        FileBytes(tmp / "ref" / "model-00001-of-00002.safetensors"));
}

TEST_CASE("convert: a full disk (EFBIG via ulimit -f) names the file and leaves no temporaries",
          "[convert][outdir]") {
  test::TempDir tmp;
  test::WriteCheckpoint(tmp / "in", test::DeepSeekShards(), test::DeepSeekConfig());
  const std::string exe = "'" + test::BitsmithExe().string() + "'";
  for (const std::string out : {"dir", "one.safetensors", "one.gguf"}) {
    INFO(out);
    const std::string to = out == "one.gguf" ? "q8_0 --tensor-type .=bf16" : "bf16";
    // 64 KiB limit: the first shard (~190 KB of BF16) cannot be written. SIGXFSZ
    // is ignored so write/fallocate fail with EFBIG instead of killing us.
    const auto r = test::Run("bash -c \"trap '' XFSZ; ulimit -f 64; exec " + exe + " convert '" +
                             (tmp / "in").string() + "' '" + (tmp / out).string() + "' --to " + to + "\"");
    INFO(r.out << r.err);
    CHECK(r.status != 0);
    CHECK_THAT(r.out + r.err, Catch::Contains(out == "dir" ? "model-00001-of-00002.safetensors" : out));
    // Nothing that looks finished, no temporaries.
    std::vector<std::string> left;
    for (const auto& e : fs::recursive_directory_iterator(tmp.path())) {
      const std::string rel = fs::relative(e.path(), tmp.path()).string();
      if (rel.rfind("in", 0) != 0) left.push_back(rel);
    }
    INFO("left: " << left.size());
    for (const std::string& l : left) INFO(l);
    CHECK(left.empty());
  }
}

}  // namespace
}  // namespace bitsmith
