// Element codec throughput (codecs/element.h) on arrays of Config::bytes (the
// largest array of each case), single thread and all threads, with the memcpy
// ratio the harness measures in the same run (bench/registry.h).
//
// Inputs are realistic weights: f32 drawn from N(0, 0.05) scaled so that FP8
// codes cover their whole range (subnormals included), FP8 codes from encoding
// them. Buffers are touched before timing, so page faults are not measured.
#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "bench/registry.h"
#include "bench/workload.h"
#include "codecs/element.h"
#include "codecs/parallel.h"

namespace bitsmith::bench {
namespace {

// Large arrays, filled in parallel (a few hundred MiB take seconds serially).
std::shared_ptr<std::vector<float>> RandomWeights(size_t n) {
  auto v = std::make_shared<std::vector<float>>(n);
  ParallelFor(n, size_t{1} << 20, 0, [&](size_t b, size_t e) {
    std::mt19937 rng(static_cast<uint32_t>(b / (1 << 20)) + 1);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (size_t i = b; i < e; ++i) v->at(i) = nd(rng) * 4000.0f;  // |x| up to ~1000: some overflow
  });
  return v;
}

std::shared_ptr<std::vector<uint8_t>> RandomCodes(size_t n, ElementFormatId f) {
  auto w = RandomWeights(n);
  auto c = std::make_shared<std::vector<uint8_t>>(n);
  (void)Encode(f, *w, *c, Overflow::kSaturate, Impl::kSimd, 0);
  return c;
}

// Elements such that the largest array of the case holds `bytes`.
size_t Elements(const Config& c, size_t largest_elem_bytes) {
  return std::max<size_t>(c.bytes / largest_elem_bytes, 4096);
}

Workload DecodeFp8ToBF16(const Config& c) {
  const size_t n = Elements(c, 2);
  auto in = RandomCodes(n, ElementFormatId::kE4M3FN);
  auto out = std::make_shared<std::vector<uint16_t>>(n, 1);
  return ChunkedWorkload(n, 1, 2, [in, out](size_t b, size_t e) {
    DecodeE4M3FNToBF16(in->data() + b, out->data() + b, e - b);
  });
}

Workload DecodeFp8ToF32(const Config& c) {
  const size_t n = Elements(c, 4);
  auto in = RandomCodes(n, ElementFormatId::kE4M3FN);
  auto out = std::make_shared<std::vector<float>>(n, 1.0f);
  return ChunkedWorkload(n, 1, 4, [in, out](size_t b, size_t e) {
    DecodeE4M3FNToF32(in->data() + b, out->data() + b, e - b);
  });
}

Workload EncodeToFp8(const Config& c) {
  const size_t n = Elements(c, 4);
  auto in = RandomWeights(n);
  auto out = std::make_shared<std::vector<uint8_t>>(n, 1);
  return ChunkedWorkload(n, 4, 1, [in, out](size_t b, size_t e) {
    EncodeF32ToE4M3FN(in->data() + b, out->data() + b, e - b, Overflow::kSaturate);
  });
}

Workload EncodeToBF16(const Config& c) {
  const size_t n = Elements(c, 4);
  auto in = RandomWeights(n);
  auto out = std::make_shared<std::vector<uint16_t>>(n, 1);
  return ChunkedWorkload(n, 4, 2, [in, out](size_t b, size_t e) {
    EncodeF32ToBF16(in->data() + b, out->data() + b, e - b);
  });
}

Workload DecodeBF16ToF32Case(const Config& c) {
  const size_t n = Elements(c, 4);
  auto w32 = RandomWeights(n);
  auto in = std::make_shared<std::vector<uint16_t>>(n);
  EncodeF32ToBF16(w32->data(), in->data(), n);
  w32.reset();
  auto out = std::make_shared<std::vector<float>>(n, 1.0f);
  return ChunkedWorkload(n, 2, 4, [in, out](size_t b, size_t e) {
    DecodeBF16ToF32(in->data() + b, out->data() + b, e - b);
  });
}

// The DeepSeek dequantization (e4m3fn * f32 scale -> bf16), 128-wide segments.
Workload DequantScaledToBF16(const Config& c) {
  const size_t n = Elements(c, 2) / 128 * 128;
  auto in = RandomCodes(n, ElementFormatId::kE4M3FN);
  auto out = std::make_shared<std::vector<uint16_t>>(n, 1);
  return ChunkedWorkload(n, 1, 2, [in, out](size_t b, size_t e) {
    for (size_t i = b; i < e; i += 128)
      DecodeScaledToBF16(ElementFormatId::kE4M3FN, in->data() + i, 1.5e-3f + 1e-9f * i,
                         out->data() + i, std::min<size_t>(128, e - i));
  });
}

BITSMITH_BENCH_CASE("decode e4m3fn->bf16", "element", DecodeFp8ToBF16);
BITSMITH_BENCH_CASE("decode e4m3fn->f32", "element", DecodeFp8ToF32);
BITSMITH_BENCH_CASE("encode f32->e4m3fn", "element", EncodeToFp8);
BITSMITH_BENCH_CASE("encode f32->bf16", "element", EncodeToBF16);
BITSMITH_BENCH_CASE("decode bf16->f32", "element", DecodeBF16ToF32Case);
BITSMITH_BENCH_CASE("dequant e4m3fn*scale->bf16 (128)", "element", DequantScaledToBF16);

}  // namespace
}  // namespace bitsmith::bench
