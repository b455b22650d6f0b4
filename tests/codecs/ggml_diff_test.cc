// Differential test against a released ggml (bench/ggml_ref.h): for every block
// type that has both a bitsmith codec and a ggml type id, random rows are
// quantized by bitsmith (scalar reference, and SIMD on every compiled Highway
// target) and by ggml (ggml_quantize_chunk, the call llama-quantize makes; the
// row quantizer for q8_1/q8_K, which the chunk call does not handle), and must
// give identical bytes; random blocks are dequantized by both and must give
// identical float bit patterns (NaN payloads included).
//
// Data-driven: a new codec gets this coverage without any edit here. Types with
// a ggml id but no codec yet are listed in a WARN, not failed. When ggml is not
// loadable (no `make npm-deps`), the ggml side is skipped with a visible WARN and
// the scalar-vs-SIMD comparison still runs.
//
// IQ1_M: the npm ggml has llama.cpp PR #28706 (Sep 2026), which rounds IQ1_M's
// split-search sums differently from d99724f2 (the reference vectors and the
// product codec) in rare blocks (ties, overflow to inf). For IQ1_M, ggml's bytes
// are therefore compared with bitsmith's model of that newer code
// (iq::QuantizeIQ1MLlamaCpp28706Ref), and the blocks where the two versions
// differ are counted and printed (tests/codecs/iquant_edge_test.cc has the same).
//
// Knobs (environment): BITSMITH_DIFF_CASES (random row sets per type, default
// 150; the [long] test uses 5000), BITSMITH_DIFF_SEED, BITSMITH_DIFF_TYPE (one
// type only, bitsmith or ggml spelling).
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <algorithm>
#include <chrono>
#include <cfloat>  // FLT_MAX
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "bench/ggml_ref.h"
#include "codecs/iq_kernels.h"
#include "codecs/iq_lattice.h"
#include "codecs/quant.h"
#include "codecs/quant_iq1_search.h"
#include "formats/dtype.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using Rng = std::mt19937_64;

// ---------------------------------------------------------------------------
// Random rows: the input families the issue asks for.
// ---------------------------------------------------------------------------
enum class RowKind : int {
  kGauss, kUniform, kOutliers, kZeroBlocks, kConstant, kHalfIntegerTies, kIntegerLevels,
  kSingleSpike, kMixedBlockScales, kTiny, kSparse, kAllZero, kConstantBlocks, kCount
};
const char* RowKindName(RowKind k) {
  static const char* const kNames[] = {"gauss", "uniform", "outliers", "zero_blocks", "constant",
                                       "half_integer_ties", "integer_levels", "single_spike",
                                       "mixed_block_scales", "tiny", "sparse", "all_zero",
                                       "constant_blocks"};
  return kNames[static_cast<int>(k)];
}

// 10^U(lo, hi).
float LogUniform(Rng& rng, float lo_exp10, float hi_exp10) {
  std::uniform_real_distribution<float> u(lo_exp10, hi_exp10);
  return std::pow(10.0f, u(rng));
}

// Fills one row of n values (blocks of `be`) of the given kind, at scale `s`.
void FillRow(Rng& rng, RowKind kind, float s, int be, float* x, int64_t n) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> coin(0, 99);
  switch (kind) {
    case RowKind::kGauss:
      for (int64_t i = 0; i < n; ++i) x[i] = s * g(rng);
      break;
    case RowKind::kUniform:
      for (int64_t i = 0; i < n; ++i) x[i] = s * u(rng);
      break;
    case RowKind::kOutliers:  // 1% of values x50..x1000
      for (int64_t i = 0; i < n; ++i) {
        x[i] = s * g(rng);
        if (coin(rng) == 0) x[i] *= LogUniform(rng, 1.7f, 3.f);
      }
      break;
    case RowKind::kZeroBlocks:  // a quarter of the blocks all zero
      for (int64_t b = 0; b < n / be; ++b) {
        const bool zero = coin(rng) < 25;
        for (int j = 0; j < be; ++j) x[b * be + j] = zero ? 0.f : s * g(rng);
      }
      break;
    case RowKind::kConstant: {
      const float c = s * u(rng);
      for (int64_t i = 0; i < n; ++i) x[i] = c;
      break;
    }
    case RowKind::kHalfIntegerTies: {  // (k + 1/2) * 2^e: exact ties for many scales
      const int e = std::uniform_int_distribution<int>(-20, 10)(rng);
      std::uniform_int_distribution<int> k(-17, 16);
      for (int64_t i = 0; i < n; ++i) x[i] = std::ldexp(static_cast<float>(k(rng)) + 0.5f, e);
      break;
    }
    case RowKind::kIntegerLevels: {  // k * 2^e, k in [-16, 15]: values on the level grid
      const int e = std::uniform_int_distribution<int>(-20, 10)(rng);
      std::uniform_int_distribution<int> k(-16, 15);
      for (int64_t i = 0; i < n; ++i) x[i] = std::ldexp(static_cast<float>(k(rng)), e);
      break;
    }
    case RowKind::kSingleSpike: {  // one non-zero value per block
      std::uniform_int_distribution<int> pos(0, be - 1);
      for (int64_t b = 0; b < n / be; ++b) {
        for (int j = 0; j < be; ++j) x[b * be + j] = 0.f;
        x[b * be + pos(rng)] = s * (coin(rng) < 50 ? -1.f : 1.f) * (1.f + std::fabs(g(rng)));
      }
      break;
    }
    case RowKind::kMixedBlockScales:  // every block its own scale, 1e-6 .. 1e4
      for (int64_t b = 0; b < n / be; ++b) {
        const float bs = LogUniform(rng, -6.f, 4.f);
        for (int j = 0; j < be; ++j) x[b * be + j] = bs * g(rng);
      }
      break;
    case RowKind::kTiny: {  // fp16 scales underflow (d < 2^-25)
      const float t = LogUniform(rng, -12.f, -6.f);
      for (int64_t i = 0; i < n; ++i) x[i] = t * g(rng);
      break;
    }
    case RowKind::kSparse:  // 90% zeros
      for (int64_t i = 0; i < n; ++i) x[i] = coin(rng) < 90 ? 0.f : s * g(rng);
      break;
    case RowKind::kAllZero:
      for (int64_t i = 0; i < n; ++i) x[i] = coin(rng) < 50 ? 0.f : -0.f;
      break;
    case RowKind::kConstantBlocks:  // each block one value, signs and scales varying
      for (int64_t b = 0; b < n / be; ++b) {
        const float c = s * u(rng);
        for (int j = 0; j < be; ++j) x[b * be + j] = c;
      }
      break;
    case RowKind::kCount:
      break;
  }
}

// One imatrix vector: exp(N(0,1)) like the reference vectors; sometimes with
// zero weights (columns an imatrix never saw) or a wide dynamic range.
std::vector<float> MakeImatrix(Rng& rng, int64_t n) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_int_distribution<int> coin(0, 99);
  const int style = coin(rng);
  std::vector<float> w(n);
  for (auto& v : w) {
    v = std::exp(g(rng));
    if (style < 10 && coin(rng) < 10) v = 0.f;                 // some zero columns
    else if (style >= 90) v = std::exp(4.f * g(rng));          // wide range
  }
  return w;
}

// ---------------------------------------------------------------------------
// Reporting.
// ---------------------------------------------------------------------------
using test::Bits;  // tests/support/dump.h
using test::Floats;
using test::Hex;

// First block where two byte buffers differ, or -1.
int64_t FirstDiffBlock(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int bb) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i) / bb;
  return -1;
}
// First index where two float buffers differ in bit pattern, or -1.
int64_t FirstDiffFloat(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (Bits(a[i]) != Bits(b[i])) return static_cast<int64_t>(i);
  return -1;
}

int EnvInt(const char* name, int dflt) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : dflt;
}

// The block types under test: a codec and a ggml id. Types with a ggml id and no
// codec are returned in `missing`.
std::vector<DType> DiffTypes(std::vector<std::string>* missing) {
  std::vector<DType> out;
  const char* only = std::getenv("BITSMITH_DIFF_TYPE");
  const auto only_t = only != nullptr && *only != '\0' ? FindDType(only) : std::nullopt;
  for (const DTypeInfo& info : kDTypes) {
    if (!info.is_block() || info.ggml_type < 0) continue;
    if (only_t && *only_t != info.id) continue;
    if (GetBlockCodec(info.id) == nullptr) {
      missing->emplace_back(info.name);
      continue;
    }
    out.push_back(info.id);
  }
  return out;
}

const ggml::Library* GgmlOrWarn() {
  const ggml::Library* g = ggml::Library::Get();
  if (g == nullptr) {
    std::cerr << "WARNING: ggml differential comparison SKIPPED: " << ggml::Library::LoadError()
              << "\n";
    WARN("ggml differential comparison SKIPPED (scalar vs SIMD still checked): "
         << ggml::Library::LoadError());
  }
  return g;
}

// Runs SIMD quantization once per compiled Highway target (round robin over
// calls: case i uses target i % n), so every target sees every input family.
class TargetCycler {
 public:
  TargetCycler() : targets_(hwy::SupportedAndGeneratedTargets()) {}
  ~TargetCycler() { hwy::SetSupportedTargetsForTest(0); }
  const char* Select(size_t i) {
    const int64_t t = targets_[i % targets_.size()];
    hwy::SetSupportedTargetsForTest(t);
    return hwy::TargetName(t);
  }
  size_t size() const { return targets_.size(); }

 private:
  std::vector<int64_t> targets_;
};

struct DiffStats {
  size_t cases = 0, blocks = 0, ggml_cases = 0, deq_blocks = 0, ggml_deq_blocks = 0;
  size_t iq1m_versions_differ = 0;  // IQ1_M blocks where d99724f2 != llama.cpp PR #28706
};

// Quantizes `ncases` random row sets of type t through bitsmith (ref + SIMD) and
// ggml; dequantizes random and mutated blocks through all three. Returns false
// after the first mismatch (already reported with FAIL_CHECK).
bool DiffOneType(DType t, const ggml::Library* g, int ncases, uint64_t seed, double max_seconds,
                 DiffStats* st) {
  const DTypeInfo& info = GetDType(t);
  const int be = info.block_elems, bb = info.block_bytes;
  const bool ggml_q = g != nullptr && (g->HasQuantizeChunk(info.ggml_type) ||
                                       g->HasFromFloatRef(info.ggml_type));
  const bool ggml_dq = g != nullptr && g->HasToFloat(info.ggml_type);
  if (g != nullptr && !ggml_q)
    WARN(info.name << ": ggml has no quantizer for it; quantize compared scalar vs SIMD only");
  if (g != nullptr && !ggml_dq)
    WARN(info.name << ": ggml has no dequantizer for it (no to_float); dequantize compared "
                      "scalar vs SIMD only");
  Rng rng(seed ^ (static_cast<uint64_t>(info.ggml_type) * 0x9E3779B97F4A7C15ull));
  TargetCycler targets;
  const auto start = std::chrono::steady_clock::now();
  std::vector<uint8_t> last_quant;  // the previous case's bytes, mutated for dequant
  for (int c = 0; c < ncases; ++c) {
    if (c > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
                     max_seconds)
      break;
    // 1. Shape and contents.
    const int64_t nblocks = std::uniform_int_distribution<int64_t>(1, 16)(rng);
    const int64_t nrows = std::uniform_int_distribution<int64_t>(1, 8)(rng);
    const int64_t npr = nblocks * be;
    const float scale = LogUniform(rng, -6.f, 4.f);
    std::vector<float> x(static_cast<size_t>(nrows * npr));
    std::vector<RowKind> kinds;
    for (int64_t r = 0; r < nrows; ++r) {
      const auto kind = static_cast<RowKind>(
          std::uniform_int_distribution<int>(0, static_cast<int>(RowKind::kCount) - 1)(rng));
      kinds.push_back(kind);
      FillRow(rng, kind, scale, be, x.data() + r * npr, npr);
    }
    std::vector<float> w;
    const bool use_w = info.requires_imatrix || (rng() & 1);
    if (use_w) w = MakeImatrix(rng, npr);
    const float* wp = use_w ? w.data() : nullptr;
    auto describe = [&] {
      std::string k;
      for (auto kind : kinds) k += std::string(k.empty() ? "" : ",") + RowKindName(kind);
      return fmt::format("{} case {} (seed {}): {} rows x {} ({} blocks), scale {:g}, kinds [{}], "
                         "imatrix {}",
                         info.name, c, seed, nrows, npr, nblocks, scale, k, use_w ? "yes" : "no");
    };
    // 2. bitsmith: reference, then SIMD on one target (round robin), with
    //    threads > 1 on every fourth case (the bytes must not depend on it).
    const size_t qbytes = static_cast<size_t>(nrows) * (npr / be) * bb;
    std::vector<uint8_t> q_ref(qbytes, 0xA5), q_simd(qbytes, 0x5A), q_ggml(qbytes, 0);
    Status s1 = QuantizeRows(t, x, q_ref, npr, wp, Impl::kReference, 1);
    const char* target = targets.Select(static_cast<size_t>(c));
    Status s2 = QuantizeRows(t, x, q_simd, npr, wp, Impl::kSimd, (c % 4 == 3) ? 3 : 1);
    if (!s1.ok() || !s2.ok()) {
      FAIL_CHECK(describe() << ": QuantizeRows failed: "
                            << (s1.ok() ? s2.error().message : s1.error().message));
      return false;
    }
    auto report = [&](const char* what, const std::vector<uint8_t>& a, const char* an,
                      const std::vector<uint8_t>& b, const char* bn) {
      const int64_t blk = FirstDiffBlock(a, b, bb);
      if (blk < 0) return true;
      const int64_t row = blk / nblocks, col = (blk % nblocks) * be;
      FAIL_CHECK(what << " " << describe() << "\n  first differing block " << blk << " (row "
                      << row << ", columns " << col << ".." << col + be - 1 << ", SIMD target "
                      << target << ")\n  input: " << Floats(x.data() + row * npr + col, be)
                      << "\n  imatrix: " << (use_w ? Floats(w.data() + col, be) : "none") << "\n  "
                      << an << ": " << Hex(a.data() + blk * bb, bb) << "\n  " << bn << ": "
                      << Hex(b.data() + blk * bb, bb));
      return false;
    };
    if (!report("quantize scalar vs SIMD:", q_ref, "scalar", q_simd, "simd")) return false;
    // 3. ggml.
    if (ggml_q) {
      // Zero-filled destination: ggml leaves q8_K's bsums of all-zero blocks
      // unwritten (tests/data/iquants/README.md section 6).
      REQUIRE(g->Quantize(info.ggml_type, x.data(), q_ggml.data(), nrows, npr, wp));
      if (t == DType::kIQ1_M) {
        std::vector<uint8_t> q_newer(qbytes, 0xC3);
        iq::QuantizeIQ1MLlamaCpp28706Ref(x.data(), q_newer.data(), nrows, npr, wp);
        for (size_t b = 0; b < qbytes; b += bb)
          st->iq1m_versions_differ += std::memcmp(q_newer.data() + b, q_ref.data() + b, bb) != 0;
        if (!report("quantize bitsmith (llama.cpp PR #28706 model) vs ggml:", q_ggml, "ggml", q_newer,
                    "bitsmith"))
          return false;
      } else if (!report("quantize bitsmith vs ggml:", q_ggml, "ggml", q_ref, "bitsmith")) {
        return false;
      }
      ++st->ggml_cases;
    }
    ++st->cases;
    st->blocks += static_cast<size_t>(nrows * nblocks);

    // 4. Dequantize: the real blocks, the same with random bytes flipped, and
    //    fully random bytes; through scalar, SIMD (same target) and ggml.
    std::vector<uint8_t> blocks = q_ref;
    if (c % 3 == 1) {
      for (size_t i = 0; i < blocks.size(); ++i)
        if (rng() % 8 == 0) blocks[i] = static_cast<uint8_t>(rng());
    } else if (c % 3 == 2) {
      for (auto& b : blocks) b = static_cast<uint8_t>(rng());
    }
    const size_t nvals = blocks.size() / bb * be;
    std::vector<float> y_ref(nvals, 1.f), y_simd(nvals, 2.f), y_ggml(nvals, 3.f);
    Status d1 = DequantizeRows(t, blocks, y_ref, Impl::kReference, 1);
    Status d2 = DequantizeRows(t, blocks, y_simd, Impl::kSimd, 1);
    REQUIRE(d1.ok());
    REQUIRE(d2.ok());
    auto report_f = [&](const char* what, const std::vector<float>& a, const char* an,
                        const std::vector<float>& b, const char* bn) {
      const int64_t i = FirstDiffFloat(a, b);
      if (i < 0) return true;
      const int64_t blk = i / be;
      FAIL_CHECK(what << " " << info.name << " case " << c << " (seed " << seed << ", SIMD target "
                      << target << "): element " << i << " (block " << blk << ", index "
                      << i % be << ")\n  block: " << Hex(blocks.data() + blk * bb, bb) << "\n  "
                      << an << ": " << fmt::format("{:a} (0x{:08x})", a[i], Bits(a[i])) << "\n  "
                      << bn << ": " << fmt::format("{:a} (0x{:08x})", b[i], Bits(b[i])));
      return false;
    };
    if (!report_f("dequantize scalar vs SIMD:", y_ref, "scalar", y_simd, "simd")) return false;
    if (ggml_dq) {
      REQUIRE(g->ToFloat(info.ggml_type, blocks.data(), y_ggml.data(), static_cast<int64_t>(nvals)));
      if (!report_f("dequantize bitsmith vs ggml:", y_ggml, "ggml", y_ref, "bitsmith")) return false;
      st->ggml_deq_blocks += blocks.size() / bb;
    }
    st->deq_blocks += blocks.size() / bb;
  }
  return true;
}

void RunDiff(int default_cases, double max_seconds_per_type) {
  std::vector<std::string> missing;
  const std::vector<DType> types = DiffTypes(&missing);
  if (!missing.empty()) {
    std::string list;
    for (auto& m : missing) list += (list.empty() ? "" : " ") + m;
    WARN("block types with a ggml id but no bitsmith codec yet (not tested): " << list);
  }
  const ggml::Library* g = GgmlOrWarn();
  if (g != nullptr) INFO("ggml: " << g->path() << " " << g->version());
  const int ncases = EnvInt("BITSMITH_DIFF_CASES", default_cases);
  const uint64_t seed = static_cast<uint64_t>(EnvInt("BITSMITH_DIFF_SEED", 20261123));
  for (DType t : types) {
    DiffStats st;
    DiffOneType(t, g, ncases, seed, max_seconds_per_type, &st);
    std::cout << fmt::format(
        "ggml diff {:<8} {:>5} row sets ({} blocks; {} compared with ggml), dequant {} blocks "
        "({} with ggml){}\n",
        GetDType(t).name, st.cases, st.blocks, st.ggml_cases, st.deq_blocks, st.ggml_deq_blocks,
        t == DType::kIQ1_M ? fmt::format("; {} blocks where d99724f2 and llama.cpp PR #28706 differ",
                                         st.iq1m_versions_differ)
                           : std::string());
  }
}

TEST_CASE("ggml differential: random rows and blocks through scalar, SIMD and ggml", "[ggml]") {
  RunDiff(150, 20.0);
}

TEST_CASE("ggml differential (long): many random rows and blocks", "[.][long]") {
  RunDiff(5000, 600.0);
}

TEST_CASE("ggml library: type table matches formats/dtype.h", "[ggml]") {
  const ggml::Library* g = GgmlOrWarn();
  if (g == nullptr) return;
  std::cout << "ggml: " << g->path() << " " << g->version() << "\n";
  // The loader already refused a library whose names / block sizes / block bytes
  // differ from dtype.h; check the dispatch facts the harness relies on.
  CHECK(g->HasQuantizeChunk(GetDType(DType::kQ4_0).ggml_type));
  CHECK(g->HasQuantizeChunk(GetDType(DType::kIQ4_XS).ggml_type));
  CHECK_FALSE(g->HasQuantizeChunk(GetDType(DType::kQ8_K).ggml_type));
  CHECK_FALSE(g->HasQuantizeChunk(GetDType(DType::kQ8_1).ggml_type));
  CHECK(g->HasFromFloatRef(GetDType(DType::kQ8_K).ggml_type));  // exported symbol
  CHECK(g->HasToFloat(GetDType(DType::kQ8_K).ggml_type));
  CHECK_FALSE(g->HasToFloat(GetDType(DType::kQ8_1).ggml_type));  // ggml has no q8_1 to_float
  CHECK(g->RequiresImatrix(GetDType(DType::kIQ2_XXS).ggml_type));
  CHECK_FALSE(g->RequiresImatrix(GetDType(DType::kQ4_0).ggml_type));
  // A call that would abort inside ggml is refused instead.
  std::vector<float> x(256, 1.f);
  std::vector<uint8_t> q(1024);
  CHECK(g->QuantizeChunk(GetDType(DType::kIQ2_XXS).ggml_type, x.data(), q.data(), 0, 1, 256,
                         nullptr) == 0);
  CHECK(g->QuantizeChunk(GetDType(DType::kQ4_0).ggml_type, x.data(), q.data(), 0, 1, 48,
                         nullptr) == 0);
  // A call ggml handles: q4_0 of a constant row of 1.0 is d = 1/-8 -> fp16 0xb000,
  // every level -8 (nibble 0).
  REQUIRE(g->QuantizeChunk(GetDType(DType::kQ4_0).ggml_type, x.data(), q.data(), 0, 1, 32,
                           nullptr) == 18);
  CHECK(Hex(q.data(), 18) == "00b0" + std::string(32, '0'));
}

// Regression of the ggml_diff fuzz finding of 2026-11-23
// (fuzz/corpus/ggml_diff/regression_iq1s_neighbour_overflow_ggml_oob_read, analysed in
// fuzz/open_findings/README.md). Its row, rebuilt here as the fuzz target builds it:
// 4096 values cycling -0x1.0403fep+43, 0x1.03fffep-123, 0x1.ffffaap-124, 0, 0 (every
// other period negated), imatrix {255, 1, 2, 213, 255}/16 cycled with stride 7. Some
// groups of 8 there have no grid neighbour at a distance below FLT_MAX (w*diff^2 ~
// 2^47 * 2^86), where ggml's iq1_find_best_neighbour2 scans the whole grid with
// xval[i] for grid index i, reading past the group (undefined), and bitsmith takes
// the first neighbour. Checked: the class is reached; bitsmith's bytes are its
// defined answer (scalar = SIMD on every target); ggml equals bitsmith in every
// other block; and where ggml's stray reads stay inside the row, ggml equals a model
// of that read (the diagnosis, value by value).
const float* g_row = nullptr;  // the row, for the two neighbour hooks below
size_t g_row_size = 0;
std::vector<bool>* g_undefined = nullptr;   // blocks with a group in the class
std::vector<bool>* g_unmodelled = nullptr;  // blocks where ggml's reads leave the row

int FlagUndefined(const uint16_t* nb, const float* xval, const float* w, float scale, const float* xx) {
  const int best = iq::NeighbourIQ1Scan(nb, xval, w, scale, xx);
  if (best >= 0) return best;
  (*g_undefined)[static_cast<size_t>(xval - g_row) / 256] = true;
  return nb[1];
}

// ggml's fallback as written (d99724f2 and the npm build alike): d2 over the 8
// coordinates j of grid point i, but with xval[i].
int GgmlStrayRead(const uint16_t* nb, const float* xval, const float* w, float scale, const float* xx) {
  int best = iq::NeighbourIQ1Scan(nb, xval, w, scale, xx);
  if (best >= 0) return best;
  const iq::Lattice& lat = iq::GetLattice(iq::LatticeId::kIQ1S);
  float best_d2 = FLT_MAX;
  for (int i = 0; i < 2048; ++i) {
    if (xval + i >= g_row + g_row_size) {
      (*g_unmodelled)[static_cast<size_t>(xval - g_row) / 256] = true;
      return nb[1];
    }
    float d2 = 0;
    for (int j = 0; j < 8; ++j) {
      const float diff = scale * xx[lat.Level(i, j)] - xval[i];
      d2 += w[j] * diff * diff;
    }
    if (d2 < best_d2) best_d2 = d2, best = i;
  }
  return best >= 0 ? best : nb[1];
}

TEST_CASE("ggml differential: IQ1 groups whose neighbour distances all overflow (fuzz finding)", "[ggml]") {
  const uint8_t p[5] = {0xff, 0x01, 0x02, 0xd5, 0xff};
  std::vector<float> x(4096), w(4096);
  for (size_t i = 0; i < x.size(); ++i) {
    uint8_t b[4];
    for (int j = 0; j < 4; ++j) b[j] = p[(4 * i + j) % 5];
    float v;
    std::memcpy(&v, b, 4);
    if (!std::isfinite(v)) v = 0.f;
    x[i] = (i / 5) % 2 == 1 ? -v : v;
    w[i] = static_cast<float>(p[(i * 7 + 3) % 5]) / 16.f;
  }
  const ggml::Library* g = GgmlOrWarn();
  for (DType t : {DType::kIQ1_S, DType::kIQ1_M}) {
    const DTypeInfo& info = GetDType(t);
    const size_t bb = info.block_bytes, nblk = x.size() / 256;
    std::vector<uint8_t> ref(nblk * bb), flagged(nblk * bb, 0xC3), stray(nblk * bb, 0x3C);
    REQUIRE(QuantizeRows(t, x, ref, 4096, w.data(), Impl::kReference, 1).ok());
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      std::vector<uint8_t> simd(ref.size(), 0x5A);
      REQUIRE(QuantizeRows(t, x, simd, 4096, w.data(), Impl::kSimd, 1).ok());
      INFO(info.name << " on " << hwy::TargetName(target));
      CHECK(simd == ref);
    }
    hwy::SetSupportedTargetsForTest(0);
    // The blocks of the undefined class, and ggml's model (IQ1_M: llama.cpp PR
    // #28706's split search, which the npm ggml has) with each of the two answers.
    std::vector<bool> undefined(nblk, false), unmodelled(nblk, false);
    g_row = x.data(), g_row_size = x.size(), g_undefined = &undefined, g_unmodelled = &unmodelled;
    const auto quantize = [&](iq::IQ1Hooks hooks, std::vector<uint8_t>* out) {
      if (t == DType::kIQ1_S) iq::QuantizeIQ1SWith(hooks, x.data(), out->data(), 1, 4096, w.data());
      else iq::QuantizeIQ1MWith(hooks, x.data(), out->data(), 1, 4096, w.data());
    };
    quantize({iq::SortIQ1Ref, FlagUndefined, iq::SearchIQ1SRef, iq::SearchIQ1MLlamaCpp28706}, &flagged);
    quantize({iq::SortIQ1Ref, GgmlStrayRead, iq::SearchIQ1SRef, iq::SearchIQ1MLlamaCpp28706}, &stray);
    const size_t n_undefined = static_cast<size_t>(std::count(undefined.begin(), undefined.end(), true));
    INFO(info.name);
    CHECK(n_undefined > 0);
    if (t == DType::kIQ1_S) CHECK(flagged == ref);  // bitsmith's answer: the first neighbour
    if (g == nullptr) continue;
    std::vector<uint8_t> q(ref.size(), 0);
    g->QuantizeInit(info.ggml_type);
    REQUIRE(g->Quantize(info.ggml_type, x.data(), q.data(), 1, 4096, w.data()));
    size_t same = 0, modelled = 0;
    for (size_t b = 0; b < nblk; ++b) {
      const auto blk = [&](const std::vector<uint8_t>& v) { return Hex(v.data() + b * bb, bb); };
      INFO("block " << b << (undefined[b] ? " (undefined in ggml)" : "") << "\n  ggml:    " << blk(q)
                    << "\n  defined: " << blk(flagged) << "\n  stray:   " << blk(stray));
      if (!undefined[b]) {
        CHECK(blk(q) == blk(flagged));
        ++same;
      } else if (!unmodelled[b]) {
        CHECK(blk(q) == blk(stray));
        ++modelled;
      }
    }
    std::cout << fmt::format("{} fuzz-finding row: {} blocks equal to ggml, {} where ggml reads past the group "
                             "({} of them inside the row, reproduced by the model of that read); bitsmith takes the first "
                             "neighbour there\n",
                             info.name, same, n_undefined, modelled);
  }
}

}  // namespace
}  // namespace bitsmith
