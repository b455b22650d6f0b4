// Placeholder: SIMD k-quant kernels forward to the scalar references until the
// Highway paths land.
#include "codecs/quant_k.h"

namespace bitsmith::kquant {
void DequantizeQ2KSimd(const void* s, float* d, int64_t n) { DequantizeQ2KRef(s, d, n); }
void DequantizeQ3KSimd(const void* s, float* d, int64_t n) { DequantizeQ3KRef(s, d, n); }
void DequantizeQ4KSimd(const void* s, float* d, int64_t n) { DequantizeQ4KRef(s, d, n); }
void DequantizeQ5KSimd(const void* s, float* d, int64_t n) { DequantizeQ5KRef(s, d, n); }
void DequantizeQ6KSimd(const void* s, float* d, int64_t n) { DequantizeQ6KRef(s, d, n); }
}  // namespace bitsmith::kquant
