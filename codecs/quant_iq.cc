// The i-quant family's codec table: TQ1_0, TQ2_0, ggml's MXFP4 and the grid
// i-quants IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S.
//
// Each row pairs the scalar oracle (byte-identical to ggml d99724f2) with the SIMD
// path that must equal it (codecs/iq_kernels.h). The importance matrix is required
// for IQ1_S, IQ2_XXS and IQ2_XS (DTypeInfo::requires_imatrix; QuantizeRows
// refuses without one), optional for the other grid i-quants, and ignored by the
// ternary types and MXFP4.
#include "codecs/iq_grid_search.h"  // Quantize<NAME>GridSimd
#include "codecs/iq_kernels.h"
#include "codecs/quant.h"

namespace bitsmith {
namespace {

#define BITSMITH_IQ_ROW(NAME, USES_IMATRIX)                                              \
  BlockCodec {                                                                           \
    .quantize_ref = iq::Quantize##NAME##Ref, .quantize = iq::Quantize##NAME##Simd,       \
    .dequantize_ref = iq::Dequantize##NAME##Ref, .dequantize = iq::Dequantize##NAME##Simd, \
    .uses_imatrix = USES_IMATRIX                                                         \
  }

const BlockCodec kTQ1_0 = BITSMITH_IQ_ROW(TQ1_0, false);
const BlockCodec kTQ2_0 = BITSMITH_IQ_ROW(TQ2_0, false);
const BlockCodec kMXFP4 = BITSMITH_IQ_ROW(MXFP4, false);
// The five lattice-search types: SIMD quantizers in codecs/quant_iq_grid_simd.cc.
#define BITSMITH_IQ_GRID_ROW(NAME)                                                       \
  BlockCodec {                                                                           \
    .quantize_ref = iq::Quantize##NAME##Ref, .quantize = iq::Quantize##NAME##GridSimd,   \
    .dequantize_ref = iq::Dequantize##NAME##Ref, .dequantize = iq::Dequantize##NAME##Simd, \
    .uses_imatrix = true                                                                 \
  }
const BlockCodec kIQ2XXS = BITSMITH_IQ_GRID_ROW(IQ2XXS);
const BlockCodec kIQ2XS = BITSMITH_IQ_GRID_ROW(IQ2XS);
const BlockCodec kIQ2S = BITSMITH_IQ_GRID_ROW(IQ2S);
const BlockCodec kIQ3XXS = BITSMITH_IQ_GRID_ROW(IQ3XXS);
const BlockCodec kIQ3S = BITSMITH_IQ_GRID_ROW(IQ3S);
const BlockCodec kIQ1S = BITSMITH_IQ_ROW(IQ1S, true);
const BlockCodec kIQ1M = BITSMITH_IQ_ROW(IQ1M, true);

#undef BITSMITH_IQ_ROW
#undef BITSMITH_IQ_GRID_ROW

}  // namespace

const BlockCodec* IQuantBlockCodec(DType t) {
  switch (t) {
    case DType::kTQ1_0: return &kTQ1_0;
    case DType::kTQ2_0: return &kTQ2_0;
    case DType::kMXFP4: return &kMXFP4;
    case DType::kIQ2_XXS: return &kIQ2XXS;
    case DType::kIQ2_XS: return &kIQ2XS;
    case DType::kIQ2_S: return &kIQ2S;
    case DType::kIQ3_XXS: return &kIQ3XXS;
    case DType::kIQ3_S: return &kIQ3S;
    case DType::kIQ1_S: return &kIQ1S;
    case DType::kIQ1_M: return &kIQ1M;
    default: return nullptr;
  }
}

}  // namespace bitsmith
