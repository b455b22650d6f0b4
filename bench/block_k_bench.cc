// Benchmarks of the k-quant codecs (q2_k..q6_k): quantize without and with an
// importance matrix, and dequantize, each timed against ggml's own code
// (ggml_quantize_chunk / to_float from the dlopen'ed libggml-base.so,
// bench/ggml_ref.h) in the same run, so the "vs ggml" column is a same-machine,
// same-moment ratio. Inputs: N(0, 0.02^2) rows of 4096 (a typical weight row),
// imatrix exp(N(0,1)) -- the distributions of tests/data/blocks.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>
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

// Quantizing is ~100x slower than copying: size the input from the byte budget
// (256 MiB -> 1M elements), whole rows, at least 16 rows.
int64_t QuantizeRowsFor(const Config& c) {
  return std::max<int64_t>(16, static_cast<int64_t>(c.bytes / 256) / kRow);
}

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

Workload QuantizeWorkload(DType t, bool with_imatrix, const Config& c) {
  const int64_t nrows = QuantizeRowsFor(c);
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
  const int64_t nblocks = std::max<int64_t>(64, static_cast<int64_t>(c.bytes / 4 / 256));
  const int64_t n = nblocks * 256;
  // Realistic blocks: quantize a short gaussian row set once and repeat it.
  const int64_t seed_rows = 16;
  const auto seed = Gaussian(static_cast<size_t>(seed_rows * kRow), 7, 0.02f);
  const uint64_t seed_bytes = *RowBytes(t, static_cast<uint64_t>(seed_rows * kRow));
  std::vector<uint8_t> one(seed_bytes);
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
        lib->ToFloat(id, src->data() + b0 * bb, dst->data() + b0 * 256,
                     static_cast<int64_t>((b1 - b0) * 256));
      });
    };
  }
  return wl;
}

// Three cases per type: "quantize q4_k", "quantize q4_k imatrix", "dequantize q4_k".
const bool kRegistered = [] {
  const std::pair<DType, const char*> types[] = {{DType::kQ2_K, "q2_k"}, {DType::kQ3_K, "q3_k"},
                                                 {DType::kQ4_K, "q4_k"}, {DType::kQ5_K, "q5_k"},
                                                 {DType::kQ6_K, "q6_k"}};
  for (const auto& [t, name] : types) {
    const DType type = t;
    Register({std::string("quantize ") + name, "block",
              [type](const Config& c) { return QuantizeWorkload(type, false, c); }});
    Register({std::string("quantize ") + name + " imatrix", "block",
              [type](const Config& c) { return QuantizeWorkload(type, true, c); }});
    Register({std::string("dequantize ") + name, "block",
              [type](const Config& c) { return DequantizeWorkload(type, c); }});
  }
  return true;
}();

}  // namespace
}  // namespace bitsmith::bench
