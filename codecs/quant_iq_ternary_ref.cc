// Scalar reference codecs of TQ1_0, TQ2_0 (ternary) and ggml's MXFP4.
//
// Reproduces ggml d99724f2: quantize_row_tq1_0_ref, quantize_row_tq2_0_ref,
// quantize_row_mxfp4_ref and their dequantize_row_* (tests/data/iquants/README.md,
// sections 4-5). None of them uses an importance matrix.
#include <cmath>  // fabsf, floorf, log2f, lroundf

#include "codecs/iq_kernels.h"
#include "formats/blocks_iq.h"
#include "formats/half.h"
#include "formats/iq_grids/kvalues_mxfp4.h"

namespace bitsmith::iq {
namespace {

constexpr int kQK = 256;

// Ternary digit of x: lroundf(x * id) + 1 in {0, 1, 2} (lroundf rounds ties away
// from zero). For |x| <= amax the product is within [-1, 1]. When the fp32 amax is
// so small that id = 1/amax overflows to inf, x * id is +-inf or NaN; lroundf then
// returns LONG_MIN on x86-64 glibc, whose low 32 bits are 0, so the digit is 1, as
// in ggml's build (converted through int, as ggml's `int xi = lroundf(...)`).
inline int Trit(float x, float id) { return static_cast<int>(lroundf(x * id)) + 1; }

// Block scale of both ternary types: d = amax in fp32, stored as fp16; id = 1/d
// from the fp32 d (0 when d == 0).
inline float TernaryAmax(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = MaxF(amax, fabsf(x[j]));  // ggml: MAX(amax, fabsf(v))
  return amax;
}

}  // namespace

// TQ1_0. Steps per block of 256:
//  1. d = amax, id = 1/d.
//  2. qs[0..31]: 5 trits each, values 32n+m (n = 0 is the most significant trit).
//  3. qs[32..47]: 5 trits each, values 160+16n+m.
//  4. qh[0..3]: 4 trits each, values 240+4n+j, shifted to the top (x3).
void QuantizeTQ1_0Ref(const float* x, void* vy, int64_t nrows, int64_t n_per_row, const float*) {
  auto* y = static_cast<BlockTQ1_0*>(vy);
  const int64_t nb = nrows * n_per_row / kQK;
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = TernaryAmax(x);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16Bits(d);
    int t[5];
    for (int m = 0; m < 32; ++m) {
      for (int n = 0; n < 5; ++n) t[n] = Trit(x[m + 32 * n], id);
      y[i].qs[m] = PackTQ1Trits(t);
    }
    for (int m = 0; m < 16; ++m) {
      for (int n = 0; n < 5; ++n) t[n] = Trit(x[160 + m + 16 * n], id);
      y[i].qs[32 + m] = PackTQ1Trits(t);
    }
    for (int j = 0; j < 4; ++j) {
      for (int n = 0; n < 4; ++n) t[n] = Trit(x[240 + j + 4 * n], id);
      t[4] = 0;
      y[i].qh[j] = PackTQ1Trits(t);
    }
  }
}

void DequantizeTQ1_0Ref(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockTQ1_0*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int t = 0; t < 5; ++t)
      for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(UnpackTQ1Trit(x[i].qs[m], t) - 1) * d;
    for (int t = 0; t < 5; ++t)
      for (int m = 0; m < 16; ++m)
        *y++ = static_cast<float>(UnpackTQ1Trit(x[i].qs[32 + m], t) - 1) * d;
    for (int t = 0; t < 4; ++t)
      for (int j = 0; j < 4; ++j) *y++ = static_cast<float>(UnpackTQ1Trit(x[i].qh[j], t) - 1) * d;
  }
}

// TQ2_0: d = amax; value 128h+32l+m goes to bits 2l..2l+1 of qs[32h+m].
void QuantizeTQ2_0Ref(const float* x, void* vy, int64_t nrows, int64_t n_per_row, const float*) {
  auto* y = static_cast<BlockTQ2_0*>(vy);
  const int64_t nb = nrows * n_per_row / kQK;
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = TernaryAmax(x);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16Bits(d);
    for (int h = 0; h < 2; ++h)
      for (int m = 0; m < 32; ++m) {
        int q = 0;
        for (int l = 0; l < 4; ++l) q += (Trit(x[128 * h + 32 * l + m], id) & 3) << (2 * l);
        y[i].qs[32 * h + m] = static_cast<uint8_t>(q);
      }
  }
}

void DequantizeTQ2_0Ref(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockTQ2_0*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m)
          *y++ = static_cast<float>(UnpackTQ2(x[i].qs[32 * h + m], l) - 1) * d;
  }
}

// MXFP4 (ggml's rounding, not OCP's). Steps per block of 32:
//  1. amax = largest |x| (first wins; only the value matters).
//  2. e = (uint8_t)(floorf(log2f(amax)) - 2 + 127), 0 when amax == 0. This is libm's
//     log2f, which rounds up to the next power of two for 7,456 floats just below
//     one (0x1.fffffep+2 -> e = 128, not 127): reproduced by calling log2f too.
//     For amax < 2^-125 the float is negative and ggml's float->uint8 cast (UB in
//     C) wraps through int32 on x86-64 (2^-126 -> 255); we convert the same way.
//  3. d = 2^(e-128) (kvalues are doubled E2M1 values).
//  4. Each value takes the nibble q minimising |kvalues[q]*d - x|; the first
//     minimum wins (strict <), so ties go to the lower index, i.e. the smaller
//     magnitude, and -0 (index 8) is never chosen.
uint8_t MXFP4ExponentRef(float amax) {
  if (!(amax > 0.0f)) return 0;
  const float e = floorf(log2f(amax)) - 2 + 127;
  return static_cast<uint8_t>(static_cast<int32_t>(e));
}
namespace {
inline int MXFP4BestIndex(float x, float d) {
  int best = 0;
  float best_err = fabsf(iq_grids::kKValuesMXFP4[0] * d - x);
  for (int q = 1; q < 16; ++q) {
    const float err = fabsf(iq_grids::kKValuesMXFP4[q] * d - x);
    if (err < best_err) best = q, best_err = err;
  }
  return best;
}
}  // namespace

void QuantizeMXFP4Ref(const float* x, void* vy, int64_t nrows, int64_t n_per_row, const float*) {
  auto* y = static_cast<BlockMXFP4*>(vy);
  const int64_t nb = nrows * n_per_row / 32;
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j)
      if (amax < fabsf(x[j])) amax = fabsf(x[j]);
    const uint8_t e = MXFP4ExponentRef(amax);
    const float d = F32FromBits(E8M0HalfBits(e));
    y[i].e = e;
    for (int j = 0; j < 16; ++j)
      y[i].qs[j] = PackNibbles(MXFP4BestIndex(x[j], d), MXFP4BestIndex(x[16 + j], d));
  }
}

void DequantizeMXFP4Ref(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockMXFP4*>(vx);
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = F32FromBits(E8M0HalfBits(x[i].e));
    for (int j = 0; j < 16; ++j) {
      y[j] = iq_grids::kKValuesMXFP4[LowNibble(x[i].qs[j])] * d;
      y[16 + j] = iq_grids::kKValuesMXFP4[HighNibble(x[i].qs[j])] * d;
    }
  }
}

}  // namespace bitsmith::iq
