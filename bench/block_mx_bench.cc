// Benchmarks of the OCP MX block codecs (mxfp8_e4m3 ... mxfp4_ocp, through
// QuantizeRows/DequantizeRows) and NVFP4 (codecs/nvfp4.h, tensor scale given).
// Inputs: N(0, 0.02^2) rows of 4096. ggml has none of these types, so there is
// no ggml column; the memcpy ratio is the reference point.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/registry.h"
#include "codecs/nvfp4.h"
#include "codecs/quant.h"
#include "formats/dtype.h"

namespace bitsmith::bench {
namespace {

constexpr int64_t kRow = 4096;

std::vector<float> Gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 0.02f);
  std::vector<float> v(n);
  for (float& f : v) f = g(rng);
  return v;
}

// Element counts: quantizing reads 4 bytes per element; size the input from the
// byte budget, whole rows.
int64_t RowsFor(const Config& c) {
  return std::max<int64_t>(16, static_cast<int64_t>(c.bytes / 4 / 4) / kRow);
}

Workload QuantizeMx(DType t, const Config& c) {
  const int64_t nrows = RowsFor(c);
  auto src = std::make_shared<std::vector<float>>(Gaussian(static_cast<size_t>(nrows * kRow), 42));
  auto dst = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(nrows) * *RowBytes(t, kRow));
  Workload wl;
  wl.bytes_read = src->size() * sizeof(float);
  wl.bytes_written = dst->size();
  wl.elements = src->size();
  wl.run = [=](int threads) {
    if (!QuantizeRows(t, *src, *dst, kRow, nullptr, Impl::kSimd, threads).ok()) std::abort();
  };
  return wl;
}

Workload DequantizeMx(DType t, const Config& c) {
  const int64_t nrows = RowsFor(c);
  const auto x = Gaussian(static_cast<size_t>(nrows * kRow), 7);
  auto src = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(nrows) * *RowBytes(t, kRow));
  if (!QuantizeRows(t, x, *src, kRow, nullptr, Impl::kSimd, 0).ok()) std::abort();
  auto dst = std::make_shared<std::vector<float>>(x.size());
  Workload wl;
  wl.bytes_read = src->size();
  wl.bytes_written = dst->size() * sizeof(float);
  wl.elements = dst->size();
  wl.run = [=](int threads) {
    if (!DequantizeRows(t, *src, *dst, Impl::kSimd, threads).ok()) std::abort();
  };
  return wl;
}

Workload QuantizeNv(const Config& c) {
  const int64_t nrows = RowsFor(c);
  auto src = std::make_shared<std::vector<float>>(Gaussian(static_cast<size_t>(nrows * kRow), 42));
  auto dst = std::make_shared<std::vector<uint8_t>>(src->size() / 16 * kNvfp4BlockBytes);
  const float st = *ComputeNvfp4TensorScale(*src);
  Workload wl;
  wl.bytes_read = src->size() * sizeof(float);
  wl.bytes_written = dst->size();
  wl.elements = src->size();
  wl.run = [=](int threads) {
    if (!QuantizeNvfp4(*src, *dst, kRow, st, Impl::kSimd, threads).ok()) std::abort();
  };
  return wl;
}

Workload DequantizeNv(const Config& c) {
  const int64_t nrows = RowsFor(c);
  const auto x = Gaussian(static_cast<size_t>(nrows * kRow), 7);
  const float st = *ComputeNvfp4TensorScale(x);
  auto src = std::make_shared<std::vector<uint8_t>>(x.size() / 16 * kNvfp4BlockBytes);
  if (!QuantizeNvfp4(x, *src, kRow, st, Impl::kSimd, 0).ok()) std::abort();
  auto dst = std::make_shared<std::vector<float>>(x.size());
  Workload wl;
  wl.bytes_read = src->size();
  wl.bytes_written = dst->size() * sizeof(float);
  wl.elements = dst->size();
  wl.run = [=](int threads) {
    if (!DequantizeNvfp4(*src, *dst, st, Impl::kSimd, threads).ok()) std::abort();
  };
  return wl;
}

const bool kRegistered = [] {
  for (DType t : {DType::kMXFP8_E4M3, DType::kMXFP8_E5M2, DType::kMXFP6_E3M2, DType::kMXFP6_E2M3,
                  DType::kMXINT8, DType::kMXFP4_OCP}) {
    const std::string name(GetDType(t).name);
    Register({"quantize " + name, "block", [t](const Config& c) { return QuantizeMx(t, c); }});
    Register({"dequantize " + name, "block", [t](const Config& c) { return DequantizeMx(t, c); }});
  }
  Register({"quantize nvfp4", "block", QuantizeNv});
  Register({"dequantize nvfp4", "block", DequantizeNv});
  return true;
}();

}  // namespace
}  // namespace bitsmith::bench
