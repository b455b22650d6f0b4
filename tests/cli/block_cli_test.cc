// `bitsmith encode --to <block type> --row N [--weights W]` and `bitsmith decode
// --from <block type>` run as a user would: the bytes equal QuantizeRows /
// DequantizeRows (the library the differential tests check against ggml), for
// every thread count, from f32 and bf16 inputs; errors exit 2 with one line and
// leave no output.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "codecs/element.h"
#include "codecs/quant.h"
#include "formats/dtype.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

std::string Exe() { return test::BitsmithExe().string(); }
std::string Q(const fs::path& p) {
  std::string s(1, '\'');  // built up, not by operator+ (GCC 12 -Wrestrict false positive)
  s += p.string();
  s += '\'';
  return s;
}

void WriteBytes(const fs::path& p, const void* data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

TEST_CASE("encode/decode block types: bytes equal the library, any thread count", "[cli][block]") {
  test::TempDir tmp;
  constexpr int64_t kRow = 1024;
  constexpr int64_t kRows = 70;  // more rows than one chunk holds
  const std::vector<float> x = Gaussian(kRow * kRows, 3, 0.02f);
  std::vector<float> w = Gaussian(kRow, 4, 1.f);
  for (float& v : w) v = std::exp(v);
  WriteBytes(tmp / "x.f32", x.data(), 4 * x.size());
  WriteBytes(tmp / "w.f32", w.data(), 4 * w.size());
  for (DType t : {DType::kQ4_0, DType::kQ5_1, DType::kQ8_0, DType::kIQ4_XS, DType::kQ4_K, DType::kQ6_K,
                  DType::kQ8_K, DType::kMXFP6_E2M3}) {
    const DTypeInfo& info = GetDType(t);
    for (bool weighted : {false, true}) {
      std::vector<uint8_t> want(*RowBytes(t, kRow) * kRows);
      REQUIRE(QuantizeRows(t, x, want, kRow, weighted ? w.data() : nullptr, Impl::kReference).ok());
      for (const char* threads : {"1", "2", "3"}) {
        const std::string cmd = Exe() + " encode --to " + std::string(info.name) + " --row 1024 --threads " +
                                threads + (weighted ? " --weights " + Q(tmp / "w.f32") : "") + " " +
                                Q(tmp / "x.f32") + " " + Q(tmp / "x.q");
        auto r = test::Run(cmd);
        INFO(cmd << "\n" << r.err);
        REQUIRE(r.status == 0);
        REQUIRE(test::ReadFile(tmp / "x.q") == want);
      }
    }
    // Decode: f32 equals DequantizeRows bit for bit, bf16 is its RNE rounding.
    std::vector<uint8_t> q(*RowBytes(t, kRow) * kRows);
    REQUIRE(QuantizeRows(t, x, q, kRow).ok());
    WriteBytes(tmp / "x.q", q.data(), q.size());
    std::vector<float> y(x.size());
    REQUIRE(DequantizeRows(t, q, y, Impl::kReference).ok());
    auto r = test::Run(Exe() + " decode --from " + std::string(info.name) + " " + Q(tmp / "x.q") + " " +
                       Q(tmp / "y.f32"));
    INFO(info.name << ": " << r.err);
    REQUIRE(r.status == 0);
    const auto got = test::ReadFile(tmp / "y.f32");
    REQUIRE(got.size() == 4 * y.size());
    CHECK(std::memcmp(got.data(), y.data(), got.size()) == 0);
    r = test::Run(Exe() + " decode --from " + std::string(info.name) + " --to bf16 - - < " + Q(tmp / "x.q") +
                  " > " + Q(tmp / "y.bf16"));
    REQUIRE(r.status == 0);
    std::vector<uint16_t> yb(y.size());
    EncodeF32ToBF16(y.data(), yb.data(), y.size());
    const auto gotb = test::ReadFile(tmp / "y.bf16");
    REQUIRE(gotb.size() == 2 * yb.size());
    CHECK(std::memcmp(gotb.data(), yb.data(), gotb.size()) == 0);
  }
  // bf16 input is widened exactly, then quantized.
  std::vector<uint16_t> xb(x.size());
  EncodeF32ToBF16(x.data(), xb.data(), x.size());
  WriteBytes(tmp / "x.bf16", xb.data(), 2 * xb.size());
  std::vector<float> xw(x.size());
  DecodeBF16ToF32(xb.data(), xw.data(), xw.size());
  std::vector<uint8_t> want(*RowBytes(DType::kQ4_K, kRow) * kRows);
  REQUIRE(QuantizeRows(DType::kQ4_K, xw, want, kRow).ok());
  auto r = test::Run(Exe() + " encode --from bf16 --to q4_k --row 1024 " + Q(tmp / "x.bf16") + " " + Q(tmp / "x.q"));
  REQUIRE(r.status == 0);
  CHECK(test::ReadFile(tmp / "x.q") == want);
}

TEST_CASE("encode/decode block types: errors are one line, exit 2, nothing written", "[cli][block]") {
  test::TempDir tmp;
  std::vector<float> x = Gaussian(512 * 2, 5, 1.f);
  WriteBytes(tmp / "x.f32", x.data(), 4 * x.size());
  x[512 + 77] = INFINITY;
  WriteBytes(tmp / "inf.f32", x.data(), 4 * x.size());
  const std::vector<float> w(512, 1.f);
  WriteBytes(tmp / "w.f32", w.data(), 4 * w.size());
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"encode --to q4_k x.f32 out", "needs --row N"},
      {"encode --to q4_k --row 300 x.f32 out", "multiple of 256"},
      {"encode --to q4_0 --row 96 x.f32 out", "not a whole number of f32 rows of 96"},
      {"encode --to q4_0 --row 512 inf.f32 out", "row 1, column 77 is inf"},
      {"encode --to q4_0 --row 256 --weights w.f32 x.f32 out", "expected 1024"},
      {"encode --to iq2_xxs --row 512 x.f32 out", "requires importance weights"},
      {"encode --to nvfp4 --row 512 x.f32 out", "per-tensor"},
      {"encode --to q4_0 --row 512 --saturate x.f32 out", "--saturate"},
      {"encode --to e4m3fn --row 512 x.f32 out", "block formats only"},
      {"encode --to q9_9 --row 512 x.f32 out", "unknown format"},
      {"decode --from q4_0 x.f32 out", "not a whole number of 32-element q4_0 blocks"},
      {"decode --from q4_0 --to q8_0 x.f32 out", "decode writes f32 or bf16"},
  };
  for (const Case& c : cases) {
    auto r = test::Run("cd " + Q(tmp.path()) + " && " + Exe() + " " + c.args);
    INFO(c.args << " -> " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(fs::exists(tmp / "out"));
  }
}

}  // namespace
}  // namespace bitsmith

namespace bitsmith {
namespace {

// Value of element e from the inspector's fields and levels, by the type's
// formula (ggml's to_float, float32 in its order): an independent check that
// the unpacked scales, mins and levels are the ones the dequantizer uses.
std::optional<float> FromFields(DType t, const nlohmann::json& j, int e) {
  const auto& f = j["fields"];
  if (j["levels"].size() <= static_cast<size_t>(e) || j["levels"][e].is_null()) return std::nullopt;
  const float L = j["levels"][e].get<int>();
  auto field = [&](const char* n) { return f[n]["value"].get<float>(); };
  auto sub = [&](int size) -> const nlohmann::json& { return j["sub_blocks"][e / size]; };
  switch (t) {
    case DType::kQ4_0: return (L - 8) * field("d");
    case DType::kQ5_0: return (L - 16) * field("d");
    case DType::kQ4_1: case DType::kQ5_1: return L * field("d") + field("m");
    case DType::kQ8_0: return L * field("d");
    case DType::kQ8_K: return field("d") * L;
    case DType::kIQ4_XS: {
      static constexpr float kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
      return sub(32)["effective_scale"].get<float>() * kv[static_cast<int>(L)];
    }
    case DType::kQ2_K: return sub(16)["effective_scale"].get<float>() * L - sub(16)["effective_min"].get<float>();
    case DType::kQ3_K: case DType::kQ6_K: return sub(16)["effective_scale"].get<float>() * L;
    case DType::kQ4_K: case DType::kQ5_K:
      return sub(32)["effective_scale"].get<float>() * L - sub(32)["effective_min"].get<float>();
    default: return std::nullopt;
  }
}

TEST_CASE("explain --block: every block type, values = to_float, fields reproduce them", "[cli][block]") {
  test::TempDir tmp;
  constexpr int64_t kRow = 512;
  std::vector<float> x = Gaussian(kRow * 2, 9, 0.05f);
  std::vector<float> w(kRow, 1.f);
  int described = 0;
  for (int i = 0; i < kNumDTypes; ++i) {
    const DType t = static_cast<DType>(i);
    const DTypeInfo& info = GetDType(t);
    if (!info.is_block() || t == DType::kNVFP4 || GetBlockCodec(t) == nullptr) continue;
    std::vector<uint8_t> q(*RowBytes(t, kRow) * 2);
    REQUIRE(QuantizeRows(t, x, q, kRow, w.data()).ok());
    WriteBytes(tmp / "q.bin", q.data(), q.size());
    std::vector<float> y(x.size());
    REQUIRE(DequantizeRows(t, q, y).ok());
    const int blk = 3 % static_cast<int>(q.size() / info.block_bytes);
    const std::string cmd = Exe() + " explain --format " + std::string(info.name) + " --block @" +
                            (tmp / "q.bin").string() + ":" + std::to_string(blk * info.block_bytes) + " --json";
    auto r = test::Run(cmd);
    INFO(cmd << "\n" << r.err);
    REQUIRE(r.status == 0);
    const auto j = nlohmann::json::parse(r.out);
    REQUIRE(j["values"].size() == static_cast<size_t>(info.block_elems));
    CHECK(j["bpw"].get<double>() == info.bits_per_weight());
    for (int e = 0; e < info.block_elems; ++e) {
      const float v = j["values"][e].get<float>();
      INFO(info.name << " element " << e);
      REQUIRE(v == y[static_cast<size_t>(blk * info.block_elems + e)]);
      if (auto g = FromFields(t, j, e)) REQUIRE(*g == v);
    }
    // The human table prints without error too.
    r = test::Run(Exe() + " explain --format " + std::string(info.name) + " --block @" + (tmp / "q.bin").string());
    CHECK(r.status == 0);
    ++described;
  }
  CHECK(described >= 20);
  // Hex input (spaces allowed) equals the file input.
  std::vector<uint8_t> q(*RowBytes(DType::kQ4_0, kRow));
  REQUIRE(QuantizeRows(DType::kQ4_0, std::span<const float>(x.data(), kRow), q, kRow).ok());
  std::string hex;
  for (int b = 0; b < 18; ++b) hex += fmt::format("{:02x}{}", q[b], b % 2 ? " " : "");
  auto r = test::Run(Exe() + " explain --format q4_0 --block '" + hex + "' --json");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  std::vector<float> y(32);
  REQUIRE(DequantizeRows(DType::kQ4_0, std::span<const uint8_t>(q.data(), 18), y).ok());
  for (int e = 0; e < 32; ++e) CHECK(j["values"][e].get<float>() == y[e]);
  // Errors: exit 2, one line.
  for (const std::string args : {"--format q4_0 --block 00ff", "--format e4m3fn --block 00",
                                 "--format q4_0 --block zz", "--format q4_0 --block @/nonexistent",
                                 "--format q4_0 0x12 --block 00"}) {
    r = test::Run(Exe() + " explain " + args);
    INFO(args << " -> " << r.err);
    CHECK(r.status == 2);
  }
}

}  // namespace
}  // namespace bitsmith
