#include "codecs/quant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>  // std::memcpy
#include <mutex>
#include <vector>

#include "codecs/parallel.h"

namespace bitsmith {

const BlockCodec* GetBlockCodec(DType t) {
  if (!GetDType(t).is_block()) return nullptr;
  for (auto family : {LegacyBlockCodec, KQuantBlockCodec, IQuantBlockCodec, MxBlockCodec})
    if (const BlockCodec* c = family(t)) return c;
  return nullptr;
}

namespace {
// The address alignment the block kernels need: the kernels read and write
// blocks through their structs (formats/blocks_*.h), whose alignment is that of
// their widest field -- at most 4 (float, uint32_t), and it divides the block
// size. So the largest power of two <= 4 dividing the block size is enough.
size_t BlockAlign(size_t block_bytes) { return block_bytes % 4 == 0 ? 4 : block_bytes % 2 == 0 ? 2 : 1; }
bool Aligned(const void* p, size_t align) { return reinterpret_cast<uintptr_t>(p) % align == 0; }

// Blocks staged through an aligned buffer when the caller's bytes are not
// aligned (a misaligned block struct access is undefined behaviour; found by the
// ggml_diff fuzz target under UBSan, which passes input bytes at odd addresses).
constexpr size_t kStageBytes = 16384;
struct alignas(64) StageBuffer {
  uint8_t bytes[kStageBytes];
};

Result<const BlockCodec*> CodecFor(DType t, std::string_view what) {
  const DTypeInfo& info = GetDType(t);
  if (!info.is_block())
    return MakeError(ErrorKind::kBadUsage, "{}: {} is not a block format", what, info.name);
  const BlockCodec* c = GetBlockCodec(t);
  if (c == nullptr)
    return MakeError(ErrorKind::kUnsupported, "{}: no codec for {} in this build", what, info.name);
  return c;
}
}  // namespace

Status QuantizeRows(DType t, std::span<const float> src, std::span<uint8_t> dst, int64_t n_per_row,
                    const float* imatrix, Impl impl, int threads) {
  BITSMITH_ASSIGN_OR_RETURN(const BlockCodec* codec, CodecFor(t, "quantize"));
  const DTypeInfo& info = GetDType(t);
  if (n_per_row <= 0 || n_per_row % info.block_elems != 0)
    return MakeError(ErrorKind::kBadInput,
                     "quantize to {}: row length {} is not a positive multiple of {} (the {} block size)",
                     info.name, n_per_row, info.block_elems, info.name);
  if (src.size() % static_cast<size_t>(n_per_row) != 0)
    return MakeError(ErrorKind::kBadInput,
                     "quantize to {}: {} values are not a whole number of rows of {}", info.name,
                     src.size(), n_per_row);
  const int64_t nrows = static_cast<int64_t>(src.size()) / n_per_row;
  const uint64_t row_bytes = *RowBytes(t, static_cast<uint64_t>(n_per_row));
  if (dst.size() != static_cast<uint64_t>(nrows) * row_bytes)
    return MakeError(ErrorKind::kBadInput, "quantize to {}: output holds {} bytes, {} rows need {}",
                     info.name, dst.size(), nrows, static_cast<uint64_t>(nrows) * row_bytes);
  if (info.requires_imatrix && imatrix == nullptr)
    return MakeError(ErrorKind::kBadUsage,
                     "quantize to {}: this type requires importance weights (an imatrix); "
                     "pass --weights (encode) or --imatrix (convert)",
                     info.name);
  if (imatrix != nullptr && codec->uses_imatrix) {
    for (int64_t j = 0; j < n_per_row; ++j)
      if (!std::isfinite(imatrix[j]) || imatrix[j] < 0)
        return MakeError(ErrorKind::kBadInput,
                         "quantize to {}: importance weight {} is {} (must be finite and >= 0)",
                         info.name, j, imatrix[j]);
  }
  const BlockCodec::QuantizeFn fn = impl == Impl::kReference ? codec->quantize_ref : codec->quantize;
  const size_t align = BlockAlign(static_cast<size_t>(info.block_bytes));
  const float* w = codec->uses_imatrix ? imatrix : nullptr;
  // The finiteness check rides along with the work: each chunk of rows is
  // scanned just before it is quantized; the first bad value (lowest index) wins.
  std::mutex mu;
  size_t bad_index = SIZE_MAX;
  ParallelFor(static_cast<size_t>(nrows), 1, threads, [&](size_t r0, size_t r1) {
    const size_t npr = static_cast<size_t>(n_per_row);
    constexpr size_t kRowsPerStep = 16;
    for (size_t r = r0; r < r1; r += kRowsPerStep) {
      const size_t re = std::min(r1, r + kRowsPerStep);
      const float* p = src.data() + r * npr;
      const size_t n = (re - r) * npr;
      // Branch-free test first (the compiler vectorises it: the early-exit loop
      // below cost as much as the fastest quantizers), then locate the value.
      uint32_t non_finite = 0;
      for (size_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, p + i, 4);
        non_finite |= static_cast<uint32_t>((bits & 0x7F800000u) == 0x7F800000u);
      }
      if (non_finite != 0)
        for (size_t i = 0; i < n; ++i) {
          if (!std::isfinite(p[i])) {
            std::lock_guard<std::mutex> lock(mu);
            bad_index = std::min(bad_index, r * npr + i);
            return;
          }
        }
      uint8_t* out = dst.data() + r * row_bytes;
      if (Aligned(out, align)) {
        fn(p, out, static_cast<int64_t>(re - r), n_per_row, w);
        continue;
      }
      // Misaligned output: one row at a time through an aligned buffer (a row
      // larger than the buffer goes through a heap copy).
      StageBuffer stage;
      std::vector<uint64_t> heap(row_bytes > kStageBytes ? (row_bytes + 7) / 8 : 0);
      uint8_t* tmp = heap.empty() ? stage.bytes : reinterpret_cast<uint8_t*>(heap.data());
      for (size_t k = r; k < re; ++k) {
        fn(src.data() + k * npr, tmp, 1, n_per_row, w);
        std::memcpy(dst.data() + k * row_bytes, tmp, row_bytes);
      }
    }
  });
  if (bad_index != SIZE_MAX)
    return MakeError(ErrorKind::kBadInput,
                     "quantize to {}: row {}, column {} is {} (non-finite values cannot be "
                     "quantized)",
                     info.name, bad_index / static_cast<size_t>(n_per_row),
                     bad_index % static_cast<size_t>(n_per_row), src[bad_index]);
  return Status::Ok();
}

Status DequantizeRows(DType t, std::span<const uint8_t> src, std::span<float> dst, Impl impl,
                      int threads) {
  BITSMITH_ASSIGN_OR_RETURN(const BlockCodec* codec, CodecFor(t, "dequantize"));
  const DTypeInfo& info = GetDType(t);
  const size_t be = static_cast<size_t>(info.block_elems), bb = static_cast<size_t>(info.block_bytes);
  if (dst.size() % be != 0)
    return MakeError(ErrorKind::kBadInput,
                     "dequantize {}: {} values are not a multiple of the block size {}", info.name,
                     dst.size(), be);
  if (src.size() != dst.size() / be * bb)
    return MakeError(ErrorKind::kBadInput, "dequantize {}: {} bytes given, {} values need {}",
                     info.name, src.size(), dst.size(), dst.size() / be * bb);
  const BlockCodec::DequantizeFn fn =
      impl == Impl::kReference ? codec->dequantize_ref : codec->dequantize;
  const size_t nblocks = dst.size() / be;
  const bool aligned = Aligned(src.data(), BlockAlign(bb));
  ParallelFor(nblocks, 4096, threads, [&](size_t b0, size_t b1) {
    if (aligned) {
      fn(src.data() + b0 * bb, dst.data() + b0 * be, static_cast<int64_t>((b1 - b0) * be));
      return;
    }
    StageBuffer stage;  // every block is <= 300 bytes: dozens fit
    const size_t per = kStageBytes / bb;
    for (size_t b = b0; b < b1; b += per) {
      const size_t n = std::min(per, b1 - b);
      std::memcpy(stage.bytes, src.data() + b * bb, n * bb);
      fn(stage.bytes, dst.data() + b * be, static_cast<int64_t>(n * be));
    }
  });
  return Status::Ok();
}

}  // namespace bitsmith
