#include "convert/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "codecs/element.h"
#include "codecs/parallel.h"  // ResolveThreads
#include "convert/checkpoint.h"
#include "convert/fp8.h"
#include "convert/imatrix.h"
#include "convert/name_regex.h"
#include "convert/pipeline.h"  // InputSet

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

constexpr DType kDefaultTypes[] = {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                                   DType::kQ6_K, DType::kQ8_0, DType::kE4M3FN, DType::kBF16};

// Elements per work item (rounded to whole FP8 tile rows).
constexpr uint64_t kChunkElems = uint64_t{1} << 20;

// How a candidate's reconstruction is computed from the reference.
enum class OpKind : uint8_t {
  kExact,     // kept (passthrough, the source type itself, or f32): x̂ = x
  kBlock,     // QuantizeRows + DequantizeRows
  kTiledFp8,  // 128x128 block-scaled FP8 (pipeline.cc QuantizeFp8 arithmetic), then code x scale
  kElement,   // one rounding to an element format and back
  kStored,    // --reference: x̂ is the compared file's tensor, decoded
};

struct Op {
  DType type;
  OpKind kind;
};

// Per tensor: what to read and compute.
struct Work {
  const Checkpoint* ck = nullptr;  // where the tensor is read from
  const InputSet* files = nullptr;
  size_t src = 0;             // index in Checkpoint::tensors
  long scale = -1;            // scaled FP8: index of the scale tensor
  ScaleGrid grid;
  bool scaled_fp8 = false;    // x = code x scale
  bool needs_data = false;    // any op other than kExact
  bool bf16_input = false;    // block types quantize bf16(x)
  std::vector<Op> ops;        // distinct stored types to compute
  std::vector<size_t> cand_op;  // per requested type: index into ops
  // --reference mode: this Work reads the reference x; `stored` reads x̂ (the
  // tensor as the compared file stores it, decoded the same way).
  std::unique_ptr<Work> stored;
  const std::vector<float>* imatrix = nullptr;
  uint64_t imatrix_matrices = 1;
  uint64_t rows = 1, cols = 1, matrix_rows = 1;
  // Runtime state.
  std::mutex mu;
  std::vector<ErrorAccumulator> acc;  // per op
  std::once_flag scales_once;
  std::vector<float> scales;
  Status scales_status = Status::Ok();
  std::atomic<uint64_t> chunks_left{0};
  // Non-finite reference values (NaN/inf weights): nothing can be quantized.
  uint64_t nonfinite = 0;          // under mu
  uint64_t first_bad = UINT64_MAX; // element index of the first one seen (smallest)
};

struct Item {
  size_t work = 0;
  uint64_t r0 = 0, r1 = 0;
};

struct Buffers {
  std::vector<uint8_t> in, codes;
  std::vector<float> x, q, xhat;
  std::vector<uint16_t> u16;
};

template <typename T>
T* Grow(std::vector<T>& v, uint64_t n) {
  if (v.size() < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

uint64_t RowsBytes(DType t, uint64_t rows, uint64_t cols) {
  const DTypeInfo& d = GetDType(t);
  return rows * (cols / static_cast<uint64_t>(d.block_elems)) * static_cast<uint64_t>(d.block_bytes);
}

ElementFormatId Elem(DType t) { return *GetDType(t).element; }

Result<std::optional<nlohmann::ordered_json>> ReadConfigJson(const Checkpoint& ck) {
  for (const std::string& f : ck.extra_files) {
    if (fs::path(f).filename() != "config.json") continue;
    std::ifstream in(f, std::ios::binary);
    if (!in) return MakeError(ErrorKind::kIo, "{}: cannot read", f);
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return MakeError(ErrorKind::kBadInput, "{}: not a JSON object", f);
    return std::optional<nlohmann::ordered_json>(std::move(j));
  }
  return std::optional<nlohmann::ordered_json>();
}

// The metrics of an exact reconstruction (metrics.h edge rules).
ErrorMetrics ExactMetrics(uint64_t n, bool weighted) {
  ErrorMetrics m;
  m.n = n;
  m.snr_db = std::numeric_limits<double>::infinity();
  if (weighted) m.imatrix_rel_rmse = 0.0;
  return m;
}

class Measurer {
 public:
  Measurer(const ReportOptions& o, std::vector<std::unique_ptr<Work>>& w) : o_(o), work_(w) {}

  Status Run(const std::vector<Item>& items) {
    const int nt = std::min<int>(ResolveThreads(o_.threads), static_cast<int>(std::max<size_t>(items.size(), 1)));
    std::atomic<size_t> next{0};
    std::mutex err_mu;
    Status first = Status::Ok();
    std::atomic<bool> failed{false};
    auto worker = [&] {
      Buffers b;
      while (!failed.load(std::memory_order_relaxed)) {
        const size_t i = next.fetch_add(1);
        if (i >= items.size()) break;
        Status s = Process(items[i], b);
        if (!s.ok()) {
          std::lock_guard<std::mutex> l(err_mu);
          if (first.ok()) first = std::move(s);
          failed = true;
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < nt; ++t) pool.emplace_back(worker);
    worker();
    for (std::thread& t : pool) t.join();
    return first;
  }

 private:
  Status Read(const Work& w, const TensorInfo& t, uint64_t off, uint64_t n, uint8_t* dst) {
    const InputFile& f = w.files->file(t.file_index);
    BITSMITH_RETURN_IF_ERROR(f.ReadAt(t.offset + off, std::span<uint8_t>(dst, n)));
    f.AdviseDontNeed(t.offset + off, n);
    return Status::Ok();
  }

  Status LoadScalesOnce(Work& w) {
    std::call_once(w.scales_once, [&] {
      const TensorInfo& s = w.ck->tensors[static_cast<size_t>(w.scale)];
      auto v = LoadScales(w.files->file(s.file_index), s, w.ck->tensors[w.src].name, false);
      if (!v.ok()) {
        w.scales_status = v.error();
        return;
      }
      if (v->size() != w.grid.Count(w.rows)) {
        w.scales_status = MakeError(ErrorKind::kBadInput, "'{}': {} scales but the weight needs {}", s.name,
                                    v->size(), w.grid.Count(w.rows));
        return;
      }
      w.scales = std::move(*v);
    });
    return w.scales_status;
  }

  // Rows [r0, r1) of w's tensor in f32 -> x (b.in is scratch).
  Status Reference(Work& w, uint64_t r0, uint64_t r1, float* x, Buffers& b) {
    const TensorInfo& t = w.ck->tensors[w.src];
    const uint64_t cols = w.cols, n = (r1 - r0) * cols;
    const DType from = *t.dtype;
    if (w.scaled_fp8 || from == DType::kE4M3FN || from == DType::kE5M2) {
      uint8_t* in = Grow(b.in, n);
      BITSMITH_RETURN_IF_ERROR(Read(w, t, r0 * cols, n, in));
      const size_t bad = FindNonFiniteFp8(from, in, n);
      if (bad != n)
        return MakeError(ErrorKind::kBadInput, "{}: FP8 tensor '{}' holds the non-finite code 0x{:02X} at row {}, column {}",
                         t.file, t.name, in[bad], r0 + bad / cols, bad % cols);
      if (w.scaled_fp8) BITSMITH_RETURN_IF_ERROR(LoadScalesOnce(w));
      const ElementFormatId f = Elem(from);
      for (uint64_t r = r0; r < r1; ++r) {
        const uint8_t* row = in + (r - r0) * cols;
        float* xr = x + (r - r0) * cols;
        const uint64_t bn = w.scaled_fp8 ? w.grid.bn : cols;
        for (uint64_t j = 0; j < cols; j += bn) {
          const uint64_t len = std::min(bn, cols - j);
          const float s = w.scaled_fp8 ? w.scales[w.grid.Index(r, j)] : 1.0f;
          if (s != 0.0f && std::isfinite(s)) {
            DecodeScaledToF32(f, row + j, s, xr + j, static_cast<size_t>(len), o_.impl);
          } else {
            for (uint64_t k = 0; k < len; ++k) xr[j + k] = DecodeToF32Ref(f, row[j + k]) * s;
          }
        }
      }
      return Status::Ok();
    }
    const uint64_t nb = RowsBytes(from, r1 - r0, cols);
    uint8_t* in = Grow(b.in, nb);
    BITSMITH_RETURN_IF_ERROR(Read(w, t, RowsBytes(from, r0, cols), nb, in));
    if (GetDType(from).is_block()) {
      Status s = DequantizeRows(from, std::span<const uint8_t>(in, nb), std::span<float>(x, n), o_.impl, 1);
      if (!s.ok()) return MakeError(s.error().kind, "'{}': {}", t.name, s.error().message);
      return Status::Ok();
    }
    DecodeToF32(Elem(from), in, x, static_cast<size_t>(n), o_.impl);
    return Status::Ok();
  }

  Status NonFinite(const TensorInfo& t, const float* f, uint64_t r0, uint64_t n, uint64_t cols) {
    for (uint64_t i = 0; i < n; ++i)
      if (!std::isfinite(f[i]))
        return MakeError(ErrorKind::kBadInput, "'{}': non-finite weight {} at row {}, column {}", t.name, f[i],
                         r0 + i / cols, i % cols);
    return MakeError(ErrorKind::kInternal, "'{}': non-finite amax without a non-finite value", t.name);
  }

  // 128x128 block-scaled FP8 of rows [r0, r1) (starting on a tile row of its
  // matrix): the arithmetic of pipeline.cc QuantizeFp8, then x̂ = f32(code) x scale.
  Status TiledFp8(const Work& w, DType to, const float* x, float* xhat, uint64_t r0, uint64_t rows, Buffers& b) {
    const TensorInfo& t = w.ck->tensors[w.src];
    const uint64_t cols = w.cols, bm = o_.block.rows, bn = o_.block.cols;
    uint8_t* codes = Grow(b.codes, bn);
    const float max_finite = Fp8MaxFinite(to);
    const ElementFormatId f = Elem(to);
    for (uint64_t br = 0; br < rows; br += bm) {
      const uint64_t re = std::min(rows, br + bm);
      for (uint64_t j0 = 0; j0 < cols; j0 += bn) {
        const uint64_t len = std::min(bn, cols - j0);
        // 1. amax over the tile (exact).
        float amax = 0.0f;
        for (uint64_t r = br; r < re; ++r) {
          const float a = MaxAbs(x + r * cols + j0, static_cast<size_t>(len), o_.impl);
          if (!std::isfinite(a)) return NonFinite(t, x, r0, rows * cols, cols);
          amax = std::max(amax, a);
        }
        // 2. scale = f32(amax / max_finite), 1 for an all-zero tile.
        const float scale = amax == 0.0f ? 1.0f : amax / max_finite;
        // 3. codes = encode(f32(w / scale)) saturating; 4. x̂ = f32(code) * scale.
        for (uint64_t r = br; r < re; ++r) {
          EncodeDividedF32(f, x + r * cols + j0, scale, codes, static_cast<size_t>(len), Overflow::kSaturate, o_.impl);
          DecodeScaledToF32(f, codes, scale, xhat + r * cols + j0, static_cast<size_t>(len), o_.impl);
        }
      }
    }
    return Status::Ok();
  }

  Status Process(const Item& it, Buffers& b) {
    Work& w = *work_[it.work];
    const TensorInfo& t = w.ck->tensors[w.src];
    const uint64_t cols = w.cols, rows = it.r1 - it.r0, n = rows * cols;
    BITSMITH_RETURN_IF_ERROR(Reference(w, it.r0, it.r1, Grow(b.x, n), b));
    const float* x = b.x.data();
    // 1. Non-finite reference values: count them and skip the chunk (a tensor
    //    holding any is reported with null metrics and kept at its source type).
    if (!std::isfinite(MaxAbs(x, static_cast<size_t>(n), o_.impl))) {
      uint64_t bad = 0, first = UINT64_MAX;
      for (uint64_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) {
          ++bad;
          first = std::min(first, it.r0 * cols + i);
        }
      std::lock_guard<std::mutex> l(w.mu);
      w.nonfinite += bad;
      w.first_bad = std::min(w.first_bad, first);
      if (w.chunks_left.fetch_sub(1) == 1) std::vector<float>().swap(w.scales);
      if (o_.progress) o_.progress->fetch_add(n, std::memory_order_relaxed);
      return Status::Ok();
    }
    const float* q = x;
    if (w.bf16_input && !o_.fp8_via_f32) {
      uint16_t* h = Grow(b.u16, n);
      float* qq = Grow(b.q, n);
      EncodeF32(ElementFormatId::kBF16, x, h, static_cast<size_t>(n), Overflow::kNonSaturating, o_.impl);
      DecodeToF32(ElementFormatId::kBF16, h, qq, static_cast<size_t>(n), o_.impl);
      q = qq;
    }
    const float* wt = nullptr;
    if (w.imatrix) wt = w.imatrix->data() + (it.r0 / w.matrix_rows % w.imatrix_matrices) * cols;
    const std::span<const float> weights = wt ? std::span<const float>(wt, cols) : std::span<const float>();
    std::vector<ErrorAccumulator> local(w.ops.size(), ErrorAccumulator(o_.impl));
    float* xhat = Grow(b.xhat, n);
    for (size_t k = 0; k < w.ops.size(); ++k) {
      const Op& op = w.ops[k];
      switch (op.kind) {
        case OpKind::kExact: continue;
        case OpKind::kStored:
          BITSMITH_RETURN_IF_ERROR(Reference(*w.stored, it.r0, it.r1, xhat, b));
          break;
        case OpKind::kBlock: {
          const uint64_t nb = RowsBytes(op.type, rows, cols);
          uint8_t* codes = Grow(b.codes, nb);
          Status s = QuantizeRows(op.type, std::span<const float>(q, n), std::span<uint8_t>(codes, nb),
                                  static_cast<int64_t>(cols), wt, o_.impl, 1);
          if (!s.ok())
            return MakeError(s.error().kind, "'{}' rows [{}, {}) as {}: {}", t.name, it.r0, it.r1,
                             GetDType(op.type).name, s.error().message);
          s = DequantizeRows(op.type, std::span<const uint8_t>(codes, nb), std::span<float>(xhat, n), o_.impl, 1);
          if (!s.ok()) return MakeError(s.error().kind, "'{}': {}", t.name, s.error().message);
          break;
        }
        case OpKind::kTiledFp8:
          BITSMITH_RETURN_IF_ERROR(TiledFp8(w, op.type, x, xhat, it.r0, rows, b));
          break;
        case OpKind::kElement: {
          const ElementFormatId f = Elem(op.type);
          uint8_t* codes = Grow(b.codes, n * ElementBytes(f));
          const Overflow ov = GetElementFormat(f).bits <= 8 ? Overflow::kSaturate : Overflow::kNonSaturating;
          EncodeF32(f, x, codes, static_cast<size_t>(n), ov, o_.impl);
          DecodeToF32(f, codes, xhat, static_cast<size_t>(n), o_.impl);
          break;
        }
      }
      BITSMITH_RETURN_IF_ERROR(local[k].Add(std::span<const float>(x, n), std::span<const float>(xhat, n),
                                            static_cast<int64_t>(cols), weights));
    }
    {
      std::lock_guard<std::mutex> l(w.mu);
      for (size_t k = 0; k < w.ops.size(); ++k)
        if (w.ops[k].kind != OpKind::kExact) BITSMITH_RETURN_IF_ERROR(w.acc[k].Merge(local[k]));
    }
    if (w.chunks_left.fetch_sub(1) == 1) {
      std::vector<float>().swap(w.scales);  // the tensor is done: free its scales
    }
    if (o_.progress) o_.progress->fetch_add(n, std::memory_order_relaxed);
    return Status::Ok();
  }

  const ReportOptions& o_;
  std::vector<std::unique_ptr<Work>>& work_;
};

// Layer-index markers, in the order they are tried.
constexpr std::string_view kLayerMarkers[] = {"layers.", "blk.", "blocks.", "h.", "layer."};

}  // namespace

std::span<const DType> DefaultReportTypes() { return kDefaultTypes; }

std::string ReportTypeLabel(const Report& r, size_t k) {
  return r.compare ? "stored" : std::string(GetDType(r.types[k]).name);
}

Result<std::vector<DType>> ParseTypeList(std::string_view list, std::string_view option) {
  std::vector<DType> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty())
      return MakeError(ErrorKind::kBadUsage, "{} '{}': empty entry (expected a comma-separated list of types)", option,
                       list);
    const std::optional<DType> t = FindDType(item);
    if (!t) return MakeError(ErrorKind::kBadUsage, "{}: unknown type '{}' (see `bitsmith formats`)", option, item);
    if (std::find(out.begin(), out.end(), *t) != out.end())
      return MakeError(ErrorKind::kBadUsage, "{}: '{}' listed twice", option, item);
    out.push_back(*t);
    start = end + 1;
  }
  return out;
}

int LayerOf(std::string_view name) {
  for (std::string_view m : kLayerMarkers) {
    size_t pos = 0;
    while ((pos = name.find(m, pos)) != std::string_view::npos) {
      // The marker must start the name or follow a '.'.
      const bool boundary = pos == 0 || name[pos - 1] == '.';
      size_t d = pos + m.size();
      size_t e = d;
      while (e < name.size() && name[e] >= '0' && name[e] <= '9') ++e;
      if (boundary && e > d && e - d < 7 && (e == name.size() || name[e] == '.'))
        return std::stoi(std::string(name.substr(d, e - d)));
      pos += 1;
    }
  }
  return -1;
}

std::string KindOf(std::string_view name) {
  std::string s(name);
  // 1. Drop everything up to the layer index.
  if (LayerOf(name) >= 0) {
    for (std::string_view m : kLayerMarkers) {
      size_t pos = 0;
      bool done = false;
      while ((pos = s.find(m, pos)) != std::string::npos) {
        size_t e = pos + m.size();
        while (e < s.size() && s[e] >= '0' && s[e] <= '9') ++e;
        if ((pos == 0 || s[pos - 1] == '.') && e > pos + m.size() && e < s.size() && s[e] == '.') {
          s = s.substr(e + 1);
          done = true;
          break;
        }
        pos += 1;
      }
      if (done) break;
    }
  }
  // 2. Drop ".weight" and the "model." prefix.
  for (std::string_view suffix : {".weight", "_weight"})
    if (s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0)
      s.resize(s.size() - suffix.size());
  if (s.rfind("model.", 0) == 0) s = s.substr(6);
  // 3. Expert indices: ".experts.12." -> ".experts.*.".
  for (size_t pos = 0; (pos = s.find("experts.", pos)) != std::string::npos;) {
    size_t d = pos + 8, e = d;
    while (e < s.size() && s[e] >= '0' && s[e] <= '9') ++e;
    if (e > d) s.replace(d, e - d, "*");
    pos = d;
  }
  return s;
}

Result<Report> MeasureReport(const std::string& path, const ReportOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  ReportOptions o = options;
  if (o.types.empty()) o.types.assign(std::begin(kDefaultTypes), std::end(kDefaultTypes));
  std::optional<NameRegex> filter;
  if (o.tensors) {
    Result<NameRegex> re = NameRegex::Compile(*o.tensors);
    if (!re.ok())
      return MakeError(ErrorKind::kBadUsage, "--tensors '{}': bad regex: {}", *o.tensors,
                       re.error().message);
    filter = std::move(*re);
  }
  for (DType t : o.types) {
    const DTypeInfo& d = GetDType(t);
    if (d.is_block() && !GetBlockCodec(t))
      return MakeError(ErrorKind::kUnsupported, "--types: bitsmith cannot encode {} yet", d.name);
    if (!d.is_block() && (!d.element || d.kind != DTypeKind::kFloat))
      return MakeError(ErrorKind::kBadUsage, "--types: {} is not a float element or block type", d.name);
    if (t == DType::kF64) return MakeError(ErrorKind::kUnsupported, "--types: f64 is not a storage target");
  }

  // The values x come from `ck`: IN itself, or with --reference the reference
  // checkpoint (IN is then `out`, whose tensors give x̂).
  const bool compare = !o.reference.empty();
  BITSMITH_ASSIGN_OR_RETURN(Checkpoint ck, OpenCheckpoint(compare ? o.reference : path));
  BITSMITH_ASSIGN_OR_RETURN(std::optional<nlohmann::ordered_json> config, ReadConfigJson(ck));
  BITSMITH_ASSIGN_OR_RETURN(Fp8Match fp8, MatchFp8(ck.tensors, config ? &*config : nullptr, &ck.names()));
  BITSMITH_ASSIGN_OR_RETURN(InputSet files, InputSet::Open(ck.files));
  std::shared_ptr<Imatrix> imatrix;
  if (!o.imatrix.empty()) {
    BITSMITH_ASSIGN_OR_RETURN(Imatrix im, ReadImatrixFile(o.imatrix));
    imatrix = std::make_shared<Imatrix>(std::move(im));
  }

  Report rep;
  rep.model = path;
  rep.reference = o.reference;
  rep.compare = compare;
  rep.types = compare ? std::vector<DType>{DType::kF32} : o.types;  // one "stored" column when comparing
  rep.imatrix = imatrix != nullptr;
  rep.warnings = ck.warnings;

  // 1. Stored types and bytes per requested type, with the converter's rules.
  const KeepRule keep = [](const TensorInfo& t, DType wanted) -> std::optional<std::string> {
    if (IsLowPrecisionFloat(wanted) && !IsDefaultFp8Target(t) && EffectiveRank(t.shape) >= 2)
      return std::string("not an FP8 target (embeddings, norms, output head and router gates keep their type)");
    return std::nullopt;
  };
  std::vector<ModelSize> sizes;
  if (!compare)
    for (DType t : o.types) sizes.push_back(PlanModelSize(ck.tensors, t, o.block, keep));

  // 2. The reported tensors: every tensor but FP8 scale companions (folded into
  //    their weight), filtered by --tensors.
  std::vector<long> scale_of(ck.tensors.size(), -1);  // weight index -> its scale tensor
  std::vector<bool> is_scale(ck.tensors.size(), false);
  for (const Fp8Scaled& s : fp8.scaled) {
    scale_of[s.weight] = static_cast<long>(s.scale);
    is_scale[s.scale] = true;
  }
  std::vector<std::unique_ptr<Work>> work;
  std::vector<Item> items;
  uint64_t total_elems = 0;
  // --reference: IN's tensors, each against the reference tensor of that name.
  std::optional<Checkpoint> out;
  std::optional<InputSet> out_files;
  Fp8Match out_fp8;
  if (compare) {
    BITSMITH_ASSIGN_OR_RETURN(Checkpoint oc, OpenCheckpoint(path));
    out.emplace(std::move(oc));
    BITSMITH_ASSIGN_OR_RETURN(std::optional<nlohmann::ordered_json> oconf, ReadConfigJson(*out));
    BITSMITH_ASSIGN_OR_RETURN(out_fp8, MatchFp8(out->tensors, oconf ? &*oconf : nullptr, &out->names()));
    BITSMITH_ASSIGN_OR_RETURN(InputSet of, InputSet::Open(out->files));
    out_files.emplace(std::move(of));
    for (const std::string& wmsg : out->warnings) rep.warnings.push_back(wmsg);
    std::unordered_map<std::string_view, size_t> ref_index;
    for (size_t j = 0; j < ck.tensors.size(); ++j) ref_index.emplace(ck.tensors[j].name, j);
    std::vector<bool> out_scale(out->tensors.size(), false);
    for (const Fp8Scaled& sc : out_fp8.scaled) out_scale[sc.scale] = true;
    for (size_t i = 0; i < out->tensors.size(); ++i) {
      const TensorInfo& st = out->tensors[i];
      if (out_scale[i]) continue;
      if (filter && !filter->Search(st.name)) continue;
      auto it = ref_index.find(st.name);
      if (it == ref_index.end())
        return MakeError(ErrorKind::kBadInput, "--reference {}: no tensor '{}' (IN and the reference must have the "
                         "same tensor names)", o.reference, st.name);
      const size_t j = it->second;
      const TensorInfo& t = ck.tensors[j];
      if (t.elements() != st.elements() || t.row_length() != st.row_length())
        return MakeError(ErrorKind::kBadInput, "'{}': shape {} in {} but {} in the reference {}", st.name,
                         ShapeString(st.shape), path, ShapeString(t.shape), o.reference);
      auto decodable = [](const TensorInfo& x) {
        return x.dtype && (GetDType(*x.dtype).is_block() ? GetBlockCodec(*x.dtype) != nullptr
                                                          : GetDType(*x.dtype).element &&
                                                                GetDType(*x.dtype).kind == DTypeKind::kFloat);
      };
      if (!decodable(t) || !decodable(st))
        return MakeError(ErrorKind::kUnsupported, "'{}': cannot decode {} (reference) or {} (IN) to compare them",
                         st.name, t.dtype_name(), st.dtype_name());
      ReportTensor rt;
      rt.name = st.name;
      rt.shape = st.shape;
      rt.params = st.elements();
      rt.source_dtype = t.dtype_name();
      rt.source_bytes = t.nbytes;
      rt.layer = LayerOf(st.name);
      rt.kind = KindOf(st.name);
      auto make = [](const Checkpoint& c, const InputSet& f, const Fp8Match& m, size_t idx) {
        auto w = std::make_unique<Work>();
        const TensorInfo& x = c.tensors[idx];
        w->ck = &c;
        w->files = &f;
        w->src = idx;
        w->cols = x.row_length();
        w->rows = x.rows();
        w->matrix_rows = x.shape.size() >= 2 ? x.shape[x.shape.size() - 2] : w->rows;
        if (w->matrix_rows == 0) w->matrix_rows = 1;
        if (m.scaled_of[idx] >= 0) {
          const Fp8Scaled& sc = m.scaled[static_cast<size_t>(m.scaled_of[idx])];
          w->scaled_fp8 = true;
          w->scale = static_cast<long>(sc.scale);
          w->grid = sc.grid;
        }
        return w;
      };
      auto w = make(ck, files, fp8, j);
      w->stored = make(*out, *out_files, out_fp8, i);
      w->stored->rows = w->rows, w->stored->cols = w->cols;  // the reference's row layout
      ReportCandidate c;
      c.requested = *st.dtype;
      c.type = *st.dtype;
      c.type_name = st.dtype_name();
      c.bytes = st.nbytes;
      if (w->stored->scaled_fp8) c.bytes += out->tensors[static_cast<size_t>(w->stored->scale)].nbytes;
      c.bpw = rt.params ? 8.0 * static_cast<double>(c.bytes) / static_cast<double>(rt.params) : 0.0;
      w->ops.push_back({c.type, OpKind::kStored});
      w->cand_op.push_back(0);
      w->needs_data = true;
      rt.candidates.push_back(std::move(c));
      rt.kept_only = EffectiveRank(st.shape) < 2;
      if (imatrix)
        if (const std::vector<float>* v = imatrix->Find(st.name)) {
          BITSMITH_ASSIGN_OR_RETURN(w->imatrix_matrices, ImatrixMatrices(*imatrix, st, *v));
          w->imatrix = v;
        }
      w->acc.assign(1, ErrorAccumulator(o.impl));
      const uint64_t bm = std::max<uint64_t>(o.block.none() ? 1 : o.block.rows, 1);
      uint64_t cr = std::max<uint64_t>(1, kChunkElems / std::max<uint64_t>(w->cols, 1));
      cr = std::max<uint64_t>(bm, cr / bm * bm);
      const uint64_t mats = rt.params ? w->rows / w->matrix_rows : 0;
      for (uint64_t m = 0; m < mats; ++m)
        for (uint64_t r = 0; r < w->matrix_rows; r += cr)
          items.push_back({work.size(), m * w->matrix_rows + r, m * w->matrix_rows + std::min(w->matrix_rows, r + cr)});
      total_elems += rt.params;
      rep.params += rt.params;
      rep.tensors.push_back(std::move(rt));
      work.push_back(std::move(w));
    }
  }
  for (size_t i = 0; i < (compare ? 0 : ck.tensors.size()); ++i) {
    const TensorInfo& t = ck.tensors[i];
    if (is_scale[i]) continue;
    if (filter && !filter->Search(t.name)) continue;
    ReportTensor rt;
    rt.name = t.name;
    rt.shape = t.shape;
    rt.params = t.elements();
    rt.source_dtype = t.dtype_name();
    rt.source_bytes = t.nbytes;
    rt.layer = LayerOf(t.name);
    rt.kind = KindOf(t.name);
    auto w = std::make_unique<Work>();
    w->ck = &ck;
    w->files = &files;
    w->src = i;
    w->cols = t.row_length();
    w->rows = t.rows();
    w->matrix_rows = t.shape.size() >= 2 ? t.shape[t.shape.size() - 2] : w->rows;
    if (w->matrix_rows == 0) w->matrix_rows = 1;
    const long sc = scale_of[i];
    if (sc >= 0) {
      rt.source_bytes += ck.tensors[static_cast<size_t>(sc)].nbytes;
      w->scaled_fp8 = true;
      w->scale = sc;
      w->grid = fp8.scaled[static_cast<size_t>(fp8.scaled_of[i])].grid;
    }
    const bool decodable = t.dtype && (GetDType(*t.dtype).is_block()
                                           ? GetBlockCodec(*t.dtype) != nullptr
                                           : GetDType(*t.dtype).element && GetDType(*t.dtype).kind == DTypeKind::kFloat);
    for (size_t k = 0; k < o.types.size(); ++k) {
      const TensorSize& ts = sizes[k].tensors[i];
      ReportCandidate c;
      c.requested = o.types[k];
      c.type = ts.type.used;
      c.type_name = ts.type.passthrough && !t.dtype ? t.raw_dtype : std::string(GetDType(ts.type.used).name);
      c.choice = ts.type.choice;
      c.note = ts.type.fallback_reason;
      c.bytes = ts.bytes;
      if (sc >= 0) c.bytes += sizes[k].tensors[static_cast<size_t>(sc)].bytes;  // kept scale (0 when dropped)
      c.bpw = rt.params ? 8.0 * static_cast<double>(c.bytes) / static_cast<double>(rt.params) : 0.0;
      // The op computing its reconstruction.
      Op op{c.type, OpKind::kExact};
      if (!ts.type.passthrough && decodable && !(t.dtype == c.type && !w->scaled_fp8) && c.type != DType::kF32) {
        const DTypeInfo& d = GetDType(c.type);
        if (d.is_block()) op.kind = OpKind::kBlock;
        else if (IsLowPrecisionFloat(c.type) && !o.block.none() && EffectiveRank(t.shape) >= 2) op.kind = OpKind::kTiledFp8;
        else if (c.type == t.dtype && w->scaled_fp8) op.kind = OpKind::kExact;
        else op.kind = OpKind::kElement;
      }
      if (op.kind == OpKind::kBlock && w->scaled_fp8) w->bf16_input = true;
      if (op.kind == OpKind::kBlock && (t.dtype == DType::kE4M3FN || t.dtype == DType::kE5M2)) w->bf16_input = true;
      size_t idx = 0;
      while (idx < w->ops.size() && !(w->ops[idx].type == op.type && w->ops[idx].kind == op.kind)) ++idx;
      if (idx == w->ops.size()) w->ops.push_back(op);
      w->cand_op.push_back(idx);
      if (op.kind != OpKind::kExact) w->needs_data = true;
      rt.candidates.push_back(std::move(c));
    }
    rt.kept_only = EffectiveRank(t.shape) < 2 || !decodable;
    // Imatrix (only for tensors that are measured).
    if (imatrix && w->needs_data) {
      if (const std::vector<float>* v = imatrix->Find(t.name)) {
        BITSMITH_ASSIGN_OR_RETURN(w->imatrix_matrices, ImatrixMatrices(*imatrix, t, *v));
        w->imatrix = v;
      } else {
        ++rep.imatrix_missing;
      }
    }
    w->acc.assign(w->ops.size(), ErrorAccumulator(o.impl));
    // 3. Work items: row chunks in whole FP8 tile rows, inside one matrix.
    if (w->needs_data && rt.params > 0) {
      const uint64_t bm = std::max<uint64_t>(o.block.none() ? 1 : o.block.rows, 1);
      uint64_t cr = std::max<uint64_t>(1, kChunkElems / std::max<uint64_t>(w->cols, 1));
      cr = std::max<uint64_t>(bm, cr / bm * bm);
      const uint64_t mats = w->rows / w->matrix_rows;
      for (uint64_t m = 0; m < mats; ++m)
        for (uint64_t r = 0; r < w->matrix_rows; r += cr)
          items.push_back({work.size(), m * w->matrix_rows + r, m * w->matrix_rows + std::min(w->matrix_rows, r + cr)});
      total_elems += rt.params;
    }
    rep.params += rt.params;
    rep.tensors.push_back(std::move(rt));
    work.push_back(std::move(w));
  }
  for (const Item& it : items) work[it.work]->chunks_left.fetch_add(1);
  if (o.progress_total) o.progress_total->store(total_elems);

  // 4. Measure.
  Measurer m(o, work);
  BITSMITH_RETURN_IF_ERROR(m.Run(items));

  // 5. Metrics, totals, layers.
  rep.totals.resize(rep.types.size());
  std::map<int, ReportLayer> layers;
  std::vector<ExactSum> err(rep.types.size()), ierr(rep.types.size());
  for (size_t ti = 0; ti < rep.tensors.size(); ++ti) {
    ReportTensor& rt = rep.tensors[ti];
    Work& w = *work[ti];
    ReportLayer& L = layers[rt.layer];
    L.layer = rt.layer;
    if (L.bytes.empty()) L.bytes.assign(rep.types.size(), 0), L.mean_rel_mse.assign(rep.types.size(), 0);
    L.params += rt.params;
    for (size_t k = 0; k < rt.candidates.size(); ++k) {
      ReportCandidate& c = rt.candidates[k];
      const size_t op = w.cand_op[k];
      c.metrics = w.ops[op].kind == OpKind::kExact ? ExactMetrics(rt.params, w.imatrix != nullptr) : w.acc[op].Finish();
      if (w.nonfinite && w.ops[op].kind != OpKind::kExact) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        c.metrics.rmse = c.metrics.rel_rmse = c.metrics.snr_db = c.metrics.max_abs_err = c.metrics.cosine = nan;
        if (c.metrics.imatrix_rel_rmse) c.metrics.imatrix_rel_rmse = nan;
      }
      const double n = static_cast<double>(rt.params);
      const double r2 = c.metrics.rel_rmse * c.metrics.rel_rmse;
      err[k].Add(n * r2);
      ierr[k].Add(n * c.metrics.MseRel(true));
      rep.totals[k].bytes += c.bytes;
      if (c.choice == TypeChoice::kFallback) ++rep.totals[k].fallbacks;
      L.bytes[k] += c.bytes;
      L.mean_rel_mse[k] += n * r2;  // divided by params below
    }
  }
  std::vector<std::string> bad;
  for (size_t ti = 0; ti < rep.tensors.size(); ++ti) {
    const Work& w = *work[ti];
    ReportTensor& rt = rep.tensors[ti];
    if (!w.nonfinite) continue;
    rt.nonfinite = w.nonfinite;
    bad.push_back(fmt::format("'{}' ({} value(s), the first at row {}, column {})", rt.name, w.nonfinite,
                              w.first_bad / w.cols, w.first_bad % w.cols));
  }
  if (!bad.empty())
    rep.warnings.push_back(fmt::format(
        "{} tensor(s) hold non-finite values and cannot be quantized: {}{}; their metrics are null and the planner "
        "keeps them in their source type",
        bad.size(), bad[0], bad.size() > 1 ? fmt::format(" and {} more (--json lists them)", bad.size() - 1) : ""));
  for (size_t k = 0; k < rep.types.size(); ++k) {
    ReportTotal& t = rep.totals[k];
    t.type = rep.types[k];
    const double p = static_cast<double>(rep.params);
    t.bpw = rep.params ? 8.0 * static_cast<double>(t.bytes) / p : 0.0;
    t.mean_rel_mse = rep.params ? err[k].Value() / p : 0.0;
    t.mean_imatrix_rel_mse = rep.params ? ierr[k].Value() / p : 0.0;
  }
  for (auto& [idx, L] : layers) {
    for (double& v : L.mean_rel_mse) v = L.params ? v / static_cast<double>(L.params) : 0.0;
    if (idx >= 0) rep.layers.push_back(std::move(L));
  }
  if (layers.count(-1)) rep.layers.push_back(std::move(layers[-1]));
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

namespace {

nlohmann::json CandidateJson(const ReportCandidate& c) {
  nlohmann::json j = nlohmann::json::object();
  j["type"] = c.type_name;
  j["bytes"] = c.bytes;
  j["bpw"] = c.bpw;
  const nlohmann::json m = MetricsToJson(c.metrics);
  for (const char* k : {"rmse", "rel_rmse", "snr_db", "max_abs_err", "cosine", "imatrix_rel_rmse"}) j[k] = m[k];
  return j;
}

// The candidate a kept_only tensor shows: the first with a kept choice.
const ReportCandidate* KeptCandidate(const ReportTensor& t) {
  for (const ReportCandidate& c : t.candidates)
    if (c.choice == TypeChoice::kKeptRank || c.choice == TypeChoice::kKeptType) return &c;
  return nullptr;
}

std::string CsvNumber(double v) {
  if (!std::isfinite(v)) return "";
  return fmt::format("{:.9g}", v);
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

}  // namespace

nlohmann::json ReportToJson(const Report& r) {
  using nlohmann::json;
  json j = json::object();
  j["model"] = r.model;
  j["params"] = r.params;
  j["types"] = json::array();
  for (size_t k = 0; k < r.types.size(); ++k) j["types"].push_back(ReportTypeLabel(r, k));
  j["tensors"] = json::array();
  for (const ReportTensor& t : r.tensors) {
    json jt = json::object();
    jt["name"] = t.name;
    jt["shape"] = t.shape;
    jt["params"] = t.params;
    jt["source_dtype"] = t.source_dtype;
    json cands = json::object();
    const ReportCandidate* kept = t.kept_only ? KeptCandidate(t) : nullptr;
    if (r.compare) {
      for (const ReportCandidate& c : t.candidates) cands[c.type_name] = CandidateJson(c);
    } else if (t.nonfinite) {
      // Nothing can be quantized: the one candidate is the source type, copied unchanged.
      ReportCandidate c;
      c.type_name = t.source_dtype;
      c.bytes = t.source_bytes;
      c.bpw = t.params ? 8.0 * static_cast<double>(c.bytes) / static_cast<double>(t.params) : 0.0;
      c.metrics = ExactMetrics(t.params, false);
      cands[t.source_dtype] = CandidateJson(c);
    } else if (kept) {
      cands[kept->type_name] = CandidateJson(*kept);
    } else {
      for (const ReportCandidate& c : t.candidates) cands[std::string(GetDType(c.requested).name)] = CandidateJson(c);
    }
    jt["candidates"] = std::move(cands);
    j["tensors"].push_back(std::move(jt));
  }
  j["totals"] = json::object();
  for (const ReportTotal& t : r.totals) {
    json jt = json::object();
    jt["bytes"] = t.bytes;
    jt["bpw"] = t.bpw;
    jt["mean_rel_mse"] = std::isfinite(t.mean_rel_mse) ? json(t.mean_rel_mse) : json(nullptr);
    j["totals"][ReportTypeLabel(r, static_cast<size_t>(&t - r.totals.data()))] = std::move(jt);
  }
  return j;
}

std::string ReportToCsv(const Report& r) {
  std::string out =
      "tensor,layer,kind,shape,params,source_dtype,requested,type,bytes,bpw,rmse,rel_rmse,snr_db,max_abs_err,cosine,"
      "imatrix_rel_rmse\n";
  for (const ReportTensor& t : r.tensors) {
    std::string shape;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i) shape += 'x';
      shape += std::to_string(t.shape[i]);
    }
    for (const ReportCandidate& c : t.candidates) {
      const ErrorMetrics& m = c.metrics;
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", CsvField(t.name),
                         t.layer >= 0 ? std::to_string(t.layer) : "", CsvField(t.kind), shape, t.params,
                         CsvField(t.source_dtype), (r.compare ? "stored" : GetDType(c.requested).name), CsvField(c.type_name), c.bytes,
                         CsvNumber(c.bpw), CsvNumber(m.rmse), CsvNumber(m.rel_rmse), CsvNumber(m.snr_db),
                         CsvNumber(m.max_abs_err), CsvNumber(m.cosine),
                         m.imatrix_rel_rmse ? CsvNumber(*m.imatrix_rel_rmse) : "");
    }
  }
  return out;
}

}  // namespace bitsmith
