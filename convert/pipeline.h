// The conversion pipeline: executes TensorPlans in chunks on a pool of threads.
//
// Each plan is cut into work items (ChunkItems): byte ranges for copies,
// element ranges for casts, row ranges for everything else (a multiple of the
// FP8 block height when FP8 blocks are made, never crossing a matrix of a 3-D
// tensor when blocks or imatrix rows are per matrix). Threads take items from a
// shared counter; each item is
//     pread the source chunk -> decode (-> apply FP8 scales) -> encode/quantize
//     -> ChunkSink::Put(bytes at their offset inside the tensor)
// with posix_fadvise(DONTNEED) on the input range behind it. Every item is
// computed independently of the others from the input alone, so the bytes never
// depend on the thread count or on the order in which items finish.
//
// Memory: per thread, about 4 bytes x ~1 M elements for the f32 intermediate
// plus the source and output chunks (at most ~30 MB for a 128 x 18,432 FP8
// block row); the number of threads is capped so that all buffers stay under
// ~320 MiB whatever the model or tensor size.
//
// The arithmetic of each operation (TensorOp in tensor_plan.h):
//  - kDequantFp8: y = f32(code) * scale as one f32 multiply (RNE), then RNE to
//    bf16/f16, or y itself for f32 (DecodeScaledTo*, codecs/element.h). A zero
//    or (with --allow-nonfinite) non-finite scale takes the same formula in
//    scalar code.
//  - kQuantizeFp8: per block of the last two dimensions amax = max |w| (exact),
//    scale = f32(amax / max_finite) (448 e4m3fn, 57344 e5m2; a float32
//    division), 1.0 when amax == 0; codes = encode(f32(w / scale)), a float32
//    division, RNE, saturating (EncodeDividedF32). Unscaled (--block none):
//    codes = encode(w), saturating. NaN/inf weights are errors.
//  - kQuantize: source -> f32 (scaled FP8: the kDequantFp8 product, rounded to
//    bf16 first unless --fp8-via f32; block types: DequantizeRows), then
//    QuantizeRows with the tensor's imatrix row for its matrix.
//  - kDequantize: DequantizeRows, then RNE to the element target.
//  - kCast: codecs' Convert (exact decode, one RNE rounding).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codecs/quant.h"  // Impl
#include "convert/file_io.h"
#include "convert/tensor_info.h"
#include "convert/tensor_plan.h"
#include "formats/error.h"

namespace bitsmith {

// The input files of a checkpoint, opened once (TensorInfo::file_index).
class InputSet {
 public:
  static Result<InputSet> Open(const std::vector<std::string>& paths);
  const InputFile& file(int i) const { return *files_[static_cast<size_t>(i)]; }
  size_t size() const { return files_.size(); }

 private:
  std::vector<std::unique_ptr<InputFile>> files_;
};

// One unit of work: [begin, end) of a plan, in bytes (kCopy), elements (kCast)
// or rows (the others). part 1 = the copied scale of a kCopy plan.
struct WorkItem {
  size_t plan = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
  int part = 0;
};

// Where produced bytes go. Put is called from worker threads, for disjoint
// ranges; it must be thread-safe.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  // part 0: the tensor's data; part 1: its scale companion (created by
  // kQuantizeFp8 or copied with a kCopy of a scaled FP8 weight). `offset` is
  // relative to the start of that part in the output.
  virtual Status Put(size_t plan, int part, uint64_t offset, std::span<const uint8_t> bytes) = 0;
};

struct PipelineOptions {
  int threads = 0;                  // <= 0: all cores
  Impl impl = Impl::kSimd;          // kReference for `verify`
  bool allow_nonfinite = false;     // NaN FP8 codes and NaN/inf/negative scales accepted
  std::atomic<uint64_t>* progress = nullptr;  // output bytes produced, added per item
  const std::atomic<bool>* cancel = nullptr;  // stop early when set
};

// The work items of plan `index` (deterministic: they depend on the plan only).
std::vector<WorkItem> ChunkItems(const TensorPlan& plan, size_t index);

// The byte range [offset, offset + n) a work item produces, relative to its part.
struct ItemRange {
  int part = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};
std::vector<ItemRange> ItemOutputRanges(const TensorPlan& plan, const WorkItem& item);

// Runs plans[i] for every i in `which`. `inputs` is the input tensor list the
// plans' src/scale indices refer to. Returns the first error (naming the
// tensor); the other threads stop at their next item.
Status RunPlans(std::span<const TensorPlan> plans, std::span<const size_t> which,
                std::span<const TensorInfo> inputs, const InputSet& files, ChunkSink& sink,
                const PipelineOptions& options);

// A fast 64-bit hash of `bytes` seeded with `seed` (the manifest's piece
// digests use the absolute file offset as the seed). Not cryptographic: it
// detects torn and stale files, not adversaries.
uint64_t HashBytes(std::span<const uint8_t> bytes, uint64_t seed);

}  // namespace bitsmith
