#include "convert/sizes.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include <fmt/format.h>

#include "convert/name_index.h"

namespace bitsmith {

namespace {
std::string_view Name(DType t) { return GetDType(t).name; }

uint64_t DivCeil(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }
}  // namespace

bool IsLowPrecisionFloat(DType t) {
  const DTypeInfo& d = GetDType(t);
  return d.kind == DTypeKind::kFloat && d.element && GetElementFormat(*d.element).bits <= 8;
}

std::optional<DType> LlamaFallbackType(DType wanted) {
  switch (wanted) {
    case DType::kTQ1_0:
    case DType::kTQ2_0: return DType::kQ4_0;
    case DType::kIQ2_XXS:
    case DType::kIQ2_XS:
    case DType::kIQ2_S:
    case DType::kIQ3_XXS:
    case DType::kIQ3_S:
    case DType::kIQ1_S:
    case DType::kIQ1_M:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kIQ4_XS: return DType::kIQ4_NL;
    case DType::kQ4_K: return DType::kQ5_0;
    case DType::kQ5_K: return DType::kQ5_1;
    case DType::kQ6_K: return DType::kQ8_0;
    default: return std::nullopt;
  }
}

int EffectiveRank(const std::vector<uint64_t>& shape) {
  size_t lead = 0;
  while (lead < shape.size() && shape[lead] == 1) ++lead;
  return std::max(1, static_cast<int>(shape.size() - lead));
}

ResolvedType ResolveTargetType(const TensorInfo& t, DType wanted) {
  ResolvedType r;
  r.used = wanted;
  const DTypeInfo& w = GetDType(wanted);
  // 1. Unknown, integer and identical types pass through.
  if (!t.dtype) {
    r.passthrough = true;
    r.choice = TypeChoice::kKeptType;
    r.fallback_reason = fmt::format("dtype {} is unknown to bitsmith: copied unchanged", t.raw_dtype);
    return r;
  }
  const DType src = *t.dtype;
  const DTypeInfo& s = GetDType(src);
  if (src == wanted) {
    r.passthrough = true;
    return r;
  }
  if (s.kind == DTypeKind::kInt) {
    r.used = src;
    r.passthrough = true;
    r.choice = TypeChoice::kKeptType;
    r.fallback_reason = fmt::format("integer tensor kept as {}", s.name);
    return r;
  }
  // 2. Wide floats: everything float converts.
  if (w.kind == DTypeKind::kFloat && !IsLowPrecisionFloat(wanted)) return r;
  if (w.kind == DTypeKind::kInt) {  // an integer target only takes integer sources
    r.used = src;
    r.passthrough = true;
    r.choice = TypeChoice::kKeptType;
    r.fallback_reason = fmt::format("float tensor kept as {} (target {} is an integer type)", s.name, w.name);
    return r;
  }
  // 3. Low-precision element formats: matrices only.
  if (w.kind == DTypeKind::kFloat) {
    if (EffectiveRank(t.shape) < 2) {
      r.used = src;
      r.passthrough = true;
      r.choice = TypeChoice::kKeptRank;
      r.fallback_reason = fmt::format("1-D tensor kept as {} ({} is for matrices)", s.name, w.name);
    }
    return r;
  }
  // 4. Block types: 1-D tensors f32, matrices by row length with llama.cpp's chain.
  if (EffectiveRank(t.shape) < 2) {
    r.used = DType::kF32;
    r.passthrough = src == DType::kF32;
    r.choice = TypeChoice::kKeptRank;
    r.fallback_reason = "1-D tensor stays f32 (llama.cpp keeps norms and biases in f32)";
    return r;
  }
  const uint64_t row = t.row_length();
  if (row % static_cast<uint64_t>(w.block_elems) == 0) return r;
  std::string why = fmt::format("row length {} is not a multiple of {} ({})", row, w.block_elems, w.name);
  const std::optional<DType> next = LlamaFallbackType(wanted);
  if (next && row % static_cast<uint64_t>(GetDType(*next).block_elems) == 0) {
    r.used = *next;
  } else {
    if (next) why += fmt::format(" nor of {} ({})", GetDType(*next).block_elems, Name(*next));
    r.used = DType::kF16;
  }
  r.passthrough = r.used == src;
  r.choice = TypeChoice::kFallback;
  r.fallback_reason = fmt::format("{}: {}", why, Name(r.used));
  return r;
}

uint64_t Fp8ScaleBytes(const std::vector<uint64_t>& shape, Fp8Blocking b) {
  if (b.none() || shape.size() < 2) return 0;
  uint64_t lead = 1;
  for (size_t i = 0; i + 2 < shape.size(); ++i) lead *= shape[i];
  const uint64_t rows = shape[shape.size() - 2], cols = shape.back();
  return lead * DivCeil(rows, b.rows) * DivCeil(cols, b.cols) * 4;
}

uint64_t PlannedBytes(const TensorInfo& t, const ResolvedType& r, Fp8Blocking block) {
  if (r.passthrough) return t.nbytes;
  const DTypeInfo& d = GetDType(r.used);
  // Rows are whole blocks here (ResolveTargetType chose a type that fits);
  // round up anyway so a caller's odd choice is never under-counted.
  const uint64_t rows = t.rows(), row = t.row_length();
  const uint64_t bytes = rows * DivCeil(row, static_cast<uint64_t>(d.block_elems)) *
                         static_cast<uint64_t>(d.block_bytes);
  const bool scaled = IsLowPrecisionFloat(r.used) && (r.used == DType::kE4M3FN || r.used == DType::kE5M2);
  return bytes + (scaled ? Fp8ScaleBytes(t.shape, block) : 0);
}

long ScaleCompanionOf(std::span<const TensorInfo> tensors, size_t i) {
  const TensorInfo& s = tensors[i];
  if (s.dtype != DType::kF32 && s.dtype != DType::kBF16 && s.dtype != DType::kF16) return -1;
  std::string_view base;
  const std::string_view n = s.name;
  if (n.size() > 10 && n.substr(n.size() - 10) == "_scale_inv") base = n.substr(0, n.size() - 10);
  else if (n.size() > 6 && n.substr(n.size() - 6) == "_scale") base = n.substr(0, n.size() - 6);
  else return -1;
  // A linear search is fine for one tensor; PlanModelSize uses a map.
  for (size_t j = 0; j < tensors.size(); ++j)
    if (tensors[j].name == base)
      return (tensors[j].dtype == DType::kE4M3FN || tensors[j].dtype == DType::kE5M2) ? static_cast<long>(j) : -1;
  return -1;
}

ModelSize PlanModelSize(std::span<const TensorInfo> tensors, DType wanted, Fp8Blocking block,
                        const KeepRule& keep) {
  ModelSize m;
  m.wanted = wanted;
  m.block = block;
  NameIndex by_name;  // a flat table: `info` sizes 10 targets of 92 k tensors (DeepSeek-V3)
  by_name.Build(tensors);
  // The type a tensor gets: the caller's rule first, then ResolveTargetType.
  auto resolve = [&](const TensorInfo& t) {
    if (keep) {
      if (std::optional<std::string> why = keep(t, wanted)) {
        ResolvedType r;
        r.used = t.dtype.value_or(wanted);
        r.passthrough = true;
        r.choice = r.used == wanted ? TypeChoice::kWanted : TypeChoice::kKeptType;
        if (r.choice != TypeChoice::kWanted) r.fallback_reason = std::move(*why);
        return r;
      }
    }
    return ResolveTargetType(t, wanted);
  };
  auto companion_weight = [&](const TensorInfo& s) -> const TensorInfo* {
    if (s.dtype != DType::kF32 && s.dtype != DType::kBF16 && s.dtype != DType::kF16) return nullptr;
    const std::string_view n = s.name;
    std::string_view base;
    if (n.size() > 10 && n.substr(n.size() - 10) == "_scale_inv") base = n.substr(0, n.size() - 10);
    else if (n.size() > 6 && n.substr(n.size() - 6) == "_scale") base = n.substr(0, n.size() - 6);
    else return nullptr;
    const long it = by_name.Find(tensors, base);
    if (it < 0) return nullptr;
    const TensorInfo& w = tensors[static_cast<size_t>(it)];
    return (w.dtype == DType::kE4M3FN || w.dtype == DType::kE5M2) ? &w : nullptr;
  };
  m.tensors.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = tensors[i];
    TensorSize ts;
    ts.index = i;
    if (const TensorInfo* w = companion_weight(t)) {
      // The scale stays exactly when its weight stays in its FP8 type.
      ts.type.used = *t.dtype;
      ts.type.passthrough = true;
      if (resolve(*w).passthrough) {
        ts.bytes = t.nbytes;
        m.bytes += ts.bytes;
      } else {
        ts.dropped = true;
        ts.type.choice = TypeChoice::kDropped;
        ts.type.fallback_reason = fmt::format("scale of FP8 tensor '{}', dropped when it is dequantized", w->name);
      }
      m.tensors.push_back(std::move(ts));
      continue;
    }
    ts.type = resolve(t);
    ts.bytes = PlannedBytes(t, ts.type, block);
    if (ts.type.fell_back()) ++m.fallbacks;
    if (ts.type.choice == TypeChoice::kKeptRank || ts.type.choice == TypeChoice::kKeptType) ++m.kept;
    m.bytes += ts.bytes;
    m.tensors.push_back(std::move(ts));
  }
  return m;
}

std::span<const DType> SizeTableTargets() {
  static constexpr std::array<DType, 10> kTargets = {DType::kBF16, DType::kF16,  DType::kE4M3FN, DType::kQ8_0,
                                                     DType::kQ6_K, DType::kQ5_K, DType::kQ4_K,   DType::kQ3_K,
                                                     DType::kQ2_K, DType::kIQ4_XS};
  return kTargets;
}

}  // namespace bitsmith
