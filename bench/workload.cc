// Shared benchmark inputs and block-codec workloads: see bench/workload.h.
#include "bench/workload.h"

#include <algorithm>  // std::max
#include <cmath>      // std::exp
#include <cstdlib>    // std::abort
#include <memory>
#include <random>

#include "bench/ggml_ref.h"
#include "codecs/quant.h"

namespace bitsmith::bench {

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

Workload QuantizeWorkload(DType t, bool with_imatrix, int64_t nrows) {
  constexpr int64_t kRow = kBenchRow;
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

Workload DequantizeWorkload(DType t, const Config& c, bool seed_imatrix) {
  constexpr int64_t kRow = kBenchRow;
  const int64_t be = GetDType(t).block_elems;
  const int64_t nblocks = std::max<int64_t>(64, static_cast<int64_t>(c.bytes / 4 / be));
  const int64_t n = nblocks * be;
  // Realistic blocks: quantize a short gaussian row set once and repeat it.
  const int64_t seed_rows = 16;
  const auto seed = Gaussian(static_cast<size_t>(seed_rows * kRow), 7, 0.02f);
  std::vector<uint8_t> one(*RowBytes(t, static_cast<uint64_t>(seed_rows * kRow)));
  const std::vector<float> imat = seed_imatrix ? Imatrix(kRow) : std::vector<float>();
  if (!QuantizeRows(t, seed, one, kRow, seed_imatrix ? imat.data() : nullptr, Impl::kReference, 1).ok())
    std::abort();
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

}  // namespace bitsmith::bench
