// Placeholder until this family's codecs land: no types.
#include "codecs/quant.h"

namespace bitsmith {
const BlockCodec* KQuantBlockCodec(DType) { return nullptr; }
}  // namespace bitsmith
