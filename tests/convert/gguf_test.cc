// GGUF: reading the samples, byte-identical rewrites, every value type, splits,
// the writer's refusals, and the files bitsmith writes parsed by independent
// readers (npm @huggingface/gguf and hyllama, through node).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "convert/gguf.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

// Writes a planned GGUF whose tensor i holds `data[i]` (or a byte pattern).
void WritePlanned(const PlannedFile& plan, const std::vector<std::vector<uint8_t>>& data) {
  auto out = BeginPlannedFile(plan);
  REQUIRE(out.ok());
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    std::vector<uint8_t> bytes = i < data.size() ? data[i] : std::vector<uint8_t>(plan.tensors[i].nbytes);
    if (i >= data.size())
      for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<uint8_t>(k * 31 + i);
    REQUIRE(bytes.size() == plan.tensors[i].nbytes);
    REQUIRE(out->WriteAt(plan.tensors[i].offset, bytes).ok());
  }
  REQUIRE(out->Commit().ok());
}

// Re-writes a GGUF file with nothing changed: the same KVs, tensor infos and data.
void Rewrite(const GgufFile& in, const std::string& out_path) {
  std::vector<GgufTensorSpec> specs;
  for (const GgufTensorInfo& t : in.tensors) specs.push_back(GgufSpecOf(t));
  auto plan = PlanGguf(out_path, in.version, in.kv, specs);
  REQUIRE(plan.ok());
  auto src = InputFile::Open(in.path);
  REQUIRE(src.ok());
  auto out = BeginPlannedFile(*plan);
  REQUIRE(out.ok());
  for (size_t i = 0; i < in.tensors.size(); ++i)
    REQUIRE(CopyRange(*src, in.data_offset + in.tensors[i].offset, in.tensors[i].nbytes, *out,
                      plan->tensors[i].offset).ok());
  REQUIRE(out->Commit().ok());
}

TEST_CASE("the sample GGUF files read as documented and rewrite byte-identically", "[convert][gguf]") {
  if (!test::HaveShared("GGUF samples in ../shared/models")) return;
  test::TempDir tmp;
  struct Sample {
    const char* path;
    size_t tensors, quantized;
    int qtype;
  };
  const Sample samples[] = {{"tiny-rwkv-5v2-730K/model-q5_0.gguf", 270, 96, 6},
                            {"tiny-rwkv-5v2-730K/model-q5_1.gguf", 270, 96, 7},
                            {"tiny-rwkv-7v0-834K/model-q5_0.gguf", 339, 72, 6},
                            {"tiny-rwkv-7v0-834K/model-q5_1.gguf", 339, 72, 7}};
  for (const Sample& s : samples) {
    const fs::path in = test::SharedDir() / "models" / s.path;
    INFO(in);
    auto f = ReadGgufFile(in.string());
    REQUIRE(f.ok());
    CHECK(f->version == 3);
    CHECK(f->tensors.size() == s.tensors);
    CHECK(f->kv.size() == 11);
    CHECK(f->alignment == 32);
    CHECK(f->canonical_layout);
    size_t q = 0;
    for (const auto& t : f->tensors) q += t.ggml_type == s.qtype;
    CHECK(q == s.quantized);
    CHECK(*f->Find("general.architecture")->AsString() == "rwkv-cpp-tiny");
    CHECK(f->Find("general.quantization_version")->AsUInt() == 2u);
    // emb.weight is ne {64, 256}: row-major shape [256, 64].
    const auto infos = f->Tensors();
    CHECK(infos[0].name == "emb.weight");
    CHECK(infos[0].shape == std::vector<uint64_t>{256, 64});
    CHECK(infos[0].dtype == DType::kF32);

    const fs::path out = tmp / fs::path(s.path).filename();
    Rewrite(*f, out.string());
    CHECK(test::ReadFile(out) == test::ReadFile(in));
  }
}

// Every value type, including the awkward ones: NaN payloads, a bool byte of 2,
// strings with NUL bytes, empty arrays, arrays of arrays.
std::vector<GgufKV> AllValueTypes() {
  std::vector<GgufKV> kv;
  kv.push_back({"general.architecture", GgufValue::Str("test")});
  kv.push_back({"v.u8", GgufValue::U8(200)});
  kv.push_back({"v.i8", GgufValue::I8(-100)});
  kv.push_back({"v.u16", GgufValue::U16(60000)});
  kv.push_back({"v.i16", GgufValue::I16(-30000)});
  kv.push_back({"v.u32", GgufValue::U32(4000000000u)});
  kv.push_back({"v.i32", GgufValue::I32(-2000000000)});
  kv.push_back({"v.f32", GgufValue::F32(1.5f)});
  GgufValue nan = GgufValue::F32(0);
  const uint32_t payload = 0x7FC12345;
  std::memcpy(nan.raw.data(), &payload, 4);
  kv.push_back({"v.f32_nan_payload", nan});
  GgufValue b2 = GgufValue::Bool(true);
  b2.raw[0] = 2;
  kv.push_back({"v.bool_two", b2});
  kv.push_back({"v.bool", GgufValue::Bool(false)});
  kv.push_back({"v.str", GgufValue::Str(std::string("a\0b", 3))});
  kv.push_back({"v.str_empty", GgufValue::Str("")});
  kv.push_back({"v.u64", GgufValue::U64(std::numeric_limits<uint64_t>::max())});
  kv.push_back({"v.i64", GgufValue::I64(std::numeric_limits<int64_t>::min())});
  kv.push_back({"v.f64", GgufValue::F64(-2.25)});
  kv.push_back({"v.arr_str", GgufValue::StrArray({"<unk>", "", "héllo"})});
  kv.push_back({"v.arr_empty", GgufValue::StrArray({})});
  std::vector<uint8_t> i32s;
  for (int32_t v : {1, -2, 3}) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    i32s.insert(i32s.end(), p, p + 4);
  }
  kv.push_back({"v.arr_i32", GgufValue::NumArray(GgufType::kI32, i32s)});
  kv.push_back({"v.arr_bool", GgufValue::NumArray(GgufType::kBool, {1, 0, 1})});
  GgufValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  nested.arrays = {GgufValue::StrArray({"x"}), GgufValue::NumArray(GgufType::kU8, {7, 8})};
  kv.push_back({"v.arr_arr", nested});
  return kv;
}

TEST_CASE("every metadata value type and every ggml type round-trips", "[convert][gguf]") {
  test::TempDir tmp;
  const auto kv = AllValueTypes();
  std::vector<GgufTensorSpec> specs;
  for (const DTypeInfo& d : kDTypes) {
    if (d.ggml_type < 0) continue;
    specs.push_back({std::string("t.") + std::string(d.name), {static_cast<uint64_t>(d.block_elems) * 2, 3},
                     d.ggml_type});
  }
  specs.push_back({"t.scalar", {}, 0});
  specs.push_back({"t.empty", {0, 4}, 0});
  specs.push_back({"t.4d", {2, 1, 3, 2}, 1});
  for (uint32_t version : {3u, 2u}) {
    const std::string path = (tmp / ("all_v" + std::to_string(version) + ".gguf")).string();
    auto plan = PlanGguf(path, version, kv, specs);
    REQUIRE(plan.ok());
    WritePlanned(*plan, {});
    auto f = ReadGgufFile(path);
    REQUIRE(f.ok());
    CHECK(f->version == version);
    CHECK(f->kv == kv);
    CHECK(f->canonical_layout);
    CHECK(f->file_size == plan->size);
    REQUIRE(f->tensors.size() == specs.size());
    const auto infos = f->Tensors();
    for (size_t i = 0; i < specs.size(); ++i) {
      INFO(specs[i].name);
      CHECK(f->tensors[i].name == specs[i].name);
      CHECK(f->tensors[i].ne == specs[i].ne);
      CHECK(f->tensors[i].ggml_type == specs[i].ggml_type);
      CHECK(f->data_offset + f->tensors[i].offset == plan->tensors[i].offset);
      CHECK(f->tensors[i].offset % 32 == 0);
      // Row-major shape = ne reversed; bytes from the dtype table.
      CHECK(infos[i].shape == std::vector<uint64_t>(specs[i].ne.rbegin(), specs[i].ne.rend()));
      REQUIRE(infos[i].dtype.has_value());
      const uint64_t row = specs[i].ne.empty() ? 1 : specs[i].ne[0];
      CHECK(infos[i].nbytes == *RowBytes(*infos[i].dtype, row) * infos[i].rows());
      CHECK(infos[i].ggml_type == specs[i].ggml_type);
    }
    // Accessors.
    CHECK(f->Find("v.i64")->AsInt() == std::numeric_limits<int64_t>::min());
    CHECK(f->Find("v.u64")->AsUInt() == std::numeric_limits<uint64_t>::max());
    CHECK(!f->Find("v.u64")->AsInt().has_value());
    CHECK(f->Find("v.f64")->AsDouble() == -2.25);
    CHECK(f->Find("v.arr_str")->count() == 3);
    CHECK(GgufValueSummary(*f->Find("v.arr_str")) == R"(["<unk>", "", "héllo"])");
    CHECK(GgufValueSummary(*f->Find("v.u32")) == "4000000000");
    CHECK(GgufValueJson(*f->Find("v.arr_i32")) == nlohmann::json::array({1, -2, 3}));
    // A rewrite of what we wrote is byte-identical.
    const std::string again = (tmp / "again.gguf").string();
    Rewrite(*f, again);
    CHECK(test::ReadFile(again) == test::ReadFile(path));
  }
}

TEST_CASE("long arrays are abbreviated for display", "[convert][gguf]") {
  std::vector<std::string> tokens(151936, "t");
  const GgufValue v = GgufValue::StrArray(tokens);
  CHECK(GgufValueSummary(v) == "[151,936 strings]");
  const auto j = GgufValueJson(v);
  CHECK(j["count"] == 151936);
  CHECK(j["element_type"] == "str");
  CHECK(GgufValueSummary(GgufValue::NumArray(GgufType::kU32, std::vector<uint8_t>(4 * 100))) == "[100 u32]");
}

TEST_CASE("a non-default alignment is honoured by reader and writer", "[convert][gguf]") {
  test::TempDir tmp;
  std::vector<GgufKV> kv = {{"general.alignment", GgufValue::U32(256)}};
  std::vector<GgufTensorSpec> specs = {{"a", {3}, 0}, {"b", {32}, 8}, {"c", {5}, 1}};
  const std::string path = (tmp / "a256.gguf").string();
  auto plan = PlanGguf(path, 3, kv, specs);
  REQUIRE(plan.ok());
  WritePlanned(*plan, {});
  auto f = ReadGgufFile(path);
  REQUIRE(f.ok());
  CHECK(f->alignment == 256);
  CHECK(f->data_offset % 256 == 0);
  CHECK(f->tensors[1].offset == 256);
  CHECK(f->tensors[2].offset == 512);
  CHECK(f->file_size == f->data_offset + 768);
}

TEST_CASE("GGUF splits: llama.cpp names and keys, read back as one model", "[convert][gguf][split]") {
  test::TempDir tmp;
  std::vector<GgufKV> kv = {{"general.architecture", GgufValue::Str("test")},
                            {"split.count", GgufValue::U16(9)}};  // stale: replaced
  std::vector<GgufTensorSpec> specs;
  for (int i = 0; i < 7; ++i) specs.push_back({"t" + std::to_string(i), {64, 4}, 0});  // 1024 bytes each
  auto plans = PlanGgufSplit((tmp / "model.gguf").string(), 3, kv, specs, 2500);
  REQUIRE(plans.ok());
  REQUIRE(plans->size() == 4);  // 2 + 2 + 2 + 1 tensors
  CHECK(fs::path((*plans)[0].path).filename() == "model-00001-of-00004.gguf");
  CHECK(fs::path((*plans)[3].path).filename() == "model-00004-of-00004.gguf");
  for (const auto& p : *plans) WritePlanned(p, {});

  auto first = ReadGgufFile((*plans)[0].path);
  REQUIRE(first.ok());
  // Split 0: the model's KVs, then split.no, split.count, split.tensors.count.
  REQUIRE(first->kv.size() == 4);
  CHECK(first->kv[0].key == "general.architecture");
  CHECK(first->kv[1].key == "split.no");
  CHECK(first->kv[1].value == GgufValue::U16(0));
  CHECK(first->kv[2].value == GgufValue::U16(4));
  CHECK(first->kv[3].value == GgufValue::I32(7));
  auto third = ReadGgufFile((*plans)[2].path);
  REQUIRE(third.ok());
  REQUIRE(third->kv.size() == 3);
  CHECK(third->kv[0].value == GgufValue::U16(2));

  // Any split opens the whole set.
  auto ck = OpenCheckpoint((*plans)[2].path);
  REQUIRE(ck.ok());
  CHECK(ck->format == FileFormat::kGguf);
  CHECK(ck->files.size() == 4);
  REQUIRE(ck->tensors.size() == 7);
  for (int i = 0; i < 7; ++i) {
    CHECK(ck->tensors[i].name == "t" + std::to_string(i));
    CHECK(ck->tensors[i].file_index == i / 2);
  }
  // A directory holding the split set opens it too.
  auto dir = OpenCheckpoint(tmp.path().string());
  REQUIRE(dir.ok());
  CHECK(dir->tensors.size() == 7);

  // A tensor larger than the limit gets a split of its own.
  auto big = PlanGgufSplit((tmp / "big.gguf").string(), 3, kv, specs, 10);
  REQUIRE(big.ok());
  CHECK(big->size() == 7);
  CHECK(ParseGgufSplitPath("/x/y-00002-of-00003.gguf")->index == 1);
  CHECK(!ParseGgufSplitPath("/x/y-00004-of-00003.gguf"));
  CHECK(!ParseGgufSplitPath("/x/y.gguf"));
}

TEST_CASE("the GGUF writer refuses what ggml cannot load", "[convert][gguf]") {
  const std::vector<GgufKV> none;
  auto plan = [&](std::vector<GgufTensorSpec> specs, std::vector<GgufKV> kv = {}) {
    return PlanGguf("/tmp/x.gguf", 3, kv, specs);
  };
  auto msg = [](const Result<PlannedFile>& r) { return r.ok() ? std::string("ok") : r.error().message; };
  CHECK_THAT(msg(plan({{std::string(64, 'n'), {4}, 0}})), Catch::Contains("shorter than 64"));
  CHECK(plan({{std::string(63, 'n'), {4}, 0}}).ok());
  CHECK_THAT(msg(plan({{"t", {1, 1, 1, 1, 1}, 0}})), Catch::Contains("at most 4"));
  CHECK_THAT(msg(plan({{"t", {33}, 12}})), Catch::Contains("not a multiple of the block size 256"));
  CHECK_THAT(msg(plan({{"t", {32}, 31}})), Catch::Contains("removed type"));
  CHECK_THAT(msg(plan({{"t", {4}, 0}, {"t", {4}, 0}})), Catch::Contains("duplicate tensor name"));
  CHECK_THAT(msg(plan({}, {{"general.alignment", GgufValue::U32(3)}})), Catch::Contains("power of two"));
  CHECK_THAT(msg(plan({}, {{"general.alignment", GgufValue::U64(32)}})), Catch::Contains("must be u32"));
  CHECK_THAT(msg(plan({}, {{"k", GgufValue::U8(1)}, {"k", GgufValue::U8(2)}})), Catch::Contains("duplicate metadata key"));
  CHECK_THAT(msg(plan({}, {{"", GgufValue::U8(1)}})), Catch::Contains("empty"));
}

// ---------------------------------------------------------------------------
// Independent readers.

std::string Node() {
  const auto r = test::Run("command -v node");
  if (r.status != 0) return "";
  std::string s = r.out;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Parses `file` with the npm readers; nullopt (and a visible WARN) when node or
// the packages are missing.
std::optional<nlohmann::json> ReadWithNode(const fs::path& file) {
  const std::string node = Node();
  const fs::path modules = test::BinaryDir() / "npm" / "node_modules";
  if (node.empty() || !fs::exists(modules / "@huggingface" / "gguf") || !fs::exists(modules / "hyllama")) {
    WARN("SKIPPED: node or the npm GGUF readers are missing (run `make npm-deps BUILD="
         << test::BinaryDir().filename().string() << "`): independent GGUF reader check not run");
    return std::nullopt;
  }
  const auto r = test::Run("'" + node + "' '" + (test::SourceDir() / "tests" / "js" / "gguf_read.mjs").string() +
                           "' '" + modules.string() + "' '" + file.string() + "'");
  INFO("node stderr: " << r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

std::string Dec(uint64_t v) { return std::to_string(v); }

TEST_CASE("files bitsmith writes parse in independent GGUF readers", "[convert][gguf][node]") {
  test::TempDir tmp;
  std::vector<GgufKV> kv = {{"general.architecture", GgufValue::Str("llama")},
                            {"general.alignment", GgufValue::U32(64)},
                            {"general.name", GgufValue::Str("bitsmith test")},
                            {"v.u8", GgufValue::U8(7)},
                            {"v.i16", GgufValue::I16(-3)},
                            {"v.u32", GgufValue::U32(123456)},
                            {"v.i32", GgufValue::I32(-5)},
                            {"v.f32", GgufValue::F32(0.25f)},
                            {"v.bool", GgufValue::Bool(true)},
                            {"v.u64", GgufValue::U64(uint64_t{1} << 60)},
                            {"v.i64", GgufValue::I64(-(int64_t{1} << 50))},
                            {"v.f64", GgufValue::F64(1.0 / 3.0)},
                            {"tokenizer.ggml.tokens", GgufValue::StrArray({"<s>", "</s>", "a", "bc"})}};
  std::vector<GgufTensorSpec> specs = {{"token_embd.weight", {256, 10}, 12},   // q4_k
                                       {"blk.0.attn_norm.weight", {256}, 0},  // f32
                                       {"blk.0.ffn_down.weight", {64, 3}, 8},  // q8_0
                                       {"blk.0.attn_q.weight", {32, 2, 2}, 30},  // bf16
                                       {"blk.0.ffn_up.weight", {256, 2}, 23},  // iq4_xs
                                       {"output.weight", {32, 5}, 6}};         // q5_0
  const fs::path path = tmp / "model.gguf";
  auto plan = PlanGguf(path.string(), 3, kv, specs);
  REQUIRE(plan.ok());
  WritePlanned(*plan, {});
  auto mine = ReadGgufFile(path.string());
  REQUIRE(mine.ok());

  const auto j = ReadWithNode(path);
  if (!j) return;
  for (const char* reader : {"huggingface", "hyllama"}) {
    INFO("reader " << reader << ": " << (*j)[reader].dump().substr(0, 2000));
    const auto& r = (*j)[reader];
    REQUIRE(r.is_object());
    REQUIRE(!r.contains("error"));
    CHECK(r["version"] == 3);
    REQUIRE(r["tensors"].size() == specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& t = r["tensors"][i];
      CHECK(t["name"] == specs[i].name);
      CHECK(t["type"] == specs[i].ggml_type);
      std::vector<std::string> ne;
      for (uint64_t d : specs[i].ne) ne.push_back(Dec(d));
      CHECK(t["ne"] == ne);
      CHECK(t["offset"] == Dec(mine->tensors[i].offset));
    }
    const auto& rkv = r["kv"];
    CHECK(rkv["general.architecture"]["value"] == "llama");
    CHECK(rkv["general.alignment"]["value"] == 64);
    CHECK(rkv["v.u8"]["value"] == 7);
    CHECK(rkv["v.i16"]["value"] == -3);
    CHECK(rkv["v.u32"]["value"] == 123456);
    CHECK(rkv["v.i32"]["value"] == -5);
    CHECK(rkv["v.f32"]["value"] == 0.25);
    CHECK(rkv["v.bool"]["value"] == true);
    CHECK(rkv["v.u64"]["value"] == Dec(uint64_t{1} << 60));
    CHECK(rkv["v.i64"]["value"] == std::to_string(-(int64_t{1} << 50)));
    CHECK(rkv["v.f64"]["value"] == 1.0 / 3.0);
    CHECK(rkv["tokenizer.ggml.tokens"]["value"] == nlohmann::json::array({"<s>", "</s>", "a", "bc"}));
    if (std::string(reader) == "huggingface") {
      // Its own computation of where the (64-aligned) data section starts.
      CHECK(r["tensor_data_offset"] == Dec(mine->data_offset));
      CHECK(rkv["v.u32"]["type"] == 4);
      CHECK(rkv["v.i64"]["type"] == 11);
    }
  }

  // A split set: every split parses, and split 0 carries the split keys.
  auto plans = PlanGgufSplit((tmp / "split.gguf").string(), 3, kv, specs, 1000);
  REQUIRE(plans.ok());
  REQUIRE(plans->size() > 1);
  size_t seen = 0;
  for (size_t s = 0; s < plans->size(); ++s) {
    WritePlanned((*plans)[s], {});
    const auto js = ReadWithNode((*plans)[s].path);
    if (!js) return;
    const auto& r = (*js)["huggingface"];
    INFO((*plans)[s].path << ": " << r.dump().substr(0, 2000));
    REQUIRE(!r.contains("error"));
    CHECK(r["kv"]["split.no"]["value"] == s);
    CHECK(r["kv"]["split.count"]["value"] == plans->size());
    CHECK(r["kv"]["split.tensors.count"]["value"] == specs.size());
    seen += r["tensors"].size();
  }
  CHECK(seen == specs.size());
}

}  // namespace
}  // namespace bitsmith
