// Benchmarks of the i-quant family (issue 8): TQ1_0, TQ2_0, ggml's MXFP4 and the
// grid i-quants IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S. Each case
// is timed against ggml's own code (ggml_quantize_chunk / to_float from the
// dlopen'ed libggml-base.so, bench/ggml_ref.h) in the same run, so "vs ggml" is a
// same-machine, same-moment ratio.
//
// Inputs: N(0, 0.02^2) rows of 4096 and an imatrix exp(N(0,1)), the
// distributions of tests/data/iquants. The grid types are quantized with the
// imatrix (the way llama-quantize makes them; IQ1_S, IQ2_XXS and IQ2_XS require
// it), TQ1_0/TQ2_0/MXFP4 without (they ignore it). Both sides build their grids
// during the harness's warm-up pass, so the timings exclude initialisation
// (first-call latency is a separate case, "iquant init").
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/ggml_ref.h"
#include "bench/registry.h"
#include "codecs/parallel.h"
#include "codecs/quant.h"
#include "formats/dtype.h"

namespace bitsmith::bench {
namespace {

constexpr int64_t kRow = 4096;

struct IQType {
  DType type;
  const char* name;
  bool imatrix;    // quantize with the imatrix
  bool fast;       // ternary / MXFP4: hundreds of Melem/s, size like the k-quants
};
constexpr IQType kTypes[] = {
    {DType::kTQ1_0, "tq1_0", false, true},     {DType::kTQ2_0, "tq2_0", false, true},
    {DType::kMXFP4, "mxfp4", false, true},     {DType::kIQ1_S, "iq1_s", true, false},
    {DType::kIQ1_M, "iq1_m", true, false},     {DType::kIQ2_XXS, "iq2_xxs", true, false},
    {DType::kIQ2_XS, "iq2_xs", true, false},   {DType::kIQ2_S, "iq2_s", true, false},
    {DType::kIQ3_XXS, "iq3_xxs", true, false}, {DType::kIQ3_S, "iq3_s", true, false},
};

std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, sigma);
  std::vector<float> v(n);
  for (float& f : v) f = g(rng);
  return v;
}

std::vector<float> Imatrix(size_t n) {
  std::mt19937 rng(777);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> v(n);
  for (float& f : v) f = std::exp(g(rng));
  return v;
}

// The grid quantizers run at a few Melem/s in ggml: 256 MiB -> 64 rows of 4096
// (256K elements, ~0.1 s per ggml pass); the fast ones like the k-quants.
int64_t QuantizeRowsFor(const IQType& t, const Config& c) {
  const uint64_t per = t.fast ? 256 : 4096;
  return std::max<int64_t>(8, static_cast<int64_t>(c.bytes / per) / kRow);
}

Workload QuantizeWorkload(const IQType& t, const Config& c) {
  const int64_t nrows = QuantizeRowsFor(t, c);
  const uint64_t row_bytes = *RowBytes(t.type, kRow);
  auto src = std::make_shared<std::vector<float>>(Gaussian(static_cast<size_t>(nrows * kRow), 42, 0.02f));
  auto imat = std::make_shared<std::vector<float>>(t.imatrix ? Imatrix(kRow) : std::vector<float>());
  auto dst = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(nrows) * row_bytes);
  const DType type = t.type;
  Workload wl;
  wl.bytes_read = src->size() * sizeof(float);
  wl.bytes_written = dst->size();
  wl.elements = src->size();
  wl.run = [=](int threads) {
    const float* w = imat->empty() ? nullptr : imat->data();
    if (!QuantizeRows(type, *src, *dst, kRow, w, Impl::kSimd, threads).ok()) std::abort();
  };
  if (const ggml::Library* lib = ggml::Library::Get()) {
    const int id = GetDType(type).ggml_type;
    wl.ggml_run = [=](int threads) {
      const float* w = imat->empty() ? nullptr : imat->data();
      ParallelFor(static_cast<size_t>(nrows), 1, threads, [&](size_t r0, size_t r1) {
        lib->QuantizeChunk(id, src->data() + r0 * kRow, dst->data() + r0 * row_bytes,
                           static_cast<int64_t>(r0) * kRow, static_cast<int64_t>(r1 - r0), kRow, w);
      });
    };
  }
  return wl;
}

Workload DequantizeWorkload(const IQType& t, const Config& c) {
  const DType type = t.type;
  const int64_t be = GetDType(type).block_elems;
  const int64_t n = std::max<int64_t>(64 * 256, static_cast<int64_t>(c.bytes / 4 / 256) * 256);
  // Realistic blocks: quantize a short gaussian row set once and repeat it.
  const int64_t seed_rows = 16;
  const auto seed = Gaussian(static_cast<size_t>(seed_rows * kRow), 7, 0.02f);
  const auto imat = Imatrix(kRow);
  const uint64_t seed_bytes = *RowBytes(type, static_cast<uint64_t>(seed_rows * kRow));
  std::vector<uint8_t> one(seed_bytes);
  if (!QuantizeRows(type, seed, one, kRow, imat.data(), Impl::kReference, 1).ok()) std::abort();
  auto src = std::make_shared<std::vector<uint8_t>>(*RowBytes(type, static_cast<uint64_t>(n)));
  for (size_t i = 0; i < src->size(); ++i) (*src)[i] = one[i % one.size()];
  auto dst = std::make_shared<std::vector<float>>(static_cast<size_t>(n));
  Workload wl;
  wl.bytes_read = src->size();
  wl.bytes_written = dst->size() * sizeof(float);
  wl.elements = static_cast<uint64_t>(n);
  wl.run = [=](int threads) {
    if (!DequantizeRows(type, *src, *dst, Impl::kSimd, threads).ok()) std::abort();
  };
  if (const ggml::Library* lib = ggml::Library::Get()) {
    const int id = GetDType(type).ggml_type;
    const size_t bb = static_cast<size_t>(GetDType(type).block_bytes);
    const size_t nblocks = static_cast<size_t>(n / be);
    wl.ggml_run = [=](int threads) {
      ParallelFor(nblocks, 4096, threads, [&](size_t b0, size_t b1) {
        lib->ToFloat(id, src->data() + b0 * bb, dst->data() + b0 * be, static_cast<int64_t>((b1 - b0) * be));
      });
    };
  }
  return wl;
}

// Two cases per type: "quantize iq2_xxs imatrix" (or "quantize tq1_0"),
// "dequantize iq2_xxs".
const bool kRegistered = [] {
  for (const IQType& t : kTypes) {
    Register({std::string("quantize ") + t.name + (t.imatrix ? " imatrix" : ""), "iquant",
              [t](const Config& c) { return QuantizeWorkload(t, c); }});
    Register({std::string("dequantize ") + t.name, "iquant",
              [t](const Config& c) { return DequantizeWorkload(t, c); }});
  }
  return true;
}();

}  // namespace
}  // namespace bitsmith::bench
