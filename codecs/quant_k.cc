// KQuantBlockCodec: the k-quant rows of the block-codec table (codecs/quant.h).
// Kernels live in codecs/quant_k_ref.cc (scalar oracles) and
// codecs/quant_k_simd.cc (Highway); see codecs/quant_k.h.
#include "codecs/quant_k.h"

#include "codecs/quant.h"

namespace bitsmith {
namespace kquant {
namespace {
constexpr KernelSet kKernels[kNumKTypes] = {
    {DType::kQ2_K, QuantizeQ2KRef, QuantizeQ2KSimd, DequantizeQ2KRef, DequantizeQ2KSimd},
    {DType::kQ3_K, QuantizeQ3KRef, QuantizeQ3KSimd, DequantizeQ3KRef, DequantizeQ3KSimd},
    {DType::kQ4_K, QuantizeQ4KRef, QuantizeQ4KSimd, DequantizeQ4KRef, DequantizeQ4KSimd},
    {DType::kQ5_K, QuantizeQ5KRef, QuantizeQ5KSimd, DequantizeQ5KRef, DequantizeQ5KSimd},
    {DType::kQ6_K, QuantizeQ6KRef, QuantizeQ6KSimd, DequantizeQ6KRef, DequantizeQ6KSimd},
};
// Every k-quant uses the imatrix (ggml's quantize_row_qN_K_impl paths).
constexpr BlockCodec Codec(const KernelSet& k) {
  return {.quantize_ref = k.quantize_ref, .quantize = k.quantize_simd,
          .dequantize_ref = k.dequantize_ref, .dequantize = k.dequantize_simd,
          .uses_imatrix = true};
}
constexpr BlockCodec kCodecs[kNumKTypes] = {Codec(kKernels[0]), Codec(kKernels[1]), Codec(kKernels[2]),
                                            Codec(kKernels[3]), Codec(kKernels[4])};
}  // namespace

const KernelSet& Kernels(int k) { return kKernels[k]; }
const KernelSet* KernelsFor(DType t) {
  for (const KernelSet& k : kKernels)
    if (k.type == t) return &k;
  return nullptr;
}
}  // namespace kquant

const BlockCodec* KQuantBlockCodec(DType t) {
  for (int k = 0; k < kquant::kNumKTypes; ++k)
    if (kquant::kKernels[k].type == t) return &kquant::kCodecs[k];
  return nullptr;
}

}  // namespace bitsmith
