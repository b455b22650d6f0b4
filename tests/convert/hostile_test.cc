// Hostile and broken input (issue 7): each case a clear error, a non-zero exit,
// no crash, nothing written. What other suites already cover is not repeated
// here (see docs/RELIABILITY.md for the map): the malformed-file catalogue
// (malformed_test.cc), NaN/inf/negative scales and wrong-dtype / wrong-shape
// scales (convert_fp8_test.cc "FP8 without scale, orphan scales, bad scales"),
// InputFile on a file that shrinks and symlinks at an output path
// (file_io_test.cc), opening a Hugging Face cache snapshot
// (safetensors_test.cc).
#include <sys/stat.h>
#include <unistd.h>  // geteuid, truncate

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "convert/checkpoint.h"
#include "convert/convert.h"
#include "convert/file_io.h"
#include "convert/imatrix.h"
#include "convert/tensor_plan.h"
#include "support/malformed_files.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;
using test::GgufBytes;
using test::StBytes;

std::string Q(const fs::path& p) { return "'" + p.string() + "'"; }

void Write(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void WriteText(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::vector<uint8_t> F32Bytes(size_t n) {
  std::vector<uint8_t> v(4 * n);
  for (size_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(static_cast<int>(i % 13) - 6) / 8.0f;
    std::memcpy(v.data() + 4 * i, &x, 4);
  }
  return v;
}

// A small valid checkpoint file: one F32 [rows, cols] tensor.
std::vector<uint8_t> SmallF32File(const std::string& name, uint64_t rows, uint64_t cols) {
  const std::string h = R"({")" + name + R"(":{"dtype":"F32","shape":[)" + std::to_string(rows) + "," +
                        std::to_string(cols) + R"(],"data_offsets":[0,)" + std::to_string(4 * rows * cols) + "]}}";
  return StBytes(h, F32Bytes(rows * cols));
}

// Nothing in `dir` but `keep`.
std::vector<std::string> Leftovers(const fs::path& dir, const std::vector<std::string>& keep) {
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (std::find(keep.begin(), keep.end(), n) == keep.end()) left.push_back(n);
  }
  return left;
}

// ---------------------------------------------------------------------------
// Allocation bombs.

struct Bomb {
  std::string name;  // file name (its extension tells bitsmith the format)
  std::vector<uint8_t> bytes;
  std::string expect;
};

std::vector<Bomb> Bombs() {
  constexpr uint64_t kTB = uint64_t{1} << 40;
  std::vector<Bomb> b;
  {
    std::vector<uint8_t> v(8);
    for (int i = 0; i < 8; ++i) v[i] = static_cast<uint8_t>(kTB >> (8 * i));
    v.push_back('{');
    b.push_back({"st_header_1tb.safetensors", v, "exceeds the safetensors limit"});
  }
  b.push_back({"st_tensor_4tb.safetensors",
               StBytes(R"({"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}})", 16),
               "run past the end of the data section"});
  b.push_back({"st_shape_exabytes.safetensors",
               StBytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", 4),
               "overflows 64 bits"});
  b.push_back({"gguf_tensors_1t.gguf", GgufBytes().Header(kTB, 0).Zeros(64).bytes, "tensor count"});
  b.push_back({"gguf_kvs_1t.gguf", GgufBytes().Header(0, kTB).Zeros(64).bytes, "metadata count"});
  b.push_back({"gguf_key_1tb.gguf", GgufBytes().Header(0, 1).U64(kTB).Raw("k").bytes, "room for at most"});
  b.push_back({"gguf_string_1tb.gguf", GgufBytes().Header(0, 1).Str("k").U32(8).U64(kTB).Raw("abc").bytes, "only"});
  b.push_back({"gguf_u64_array_1t.gguf", GgufBytes().Header(0, 1).Str("k").U32(9).U32(10).U64(kTB).U64(1).bytes,
               "array of"});
  b.push_back({"gguf_str_array_1t.gguf", GgufBytes().Header(0, 1).Str("k").U32(9).U32(8).U64(kTB).Str("a").bytes,
               "array of"});
  b.push_back({"gguf_array_of_arrays_1t.gguf",
               GgufBytes().Header(0, 1).Str("k").U32(9).U32(9).U64(kTB).U32(4).U64(kTB).bytes, "array of"});
  b.push_back({"gguf_tensor_4tb.gguf",
               GgufBytes().Header(1, 0).Tensor("t", {1u << 20, 1u << 20}, 0, 0).PadTo(32).Zeros(64).bytes,
               "runs past the end of the file"});
  return b;
}

TEST_CASE("hostile: files claiming terabytes fail fast within 1 GiB of address space",
          "[convert][hostile][cli]") {
  test::TempDir tmp;
  for (const Bomb& bomb : Bombs()) {
    const fs::path p = tmp / bomb.name;
    Write(p, bomb.bytes);
    const auto r = test::Run(test::UlimitPrefix() + Q(test::BitsmithExe()) + " info " + Q(p));
    INFO(bomb.name << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("bitsmith: error: ") != std::string::npos);
    CHECK(r.err.find(bomb.expect) != std::string::npos);
    CHECK(r.err.find(bomb.name) != std::string::npos);
  }
}

TEST_CASE("hostile: large but honest headers stay within 1 GiB (memory bounded by the file)",
          "[convert][hostile][cli]") {
  test::TempDir tmp;
  // 4 Mi empty strings in one GGUF array: a 32 MiB file.
  {
    GgufBytes b;
    const uint64_t n = uint64_t{1} << 22;
    b.Header(0, 1).Str("tokenizer.ggml.tokens").U32(9).U32(8).U64(n);
    b.Zeros(8 * n);
    Write(tmp / "many_strings.gguf", b.bytes);
  }
  // 100k tensors in one safetensors header (about 6 MiB of JSON).
  {
    std::string h = "{";
    const int n = 100000;
    for (int i = 0; i < n; ++i)
      h += (i ? "," : "") + std::string("\"model.layers.") + std::to_string(i) + R"(.w":{"dtype":"F32","shape":[1],"data_offsets":[)" +
           std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
    h += "}";
    Write(tmp / "many_tensors.safetensors", StBytes(h, F32Bytes(n)));
  }
  // Found by this test (2026-11-23): `info --json` of many_tensors.safetensors ran out of
  // 1 GiB, building one JSON document of 900k entries; info now writes it entry by entry.
  for (const char* f : {"many_strings.gguf", "many_tensors.safetensors"}) {
    const auto r = test::Run(test::UlimitPrefix() + Q(test::BitsmithExe()) + " info --json - " + Q(tmp / f) + " > " +
                             Q(tmp / "out.json"));
    INFO(f << "\nstderr: " << r.err.substr(0, 2000));
    CHECK(r.status == 0);
  }
  // The streamed JSON is complete: every tensor listed once under "tensors", and once per
  // format that does not store it as asked: a 1-D f32 tensor becomes bf16 and f16 as asked
  // (sizes.h rule 2, not listed) and is kept (kept_rank) in e4m3fn and the 7 block types.
  const auto count = test::Run("grep -c '^      \\(  \\)\\?\"name\": \"model\\.layers\\.' " + Q(tmp / "out.json") +
                               "; tail -c 20 " + Q(tmp / "out.json"));
  CHECK(count.out == std::to_string(100000 * (1 + 8)) + "\n\n  \"warnings\": []\n}\n");
}

TEST_CASE("hostile: imatrix files claiming huge counts are refused before allocating",
          "[convert][hostile]") {
  test::TempDir tmp;
  auto i32 = [](std::vector<uint8_t>& v, int32_t x) {
    for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(static_cast<uint32_t>(x) >> (8 * i)));
  };
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files;
  {
    std::vector<uint8_t> v;
    i32(v, 0x7FFFFFFF);  // entries
    i32(v, 1), v.push_back('a'), i32(v, 1), i32(v, 1), i32(v, 0);
    files.emplace_back("entries_2g.dat", v);
  }
  {
    std::vector<uint8_t> v;
    i32(v, 1), i32(v, 0x7FFFFFFF);  // name length
    v.push_back('a');
    files.emplace_back("name_2gb.dat", v);
  }
  {
    std::vector<uint8_t> v;
    i32(v, 1), i32(v, 1), v.push_back('a'), i32(v, 1), i32(v, 0x7FFFFFFF), i32(v, 0);  // nval
    files.emplace_back("values_2g.dat", v);
  }
  files.emplace_back("gguf_tensor_4tb.gguf", GgufBytes()
                                                 .Header(2, 0)
                                                 .Tensor("a.in_sum2", {1u << 20, 1u << 20}, 0, 0)
                                                 .Tensor("a.counts", {1, 1u << 20}, 0, 0)
                                                 .PadTo(32)
                                                 .Zeros(64)
                                                 .bytes);
  for (const auto& [name, bytes] : files) {
    Write(tmp / name, bytes);
    auto im = ReadImatrixFile((tmp / name).string());
    INFO(name);
    REQUIRE(!im.ok());
    INFO(im.error().message);
    CHECK(im.error().kind == ErrorKind::kBadInput);
    CHECK(im.error().message.find(name) != std::string::npos);
  }
  // Not a regular file: refused, never read until memory runs out.
  auto dev = ReadImatrixFile("/dev/zero");
  REQUIRE(!dev.ok());
  CHECK(dev.error().message.find("/dev/zero") != std::string::npos);
}

TEST_CASE("hostile: --recipe and --imatrix of an endless device are refused in bounded memory",
          "[convert][hostile][cli]") {
  test::TempDir tmp;
  Write(tmp / "in.safetensors", SmallF32File("w", 2, 256));
  for (const char* opt : {"--recipe", "--imatrix"}) {
    const auto r = test::Run(test::UlimitPrefix() + Q(test::BitsmithExe()) + " convert " + Q(tmp / "in.safetensors") + " " +
                             Q(tmp / "out.gguf") + " --to q4_k --dry-run " + opt + " /dev/zero");
    INFO(opt << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("/dev/zero") != std::string::npos);
    CHECK(!fs::exists(tmp / "out.gguf"));
  }
}

// ---------------------------------------------------------------------------
// Nothing written on bad input.

TEST_CASE("hostile: convert of every malformed catalogue case exits 2 and writes nothing",
          "[convert][hostile][malformed][cli]") {
  test::TempDir tmp;
  size_t n = 0;
  for (const auto& c : test::MalformedCatalogue()) {
    const fs::path in = test::Materialize(c, tmp / "cases" / c.name);
    const fs::path out_root = tmp / "out" / c.name;
    fs::create_directories(out_root);
    const char* outs[] = {"dir", "file.safetensors", "file.gguf"};
    const char* to = n % 2 ? "f32" : "bf16";
    const fs::path out = out_root / outs[n++ % 3];
    const auto r = test::Run(test::UlimitPrefix() + Q(test::BitsmithExe()) + " convert " + Q(in) + " " + Q(out) + " --to " + to);
    INFO("case " << c.name << " -> " << out.filename() << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(Leftovers(out_root, {}).empty());
  }
}

// ---------------------------------------------------------------------------
// Paths: traversal refused, symlinked inputs read, nothing written through a symlink.

TEST_CASE("hostile: weight_map names outside the checkpoint directory are refused by convert",
          "[convert][hostile]") {
  test::TempDir tmp;
  // A real shard outside the checkpoint directory that a traversal would reach.
  fs::create_directories(tmp / "ck");
  Write(tmp / "outside.safetensors", SmallF32File("a", 1, 4));
  for (const std::string& target : {std::string("../outside.safetensors"), (tmp / "outside.safetensors").string(),
                                    std::string("./../outside.safetensors"), std::string("sub/x.safetensors"),
                                    std::string(".."), std::string("")}) {
    WriteText(tmp / "ck" / "model.safetensors.index.json",
              R"({"weight_map": {"a": ")" + target + R"("}})");
    ConvertOptions o;
    o.input = (tmp / "ck").string();
    o.output = (tmp / "out").string();
    o.to = DType::kBF16;
    o.cast_all = true;
    auto plan = BuildConversionPlan(o);
    INFO("weight_map target '" << target << "'");
    REQUIRE(!plan.ok());
    CHECK(plan.error().kind == ErrorKind::kBadInput);
    CHECK(!fs::exists(tmp / "out"));
  }
}

TEST_CASE("hostile: a Hugging Face cache snapshot (symlinked shards) converts - outputs are regular files",
          "[convert][hostile]") {
  test::TempDir tmp;
  const fs::path blobs = tmp / "hub" / "blobs", snap = tmp / "hub" / "snapshots" / "rev1";
  fs::create_directories(blobs);
  fs::create_directories(snap);
  Write(blobs / "sha-a", SmallF32File("a", 2, 8));
  Write(blobs / "sha-b", SmallF32File("b", 3, 8));
  WriteText(blobs / "sha-idx", R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  WriteText(blobs / "sha-cfg", R"({"model_type": "llama"})");
  fs::create_symlink("../../blobs/sha-a", snap / "model-00001-of-00002.safetensors");
  fs::create_symlink("../../blobs/sha-b", snap / "model-00002-of-00002.safetensors");
  fs::create_symlink("../../blobs/sha-idx", snap / "model.safetensors.index.json");
  fs::create_symlink("../../blobs/sha-cfg", snap / "config.json");
  const auto r = test::Run(Q(test::BitsmithExe()) + " convert " + Q(snap) + " " + Q(tmp / "out") + " --to f16 --cast-all");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  for (const char* f : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                        "model.safetensors.index.json", "config.json"}) {
    INFO(f);
    CHECK(fs::is_regular_file(fs::symlink_status(tmp / "out" / f)));
  }
  const auto v = test::Run(Q(test::BitsmithExe()) + " verify " + Q(snap) + " " + Q(tmp / "out"));
  INFO("verify: " << v.out << v.err);
  CHECK(v.status == 0);
  // The blobs are untouched.
  CHECK(test::ReadFile(blobs / "sha-a") == SmallF32File("a", 2, 8));
}

TEST_CASE("hostile: --force never writes through a symlink in OUT", "[convert][hostile]") {
  test::TempDir tmp;
  Write(tmp / "in.safetensors", SmallF32File("w", 2, 8));
  WriteText(tmp / "victim", "precious");
  // Directory output: OUT holds symlinks named like the files convert writes.
  fs::create_directories(tmp / "out");
  fs::create_symlink(tmp / "victim", tmp / "out" / "model.safetensors");
  fs::create_symlink(tmp / "victim", tmp / "out" / "model.safetensors.index.json");
  auto r = test::Run(Q(test::BitsmithExe()) + " convert " + Q(tmp / "in.safetensors") + " " + Q(tmp / "out") +
                     " --to f16 --cast-all --force");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == 0);
  CHECK(test::ReadFile(tmp / "victim") == std::vector<uint8_t>{'p', 'r', 'e', 'c', 'i', 'o', 'u', 's'});
  for (const auto& e : fs::directory_iterator(tmp / "out")) {
    INFO(e.path());
    CHECK(!fs::is_symlink(e.symlink_status()));
  }
  // Single-file output whose path is a symlink: replaced, the target untouched.
  fs::create_symlink(tmp / "victim", tmp / "single.safetensors");
  r = test::Run(Q(test::BitsmithExe()) + " convert " + Q(tmp / "in.safetensors") + " " + Q(tmp / "single.safetensors") +
                " --to f16 --cast-all --force");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(test::ReadFile(tmp / "victim") == std::vector<uint8_t>{'p', 'r', 'e', 'c', 'i', 'o', 'u', 's'});
  if (r.status == 0) CHECK(!fs::is_symlink(tmp / "single.safetensors"));
}

// ---------------------------------------------------------------------------
// Read errors.

TEST_CASE("hostile: a shard truncated during a conversion is an error naming it, not SIGBUS",
          "[convert][hostile]") {
  test::TempDir tmp;
  fs::create_directories(tmp / "ck");
  Write(tmp / "ck" / "model-00001-of-00002.safetensors", SmallF32File("a", 64, 64));
  Write(tmp / "ck" / "model-00002-of-00002.safetensors", SmallF32File("b", 64, 64));
  WriteText(tmp / "ck" / "model.safetensors.index.json",
            R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  ConvertOptions o;
  o.input = (tmp / "ck").string();
  o.output = (tmp / "out").string();
  o.to = DType::kBF16;
  o.cast_all = true;
  auto plan = BuildConversionPlan(o);
  REQUIRE(plan.ok());
  // Another process truncates the second shard after its header was read.
  const fs::path victim = tmp / "ck" / "model-00002-of-00002.safetensors";
  REQUIRE(::truncate(victim.c_str(), static_cast<off_t>(fs::file_size(victim) / 2)) == 0);
  RunControl c;
  c.threads = 2;
  auto r = RunConversion(*plan, c);
  REQUIRE(!r.ok());
  INFO(r.error().message);
  CHECK(r.error().message.find("model-00002-of-00002.safetensors") != std::string::npos);
  CHECK((r.error().kind == ErrorKind::kIo || r.error().kind == ErrorKind::kBadInput));
  // Nothing that looks finished: no index, no complete second shard.
  CHECK(!fs::exists(tmp / "out" / "model.safetensors.index.json"));
  CHECK(!fs::exists(tmp / "out" / "model-00002-of-00002.safetensors"));
}

TEST_CASE("hostile: a directory in place of a shard or file is a clear error", "[convert][hostile][cli]") {
  test::TempDir tmp;
  fs::create_directories(tmp / "ck" / "model-00001-of-00001.safetensors");
  WriteText(tmp / "ck" / "model.safetensors.index.json", R"({"weight_map": {"a": "model-00001-of-00001.safetensors"}})");
  fs::create_directories(tmp / "dir.safetensors");
  fs::create_directories(tmp / "dir.gguf");
  for (const fs::path& p : {tmp / "ck", tmp / "dir.safetensors", tmp / "dir.gguf"}) {
    const auto r = test::Run(Q(test::BitsmithExe()) + " info " + Q(p));
    INFO(p << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK((r.status == 1 || r.status == 2));
    CHECK(r.err.find("bitsmith: error: ") != std::string::npos);
    const auto c = test::Run(Q(test::BitsmithExe()) + " convert " + Q(p) + " " + Q(tmp / "out") + " --to bf16");
    INFO("convert stderr: " << c.err);
    CHECK((c.status == 1 || c.status == 2));
    CHECK(c.err.find("bitsmith: error: ") != std::string::npos);
    CHECK(!fs::exists(tmp / "out"));
  }
  auto ck = OpenCheckpoint((tmp / "ck").string());
  REQUIRE(!ck.ok());
  CHECK(ck.error().message.find("model-00001-of-00001.safetensors") != std::string::npos);
}

TEST_CASE("hostile: an unreadable shard is a clear error naming it", "[convert][hostile][cli]") {
  if (::geteuid() == 0) {
    WARN("SKIPPED: running as root, where chmod 000 does not stop reads (unreadable-file test)");
    return;
  }
  test::TempDir tmp;
  fs::create_directories(tmp / "ck");
  Write(tmp / "ck" / "model.safetensors", SmallF32File("a", 2, 4));
  fs::permissions(tmp / "ck" / "model.safetensors", fs::perms::none);
  const auto r = test::Run(Q(test::BitsmithExe()) + " convert " + Q(tmp / "ck") + " " + Q(tmp / "out") + " --to bf16 --cast-all");
  fs::permissions(tmp / "ck" / "model.safetensors", fs::perms::owner_all);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK((r.status == 1 || r.status == 2));
  CHECK(r.err.find("model.safetensors") != std::string::npos);
  CHECK(!fs::exists(tmp / "out"));
}

}  // namespace
}  // namespace bitsmith
