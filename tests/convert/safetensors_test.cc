// safetensors: the samples, every dtype, the writer checked by an independent
// minimal reader written from the spec, shards and indexes, symlinked shards.
#include <filesystem>
#include <fstream>
#include <map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "convert/safetensors.h"
#include "support/malformed_files.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// An independent reader, following the format description in the safetensors
// README line by line: u64 LE header size N, N bytes of JSON, data. It checks
// what Hugging Face's reader checks (tensor.rs validate): offsets sorted are
// contiguous from 0 to the end of the file, byte length = elements x bits / 8.
// It also checks what the writer promises: N % 8 == 0 and the padding is spaces.

struct RefTensor {
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin, end;
};
struct RefFile {
  std::map<std::string, RefTensor> tensors;
  std::map<std::string, std::string> metadata;
  bool has_metadata = false;
  uint64_t data_start = 0;
};

RefFile RefRead(const fs::path& p, bool check_writer_padding) {
  static const std::map<std::string, int> kBits = {
      {"BOOL", 8}, {"U8", 8}, {"I8", 8}, {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},
      {"U16", 16}, {"F16", 16}, {"BF16", 16}, {"I32", 32}, {"U32", 32}, {"F32", 32}, {"F64", 64},
      {"I64", 64}, {"U64", 64}, {"C64", 64}, {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6}};
  const std::vector<uint8_t> bytes = test::ReadFile(p);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | bytes[i];
  REQUIRE(8 + n <= bytes.size());
  const std::string text(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  if (check_writer_padding) {
    CHECK(n % 8 == 0);
    const size_t close = text.find_last_of('}');
    CHECK(text.find_first_not_of(' ', close + 1) == std::string::npos);
  }
  const nlohmann::json j = nlohmann::json::parse(text);
  RefFile f;
  f.data_start = 8 + n;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      f.has_metadata = true;
      for (const auto& [k, s] : v.items()) f.metadata[k] = s.get<std::string>();
      continue;
    }
    RefTensor t{v["dtype"], v["shape"].get<std::vector<uint64_t>>(), v["data_offsets"][0], v["data_offsets"][1]};
    uint64_t elems = 1;
    for (uint64_t d : t.shape) elems *= d;
    CHECK(t.end - t.begin == elems * kBits.at(t.dtype) / 8);
    ranges.emplace_back(t.begin, t.end);
    f.tensors[name] = t;
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t pos = 0;
  for (auto [b, e] : ranges) {
    CHECK(b == pos);
    pos = e;
  }
  CHECK(f.data_start + pos == bytes.size());
  return f;
}

// Writes `specs` with bitsmith's writer, filling tensor i with a byte pattern.
void WriteSt(const PlannedFile& plan) {
  auto out = BeginPlannedFile(plan);
  REQUIRE(out.ok());
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    std::vector<uint8_t> b(plan.tensors[i].nbytes);
    for (size_t k = 0; k < b.size(); ++k) b[k] = static_cast<uint8_t>(k * 13 + i * 7 + 1);
    REQUIRE(out->WriteAt(plan.tensors[i].offset, b).ok());
  }
  REQUIRE(out->Commit().ok());
}

TEST_CASE("the sample safetensors files read as documented and re-write equal", "[convert][safetensors]") {
  if (!test::HaveShared("safetensors samples in ../shared/models")) return;
  test::TempDir tmp;
  const std::pair<const char*, size_t> samples[] = {
      {"tiny-rwkv-5v2-730K/model.safetensors", 270}, {"tiny-rwkv-5v2-730K/model-f16.safetensors", 270},
      {"tiny-rwkv-7v0-834K/model.safetensors", 339}, {"tiny-rwkv-7v0-834K/model-f16.safetensors", 339},
      {"silero-vad-16k/model.safetensors", 15},      {"ppocr-v4/det.safetensors", 234},
      {"ppocr-v4/rec.safetensors", 234},             {"realmix-dev/model.safetensors", 23}};
  for (const auto& [rel, count] : samples) {
    const fs::path in = test::SharedDir() / "models" / rel;
    INFO(in);
    auto f = ReadSafetensorsFile(in.string());
    REQUIRE(f.ok());
    CHECK(f->tensors.size() == count);
    // Against the independent reader.
    const RefFile ref = RefRead(in, /*check_writer_padding=*/false);
    CHECK(f->has_metadata == ref.has_metadata);
    CHECK(f->data_offset == ref.data_start);
    REQUIRE(ref.tensors.size() == count);
    for (const TensorInfo& t : f->tensors) {
      const RefTensor& r = ref.tensors.at(t.name);
      CHECK(t.raw_dtype == r.dtype);
      CHECK(t.shape == r.shape);
      CHECK(t.offset == ref.data_start + r.begin);
      CHECK(t.nbytes == r.end - r.begin);
    }
    // Re-write (same order, same metadata) and compare everything, data included.
    std::vector<SafetensorsTensorSpec> specs;
    for (const TensorInfo& t : f->tensors) specs.push_back(*SafetensorsSpecOf(t));
    std::optional<std::vector<std::pair<std::string, std::string>>> meta;
    if (f->has_metadata) meta = f->metadata;
    const fs::path out = tmp / fs::path(rel).filename();
    auto plan = PlanSafetensors(out.string(), specs, meta);
    REQUIRE(plan.ok());
    {
      auto src = InputFile::Open(in.string());
      REQUIRE(src.ok());
      auto w = BeginPlannedFile(*plan);
      REQUIRE(w.ok());
      for (size_t i = 0; i < specs.size(); ++i)
        REQUIRE(CopyRange(*src, f->tensors[i].offset, f->tensors[i].nbytes, *w, plan->tensors[i].offset).ok());
      REQUIRE(w->Commit().ok());
    }
    const RefFile ref2 = RefRead(out, /*check_writer_padding=*/true);
    CHECK(ref2.metadata == ref.metadata);
    CHECK(ref2.has_metadata == ref.has_metadata);
    auto g = ReadSafetensorsFile(out.string());
    REQUIRE(g.ok());
    REQUIRE(g->tensors.size() == f->tensors.size());
    for (size_t i = 0; i < f->tensors.size(); ++i) {
      CHECK(g->tensors[i].name == f->tensors[i].name);
      CHECK(g->tensors[i].shape == f->tensors[i].shape);
      CHECK(g->tensors[i].dtype == f->tensors[i].dtype);
      CHECK(test::ReadRange(out, g->tensors[i].offset, g->tensors[i].nbytes) ==
            test::ReadRange(in, f->tensors[i].offset, f->tensors[i].nbytes));
    }
  }
}

TEST_CASE("every safetensors dtype: sizes, bitsmith types, round trip", "[convert][safetensors]") {
  test::TempDir tmp;
  struct Row {
    const char* st;
    std::optional<DType> dt;
    std::vector<uint64_t> shape;
    uint64_t bytes;
  };
  const Row rows[] = {
      {"F64", DType::kF64, {2, 3}, 48},        {"F32", DType::kF32, {2, 3}, 24},
      {"F16", DType::kF16, {2, 3}, 12},        {"BF16", DType::kBF16, {2, 3}, 12},
      {"I64", DType::kI64, {3}, 24},           {"I32", DType::kI32, {3}, 12},
      {"I16", DType::kI16, {3}, 6},            {"I8", DType::kI8, {3}, 3},
      {"U8", DType::kU8, {3}, 3},              {"U16", DType::kU16, {3}, 6},
      {"U32", DType::kU32, {3}, 12},           {"U64", DType::kU64, {3}, 24},
      {"BOOL", DType::kBool, {5}, 5},          {"F8_E4M3", DType::kE4M3FN, {4, 4}, 16},
      {"F8_E5M2", DType::kE5M2, {4, 4}, 16},   {"F8_E8M0", DType::kE8M0FNU, {4}, 4},
      {"F4", std::nullopt, {2, 3}, 3},         {"F6_E2M3", std::nullopt, {4}, 3},
      {"F6_E3M2", std::nullopt, {8}, 6},       {"C64", std::nullopt, {2}, 16},
      {"F32", DType::kF32, {}, 4},             {"F32", DType::kF32, {0, 7}, 0},
  };
  std::vector<SafetensorsTensorSpec> specs;
  for (size_t i = 0; i < std::size(rows); ++i) {
    INFO(rows[i].st);
    const SafetensorsDType* d = FindSafetensorsDType(rows[i].st);
    REQUIRE(d != nullptr);
    CHECK(d->dtype == rows[i].dt);
    CHECK(SafetensorsTensorBytes(rows[i].st, rows[i].shape, "x").value() == rows[i].bytes);
    if (rows[i].dt) CHECK(SafetensorsDTypeName(*rows[i].dt) == std::string_view(rows[i].st));
    specs.push_back({"t" + std::to_string(i), rows[i].st, rows[i].shape});
  }
  CHECK(SafetensorsDTypes().size() == 20);
  const fs::path path = tmp / "all.safetensors";
  auto plan = PlanSafetensors(path.string(), specs, std::vector<std::pair<std::string, std::string>>{{"format", "pt"}});
  REQUIRE(plan.ok());
  WriteSt(*plan);
  const RefFile ref = RefRead(path, true);
  CHECK(ref.tensors.size() == specs.size());
  auto f = ReadSafetensorsFile(path.string());
  REQUIRE(f.ok());
  REQUIRE(f->tensors.size() == specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    INFO(specs[i].name);
    CHECK(f->tensors[i].name == specs[i].name);  // contiguous in the given order
    CHECK(f->tensors[i].raw_dtype == specs[i].dtype);
    CHECK(f->tensors[i].dtype == rows[i].dt);
    CHECK(f->tensors[i].nbytes == rows[i].bytes);
    CHECK(f->tensors[i].dtype_name() == (rows[i].dt ? std::string(GetDType(*rows[i].dt).name) : specs[i].dtype));
  }
}

TEST_CASE("the header is padded with spaces to 8 bytes for every name length", "[convert][safetensors]") {
  test::TempDir tmp;
  for (size_t len = 1; len <= 17; ++len) {
    const fs::path p = tmp / ("pad" + std::to_string(len) + ".safetensors");
    std::vector<SafetensorsTensorSpec> specs = {{std::string(len, 'x'), "F32", {1}}};
    auto plan = PlanSafetensors(p.string(), specs, std::nullopt);
    REQUIRE(plan.ok());
    CHECK((plan->header.size() - 8) % 8 == 0);
    WriteSt(*plan);
    const RefFile ref = RefRead(p, true);
    CHECK(!ref.has_metadata);
  }
}

TEST_CASE("the safetensors writer refuses what readers would reject", "[convert][safetensors]") {
  auto msg = [](std::vector<SafetensorsTensorSpec> specs,
                std::optional<std::vector<std::pair<std::string, std::string>>> meta = std::nullopt) {
    auto r = PlanSafetensors("/tmp/x.safetensors", specs, meta);
    return r.ok() ? std::string("ok") : r.error().message;
  };
  CHECK_THAT(msg({{"a", "F32", {1}}, {"a", "F32", {1}}}), Catch::Contains("duplicate tensor name 'a'"));
  CHECK_THAT(msg({{"", "F32", {1}}}), Catch::Contains("empty name"));
  CHECK_THAT(msg({{"__metadata__", "F32", {1}}}), Catch::Contains("__metadata__"));
  CHECK_THAT(msg({{"bad\xff", "F32", {1}}}), Catch::Contains("not valid UTF-8"));
  CHECK_THAT(msg({{"a", "Q4_K", {1}}}), Catch::Contains("unknown safetensors dtype 'Q4_K'"));
  CHECK_THAT(msg({{"a", "F4", {3}}}), Catch::Contains("not a whole number of bytes"));
  CHECK_THAT(msg({}, std::vector<std::pair<std::string, std::string>>{{"k", "1"}, {"k", "2"}}),
             Catch::Contains("duplicate __metadata__ key"));
  CHECK_THAT(SafetensorsSpec("q", DType::kQ4_K, {256}).error().message, Catch::Contains("no safetensors spelling"));
  // Names with quotes, backslashes, control characters and non-ASCII survive.
  test::TempDir tmp;
  const std::string odd = "we\"ird\\name\n\x01é";
  const fs::path p = tmp / "odd.safetensors";
  auto plan = PlanSafetensors(p.string(), std::vector<SafetensorsTensorSpec>{{odd, "F32", {1}}}, std::nullopt);
  REQUIRE(plan.ok());
  WriteSt(*plan);
  auto f = ReadSafetensorsFile(p.string());
  REQUIRE(f.ok());
  CHECK(f->tensors[0].name == odd);
}

TEST_CASE("the reader accepts what Hugging Face accepts", "[convert][safetensors]") {
  test::TempDir tmp;
  // Entries in any order (sorted by offset), unknown fields ignored, no padding.
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8],"extra":{"x":[1,{"y":null}]}},)"
      R"("a":{"data_offsets":[0,4],"shape":[],"dtype":"I32"}})";
  const fs::path p = tmp / "any_order.safetensors";
  {
    const auto bytes = test::StBytes(header, 8, /*pad=*/false);
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  auto f = ReadSafetensorsFile(p.string());
  REQUIRE(f.ok());
  REQUIRE(f->tensors.size() == 2);
  CHECK(f->tensors[0].name == "a");
  CHECK(f->tensors[0].shape.empty());
  CHECK(f->tensors[0].elements() == 1);
  CHECK(f->tensors[1].name == "b");
  CHECK(!f->has_metadata);
}

TEST_CASE("GroupIntoShards follows transformers' rule", "[convert][safetensors][shards]") {
  // 60, 60, 200, 10 bytes with a 100-byte limit: a new shard whenever the next
  // unit would overflow; the 200-byte unit alone.
  const std::vector<uint64_t> bytes = {60, 60, 200, 10};
  using G = std::vector<std::pair<size_t, size_t>>;
  CHECK(GroupIntoShards(bytes, 100) == G{{0, 1}, {1, 2}, {2, 3}, {3, 4}});
  CHECK(GroupIntoShards(bytes, 120) == G{{0, 2}, {2, 3}, {3, 4}});
  CHECK(GroupIntoShards(bytes, 1000) == G{{0, 4}});
  CHECK(GroupIntoShards({}, 1000) == G{{0, 0}});
  // A sum past 2^64 starts a new shard (never wraps into "fits").
  const std::vector<uint64_t> huge = {UINT64_MAX - 5, 10, 1};
  CHECK(GroupIntoShards(huge, UINT64_MAX) == G{{0, 1}, {1, 3}});
  CHECK(ShardFileName("model", 2, 163) == "model-00002-of-00163.safetensors");
}

TEST_CASE("sharded output: files, index, and OpenCheckpoint reads it back", "[convert][safetensors][shards]") {
  test::TempDir tmp;
  std::vector<SafetensorsTensorSpec> specs;
  for (int i = 0; i < 10; ++i) specs.push_back({"layer." + std::to_string(i) + ".weight", "BF16", {8, 8}});  // 128 B
  const std::vector<std::pair<std::string, std::string>> meta = {{"format", "pt"}};
  auto plan = PlanSafetensorsSharded(tmp.path().string(), specs, meta, 300);
  REQUIRE(plan.ok());
  REQUIRE(plan->shards.size() == 5);
  CHECK(fs::path(plan->shards[0].path).filename() == "model-00001-of-00005.safetensors");
  for (const auto& s : plan->shards) WriteSt(s);
  REQUIRE(WriteFileAtomic(plan->index_path, plan->index_json).ok());
  const auto index = nlohmann::json::parse(plan->index_json);
  CHECK(index["metadata"]["total_size"] == 1280);
  CHECK(index["weight_map"]["layer.9.weight"] == "model-00005-of-00005.safetensors");
  CHECK(plan->index_json.back() == '\n');

  auto ck = OpenCheckpoint(tmp.path().string());
  REQUIRE(ck.ok());
  CHECK(ck->warnings.empty());
  CHECK(ck->files.size() == 5);
  REQUIRE(ck->tensors.size() == 10);
  for (int i = 0; i < 10; ++i) {
    CHECK(ck->tensors[i].name == specs[i].name);
    CHECK(ck->tensors[i].file_index == i / 2);
  }
  CHECK(ck->Find("layer.3.weight")->shape == std::vector<uint64_t>{8, 8});
  CHECK(ck->Find("nope") == nullptr);
  CHECK(ck->index->total_size == 1280u);

  // Everything fits in one shard: model.safetensors, no index (as transformers).
  test::TempDir one;
  auto single = PlanSafetensorsSharded(one.path().string(), specs, meta);
  REQUIRE(single.ok());
  REQUIRE(single->shards.size() == 1);
  CHECK(fs::path(single->shards[0].path).filename() == "model.safetensors");
  CHECK(single->index_path.empty());
}

TEST_CASE("shards may be symlinks into a blob store (Hugging Face cache)", "[convert][safetensors][shards]") {
  test::TempDir tmp;
  // hub/models--x/blobs/<hash> and hub/models--x/snapshots/<rev>/<file> -> ../../blobs/<hash>
  const fs::path blobs = tmp / "blobs", snap = tmp / "snapshots" / "abc123";
  fs::create_directories(blobs);
  fs::create_directories(snap);
  std::vector<SafetensorsTensorSpec> specs = {{"a", "F32", {4}}, {"b", "F32", {4}}};
  auto plan = PlanSafetensorsSharded(blobs.string(), specs, std::nullopt, 16);
  REQUIRE(plan.ok());
  int n = 0;
  for (const auto& s : plan->shards) {
    WriteSt(s);
    const std::string hash = "blob" + std::to_string(n++);
    fs::rename(s.path, blobs / hash);
    fs::create_symlink(fs::path("../..") / "blobs" / hash, snap / fs::path(s.path).filename());
  }
  REQUIRE(WriteFileAtomic((blobs / "index").string(), plan->index_json).ok());
  fs::create_symlink(fs::path("../..") / "blobs" / "index", snap / "model.safetensors.index.json");
  std::ofstream(blobs / "cfg") << "{}";
  fs::create_symlink(fs::path("../..") / "blobs" / "cfg", snap / "config.json");

  auto ck = OpenCheckpoint(snap.string());
  REQUIRE(ck.ok());
  CHECK(ck->tensors.size() == 2);
  CHECK(ck->files[0] == (snap / "model-00001-of-00002.safetensors").string());
  REQUIRE(ck->extra_files.size() == 1);
  CHECK(fs::path(ck->extra_files[0]).filename() == "config.json");

  // A shard that is a symlink to a directory is refused.
  fs::remove(snap / "model-00002-of-00002.safetensors");
  fs::create_directory_symlink(blobs, snap / "model-00002-of-00002.safetensors");
  auto bad = OpenCheckpoint(snap.string());
  REQUIRE(!bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("not a regular file"));
}

TEST_CASE("a directory: which files are the model, which are extra files", "[convert][checkpoint]") {
  if (!test::HaveShared("../shared/models")) return;
  // tiny-rwkv-5v2-730K holds model.safetensors, model-f16.safetensors and two GGUFs:
  // the directory means model.safetensors; config.json and the license are extras.
  auto ck = OpenCheckpoint((test::SharedDir() / "models" / "tiny-rwkv-5v2-730K").string());
  REQUIRE(ck.ok());
  CHECK(fs::path(ck->files[0]).filename() == "model.safetensors");
  std::vector<std::string> extras;
  for (const auto& e : ck->extra_files) extras.push_back(fs::path(e).filename().string());
  CHECK(extras == std::vector<std::string>{"LICENSE-MIT-rwkv.cpp.txt", "config.json"});
  CHECK(ck->params() == 731904);

  // Two .safetensors and no model.safetensors: ambiguous, name the file.
  auto pp = OpenCheckpoint((test::SharedDir() / "models" / "ppocr-v4").string());
  REQUIRE(!pp.ok());
  CHECK_THAT(pp.error().message, Catch::Contains("det.safetensors, rec.safetensors"));
  // An empty directory.
  test::TempDir empty;
  auto e = OpenCheckpoint(empty.path().string());
  REQUIRE(!e.ok());
  CHECK_THAT(e.error().message, Catch::Contains("no model found"));
  CHECK(!OpenCheckpoint((empty / "missing").string()).ok());
}

TEST_CASE("index consistency warnings: unlisted tensors, wrong total_size", "[convert][checkpoint]") {
  test::TempDir tmp;
  std::vector<SafetensorsTensorSpec> specs = {{"a", "F32", {2}}, {"b", "F32", {2}}};
  auto plan = PlanSafetensors((tmp / "model-00001-of-00001.safetensors").string(), specs, std::nullopt);
  REQUIRE(plan.ok());
  WriteSt(*plan);
  REQUIRE(WriteFileAtomic((tmp / "model.safetensors.index.json").string(),
                          std::string(R"({"metadata":{"total_size":99},"weight_map":{"a":"model-00001-of-00001.safetensors"}})"))
              .ok());
  auto ck = OpenCheckpoint(tmp.path().string());
  REQUIRE(ck.ok());
  CHECK(ck->tensors.size() == 2);
  REQUIRE(ck->warnings.size() == 2);
  CHECK_THAT(ck->warnings[0], Catch::Contains("not in the index (first: 'b')"));
  CHECK_THAT(ck->warnings[1], Catch::Contains("total_size is 99"));
  // The index file can also be opened directly.
  auto direct = OpenCheckpoint((tmp / "model.safetensors.index.json").string());
  REQUIRE(direct.ok());
  CHECK(direct->tensors.size() == 2);
}

}  // namespace
}  // namespace bitsmith
