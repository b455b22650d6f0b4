// Benchmarks of the legacy block codecs (q4_0 q4_1 q5_0 q5_1 q8_0 iq4_nl iq4_xs,
// and the activation type q8_k): quantize without and with an importance
// matrix, and dequantize, each timed against ggml's own code
// (ggml_quantize_chunk / to_float from the dlopen'ed libggml-base.so,
// bench/ggml_ref.h) in the same run, so "vs ggml" is a same-machine,
// same-moment ratio. Inputs as in block_k_bench.cc: N(0, 0.02^2) rows of 4096,
// imatrix exp(N(0,1)) (the distributions of tests/data/blocks).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/ggml_ref.h"
#include "bench/registry.h"
#include "codecs/parallel.h"
#include "codecs/quant.h"
#include "formats/dtype.h"

namespace bitsmith::bench {
namespace {

constexpr int64_t kRow = 4096;

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

// Plain q8_0/q4_0 quantize at several hundred Melem/s, the search paths
// (imatrix, iq4_*) at tens: size the input so one pass takes ~10-100 ms.
int64_t RowsFor(const Config& c, bool search) {
  const uint64_t div = search ? 256 : 16;
  return std::max<int64_t>(16, static_cast<int64_t>(c.bytes / div) / kRow);
}

Workload QuantizeWorkload(DType t, bool with_imatrix, bool search, const Config& c) {
  const int64_t nrows = RowsFor(c, search || with_imatrix);
  const uint64_t row_bytes = *RowBytes(t, kRow);
  auto src = std::make_shared<std::vector<float>>(Gaussian(static_cast<size_t>(nrows * kRow), 42, 0.02f));
  auto imat = std::make_shared<std::vector<float>>(with_imatrix ? Imatrix(kRow) : std::vector<float>());
  auto dst = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(nrows) * row_bytes);
  Workload wl;
  wl.bytes_read = src->size() * sizeof(float);
  wl.bytes_written = dst->size();
  wl.elements = src->size();
  wl.run = [=](int threads) {
    const float* w = imat->empty() ? nullptr : imat->data();
    if (!QuantizeRows(t, *src, *dst, kRow, w, Impl::kSimd, threads).ok()) std::abort();
  };
  if (const ggml::Library* lib = ggml::Library::Get()) {
    const int id = GetDType(t).ggml_type;
    if (t == DType::kQ8_K) {  // not a ggml_quantize_chunk type: its from_float row quantizer
      wl.ggml_run = [=](int threads) {
        ParallelFor(static_cast<size_t>(nrows), 1, threads, [&](size_t r0, size_t r1) {
          lib->FromFloatRef(id, src->data() + r0 * kRow, dst->data() + r0 * row_bytes,
                            static_cast<int64_t>(r1 - r0) * kRow);
        });
      };
      return wl;
    }
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

Workload DequantizeWorkload(DType t, const Config& c) {
  const int64_t be = GetDType(t).block_elems;
  const int64_t nblocks = std::max<int64_t>(64, static_cast<int64_t>(c.bytes / 4 / be));
  const int64_t n = nblocks * be;
  // Realistic blocks: quantize a short gaussian row set once and repeat it.
  const int64_t seed_rows = 16;
  const auto seed = Gaussian(static_cast<size_t>(seed_rows * kRow), 7, 0.02f);
  std::vector<uint8_t> one(*RowBytes(t, static_cast<uint64_t>(seed_rows * kRow)));
  if (!QuantizeRows(t, seed, one, kRow, nullptr, Impl::kReference, 1).ok()) std::abort();
  auto src = std::make_shared<std::vector<uint8_t>>(*RowBytes(t, static_cast<uint64_t>(n)));
  for (size_t i = 0; i < src->size(); ++i) (*src)[i] = one[i % one.size()];
  auto dst = std::make_shared<std::vector<float>>(static_cast<size_t>(n));
  Workload wl;
  wl.bytes_read = src->size();
  wl.bytes_written = dst->size() * sizeof(float);
  wl.elements = static_cast<uint64_t>(n);
  wl.run = [=](int threads) {
    if (!DequantizeRows(t, *src, *dst, Impl::kSimd, threads).ok()) std::abort();
  };
  if (const ggml::Library* lib = ggml::Library::Get()) {
    const int id = GetDType(t).ggml_type;
    const size_t bb = static_cast<size_t>(GetDType(t).block_bytes);
    wl.ggml_run = [=](int threads) {
      ParallelFor(static_cast<size_t>(nblocks), 4096, threads, [&](size_t b0, size_t b1) {
        lib->ToFloat(id, src->data() + b0 * bb, dst->data() + b0 * be, static_cast<int64_t>((b1 - b0) * be));
      });
    };
  }
  return wl;
}

struct LegacyType {
  DType t;
  const char* name;
  bool imatrix_case;  // ggml's quantizer reads the importance weights
  bool search;        // the plain path is already a search (iq4_*)
};

// Cases: "quantize q4_0", "quantize q4_0 imatrix", "dequantize q4_0".
const bool kRegistered = [] {
  const LegacyType types[] = {
      {DType::kQ4_0, "q4_0", true, false},   {DType::kQ4_1, "q4_1", true, false},
      {DType::kQ5_0, "q5_0", true, false},   {DType::kQ5_1, "q5_1", true, false},
      {DType::kQ8_0, "q8_0", false, false},  {DType::kIQ4_NL, "iq4_nl", true, true},
      {DType::kIQ4_XS, "iq4_xs", true, true}};
  for (const LegacyType& lt : types) {
    const LegacyType l = lt;
    Register({std::string("quantize ") + l.name, "block",
              [l](const Config& c) { return QuantizeWorkload(l.t, false, l.search, c); }});
    if (l.imatrix_case)
      Register({std::string("quantize ") + l.name + " imatrix", "block",
                [l](const Config& c) { return QuantizeWorkload(l.t, true, l.search, c); }});
    Register({std::string("dequantize ") + l.name, "block",
              [l](const Config& c) { return DequantizeWorkload(l.t, c); }});
  }
  Register({"quantize q8_k", "block",
            [](const Config& c) { return QuantizeWorkload(DType::kQ8_K, false, false, c); }});
  Register({"dequantize q8_k", "block", [](const Config& c) { return DequantizeWorkload(DType::kQ8_K, c); }});
  return true;
}();

}  // namespace
}  // namespace bitsmith::bench
