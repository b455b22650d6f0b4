// SIMD paths of the i-quant family (temporary: forward to the scalar oracle).
#include "codecs/iq_kernels.h"

namespace bitsmith::iq {
#define FWD(NAME)                                                                               \
  void Quantize##NAME##Simd(const float* x, void* y, int64_t nr, int64_t n, const float* w) {  \
    Quantize##NAME##Ref(x, y, nr, n, w);                                                        \
  }                                                                                             \
  void Dequantize##NAME##Simd(const void* x, float* y, int64_t n) { Dequantize##NAME##Ref(x, y, n); }
FWD(TQ1_0) FWD(TQ2_0) FWD(MXFP4) FWD(IQ2XXS) FWD(IQ2XS) FWD(IQ2S) FWD(IQ3XXS) FWD(IQ3S) FWD(IQ1S) FWD(IQ1M)
}  // namespace bitsmith::iq
