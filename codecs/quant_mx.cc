// Placeholder until this family's codecs land: no types.
#include "codecs/quant.h"

namespace bitsmith {
const BlockCodec* MxBlockCodec(DType) { return nullptr; }
}  // namespace bitsmith
