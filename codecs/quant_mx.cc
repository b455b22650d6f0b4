// OCP Microscaling (MX v1.0) block codecs: mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2,
// mxfp6_e2m3, mxint8, mxfp4_ocp (layouts and the scale rule: formats/blocks_mx.h).
//
// Quantizing one block of 32 floats (OCP MX v1.0 §6.3):
//   1. amax = max |x_i|, taken exactly as the maximum of the sign-cleared float32
//      bits (for non-negative floats the bit order is the value order; an inf or
//      NaN bit pattern is larger than every finite one, so it is detected too).
//   2. Scale code e = MxScaleCodeForAmax(amax, emax_elem): shared_exp =
//      floor(log2(amax)) - emax_elem from the exponent field (no log2f), clamped
//      below to -127. amax = 0 gives e = 0x00 (X = 2^-127) and zero elements.
//   3. Element-domain value t_i = x_i * 2^-shared_exp: ONE float32 multiply by an
//      exact power of two (2^-shared_exp is in [2^-127, 2^127], all representable
//      in float32, 2^-127 as a subnormal). It equals x_i / X exactly, except
//      when t_i falls below 2^-126 and is rounded (once, to nearest even) to a
//      float32 subnormal. That rounding never changes the element code: every
//      element format's smallest decision point (half its smallest subnormal:
//      2^-10 for e4m3fn, 2^-17 for e5m2, 2^-5 for e3m2fn, 2^-4 for e2m3fn,
//      2^-2 for e2m1fn, 2^-7 for int8 at 2^-6 steps) is far above 2^-126, so t_i and the exact quotient both give
//      the zero code with x_i's sign (tests/codecs/mx_test.cc checks it).
//   4. Element code = bitsmith's element encoder (codecs/element.h) on t_i with
//      Overflow::kSaturate: round to nearest even, magnitudes beyond the format's
//      max clamped to +-max with the sign kept (§6.3: "clamped to the max
//      normal, preserving the sign"). Since amax / X < 2^(emax_elem+1), only the
//      top binade can exceed the max (e.g. e2m1fn: amax / X in [4, 8), max 6).
//   MXINT8: the int8 code q represents q * 2^-6, so the encoder sees t_i * 64
//   (exact: a power-of-two multiply of an already scaled value) clamped to
//   [-127, 127] first: saturation is symmetric, as in the spec authors'
//   reference (microsoft/microxcaling, mx/formats.py: int8 max_norm = 127/64,
//   clamped to +-max_norm). The code -128 (value -2) is never produced, but it
//   decodes.
//   Non-finite input (QuantizeRows rejects it before calling a kernel, but the
//   kernels are defined on every input): a block whose amax is inf or NaN gets the
//   NaN scale 0xFF (the spec's NaN X: every value of the block is NaN) and zero
//   element codes.
//
// Dequantizing: y_i = f32(P_i * X) with P_i the exact element value and X the
// exact scale (MXINT8: q_i * f32(2^(shared_exp-6)), the same product): one IEEE
// float32 multiply, so the only rounding happens when y_i is a float32
// subnormal; overflow gives +-inf (e5m2 57344 * 2^127). Scale 0xFF gives the
// quiet NaN 0x7FC00000 for the whole block. Element NaN/inf codes (e4m3fn
// 0x7F/0xFF, e5m2 inf and NaN codes) decode to NaN/inf times X.
//
// Two paths with identical arithmetic: the reference encodes/decodes one value
// at a time with EncodeF32Ref/DecodeToF32BitsRef; the fast path stages up to
// kChunkBlocks blocks of element-domain values and calls the element codec's
// Highway kernels (EncodeF32/DecodeToF32, SIMD = scalar bit for bit) once per
// chunk. Compiled with -ffp-contract=off like everything else (no FMA).
#include <algorithm>
#include <bit>  // std::bit_cast
#include <cstdint>
#include <cstring>

#include "codecs/element.h"
#include "codecs/quant.h"
#include "formats/blocks_mx.h"

namespace bitsmith {
namespace {

constexpr int kBlock = kMxBlockElems;
constexpr int kChunkBlocks = 64;  // fast path: 2048 values (8 KiB of f32) per staging pass
constexpr float kInt8Max = 127.0f;       // MXINT8 saturates symmetrically to +-127/64
constexpr float kInt8Steps = 64.0f;      // 2^6: MXINT8's fixed-point fraction bits

// Step 1: the bits of max |x_i| (exact; inf/NaN patterns compare above all finite ones).
inline uint32_t AmaxBits(const float* x, int n) {
  uint32_t m = 0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::bit_cast<uint32_t>(x[i]) & 0x7FFFFFFFu);
  return m;
}

// Step 3 (and MXINT8's fixed-point step): writes the 32 values the element
// encoder sees. For a NaN scale the block's elements are all +0.
inline void StageElements(const MxLayout& l, const float* x, uint8_t scale_code, float* t) {
  if (scale_code == kE8M0NaN) {
    std::fill(t, t + kBlock, 0.0f);
    return;
  }
  const int shared_exp = scale_code - kE8M0Bias;
  const float inv = std::bit_cast<float>(Pow2F32Bits(-shared_exp));  // exact 2^-shared_exp
  if (l.fraction_bits == 0) {
    for (int i = 0; i < kBlock; ++i) t[i] = x[i] * inv;
  } else {
    for (int i = 0; i < kBlock; ++i)
      t[i] = std::min(std::max((x[i] * inv) * kInt8Steps, -kInt8Max), kInt8Max);
  }
}

// The dequantization multiplier of a (non-NaN) scale: 2^(shared_exp - fraction_bits).
inline float DequantMultiplier(const MxLayout& l, uint8_t scale_code) {
  return std::bit_cast<float>(Pow2F32Bits(scale_code - kE8M0Bias - l.fraction_bits));
}

constexpr uint32_t kQuietNaNBits = 0x7FC00000u;

// ---------------------------------------------------------------------------
// Reference (scalar oracle).
// ---------------------------------------------------------------------------
template <DType kType>
void QuantizeMxRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  constexpr MxLayout l = *GetMxLayout(kType);
  constexpr int kBytes = GetDType(kType).block_bytes;
  const int64_t nblocks = nrows * n_per_row / kBlock;
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < nblocks; ++b) {
    const float* x = src + b * kBlock;
    uint8_t* blk = out + b * kBytes;
    const uint8_t e = MxScaleCodeForAmax(AmaxBits(x, kBlock), l.emax_elem);  // steps 1-2
    float t[kBlock];
    StageElements(l, x, e, t);                                                 // step 3
    uint8_t codes[kBlock];
    for (int i = 0; i < kBlock; ++i)                                           // step 4
      codes[i] = static_cast<uint8_t>(EncodeF32Ref(l.element, t[i], Overflow::kSaturate));
    blk[0] = e;
    PackMxElements(l.element_bits, codes, kBlock, blk + 1);
  }
}

template <DType kType>
void DequantizeMxRef(const void* src, float* dst, int64_t n) {
  constexpr MxLayout l = *GetMxLayout(kType);
  constexpr int kBytes = GetDType(kType).block_bytes;
  const uint8_t* in = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const uint8_t* blk = in + b * kBytes;
    float* y = dst + b * kBlock;
    if (blk[0] == kE8M0NaN) {
      std::fill(y, y + kBlock, std::bit_cast<float>(kQuietNaNBits));
      continue;
    }
    const float mult = DequantMultiplier(l, blk[0]);
    uint8_t codes[kBlock];
    UnpackMxElements(l.element_bits, blk + 1, kBlock, codes);
    for (int i = 0; i < kBlock; ++i) y[i] = DecodeToF32Ref(l.element, codes[i]) * mult;
  }
}

// ---------------------------------------------------------------------------
// Fast path: the same arithmetic, element conversion through the SIMD kernels.
// ---------------------------------------------------------------------------
template <DType kType>
void QuantizeMxFast(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  constexpr MxLayout l = *GetMxLayout(kType);
  constexpr int kBytes = GetDType(kType).block_bytes;
  const int64_t nblocks = nrows * n_per_row / kBlock;
  uint8_t* out = static_cast<uint8_t*>(dst);
  alignas(64) float t[kChunkBlocks * kBlock];
  alignas(64) uint8_t codes[kChunkBlocks * kBlock];
  uint8_t scales[kChunkBlocks];
  for (int64_t b0 = 0; b0 < nblocks; b0 += kChunkBlocks) {
    const int nb = static_cast<int>(std::min<int64_t>(kChunkBlocks, nblocks - b0));
    for (int j = 0; j < nb; ++j) {
      const float* x = src + (b0 + j) * kBlock;
      scales[j] = MxScaleCodeForAmax(AmaxBits(x, kBlock), l.emax_elem);
      StageElements(l, x, scales[j], t + j * kBlock);
    }
    EncodeF32(l.element, t, codes, static_cast<size_t>(nb) * kBlock, Overflow::kSaturate,
              Impl::kSimd);
    for (int j = 0; j < nb; ++j) {
      uint8_t* blk = out + (b0 + j) * kBytes;
      blk[0] = scales[j];
      PackMxElements(l.element_bits, codes + j * kBlock, kBlock, blk + 1);
    }
  }
}

template <DType kType>
void DequantizeMxFast(const void* src, float* dst, int64_t n) {
  constexpr MxLayout l = *GetMxLayout(kType);
  constexpr int kBytes = GetDType(kType).block_bytes;
  const uint8_t* in = static_cast<const uint8_t*>(src);
  const int64_t nblocks = n / kBlock;
  alignas(64) uint8_t codes[kChunkBlocks * kBlock];
  for (int64_t b0 = 0; b0 < nblocks; b0 += kChunkBlocks) {
    const int nb = static_cast<int>(std::min<int64_t>(kChunkBlocks, nblocks - b0));
    for (int j = 0; j < nb; ++j)
      UnpackMxElements(l.element_bits, in + (b0 + j) * kBytes + 1, kBlock, codes + j * kBlock);
    float* y0 = dst + b0 * kBlock;
    DecodeToF32(l.element, codes, y0, static_cast<size_t>(nb) * kBlock, Impl::kSimd);
    for (int j = 0; j < nb; ++j) {
      const uint8_t e = in[(b0 + j) * kBytes];
      float* y = y0 + j * kBlock;
      if (e == kE8M0NaN) {
        std::fill(y, y + kBlock, std::bit_cast<float>(kQuietNaNBits));
        continue;
      }
      const float mult = DequantMultiplier(l, e);
      for (int i = 0; i < kBlock; ++i) y[i] = y[i] * mult;
    }
  }
}

template <DType kType>
constexpr BlockCodec MakeMxCodec() {
  return BlockCodec{.quantize_ref = &QuantizeMxRef<kType>,
                    .quantize = &QuantizeMxFast<kType>,
                    .dequantize_ref = &DequantizeMxRef<kType>,
                    .dequantize = &DequantizeMxFast<kType>,
                    .uses_imatrix = false};
}

constexpr BlockCodec kMXFP8E4M3 = MakeMxCodec<DType::kMXFP8_E4M3>();
constexpr BlockCodec kMXFP8E5M2 = MakeMxCodec<DType::kMXFP8_E5M2>();
constexpr BlockCodec kMXFP6E3M2 = MakeMxCodec<DType::kMXFP6_E3M2>();
constexpr BlockCodec kMXFP6E2M3 = MakeMxCodec<DType::kMXFP6_E2M3>();
constexpr BlockCodec kMXINT8 = MakeMxCodec<DType::kMXINT8>();
constexpr BlockCodec kMXFP4OCP = MakeMxCodec<DType::kMXFP4_OCP>();

}  // namespace

// nvfp4 is not here: its per-tensor scale does not fit BlockCodec (codecs/nvfp4.h).
const BlockCodec* MxBlockCodec(DType t) {
  switch (t) {
    case DType::kMXFP8_E4M3: return &kMXFP8E4M3;
    case DType::kMXFP8_E5M2: return &kMXFP8E5M2;
    case DType::kMXFP6_E3M2: return &kMXFP6E3M2;
    case DType::kMXFP6_E2M3: return &kMXFP6E2M3;
    case DType::kMXINT8: return &kMXINT8;
    case DType::kMXFP4_OCP: return &kMXFP4OCP;
    default: return nullptr;
  }
}

}  // namespace bitsmith
