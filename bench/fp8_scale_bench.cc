// The fused block-scaled FP8 row kernel (codecs/fp8_scale.h DecodeScaledRow),
// as `bitsmith convert --to bf16` runs it on a DeepSeek-V3 checkpoint: rows of
// 7168 e4m3fn codes, one f32 scale_inv per 128 columns, BF16 out. The memcpy
// ratio is the harness's (bench/registry.h: same traffic, same threads, same
// run). With the default --bytes (256 MiB) both sides stream from memory; with
// a small --bytes (e.g. 1048576: input and output stay in L2) the ratio shows
// the kernel's compute cost, which is what convert pays on its row chunks.
//
// Codes: N(0, 1) weights per 128x128 block, scaled so each block's amax maps
// to 448 (what DeepSeek's quantizer does), then encoded -- so the code
// distribution, subnormals and zeros included, is a real checkpoint's.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "bench/registry.h"
#include "bench/workload.h"
#include "codecs/element.h"
#include "codecs/fp8_scale.h"
#include "codecs/parallel.h"

namespace bitsmith::bench {
namespace {

constexpr size_t kCols = 7168;  // DeepSeek-V3 hidden size
constexpr size_t kBlock = 128;  // weight_block_size

Workload DequantRowsToBF16(const Config& c) {
  const size_t rows = std::max<size_t>(c.bytes / (2 * kCols), 1);
  const size_t n = rows * kCols;
  auto codes = std::make_shared<std::vector<uint8_t>>(n);
  auto scales = std::make_shared<std::vector<float>>(rows * (kCols / kBlock));
  // 1. Weights N(0, 1), one 128-column segment at a time, scaled so that the
  //    segment's amax encodes to 448; the scale_inv is amax / 448.
  ParallelFor(rows, 64, 0, [&](size_t r0, size_t r1) {
    std::mt19937 rng(static_cast<uint32_t>(r0) + 1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> w(kBlock);
    for (size_t r = r0; r < r1; ++r) {
      for (size_t b = 0; b < kCols / kBlock; ++b) {
        float amax = 0;
        for (float& x : w) amax = std::max(amax, std::fabs(x = nd(rng)));
        const float s = amax / 448.0f;
        for (float& x : w) x /= s;
        (*scales)[r * (kCols / kBlock) + b] = s * 1e-3f;  // typical weight magnitudes
        (void)Encode(ElementFormatId::kE4M3FN, w, std::span<uint8_t>(codes->data() + r * kCols + b * kBlock, kBlock),
                     Overflow::kSaturate, Impl::kSimd, 1);
      }
    }
  });
  auto out = std::make_shared<std::vector<uint16_t>>(n, 1);
  Workload wl;
  wl.bytes_read = n;
  wl.bytes_written = 2 * n;
  wl.elements = n;
  wl.run = [=](int threads) {
    ParallelFor(rows, 16, threads, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r)
        (void)DecodeScaledRow(ElementFormatId::kE4M3FN, codes->data() + r * kCols, kCols,
                              scales->data() + r * (kCols / kBlock), kBlock, ScaledTarget::kBF16,
                              out->data() + r * kCols);
    });
  };
  return wl;
}

BITSMITH_BENCH_CASE("fp8_scale e4m3fn*scale_inv->bf16 rows 7168 (128)", "element", DequantRowsToBF16);

}  // namespace
}  // namespace bitsmith::bench
