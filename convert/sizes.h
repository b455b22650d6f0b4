// What a tensor becomes, and weighs, when a model is stored in another format.
//
// This is the ONE place that decides which type a tensor really gets when a
// target type is asked for (the fallback chain) and how many bytes that takes
// (block scales included). `info`'s size table, `convert --dry-run`, the
// converter's TensorPlans and `plan` all call these functions, so they cannot
// disagree with each other or with the bytes a real conversion writes.
//
// The rules (ResolveTargetType), for a tensor of source type S and shape
// [..., rows, row_length] when the target T is asked for:
//  1. S unknown to bitsmith, or an integer/bool type: kept unchanged
//     (passthrough). S == T: kept unchanged, no fallback.
//  2. T a wide float (f32, f16, bf16, f64): every float tensor becomes T.
//  3. T an FP8 / FP6 / FP4 element format (e4m3fn, e5m2, ...): tensors of
//     rank >= 2 (EffectiveRank: leading 1s do not count) become T; 1-D tensors (norms, biases) keep S, as DeepSeek's
//     FP8 checkpoints keep them in BF16/F32. Block-scaled FP8 (the default for
//     file-level commands, 128x128 like DeepSeek-V3) adds one f32 scale per
//     block of the last two dimensions, as a `<name>_scale_inv` companion.
//  4. T a block type (q8_0, q4_k, iq4_xs, ...): 1-D tensors become f32, as
//     llama.cpp's converters keep norms and biases; tensors of rank >= 2 whose
//     row length is a multiple of T's block size become T; the others fall back
//     like llama.cpp's llama_tensor_get_type (llama-quant.cpp,
//     convert_incompatible_tensor): q2_k, q3_k, iq4_xs, iq1_*, iq2_*, iq3_* ->
//     iq4_nl; q4_k -> q5_0; q5_k -> q5_1; q6_k -> q8_0; tq1_0, tq2_0 -> q4_0;
//     and when the fallback's 32-element blocks do not fit either (or T has
//     32-element blocks itself) -> f16.
// Name-based choices (keep embeddings or router gates unquantized, recipes)
// belong to the caller, which picks the wanted type per tensor first.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "convert/tensor_info.h"
#include "formats/dtype.h"

namespace bitsmith {

// Block scaling of FP8 targets: one f32 scale per rows x cols block of the last
// two dimensions. {0, 0} = unscaled (`--block none`).
struct Fp8Blocking {
  uint32_t rows = 128;
  uint32_t cols = 128;
  bool none() const { return rows == 0 || cols == 0; }
  static constexpr Fp8Blocking None() { return {0, 0}; }
  bool operator==(const Fp8Blocking&) const = default;
};

// Why a tensor gets the type it gets.
enum class TypeChoice : uint8_t {
  kWanted,    // the wanted type (or the source already is it)
  kKeptRank,  // rule 3/4: a 1-D tensor keeps its type (FP8) or becomes f32 (block types)
  kKeptType,  // rule 1: an integer/bool tensor, or a type bitsmith does not know, kept as is
  kFallback,  // rule 4: the row does not fit the block type; llama.cpp's fallback chain
  kDropped,   // an FP8 scale companion whose weight is dequantized (PlanModelSize only)
};

struct ResolvedType {
  DType used = DType::kF32;  // the stored type (the source type when passthrough)
  bool passthrough = false;  // the tensor's bytes are copied unchanged
  TypeChoice choice = TypeChoice::kWanted;
  // Why `used` is not the wanted type (e.g. "row length 64 is not a multiple of
  // 256 (q4_k): q5_0"); empty for kWanted.
  std::string fallback_reason;
  // True only for real fallbacks (kFallback): what `--strict` refuses and
  // reports count as "fallbacks"; rank/type rules are by design.
  bool fell_back() const { return choice == TypeChoice::kFallback; }
};

// Rank as ggml counts it (ggml_n_dims): leading dimensions of 1 in the
// row-major shape (trailing ne of 1) do not count; at least 1. [1, 64] is 1-D.
int EffectiveRank(const std::vector<uint64_t>& shape);

// The type a tensor gets when `wanted` is asked for (rules above).
ResolvedType ResolveTargetType(const TensorInfo& t, DType wanted);

// llama.cpp's fallback for a block type whose block does not fit the row
// (before the final f16 fallback); nullopt when the next step is f16.
std::optional<DType> LlamaFallbackType(DType wanted);

// True for the element formats treated as low-precision matrix targets (rule 3):
// float formats of at most 8 bits.
bool IsLowPrecisionFloat(DType t);

// f32 scale bytes of a block-scaled FP8 tensor: prod(leading dims) x
// ceil(rows / b.rows) x ceil(cols / b.cols) x 4. 0 for rank < 2 or b.none().
uint64_t Fp8ScaleBytes(const std::vector<uint64_t>& shape, Fp8Blocking b);

// Bytes `t` takes when stored as r.used: its source bytes when passthrough,
// else elements / block x block bytes, plus the f32 scale companion for a
// block-scaled FP8 target.
uint64_t PlannedBytes(const TensorInfo& t, const ResolvedType& r, Fp8Blocking block = {});

// ---------------------------------------------------------------------------
// Whole models.

struct TensorSize {
  size_t index = 0;  // into the tensor list
  ResolvedType type;
  uint64_t bytes = 0;
  // An FP8 scale companion ("<w>_scale_inv", "<w>_scale") whose weight is
  // dequantized: it disappears from the output (bytes = 0).
  bool dropped = false;
};

struct ModelSize {
  DType wanted = DType::kBF16;
  Fp8Blocking block;
  uint64_t bytes = 0;  // tensor data, scales included (no file headers)
  std::vector<TensorSize> tensors;
  size_t fallbacks = 0;  // tensors with choice kFallback
  size_t kept = 0;       // tensors with choice kKeptRank or kKeptType
};

// The index of the FP8 weight `tensors[i]` is a scale companion of, or -1.
// A companion is named "<weight>_scale_inv" or "<weight>_scale", is f32, bf16
// or f16, and its weight is e4m3fn or e5m2.
long ScaleCompanionOf(std::span<const TensorInfo> tensors, size_t i);

// A caller's name-based rule: returns a reason when tensor `t` must keep its
// type for target `wanted` (e.g. the converter's choice of which tensors become
// FP8: no embeddings, norms, lm_head or router gates), nullopt otherwise.
using KeepRule = std::function<std::optional<std::string>(const TensorInfo& t, DType wanted)>;

// Every tensor resolved for `wanted`, with FP8 scale companions handled: kept
// when their weight stays FP8, dropped when it is dequantized. Tensors `keep`
// names pass through unchanged (choice kKeptType, its reason).
ModelSize PlanModelSize(std::span<const TensorInfo> tensors, DType wanted, Fp8Blocking block = {},
                        const KeepRule& keep = nullptr);

// The formats of `info`'s "what it would weigh" table, in order: bf16, f16,
// e4m3fn (block-scaled), q8_0, q6_k, q5_k, q4_k, q3_k, q2_k, iq4_xs.
std::span<const DType> SizeTableTargets();

}  // namespace bitsmith
