// NVFP4 codec (semantics, edge cases and file convention: codecs/nvfp4.h).
#include "codecs/nvfp4.h"

#include <algorithm>
#include <bit>  // std::bit_cast
#include <cmath>  // std::isfinite
#include <mutex>

#include "codecs/element.h"
#include "codecs/parallel.h"
#include "formats/blocks_mx.h"
#include "formats/dtype.h"

namespace bitsmith {
namespace {

constexpr int kBlock = kNvfp4BlockElems;
constexpr size_t kChunkBlocks = 128;  // fast path: 2048 values staged per element-codec call
constexpr uint8_t kE4M3NaN = 0b0'1111'111;       // e4m3fn NaN (0x7F)
constexpr uint8_t kE4M3One = 0b0'0111'000;       // 1.0 (0x38)
static_assert(sizeof(BlockNVFP4) == kNvfp4BlockBytes);

uint32_t AbsBits(float x) { return std::bit_cast<uint32_t>(x) & 0x7FFFFFFFu; }

// Per-block scale decision (step 2) and the element divisor p = f32(s_b * s_t)
// (step 3). `divisor` is 0 when the elements must all be written as code 0.
struct BlockScale {
  uint8_t code;
  float divisor;
};

BlockScale ChooseBlockScale(const float* x, float tensor_scale, float six_st) {
  // 2a. amax_b, exactly, as the max of sign-cleared bits (NaN/inf patterns are
  //     larger than every finite one).
  uint32_t amax_bits = 0;
  for (int i = 0; i < kBlock; ++i) amax_bits = std::max(amax_bits, AbsBits(x[i]));
  if (amax_bits >= 0x7F800000u || !std::isfinite(tensor_scale)) return {kE4M3NaN, 0.0f};
  if (tensor_scale == 0.0f) return {0, 0.0f};  // s_t == 0: zero blocks
  // 2b. r = amax_b / f32(6 s_t); an all-zero block uses 1.0 (ModelOpt).
  float r = std::bit_cast<float>(amax_bits) / six_st;
  if (r == 0.0f) r = 1.0f;
  // 2c. s_b = e4m3fn(r): nearest even, saturating at 448.
  const uint8_t code = static_cast<uint8_t>(EncodeF32Ref(ElementFormatId::kE4M3FN, r,
                                                         Overflow::kSaturate));
  // 3a. p = f32(s_b * s_t).
  const float divisor = DecodeToF32Ref(ElementFormatId::kE4M3FN, code) * tensor_scale;
  return {code, divisor};
}

// Step 3b input: the values the E2M1 encoder sees (x_i / p, or 0 when p == 0 or
// the scale is NaN).
void StageBlock(const float* x, float divisor, float* t) {
  if (divisor == 0.0f) {
    std::fill(t, t + kBlock, 0.0f);
    return;
  }
  for (int i = 0; i < kBlock; ++i) t[i] = x[i] / divisor;  // f32 division, as ModelOpt
}

void StoreBlock(uint8_t code, const uint8_t* q, uint8_t* dst) {
  dst[0] = code;
  for (int j = 0; j < kBlock / 2; ++j) dst[1 + j] = PackFP4x2(q[2 * j], q[2 * j + 1]);
}

void QuantizeRef(const float* x, uint8_t* dst, size_t nblocks, float tensor_scale) {
  const float six_st = kNvfp4ElementMax * tensor_scale;
  for (size_t b = 0; b < nblocks; ++b) {
    const BlockScale s = ChooseBlockScale(x + b * kBlock, tensor_scale, six_st);
    float t[kBlock];
    StageBlock(x + b * kBlock, s.divisor, t);
    uint8_t q[kBlock];
    for (int i = 0; i < kBlock; ++i)  // 3b. e2m1, nearest even, saturating at +-6
      q[i] = static_cast<uint8_t>(EncodeF32Ref(ElementFormatId::kE2M1FN, t[i], Overflow::kSaturate));
    StoreBlock(s.code, q, dst + b * kNvfp4BlockBytes);
  }
}

void QuantizeFast(const float* x, uint8_t* dst, size_t nblocks, float tensor_scale) {
  const float six_st = kNvfp4ElementMax * tensor_scale;
  alignas(64) float t[kChunkBlocks * kBlock];
  alignas(64) uint8_t q[kChunkBlocks * kBlock];
  uint8_t codes[kChunkBlocks];
  for (size_t b0 = 0; b0 < nblocks; b0 += kChunkBlocks) {
    const size_t nb = std::min(kChunkBlocks, nblocks - b0);
    for (size_t j = 0; j < nb; ++j) {
      const float* xb = x + (b0 + j) * kBlock;
      const BlockScale s = ChooseBlockScale(xb, tensor_scale, six_st);
      codes[j] = s.code;
      StageBlock(xb, s.divisor, t + j * kBlock);
    }
    EncodeF32(ElementFormatId::kE2M1FN, t, q, nb * kBlock, Overflow::kSaturate, Impl::kSimd);
    for (size_t j = 0; j < nb; ++j)
      StoreBlock(codes[j], q + j * kBlock, dst + (b0 + j) * kNvfp4BlockBytes);
  }
}

// Step 4 for one block, given its 16 decoded E2M1 values in y.
void ScaleBlock(uint8_t scale_code, float tensor_scale, float* y) {
  const float p = DecodeToF32Ref(ElementFormatId::kE4M3FN, scale_code) * tensor_scale;
  for (int i = 0; i < kBlock; ++i) y[i] = y[i] * p;
}

void UnpackBlock(const uint8_t* src, uint8_t* q) {
  for (int j = 0; j < kBlock / 2; ++j) {
    q[2 * j] = FP4Low(src[1 + j]);
    q[2 * j + 1] = FP4High(src[1 + j]);
  }
}

void DequantizeRef(const uint8_t* src, float* y, size_t nblocks, float tensor_scale) {
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = src + b * kNvfp4BlockBytes;
    uint8_t q[kBlock];
    UnpackBlock(blk, q);
    for (int i = 0; i < kBlock; ++i) y[b * kBlock + i] = DecodeToF32Ref(ElementFormatId::kE2M1FN, q[i]);
    ScaleBlock(blk[0], tensor_scale, y + b * kBlock);
  }
}

void DequantizeFast(const uint8_t* src, float* y, size_t nblocks, float tensor_scale) {
  alignas(64) uint8_t q[kChunkBlocks * kBlock];
  for (size_t b0 = 0; b0 < nblocks; b0 += kChunkBlocks) {
    const size_t nb = std::min(kChunkBlocks, nblocks - b0);
    for (size_t j = 0; j < nb; ++j) UnpackBlock(src + (b0 + j) * kNvfp4BlockBytes, q + j * kBlock);
    float* y0 = y + b0 * kBlock;
    DecodeToF32(ElementFormatId::kE2M1FN, q, y0, nb * kBlock, Impl::kSimd);
    for (size_t j = 0; j < nb; ++j)
      ScaleBlock(src[(b0 + j) * kNvfp4BlockBytes], tensor_scale, y0 + j * kBlock);
  }
}

}  // namespace

float Nvfp4TensorScaleRef(const float* x, size_t n) {
  uint32_t amax_bits = 0;
  for (size_t i = 0; i < n; ++i) amax_bits = std::max(amax_bits, AbsBits(x[i]));
  // A NaN pattern is above inf: keep it NaN (any NaN in the tensor -> NaN).
  if (amax_bits > 0x7F800000u) return std::bit_cast<float>(0x7FC00000u);
  return std::bit_cast<float>(amax_bits) / kNvfp4TensorScaleDivisor;
}

void QuantizeNvfp4Blocks(const float* x, uint8_t* dst, size_t nblocks, float tensor_scale,
                         Impl impl) {
  if (impl == Impl::kReference)
    QuantizeRef(x, dst, nblocks, tensor_scale);
  else
    QuantizeFast(x, dst, nblocks, tensor_scale);
}

void DequantizeNvfp4Blocks(const uint8_t* src, float* y, size_t nblocks, float tensor_scale,
                           Impl impl) {
  if (impl == Impl::kReference)
    DequantizeRef(src, y, nblocks, tensor_scale);
  else
    DequantizeFast(src, y, nblocks, tensor_scale);
}

Result<float> ComputeNvfp4TensorScale(std::span<const float> x, int threads) {
  // Per-range max of |x| bits; max is exact and order-free, so threads cannot
  // change the result. The lowest non-finite index is reported.
  std::mutex mu;
  uint32_t amax_bits = 0;
  size_t bad = SIZE_MAX;
  ParallelFor(x.size(), 1 << 16, threads, [&](size_t i0, size_t i1) {
    uint32_t m = 0;
    size_t first_bad = SIZE_MAX;
    for (size_t i = i0; i < i1; ++i) {
      const uint32_t a = AbsBits(x[i]);
      if (a >= 0x7F800000u) {
        first_bad = i;
        break;
      }
      m = std::max(m, a);
    }
    std::lock_guard<std::mutex> lock(mu);
    amax_bits = std::max(amax_bits, m);
    bad = std::min(bad, first_bad);
  });
  if (bad != SIZE_MAX)
    return MakeError(ErrorKind::kBadInput,
                     "nvfp4 tensor scale: value {} is {} (non-finite values cannot be quantized)",
                     bad, x[bad]);
  return std::bit_cast<float>(amax_bits) / kNvfp4TensorScaleDivisor;
}

Status QuantizeNvfp4(std::span<const float> src, std::span<uint8_t> dst, int64_t n_per_row,
                     float tensor_scale, Impl impl, int threads) {
  if (n_per_row <= 0 || n_per_row % kBlock != 0)
    return MakeError(ErrorKind::kBadInput,
                     "quantize to nvfp4: row length {} is not a positive multiple of {} (the nvfp4 "
                     "block size)",
                     n_per_row, kBlock);
  if (src.size() % static_cast<size_t>(n_per_row) != 0)
    return MakeError(ErrorKind::kBadInput,
                     "quantize to nvfp4: {} values are not a whole number of rows of {}", src.size(),
                     n_per_row);
  const size_t nblocks = src.size() / kBlock;
  if (dst.size() != nblocks * kNvfp4BlockBytes)
    return MakeError(ErrorKind::kBadInput, "quantize to nvfp4: output holds {} bytes, {} values need {}",
                     dst.size(), src.size(), nblocks * kNvfp4BlockBytes);
  if (!std::isfinite(tensor_scale) || tensor_scale < 0.0f)
    return MakeError(ErrorKind::kBadInput,
                     "quantize to nvfp4: tensor scale {} must be finite and >= 0", tensor_scale);
  std::mutex mu;
  size_t bad_index = SIZE_MAX;
  ParallelFor(nblocks, 256, threads, [&](size_t b0, size_t b1) {
    // Check each range's finiteness just before quantizing it (one pass over
    // memory that is about to be read anyway); the lowest bad index wins.
    const float* p = src.data() + b0 * kBlock;
    const size_t n = (b1 - b0) * kBlock;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(p[i])) {
        std::lock_guard<std::mutex> lock(mu);
        bad_index = std::min(bad_index, b0 * kBlock + i);
        return;
      }
    }
    QuantizeNvfp4Blocks(p, dst.data() + b0 * kNvfp4BlockBytes, b1 - b0, tensor_scale, impl);
  });
  if (bad_index != SIZE_MAX)
    return MakeError(ErrorKind::kBadInput,
                     "quantize to nvfp4: row {}, column {} is {} (non-finite values cannot be "
                     "quantized)",
                     bad_index / static_cast<size_t>(n_per_row),
                     bad_index % static_cast<size_t>(n_per_row), src[bad_index]);
  return Status::Ok();
}

Status DequantizeNvfp4(std::span<const uint8_t> src, std::span<float> dst, float tensor_scale,
                       Impl impl, int threads) {
  if (dst.size() % kBlock != 0)
    return MakeError(ErrorKind::kBadInput,
                     "dequantize nvfp4: {} values are not a multiple of the block size {}",
                     dst.size(), kBlock);
  const size_t nblocks = dst.size() / kBlock;
  if (src.size() != nblocks * kNvfp4BlockBytes)
    return MakeError(ErrorKind::kBadInput, "dequantize nvfp4: {} bytes given, {} values need {}",
                     src.size(), dst.size(), nblocks * kNvfp4BlockBytes);
  if (!std::isfinite(tensor_scale))
    return MakeError(ErrorKind::kBadInput, "dequantize nvfp4: tensor scale {} must be finite",
                     tensor_scale);
  ParallelFor(nblocks, 4096, threads, [&](size_t b0, size_t b1) {
    DequantizeNvfp4Blocks(src.data() + b0 * kNvfp4BlockBytes, dst.data() + b0 * kBlock, b1 - b0,
                          tensor_scale, impl);
  });
  return Status::Ok();
}

}  // namespace bitsmith
