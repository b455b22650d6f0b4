// k-quant SIMD kernels against the scalar reference on random data of many
// shapes, on every compiled Highway target, and the public QuantizeRows /
// DequantizeRows entry points against the kernels with several thread counts.
//
// The SIMD quantizers put one super-block in each vector lane, in batches of
// N = 4/8/16 blocks (codecs/quant_k-inl.h), so the shapes below cover batch
// remainders (1..N+1 blocks, padding lanes), several blocks per row (imatrix
// columns differ per lane) and rows shorter than a batch.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <hwy/targets.h>

#include "codecs/quant.h"
#include "codecs/quant_k.h"

namespace bitsmith {
namespace {

// Random rows mixing the shapes that steer the searches differently: gaussian
// noise, outliers, zero runs, a per-block scale, positive-only blocks.
std::vector<float> RandomRows(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> x(n);
  for (size_t b = 0; b < n / 256; ++b) {
    const float scale = std::ldexp(1.f, static_cast<int>(rng() % 24) - 16);
    const bool positive = pick(rng) < 10;
    for (size_t i = 256 * b; i < 256 * (b + 1); ++i) {
      float v = scale * g(rng);
      const int r = pick(rng);
      if (r < 2) v *= 40;         // outlier
      else if (r < 6) v = 0;      // exact zeros
      if (positive) v = std::fabs(v);
      x[i] = v;
    }
  }
  return x;
}

std::string Where(const kquant::KernelSet& k, const char* target, int64_t nrows, int64_t npr,
                  bool imatrix) {
  return std::string(GetDType(k.type).name) + " " + target + " rows=" + std::to_string(nrows) +
         " n_per_row=" + std::to_string(npr) + (imatrix ? " imatrix" : " plain");
}

TEST_CASE("k-quant SIMD = reference over shapes and targets", "[kquant][simd]") {
  std::mt19937 rng(4242);
  // (nrows, blocks per row): totals 1..33 blocks, imatrix periods 1..5.
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {1, 3}, {3, 1}, {1, 4},  {2, 4}, {1, 7},
                                                {5, 3}, {1, 15}, {1, 16}, {17, 1}, {3, 5}, {11, 3}};
  for (int t = 0; t < kquant::kNumKTypes; ++t) {
    const kquant::KernelSet& k = kquant::Kernels(t);
    const int bb = GetDType(k.type).block_bytes;
    for (const auto& [nrows, bpr] : shapes) {
      const int64_t npr = 256 * bpr;
      const std::vector<float> x = RandomRows(rng, static_cast<size_t>(nrows * npr));
      std::vector<float> w(static_cast<size_t>(npr));
      for (float& v : w) v = std::exp(std::normal_distribution<float>(0.f, 1.5f)(rng));
      for (const float* wp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
        std::vector<uint8_t> ref(static_cast<size_t>(nrows * bpr * bb));
        k.quantize_ref(x.data(), ref.data(), nrows, npr, wp);
        std::vector<float> yref(x.size());
        k.dequantize_ref(ref.data(), yref.data(), static_cast<int64_t>(x.size()));
        for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
          hwy::SetSupportedTargetsForTest(target);
          std::vector<uint8_t> q(ref.size(), 0x5A);
          k.quantize_simd(x.data(), q.data(), nrows, npr, wp);
          size_t diff = 0;
          while (diff < q.size() && q[diff] == ref[diff]) ++diff;
          INFO(Where(k, hwy::TargetName(target), nrows, npr, wp != nullptr)
               << ": first differing byte " << diff << " (block " << diff / bb << ")");
          CHECK(diff == q.size());
          std::vector<float> y(x.size(), -1.f);
          k.dequantize_simd(ref.data(), y.data(), static_cast<int64_t>(y.size()));
          CHECK(std::memcmp(y.data(), yref.data(), y.size() * sizeof(float)) == 0);
        }
        hwy::SetSupportedTargetsForTest(0);
      }
    }
  }
}

TEST_CASE("k-quant dequantizers accept any bytes, SIMD = reference", "[kquant][simd]") {
  // Random blocks include fp16 NaN/inf scales and every level pattern.
  std::mt19937 rng(77);
  for (int t = 0; t < kquant::kNumKTypes; ++t) {
    const kquant::KernelSet& k = kquant::Kernels(t);
    const int64_t nblocks = 53;
    std::vector<uint8_t> q(static_cast<size_t>(nblocks * GetDType(k.type).block_bytes));
    for (uint8_t& b : q) b = static_cast<uint8_t>(rng());
    std::vector<float> yref(static_cast<size_t>(nblocks * 256));
    k.dequantize_ref(q.data(), yref.data(), nblocks * 256);
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      std::vector<float> y(yref.size());
      k.dequantize_simd(q.data(), y.data(), nblocks * 256);
      INFO(GetDType(k.type).name << " " << hwy::TargetName(target));
      CHECK(std::memcmp(y.data(), yref.data(), y.size() * sizeof(float)) == 0);
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

TEST_CASE("k-quant QuantizeRows/DequantizeRows: registered, thread-count independent", "[kquant][simd]") {
  std::mt19937 rng(8);
  const int64_t npr = 768, nrows = 37;
  const std::vector<float> x = RandomRows(rng, static_cast<size_t>(npr * nrows));
  std::vector<float> w(static_cast<size_t>(npr));
  for (float& v : w) v = std::exp(std::normal_distribution<float>(0.f, 1.f)(rng));
  for (int t = 0; t < kquant::kNumKTypes; ++t) {
    const kquant::KernelSet& k = kquant::Kernels(t);
    REQUIRE(GetBlockCodec(k.type) != nullptr);
    CHECK(GetBlockCodec(k.type)->uses_imatrix);
    const size_t bytes = static_cast<size_t>(*RowBytes(k.type, npr) * nrows);
    for (const float* wp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
      std::vector<uint8_t> direct(bytes);
      k.quantize_ref(x.data(), direct.data(), nrows, npr, wp);
      for (Impl impl : {Impl::kReference, Impl::kSimd})
        for (int threads : {1, 2, 3, 0}) {
          std::vector<uint8_t> q(bytes, 0xEE);
          REQUIRE(QuantizeRows(k.type, x, q, npr, wp, impl, threads).ok());
          INFO(GetDType(k.type).name << (wp ? " imatrix" : " plain") << " threads " << threads
                                     << (impl == Impl::kSimd ? " simd" : " ref"));
          CHECK(q == direct);
          std::vector<float> y(x.size()), yd(x.size());
          REQUIRE(DequantizeRows(k.type, q, y, impl, threads).ok());
          k.dequantize_ref(direct.data(), yd.data(), static_cast<int64_t>(yd.size()));
          CHECK(std::memcmp(y.data(), yd.data(), y.size() * sizeof(float)) == 0);
        }
    }
    // A row length that is not a multiple of 256 is refused, naming the multiple.
    std::vector<uint8_t> small(static_cast<size_t>(GetDType(k.type).block_bytes));
    const Status bad = QuantizeRows(k.type, std::span<const float>(x.data(), 300), small, 300);
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.error().message, Catch::Contains("multiple of 256"));
  }
}

}  // namespace
}  // namespace bitsmith
