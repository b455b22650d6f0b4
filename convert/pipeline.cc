#include "convert/pipeline.h"

#include <algorithm>
#include <bit>      // std::bit_cast, std::rotl
#include <chrono>
#include <cstdlib>  // std::getenv (test hook)
#include <cmath>    // std::isfinite
#include <cstring>  // std::memcpy
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "codecs/element.h"
#include "codecs/fp8_scale.h"
#include "codecs/parallel.h"  // ResolveThreads
#include "convert/fp8.h"

namespace bitsmith {
namespace {

// Elements per work item (rows ops: rounded to whole rows / FP8 block rows).
constexpr uint64_t kChunkElems = uint64_t{1} << 20;
// Bytes per work item of a plain copy.
constexpr uint64_t kCopyChunk = uint64_t{8} << 20;
// Cap on all threads' buffers together.
constexpr uint64_t kBufferBudget = uint64_t{320} << 20;

// Test hook: BITSMITH_TEST_ITEM_DELAY_US=N sleeps N microseconds after every
// work item, so that tests can kill or race a conversion mid-run
// (tests/convert/convert_fault_test.cc). Never set in normal use.
std::chrono::microseconds TestItemDelay() {
  const char* v = std::getenv("BITSMITH_TEST_ITEM_DELAY_US");
  if (v == nullptr) return std::chrono::microseconds(0);
  return std::chrono::microseconds(std::strtoll(v, nullptr, 10));
}

ElementFormatId Elem(DType t) { return *GetDType(t).element; }

uint64_t ElemBytes(DType t) { return static_cast<uint64_t>(GetDType(t).block_bytes); }

// Bytes of `rows` rows of `cols` elements of type t (block types: whole blocks).
uint64_t RowsBytes(DType t, uint64_t rows, uint64_t cols) {
  const DTypeInfo& d = GetDType(t);
  return rows * (cols / static_cast<uint64_t>(d.block_elems)) * static_cast<uint64_t>(d.block_bytes);
}

uint64_t Rows(const TensorPlan& p) {
  uint64_t n = 1;
  for (size_t i = 0; i + 1 < p.shape.size(); ++i) n *= p.shape[i];
  return p.shape.empty() ? 1 : n;
}
uint64_t Cols(const TensorPlan& p) { return p.shape.empty() ? 1 : p.shape.back(); }
uint64_t MatrixRows(const TensorPlan& p) { return p.shape.size() >= 2 ? p.shape[p.shape.size() - 2] : 1; }

// Row ops whose chunks must stay inside one matrix of a 3-D tensor.
bool MatrixAligned(const TensorPlan& p) {
  return (p.op == TensorOp::kQuantizeFp8 && !p.out_block.none() && p.shape.size() >= 3) ||
         (p.op == TensorOp::kQuantize && p.imatrix != nullptr && p.imatrix_matrices > 1);
}

// Per-thread scratch buffers (grown on demand, reused across items).
struct Buffers {
  std::vector<uint8_t> in, out, scale_out;
  std::vector<float> f32;
  std::vector<uint16_t> u16;
};

template <typename T>
T* Grow(std::vector<T>& v, uint64_t n) {
  if (v.size() < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// One FP8 segment sharing a scale -> bf16/f16/f32 (see pipeline.h).
void DecodeScaledSegment(DType from, const uint8_t* in, float scale, DType to, void* out, size_t n, Impl impl) {
  const ElementFormatId f = Elem(from);
  if (std::isfinite(scale) && scale != 0.0f) {
    if (to == DType::kBF16) return DecodeScaledToBF16(f, in, scale, static_cast<uint16_t*>(out), n, impl);
    if (to == DType::kF16) return DecodeScaledToF16(f, in, scale, static_cast<uint16_t*>(out), n, impl);
    return DecodeScaledToF32(f, in, scale, static_cast<float*>(out), n, impl);
  }
  // Zero or non-finite scale (the kernels' precondition excludes them): the
  // same two steps in scalar code.
  for (size_t i = 0; i < n; ++i) {
    const float y = DecodeToF32Ref(f, in[i]) * scale;
    if (to == DType::kF32) static_cast<float*>(out)[i] = y;
    else static_cast<uint16_t*>(out)[i] = static_cast<uint16_t>(EncodeF32Ref(Elem(to), y));
  }
}

class Runner {
 public:
  Runner(std::span<const TensorPlan> plans, std::span<const TensorInfo> inputs, const InputSet& files,
         ChunkSink& sink, const PipelineOptions& o)
      : plans_(plans), inputs_(inputs), files_(files), sink_(sink), o_(o), scales_(plans.size()),
        normal_(plans.size(), 0) {}

  Status LoadScales(std::span<const size_t> which) {
    for (size_t k : which) {
      const TensorPlan& p = plans_[k];
      if (p.scale < 0 || (p.op != TensorOp::kDequantFp8 && p.op != TensorOp::kQuantize)) continue;
      const TensorInfo& s = inputs_[static_cast<size_t>(p.scale)];
      BITSMITH_ASSIGN_OR_RETURN(std::vector<float> v,
                                bitsmith::LoadScales(files_.file(s.file_index), s, p.name, o_.allow_nonfinite));
      if (v.size() != p.grid.Count(Rows(p)))
        return MakeError(ErrorKind::kBadInput, "'{}': {} scales but the weight needs {}", s.name, v.size(),
                         p.grid.Count(Rows(p)));
      // The fused row kernel needs finite, non-zero scales (the usual case).
      normal_[k] = std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x) && x != 0.0f; });
      scales_[k] = std::move(v);
    }
    return Status::Ok();
  }

  Status Process(const WorkItem& it, Buffers& b) {
    const TensorPlan& p = plans_[it.plan];
    switch (p.op) {
      case TensorOp::kCopy: return Copy(p, it, b);
      case TensorOp::kCast: return Cast(p, it, b);
      case TensorOp::kDequantFp8: return DequantFp8(p, it, b);
      case TensorOp::kQuantizeFp8: return QuantizeFp8(p, it, b);
      case TensorOp::kQuantize:
      case TensorOp::kDequantize: return ViaF32(p, it, b);
    }
    return MakeError(ErrorKind::kInternal, "unknown op");
  }

 private:
  const TensorInfo& Src(const TensorPlan& p) const { return inputs_[p.src]; }

  // Reads [off, off + n) of the tensor's file and drops it from the page cache
  // behind us (a 700 GB input must not evict everything else).
  Status Read(const TensorInfo& t, uint64_t off, uint64_t n, uint8_t* dst) {
    const InputFile& f = files_.file(t.file_index);
    BITSMITH_RETURN_IF_ERROR(f.ReadAt(t.offset + off, std::span<uint8_t>(dst, n)));
    f.AdviseDontNeed(t.offset + off, n);
    return Status::Ok();
  }

  Status Put(const WorkItem& it, int part, uint64_t off, const uint8_t* data, uint64_t n) {
    BITSMITH_RETURN_IF_ERROR(sink_.Put(it.plan, part, off, std::span<const uint8_t>(data, n)));
    if (o_.progress) o_.progress->fetch_add(n, std::memory_order_relaxed);
    return Status::Ok();
  }

  Status Copy(const TensorPlan& p, const WorkItem& it, Buffers& b) {
    const TensorInfo& t = it.part == 0 ? Src(p) : inputs_[static_cast<size_t>(p.copy_scale)];
    const uint64_t n = it.end - it.begin;
    uint8_t* buf = Grow(b.in, n);
    BITSMITH_RETURN_IF_ERROR(Read(t, it.begin, n, buf));
    return Put(it, it.part, it.begin, buf, n);
  }

  Status Cast(const TensorPlan& p, const WorkItem& it, Buffers& b) {
    const uint64_t n = it.end - it.begin;
    const uint64_t sb = ElemBytes(*p.from), ob = ElemBytes(p.to);
    uint8_t* in = Grow(b.in, n * sb);
    uint8_t* out = Grow(b.out, n * ob);
    BITSMITH_RETURN_IF_ERROR(Read(Src(p), it.begin * sb, n * sb, in));
    BITSMITH_RETURN_IF_ERROR(Convert(Elem(*p.from), Elem(p.to), std::span<const uint8_t>(in, n * sb),
                                     std::span<uint8_t>(out, n * ob), Overflow::kNonSaturating, o_.impl, 1));
    return Put(it, 0, it.begin * ob, out, n * ob);
  }

  // NaN codes in an FP8 chunk are a corrupt checkpoint.
  Status CheckCodes(const TensorPlan& p, const uint8_t* in, uint64_t r0, uint64_t n) {
    if (o_.allow_nonfinite) return Status::Ok();
    const size_t i = FindNonFiniteFp8(*p.from, in, n);
    if (i == n) return Status::Ok();
    const uint64_t cols = Cols(p);
    return MakeError(ErrorKind::kBadInput,
                     "{}: FP8 tensor '{}' holds the non-finite code 0x{:02X} at row {}, column {} (a corrupt "
                     "checkpoint? --allow-nonfinite converts it anyway)",
                     Src(p).file, p.name, in[i], r0 + i / cols, i % cols);
  }

  // FP8 rows [r0, r1) -> the product, stored as `to` (bf16/f16/f32) in `out`.
  Status ScaledRows(const TensorPlan& p, uint64_t r0, uint64_t r1, DType to, void* out, Buffers& b) {
    const uint64_t cols = Cols(p), n = (r1 - r0) * cols;
    uint8_t* in = Grow(b.in, n);
    BITSMITH_RETURN_IF_ERROR(Read(Src(p), r0 * cols, n, in));
    const size_t k = static_cast<size_t>(&p - plans_.data());
    const std::vector<float>& sc = scales_[k];
    const uint64_t es = ElemBytes(to);
    if (o_.impl == Impl::kSimd && (p.scale < 0 || normal_[k])) {
      // The fused kernel: each row in one call (decode x scale -> target, one
      // scale per bn columns), the NaN-code check folded in; on a NaN code,
      // CheckCodes names the first one (nothing of the chunk is written).
      const ScaledTarget target = to == DType::kBF16 ? ScaledTarget::kBF16
                                  : to == DType::kF16 ? ScaledTarget::kF16 : ScaledTarget::kF32;
      static constexpr float kOne = 1.0f;  // --unscaled cast: scale 1 for the whole row
      bool nonfinite = false;
      for (uint64_t r = r0; r < r1; ++r) {
        const float* srow = p.scale < 0 ? &kOne : sc.data() + p.grid.Index(r, 0);
        nonfinite |= DecodeScaledRow(Elem(*p.from), in + (r - r0) * cols, static_cast<size_t>(cols), srow,
                                     static_cast<size_t>(p.scale < 0 ? cols : p.grid.bn), target,
                                     static_cast<uint8_t*>(out) + (r - r0) * cols * es);
      }
      if (nonfinite) BITSMITH_RETURN_IF_ERROR(CheckCodes(p, in, r0, n));
      return Status::Ok();
    }
    BITSMITH_RETURN_IF_ERROR(CheckCodes(p, in, r0, n));
    for (uint64_t r = r0; r < r1; ++r) {
      const uint8_t* row = in + (r - r0) * cols;
      uint8_t* orow = static_cast<uint8_t*>(out) + (r - r0) * cols * es;
      for (uint64_t j = 0; j < cols; j += p.grid.bn) {
        const uint64_t len = std::min(p.grid.bn, cols - j);
        const float s = p.scale < 0 ? 1.0f : sc[p.grid.Index(r, j)];
        DecodeScaledSegment(*p.from, row + j, s, to, orow + j * es, static_cast<size_t>(len), o_.impl);
      }
    }
    return Status::Ok();
  }

  Status DequantFp8(const TensorPlan& p, const WorkItem& it, Buffers& b) {
    const uint64_t cols = Cols(p), n = (it.end - it.begin) * cols, es = ElemBytes(p.to);
    uint8_t* out = Grow(b.out, n * es);
    BITSMITH_RETURN_IF_ERROR(ScaledRows(p, it.begin, it.end, p.to, out, b));
    return Put(it, 0, it.begin * cols * es, out, n * es);
  }

  // Source rows -> f32 in b.f32 (any source kind).
  Status SourceF32(const TensorPlan& p, uint64_t r0, uint64_t r1, Buffers& b) {
    const uint64_t cols = Cols(p), n = (r1 - r0) * cols;
    float* f = Grow(b.f32, n);
    const DType from = *p.from;
    if (p.op == TensorOp::kQuantize && (p.scale >= 0 || from == DType::kE4M3FN || from == DType::kE5M2)) {
      // Scaled FP8: exactly what --to bf16 writes, then widened (exact).
      if (p.via_bf16) {
        uint16_t* h = Grow(b.u16, n);
        BITSMITH_RETURN_IF_ERROR(ScaledRows(p, r0, r1, DType::kBF16, h, b));
        if (o_.impl == Impl::kReference)
          for (uint64_t i = 0; i < n; ++i) f[i] = DecodeToF32Ref(ElementFormatId::kBF16, h[i]);
        else
          DecodeBF16ToF32(h, f, static_cast<size_t>(n));
        return Status::Ok();
      }
      return ScaledRows(p, r0, r1, DType::kF32, f, b);
    }
    const uint64_t nb = RowsBytes(from, r1 - r0, cols);
    uint8_t* in = Grow(b.in, nb);
    BITSMITH_RETURN_IF_ERROR(Read(Src(p), RowsBytes(from, r0, cols), nb, in));
    if (GetDType(from).is_block()) {
      Status s = DequantizeRows(from, std::span<const uint8_t>(in, nb), std::span<float>(f, n), o_.impl, 1);
      if (!s.ok()) return MakeError(s.error().kind, "'{}': {}", p.name, s.error().message);
      return Status::Ok();
    }
    DecodeToF32(Elem(from), in, f, static_cast<size_t>(n), o_.impl);
    return Status::Ok();
  }

  Status ViaF32(const TensorPlan& p, const WorkItem& it, Buffers& b) {
    const uint64_t cols = Cols(p), rows = it.end - it.begin, n = rows * cols;
    BITSMITH_RETURN_IF_ERROR(SourceF32(p, it.begin, it.end, b));
    const float* f = b.f32.data();
    const uint64_t ob = RowsBytes(p.to, rows, cols);
    uint8_t* out = Grow(b.out, ob);
    if (p.op == TensorOp::kQuantize && GetDType(p.to).is_block()) {
      const float* im = nullptr;
      if (p.imatrix) im = p.imatrix->data() + (it.begin / MatrixRows(p) % p.imatrix_matrices) * cols;
      Status s = QuantizeRows(p.to, std::span<const float>(f, n), std::span<uint8_t>(out, ob),
                              static_cast<int64_t>(cols), im, o_.impl, 1);
      if (!s.ok())
        return MakeError(s.error().kind, "'{}' rows [{}, {}): {}", p.name, it.begin, it.end, s.error().message);
    } else if (p.to == DType::kF32) {
      std::memcpy(out, f, n * 4);
    } else {
      EncodeF32(Elem(p.to), f, out, static_cast<size_t>(n), Overflow::kNonSaturating, o_.impl);
    }
    return Put(it, 0, RowsBytes(p.to, it.begin, cols), out, ob);
  }

  Status QuantizeFp8(const TensorPlan& p, const WorkItem& it, Buffers& b) {
    const uint64_t cols = Cols(p), rows = it.end - it.begin, n = rows * cols;
    BITSMITH_RETURN_IF_ERROR(SourceF32(p, it.begin, it.end, b));
    const float* f = b.f32.data();
    uint8_t* out = Grow(b.out, n);
    const ElementFormatId to = Elem(p.to);
    if (p.out_block.none()) {
      const float amax = MaxAbs(f, static_cast<size_t>(n), o_.impl);
      if (!std::isfinite(amax)) return NonFinite(p, f, it.begin, n);
      EncodeF32(to, f, out, static_cast<size_t>(n), Overflow::kSaturate, o_.impl);
      return Put(it, 0, it.begin * cols, out, n);
    }
    // Block rows of this item: [it.begin, it.end) starts on a block boundary of
    // its matrix (ChunkItems) and ends on one or at the matrix end.
    const ScaleGrid g = BlockGrid(p.shape, p.out_block);
    const uint64_t br0 = (it.begin % g.rows_per_matrix) / g.bm;
    const uint64_t m = it.begin / g.rows_per_matrix;
    const uint64_t nbr = (rows + g.bm - 1) / g.bm;
    float* sc = reinterpret_cast<float*>(Grow(b.scale_out, nbr * g.grid_cols * 4));
    const float max_finite = Fp8MaxFinite(p.to);
    for (uint64_t br = 0; br < nbr; ++br) {
      const uint64_t r0 = br * g.bm, r1 = std::min(rows, r0 + g.bm);
      for (uint64_t bj = 0; bj < g.grid_cols; ++bj) {
        const uint64_t j0 = bj * g.bn, len = std::min(g.bn, cols - j0);
        // 1. amax over the block (exact; NaN-propagating).
        float amax = 0.0f;
        for (uint64_t r = r0; r < r1; ++r) {
          const float a = MaxAbs(f + r * cols + j0, static_cast<size_t>(len), o_.impl);
          if (!std::isfinite(a)) return NonFinite(p, f, it.begin, n);
          amax = std::max(amax, a);
        }
        // 2. scale = f32(amax / max) (a float division, RNE); 1 for an all-zero block.
        const float scale = amax == 0.0f ? 1.0f : amax / max_finite;
        sc[br * g.grid_cols + bj] = scale;
        // 3. codes = encode(f32(w / scale)), saturating.
        for (uint64_t r = r0; r < r1; ++r)
          EncodeDividedF32(to, f + r * cols + j0, scale, out + r * cols + j0, static_cast<size_t>(len),
                           Overflow::kSaturate, o_.impl);
      }
    }
    BITSMITH_RETURN_IF_ERROR(Put(it, 0, it.begin * cols, out, n));
    const uint64_t first = (m * g.grid_rows + br0) * g.grid_cols;
    return Put(it, 1, first * 4, reinterpret_cast<const uint8_t*>(sc), nbr * g.grid_cols * 4);
  }

  Status NonFinite(const TensorPlan& p, const float* f, uint64_t r0, uint64_t n) {
    const uint64_t cols = Cols(p);
    for (uint64_t i = 0; i < n; ++i)
      if (!std::isfinite(f[i]))
        return MakeError(ErrorKind::kBadInput,
                         "'{}': non-finite weight {} at row {}, column {}: FP8 quantization needs finite values",
                         p.name, f[i], r0 + i / cols, i % cols);
    return MakeError(ErrorKind::kInternal, "'{}': non-finite amax without a non-finite value", p.name);
  }

  std::span<const TensorPlan> plans_;
  std::span<const TensorInfo> inputs_;
  const InputSet& files_;
  ChunkSink& sink_;
  const PipelineOptions& o_;
  std::vector<std::vector<float>> scales_;
  std::vector<uint8_t> normal_;  // per plan: every scale finite and non-zero
};

// Approximate buffer bytes one thread needs for an item.
uint64_t Footprint(const TensorPlan& p, const WorkItem& it) {
  if (p.op == TensorOp::kCopy) return it.end - it.begin;
  const uint64_t elems = p.op == TensorOp::kCast ? it.end - it.begin : (it.end - it.begin) * Cols(p);
  return elems * 14;  // source (<= 4) + f32 (4) + bf16 scratch (2) + output (<= 4)
}

}  // namespace

Result<InputSet> InputSet::Open(const std::vector<std::string>& paths) {
  InputSet s;
  for (const std::string& p : paths) {
    BITSMITH_ASSIGN_OR_RETURN(InputFile f, InputFile::Open(p));
    f.AdviseSequential(0, 0);
    s.files_.push_back(std::make_unique<InputFile>(std::move(f)));
  }
  return s;
}

std::vector<WorkItem> ChunkItems(const TensorPlan& p, size_t index) {
  std::vector<WorkItem> items;
  auto ranges = [&](uint64_t begin, uint64_t end, uint64_t step, int part) {
    for (uint64_t b = begin; b < end; b += step) items.push_back({index, b, std::min(end, b + step), part});
  };
  if (p.op == TensorOp::kCopy) {
    ranges(0, p.bytes_out - p.out_scale_bytes, kCopyChunk, 0);
    if (p.copy_scale >= 0) ranges(0, p.out_scale_bytes, kCopyChunk, 1);
    return items;
  }
  uint64_t elems = 1;
  for (uint64_t d : p.shape) elems *= d;
  // No elements, nothing to compute or write (its scales, if any, are empty too).
  // The other dimensions may still be huge: [2^61, 0] is a valid header, and
  // walking its rows made 2^61 / step work items (a convert fuzz finding: OOM).
  if (elems == 0) return items;
  if (p.op == TensorOp::kCast) {
    ranges(0, elems, kChunkElems, 0);
    return items;
  }
  const uint64_t rows = Rows(p), cols = std::max<uint64_t>(1, Cols(p));
  const uint64_t unit = p.op == TensorOp::kQuantizeFp8 && !p.out_block.none() ? p.out_block.rows : 1;
  const uint64_t step = std::max(unit, (kChunkElems / cols) / unit * unit);
  if (MatrixAligned(p)) {
    const uint64_t mr = std::max<uint64_t>(1, MatrixRows(p));
    for (uint64_t m = 0; m * mr < rows; ++m) ranges(m * mr, (m + 1) * mr, step, 0);
  } else {
    ranges(0, rows, step, 0);
  }
  return items;
}

std::vector<ItemRange> ItemOutputRanges(const TensorPlan& p, const WorkItem& it) {
  if (p.op == TensorOp::kCopy) return {{it.part, it.begin, it.end - it.begin}};
  if (p.op == TensorOp::kCast) {
    const uint64_t ob = ElemBytes(p.to);
    return {{0, it.begin * ob, (it.end - it.begin) * ob}};
  }
  const uint64_t cols = Cols(p);
  std::vector<ItemRange> r = {{0, RowsBytes(p.to, it.begin, cols), RowsBytes(p.to, it.end - it.begin, cols)}};
  if (p.op == TensorOp::kQuantizeFp8 && !p.out_block.none()) {
    const ScaleGrid g = BlockGrid(p.shape, p.out_block);
    const uint64_t rows = it.end - it.begin, nbr = (rows + g.bm - 1) / g.bm;
    const uint64_t first =
        ((it.begin / g.rows_per_matrix) * g.grid_rows + (it.begin % g.rows_per_matrix) / g.bm) * g.grid_cols;
    r.push_back({1, first * 4, nbr * g.grid_cols * 4});
  }
  return r;
}

Status RunPlans(std::span<const TensorPlan> plans, std::span<const size_t> which,
                std::span<const TensorInfo> inputs, const InputSet& files, ChunkSink& sink,
                const PipelineOptions& options) {
  Runner runner(plans, inputs, files, sink, options);
  BITSMITH_RETURN_IF_ERROR(runner.LoadScales(which));
  std::vector<WorkItem> items;
  uint64_t footprint = 1;
  for (size_t k : which) {
    std::vector<WorkItem> v = ChunkItems(plans[k], k);
    for (const WorkItem& it : v) footprint = std::max(footprint, Footprint(plans[k], it));
    items.insert(items.end(), v.begin(), v.end());
  }
  if (items.empty()) return Status::Ok();
  const uint64_t cap = std::max<uint64_t>(1, kBufferBudget / footprint);
  const size_t threads = static_cast<size_t>(
      std::min<uint64_t>({static_cast<uint64_t>(ResolveThreads(options.threads)), items.size(), cap}));

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<Error> first;
  const std::chrono::microseconds delay = TestItemDelay();
  auto work = [&]() {
    Buffers b;
    while (!failed.load(std::memory_order_relaxed) &&
           !(options.cancel && options.cancel->load(std::memory_order_relaxed))) {
      const size_t i = next.fetch_add(1);
      if (i >= items.size()) break;
      Status s = Status::Ok();
      try {
        s = runner.Process(items[i], b);
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
      } catch (const std::bad_alloc&) {
        s = MakeError(ErrorKind::kIo, "out of memory converting '{}'", plans[items[i].plan].name);
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> l(mu);
        // Keep the error of the earliest item (deterministic for one bad tensor).
        if (!first) first = s.take_error();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (first) return *first;
  if (options.cancel && options.cancel->load()) return MakeError(ErrorKind::kFailed, "cancelled");
  return Status::Ok();
}

uint64_t HashBytes(std::span<const uint8_t> bytes, uint64_t seed) {
  // Four independent 64-bit lanes of multiply-rotate over 32-byte stripes,
  // then the tail, then a splitmix64 finaliser.
  constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full;
  uint64_t h[4] = {seed ^ kP1, seed + kP2, seed ^ 0x165667B19E3779F9ull, seed - kP1};
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  while (n >= 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + 8 * l, 8);
      h[l] = std::rotl(h[l] + w * kP2, 31) * kP1;
    }
    p += 32;
    n -= 32;
  }
  uint64_t acc = std::rotl(h[0], 1) + std::rotl(h[1], 7) + std::rotl(h[2], 12) + std::rotl(h[3], 18);
  acc += bytes.size();
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    acc = std::rotl(acc ^ (w * kP2), 27) * kP1;
  }
  for (; n > 0; --n, ++p) acc = std::rotl(acc ^ (*p * kP1), 11) * kP2;
  acc ^= acc >> 30;
  acc *= 0xBF58476D1CE4E5B9ull;
  acc ^= acc >> 27;
  acc *= 0x94D049BB133111EBull;
  acc ^= acc >> 31;
  return acc;
}

}  // namespace bitsmith
