// The legacy block family's codec table: q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 iq4_nl
// iq4_xs q8_k. Kernels: codecs/quant_legacy_ref.cc (scalar oracles, byte-identical
// to ggml) and codecs/quant_legacy_simd.cc (Highway, byte-identical to them);
// layouts: formats/blocks_legacy.h.
#include "codecs/quant.h"
#include "codecs/quant_legacy.h"

namespace bitsmith {

namespace {
using namespace legacy;

// One row per type. uses_imatrix: whether ggml_quantize_chunk's path for the type
// reads the importance weights (q8_0 ignores them; q8_1 and q8_k are activation
// types whose ggml quantizers take none).
#define BITSMITH_LEGACY_CODEC(Name, imatrix)                                           \
  BlockCodec {                                                                        \
    .quantize_ref = Quantize##Name##Ref, .quantize = Quantize##Name##Simd,            \
    .dequantize_ref = Dequantize##Name##Ref, .dequantize = Dequantize##Name##Simd,    \
    .uses_imatrix = imatrix                                                           \
  }
constexpr BlockCodec kQ4_0 = BITSMITH_LEGACY_CODEC(Q4_0, true);
constexpr BlockCodec kQ4_1 = BITSMITH_LEGACY_CODEC(Q4_1, true);
constexpr BlockCodec kQ5_0 = BITSMITH_LEGACY_CODEC(Q5_0, true);
constexpr BlockCodec kQ5_1 = BITSMITH_LEGACY_CODEC(Q5_1, true);
constexpr BlockCodec kQ8_0 = BITSMITH_LEGACY_CODEC(Q8_0, false);
constexpr BlockCodec kQ8_1 = BITSMITH_LEGACY_CODEC(Q8_1, false);
constexpr BlockCodec kIq4Nl = BITSMITH_LEGACY_CODEC(Iq4Nl, true);
constexpr BlockCodec kIq4Xs = BITSMITH_LEGACY_CODEC(Iq4Xs, true);
constexpr BlockCodec kQ8K = BITSMITH_LEGACY_CODEC(Q8K, false);
#undef BITSMITH_LEGACY_CODEC
}  // namespace

const BlockCodec* LegacyBlockCodec(DType t) {
  switch (t) {
    case DType::kQ4_0: return &kQ4_0;
    case DType::kQ4_1: return &kQ4_1;
    case DType::kQ5_0: return &kQ5_0;
    case DType::kQ5_1: return &kQ5_1;
    case DType::kQ8_0: return &kQ8_0;
    case DType::kQ8_1: return &kQ8_1;
    case DType::kIQ4_NL: return &kIq4Nl;
    case DType::kIQ4_XS: return &kIq4Xs;
    case DType::kQ8_K: return &kQ8K;
    default: return nullptr;
  }
}

}  // namespace bitsmith
