// Edge cases of the ternary, MXFP4 and grid i-quant codecs (inputs the shared
// vectors do not contain): all-zero blocks and sub-blocks, constant rows, single
// spikes, exact ties, tiny scales (fp16 d underflow, subnormal inputs), huge
// scales, blocks of very different scales, zero importance weights, and MXFP4's
// log2f exponent boundaries. For each: the scalar oracle and the SIMD path on
// every compiled target give the same bytes, and, when a released ggml is
// loadable (bench/ggml_ref.h), ggml gives the same bytes and the same decoded
// floats.
//
// IQ1_S/IQ1_M blocks with an all-zero sub-block (max |x| below ggml's threshold)
// are also checked against d99724f2's rule for them (older llama.cpp left
// `shifts[ib]` unset there, tests/data/iquants/README.md section 6): shift +1 for
// IQ1_S (qh bit 15 clear), code 0 for IQ1_M (qh bits 0x08/0x80 clear). They are
// counted and printed.
//
// IQ1_M: the npm ggml is newer than d99724f2 there. llama.cpp PR #28706 (Sep
// 2026) made IQ1_M's split search score candidates from per-half prefix sums:
// mathematically the same sums, rounded differently, so blocks with exact ties
// (constant rows, zero importance weights) or sums that overflow to inf (huge
// values) can pick another split or shift. bitsmith's product codec follows
// d99724f2 (the reference vectors); the npm ggml is compared, for every IQ1_M
// block with no exception, with bitsmith's model of the newer code
// (iq::QuantizeIQ1MLlamaCpp28706Ref), and the blocks where the two ggml versions
// differ are counted and printed.
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "bench/ggml_ref.h"
#include "codecs/iq_kernels.h"
#include "codecs/quant.h"
#include "formats/blocks_iq.h"
#include "formats/dtype.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using test::Bits;
using test::Floats;
using test::Hex;

constexpr DType kTypes[] = {DType::kTQ1_0, DType::kTQ2_0,  DType::kMXFP4,  DType::kIQ2_XXS, DType::kIQ2_XS,
                            DType::kIQ2_S, DType::kIQ3_XXS, DType::kIQ3_S, DType::kIQ1_S,   DType::kIQ1_M};


// A named input: rows of n_per_row values.
struct EdgeInput {
  std::string name;
  int64_t n_per_row;
  std::vector<float> x;
  bool compare_ggml = true;  // false where ggml aborts or reads out of bounds
  bool simple_types_only = false;  // only TQ1_0, TQ2_0, MXFP4 (values the grid types overflow on)
};

std::vector<float> Gauss(std::mt19937& rng, size_t n, float sigma) {
  std::normal_distribution<float> g(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

std::vector<EdgeInput> EdgeInputs() {
  std::mt19937 rng(20251123);
  std::vector<EdgeInput> in;
  in.push_back({"all_zero", 512, std::vector<float>(1024, 0.f)});
  in.push_back({"negative_zeros", 256, std::vector<float>(256, -0.f)});
  for (float c : {1.f, -1.f, 0.02f, -3.7e4f, 1e-3f})
    in.push_back({fmt::format("constant_{}", c), 256, std::vector<float>(512, c)});
  for (int pos : {0, 77, 255}) {
    std::vector<float> v(512, 0.f);
    v[pos] = 1.f;
    v[256 + pos] = -0.5f;
    in.push_back({fmt::format("single_spike_{}", pos), 256, v});
  }
  {
    auto v = Gauss(rng, 512, 0.02f);
    v[100] = 3.f;
    in.push_back({"spike_on_gauss", 512, v});
  }
  {
    // Zero sub-blocks of 16 and 32 between non-zero ones (IQ3_S's pointer quirk,
    // IQ1 zero sub-blocks, IQ2_XS/IQ2_S zero halves).
    auto v = Gauss(rng, 1024, 1.f);
    for (int i = 0; i < 32; ++i) v[i] = 0;          // sub-block 0 of block 0
    for (int i = 96; i < 112; ++i) v[i] = 0;        // a half of sub-block 3
    for (int i = 256 + 64; i < 256 + 128; ++i) v[i] = 0;  // sub-blocks 2-3 of block 1
    for (int i = 512 + 224; i < 768; ++i) v[i] = 0;       // last sub-block of block 2
    in.push_back({"zero_sub_blocks", 1024, v});
  }
  {
    // Exact ties: multiples of 1/4, and of 1/8 around a power of two.
    std::vector<float> v(512);
    for (int i = 0; i < 512; ++i) v[i] = static_cast<float>((i * 37) % 17 - 8) * 0.25f;
    in.push_back({"quarter_ties", 512, v});
    for (int i = 0; i < 512; ++i) v[i] = (i % 2 ? 1.f : -1.f) * static_cast<float>(i % 9) * 0.125f;
    in.push_back({"eighth_ties", 256, v});
  }
  for (float s : {1e-8f, 1e-20f, 1e-30f, 1e-38f, 1e-44f}) {
    in.push_back({fmt::format("tiny_{}", s), 256, Gauss(rng, 512, s)});
  }
  for (float s : {1e3f, 1e6f}) in.push_back({fmt::format("huge_{}", s), 256, Gauss(rng, 512, s)});
  {
    // Past ggml's range: distances overflow to inf, where ggml asserts (IQ2/IQ3)
    // or reads out of bounds (IQ1). bitsmith is defined there (first neighbour);
    // only scalar = SIMD is checked.
    EdgeInput e{"huge_1e15", 256, Gauss(rng, 512, 1e15f)};
    e.compare_ggml = false;
    in.push_back(e);
    EdgeInput f{"near_flt_max", 256, Gauss(rng, 256, 1e37f)};
    f.compare_ggml = false;
    in.push_back(f);
  }
  {
    // Blocks of 32 (and 256) at very different scales.
    auto v = Gauss(rng, 1024, 1.f);
    const float scales[] = {1e-6f, 1.f, 1e3f, 1e-3f, 0.f, 50.f, 1e-12f, 2.f};
    for (int i = 0; i < 1024; ++i) v[i] *= scales[(i / 32) % 8] * (i >= 512 ? 1e-4f : 1.f);
    in.push_back({"mixed_block_scales", 1024, v});
  }
  {
    // MXFP4 exponent boundaries: amax just below / at powers of two (glibc's
    // log2f rounds 0x1.fffffep+2 up to 3), tiny amax whose exponent wraps.
    const float amaxes[] = {0x1.fffffep+2f, 0x1p+3f,  0x1.fffffep-1f, 0x1p+0f,   0x1.000002p+0f, 0x1.fffffcp+2f,
                            0x1.fffffep+126f, 0x1p-124f, 0x1p-125f,    0x1p-126f, 1e-39f,         1e-44f,
                            0x1.8p+1f,        6.f,       0x1.7ffffep+1f, 3.4e38f};
    std::vector<float> v;
    for (float a : amaxes) {
      for (int j = 0; j < 32; ++j) v.push_back(a * (static_cast<float>((j * 7) % 33 - 16) / 16.f));  // no a*16 overflow
      v[v.size() - 32 + 5] = a;  // the block's amax
    }
    EdgeInput e{"mxfp4_exponent_edges", 32 * 16, v};
    e.simple_types_only = true;
    in.push_back(e);
  }
  return in;
}

// Importance-weight variants: none, random, with zeros, all zero.
std::vector<std::pair<std::string, std::vector<float>>> Imatrices(int64_t n) {
  std::mt19937 rng(99);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<std::pair<std::string, std::vector<float>>> v;
  v.push_back({"none", {}});
  std::vector<float> w(n);
  for (auto& x : w) x = std::exp(g(rng));
  v.push_back({"random", w});
  for (int64_t i = 0; i < n; i += 3) w[i] = 0;
  v.push_back({"some_zero", w});
  v.push_back({"all_zero", std::vector<float>(n, 0.f)});
  return v;
}

// The d99724f2 rule for IQ1 blocks that have an all-zero sub-block; true when the
// block has one (and then checks bitsmith's shift bits are those of the rule).
bool IQ1ZeroSubBlockRule(DType t, const float* x, const uint8_t* block) {
  const bool is_s = t == DType::kIQ1_S;
  const int sub = is_s ? 32 : 16;
  const float eps = is_s ? 1e-12f : 1e-7f;
  bool any = false;
  for (int ib = 0; ib < 256 / sub; ++ib) {
    float max = 0;
    for (int i = 0; i < sub; ++i) max = std::max(max, std::fabs(x[sub * ib + i]));
    if (max >= eps) continue;
    any = true;
    if (is_s) {
      BlockIQ1S b;
      std::memcpy(&b, block, sizeof(b));
      CHECK_FALSE(IQ1SDeltaNegative(b.qh[ib]));
    } else {
      BlockIQ1M b;
      std::memcpy(&b, block, sizeof(b));
      CHECK((b.qh[ib] & 0x88) == 0);
    }
  }
  return any;
}

struct Tally {
  int compared = 0, zero_sub_block = 0, iq1m_versions_differ = 0, ggml_skipped = 0;
};

void RunEdge(DType t, const EdgeInput& in, const std::string& wname, const std::vector<float>& w, Tally* tally) {
  const DTypeInfo& info = GetDType(t);
  if (in.n_per_row % info.block_elems) return;
  if (in.simple_types_only && info.block_elems == 256 && t != DType::kTQ1_0 && t != DType::kTQ2_0) return;
  const int64_t nrows = static_cast<int64_t>(in.x.size()) / in.n_per_row;
  const size_t bb = info.block_bytes, be = info.block_elems;
  const size_t nbytes = in.x.size() / be * bb;
  const float* imatrix = w.empty() ? nullptr : w.data();
  const std::string label = fmt::format("{} on {} (imatrix {})", info.name, in.name, wname);
  INFO(label);

  std::vector<uint8_t> ref(nbytes, 0xAB);
  const Status s = QuantizeRows(t, in.x, ref, in.n_per_row, imatrix, Impl::kReference);
  if (info.requires_imatrix && imatrix == nullptr) {
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find("requires importance weights") != std::string::npos);
    return;
  }
  REQUIRE(s.ok());

  // 1. SIMD on every target = scalar.
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    std::vector<uint8_t> q(nbytes, 0x5C);
    REQUIRE(QuantizeRows(t, in.x, q, in.n_per_row, imatrix, Impl::kSimd).ok());
    for (size_t i = 0; i < nbytes; ++i)
      if (q[i] != ref[i]) {
        const size_t blk = i / bb;
        FAIL(label << ": SIMD (" << hwy::TargetName(target) << ") differs from scalar at byte " << i
                   << " (block " << blk << ")\n  input: " << Floats(in.x.data() + blk * be, static_cast<int>(be))
                   << "\n  scalar: " << Hex(ref.data() + blk * bb, bb) << "\n  simd:   " << Hex(q.data() + blk * bb, bb));
      }
    std::vector<float> y1(in.x.size()), y2(in.x.size());
    REQUIRE(DequantizeRows(t, ref, y1, Impl::kReference).ok());
    REQUIRE(DequantizeRows(t, ref, y2, Impl::kSimd).ok());
    for (size_t i = 0; i < y1.size(); ++i)
      if (Bits(y1[i]) != Bits(y2[i]))
        FAIL(label << ": SIMD dequantize (" << hwy::TargetName(target) << ") element " << i << ": "
                   << y2[i] << " vs scalar " << y1[i]);
  }
  hwy::SetSupportedTargetsForTest(0);

  // 2. ggml.
  const ggml::Library* lib = ggml::Library::Get();
  if (lib == nullptr || !in.compare_ggml) {
    ++tally->ggml_skipped;
    return;
  }
  std::vector<uint8_t> g(nbytes, 0);
  REQUIRE(lib->QuantizeChunk(info.ggml_type, in.x.data(), g.data(), 0, nrows, in.n_per_row, imatrix) == nbytes);
  // IQ1_M: ggml's bytes are those of llama.cpp after PR #28706 (see the top).
  std::vector<uint8_t> newer;
  if (t == DType::kIQ1_M) {
    newer.assign(nbytes, 0xCD);
    iq::QuantizeIQ1MLlamaCpp28706Ref(in.x.data(), newer.data(), nrows, in.n_per_row, imatrix);
  }
  for (size_t blk = 0; blk < nbytes / bb; ++blk) {
    const uint8_t* a = (t == DType::kIQ1_M ? newer.data() : ref.data()) + blk * bb;
    const uint8_t* b = g.data() + blk * bb;
    // d99724f2's rule for all-zero sub-blocks, on the product's bytes.
    if ((t == DType::kIQ1_S || t == DType::kIQ1_M) && IQ1ZeroSubBlockRule(t, in.x.data() + blk * be, ref.data() + blk * bb))
      ++tally->zero_sub_block;
    if (t == DType::kIQ1_M && std::memcmp(a, ref.data() + blk * bb, bb) != 0) ++tally->iq1m_versions_differ;
    ++tally->compared;
    if (std::memcmp(a, b, bb) != 0)
      FAIL(label << ": block " << blk << " differs from ggml" << (t == DType::kIQ1_M ? " (llama.cpp PR #28706 model)" : "")
                 << "\n  input: " << Floats(in.x.data() + blk * be, static_cast<int>(be))
                 << "\n  ggml:     " << Hex(b, bb) << "\n  bitsmith: " << Hex(a, bb));
  }
  // Decoded floats of bitsmith's bytes, bitsmith vs ggml.
  std::vector<float> y(in.x.size()), yg(in.x.size());
  REQUIRE(DequantizeRows(t, ref, y, Impl::kSimd).ok());
  REQUIRE(lib->ToFloat(info.ggml_type, ref.data(), yg.data(), static_cast<int64_t>(yg.size())));
  for (size_t i = 0; i < y.size(); ++i)
    if (Bits(y[i]) != Bits(yg[i]))
      FAIL(label << ": dequantize element " << i << ": bitsmith " << y[i] << " (0x" << std::hex << Bits(y[i])
                 << "), ggml " << yg[i] << " (0x" << Bits(yg[i]) << std::dec << ")");
}

TEST_CASE("iquant edge cases: scalar = SIMD = ggml on zeros, constants, spikes, ties, tiny, huge", "[iquant]") {
  const ggml::Library* lib = ggml::Library::Get();
  if (lib == nullptr)
    WARN("ggml not loadable (" << ggml::Library::LoadError() << "): only scalar = SIMD is checked");
  Tally tally;
  for (const EdgeInput& in : EdgeInputs())
    for (const auto& [wname, w] : Imatrices(in.n_per_row))
      for (DType t : kTypes) {
        if (!GetBlockCodec(t)->uses_imatrix && !w.empty()) continue;  // ignored: same bytes
        RunEdge(t, in, wname, w, &tally);
      }
  std::cout << fmt::format(
      "iquant edge cases: {} blocks compared with ggml, {} IQ1 blocks with an all-zero sub-block "
      "(d99724f2's rule checked too), {} IQ1_M blocks where d99724f2 "
      "and llama.cpp PR #28706 differ (ggml compared with the latter), {} runs without ggml\n",
      tally.compared, tally.zero_sub_block, tally.iq1m_versions_differ, tally.ggml_skipped);
}

TEST_CASE("iquant edge cases: facts that do not need ggml", "[iquant]") {
  SECTION("all-zero input decodes to zeros") {
    const std::vector<float> x(512, 0.f), w(256, 1.f);
    for (DType t : kTypes) {
      const DTypeInfo& info = GetDType(t);
      std::vector<uint8_t> q(512 / info.block_elems * info.block_bytes);
      REQUIRE(QuantizeRows(t, x, q, 256, w.data()).ok());
      std::vector<float> y(512, 1.f);
      REQUIRE(DequantizeRows(t, q, y).ok());
      for (float v : y) REQUIRE(v == 0.f);  // +0 or -0 (IQ1_S: 0 * (-1 + 1/8) = -0)
    }
  }
  SECTION("MXFP4 shared exponent follows libm's log2f, not the exact exponent") {
    // README section 6: 0x1.fffffep+2 -> e = 128 (log2f rounds up to 3.0), while
    // the exact floor(log2) would give 127. 4.0 -> 127, 8.0 -> 128.
    const std::pair<float, int> cases[] = {{0x1.fffffep+2f, 128}, {4.f, 127}, {8.f, 128}, {0x1.fffffcp+2f, 127}};
    for (auto [amax, e] : cases) {
      std::vector<float> x(32, 0.f);
      x[3] = amax;
      std::vector<uint8_t> q(17);
      REQUIRE(QuantizeRows(DType::kMXFP4, x, q, 32).ok());
      INFO("amax " << amax);
      CHECK(q[0] == e);
    }
  }
  SECTION("TQ1_0/TQ2_0: lroundf ties go away from zero") {
    // d = amax = 1; 0.5 -> trit 2 (+1), -0.5 -> trit 0 (-1); decoded both at +-d.
    std::vector<float> x(256, 0.f);
    x[0] = 1.f, x[1] = 0.5f, x[2] = -0.5f, x[3] = 0.49999997f;
    for (DType t : {DType::kTQ1_0, DType::kTQ2_0}) {
      std::vector<uint8_t> q(GetDType(t).block_bytes);
      REQUIRE(QuantizeRows(t, x, q, 256).ok());
      std::vector<float> y(256);
      REQUIRE(DequantizeRows(t, q, y).ok());
      CHECK(y[0] == 1.f);
      CHECK(y[1] == 1.f);
      CHECK(y[2] == -1.f);
      CHECK(y[3] == 0.f);
    }
  }
  SECTION("i-quants: fp16 d underflow gives -0.0 for negatively signed values") {
    // x = +-1e-8: the scale underflows fp16, every output is +-0, with the sign of
    // the stored sign bit (README section 5).
    std::vector<float> x(256);
    for (int i = 0; i < 256; ++i) x[i] = (i % 3 ? 1e-8f : -1e-8f) * (1 + i % 5);
    const std::vector<float> w(256, 1.f);
    for (DType t : {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS, DType::kIQ3_S}) {
      std::vector<uint8_t> q(GetDType(t).block_bytes);
      REQUIRE(QuantizeRows(t, x, q, 256, w.data()).ok());
      std::vector<float> y(256);
      REQUIRE(DequantizeRows(t, q, y).ok());
      int negative_zeros = 0;
      for (float v : y) {
        REQUIRE(v == 0.f);
        negative_zeros += std::signbit(v);
      }
      INFO(GetDType(t).name);
      CHECK(negative_zeros >= 80);  // about a third of the inputs are negative
    }
  }
}

TEST_CASE("iquant errors: non-finite input, missing imatrix, bad row length", "[iquant]") {
  std::vector<float> x(512, 0.5f);
  const std::vector<float> w(256, 1.f);
  for (DType t : kTypes) {
    const DTypeInfo& info = GetDType(t);
    std::vector<uint8_t> q(512 / info.block_elems * info.block_bytes);
    INFO(info.name);
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      x[300] = bad;
      const Status s = QuantizeRows(t, x, q, 256, w.data());
      REQUIRE_FALSE(s.ok());
      CHECK(s.error().message.find("row 1, column 44") != std::string::npos);
      x[300] = 0.5f;
    }
    if (info.requires_imatrix) {
      const Status s = QuantizeRows(t, x, q, 256, nullptr);
      REQUIRE_FALSE(s.ok());
      CHECK(s.error().message.find("importance weights") != std::string::npos);
    }
    // Row lengths that are not a multiple of the block size (ggml truncates
    // TQ1_0/TQ2_0 rows silently there).
    const int64_t bad_row = info.block_elems == 32 ? 48 : 288;
    std::vector<float> xr(static_cast<size_t>(bad_row) * 2, 0.1f);
    std::vector<uint8_t> qr(1000);
    const Status s = QuantizeRows(t, xr, qr, bad_row, nullptr);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find(fmt::format("multiple of {}", info.block_elems)) != std::string::npos);
  }
}

TEST_CASE("iquant: random rows, scalar = SIMD on every target, any thread count", "[iquant]") {
  std::mt19937 rng(5);
  for (DType t : kTypes) {
    const DTypeInfo& info = GetDType(t);
    for (int64_t n_per_row : {256, 512, 1280}) {
      const int64_t nrows = 3;
      std::vector<float> x = Gauss(rng, static_cast<size_t>(n_per_row * nrows), 0.05f);
      std::normal_distribution<float> g(0.f, 1.f);
      std::vector<float> w(static_cast<size_t>(n_per_row));
      for (auto& v : w) v = std::exp(g(rng));
      std::vector<uint8_t> ref(static_cast<size_t>(n_per_row * nrows / info.block_elems * info.block_bytes));
      REQUIRE(QuantizeRows(t, x, ref, n_per_row, w.data(), Impl::kReference, 1).ok());
      INFO(info.name << " n_per_row " << n_per_row);
      for (int threads : {2, 3}) {
        std::vector<uint8_t> q(ref.size());
        REQUIRE(QuantizeRows(t, x, q, n_per_row, w.data(), Impl::kSimd, threads).ok());
        REQUIRE(q == ref);
      }
      for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
        hwy::SetSupportedTargetsForTest(target);
        std::vector<uint8_t> q(ref.size());
        REQUIRE(QuantizeRows(t, x, q, n_per_row, w.data(), Impl::kSimd, 1).ok());
        INFO("target " << hwy::TargetName(target));
        REQUIRE(q == ref);
      }
      hwy::SetSupportedTargetsForTest(0);
    }
    // Random bytes (any block decodes: NaN/inf d included), scalar = SIMD.
    std::vector<uint8_t> blocks(static_cast<size_t>(37 * info.block_bytes));
    for (auto& b : blocks) b = static_cast<uint8_t>(rng());
    std::vector<float> y1(static_cast<size_t>(37 * info.block_elems)), y2(y1.size());
    REQUIRE(DequantizeRows(t, blocks, y1, Impl::kReference).ok());
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      REQUIRE(DequantizeRows(t, blocks, y2, Impl::kSimd).ok());
      for (size_t i = 0; i < y1.size(); ++i)
        if (Bits(y1[i]) != Bits(y2[i]))
          FAIL(info.name << " random-bytes dequantize, target " << hwy::TargetName(target) << ", element " << i
                         << ": " << y2[i] << " vs " << y1[i]);
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

}  // namespace
}  // namespace bitsmith
