// `report`: what every tensor of a checkpoint costs in each candidate format,
// in bytes and in accuracy (issue 6).
//
// For every tensor t and every requested type T:
//  1. The stored type: PlanModelSize (convert/sizes.h) with the converter's
//     rules -- the same fallback chain as `convert`, FP8 scale companions folded
//     into their weight (kept with an FP8 weight, dropped when it is
//     dequantized), and for FP8 element targets only the tensors
//     IsDefaultFp8Target picks (convert/fp8.h). So the per-type totals are the
//     tensor bytes `convert --dry-run` prints for the same type (bf16: with
//     --cast-all, every float tensor converted).
//  2. The reference x, in f32 (as `convert` computes it): f32/f16/bf16 sources
//     widened exactly; block sources dequantized; scaled FP8 weights the f32
//     product code x scale (one f32 multiply), BEFORE any bf16 rounding.
//  3. The reconstruction x̂ = decode(encode(q)) with the converter's arithmetic:
//     block types QuantizeRows (with the tensor's imatrix row when one is given,
//     as llama-quantize does) then DequantizeRows; wide floats one RNE rounding;
//     FP8 element formats block-scaled as DeepSeek stores them (128x128 tiles,
//     scale = amax / max_finite, codes = encode(w / scale), x̂ = code x scale).
//     q is x, except for a block type made from a scaled FP8 weight, where q is
//     x rounded to bf16 as `convert --fp8-via bf16` (the default) quantizes it.
//     A kept tensor (passthrough, or the source type itself) has x̂ = x.
//  4. Metrics of e = x̂ − x in double (convert/metrics.h), weighted by the
//     imatrix columns for imatrix_rel_rmse.
//
// Streaming: tensors are cut into row chunks (whole 128-row FP8 tiles, never
// crossing a matrix of a 3-D tensor, ~1 M elements); threads take chunks from a
// shared counter, and every requested type rides on the same f32 chunk: one
// read, one decode, then per distinct stored type quantize + dequantize +
// accumulate. Memory is bounded by threads x chunk buffers, whatever the model
// size. Results do not depend on the thread count: the accumulators are exact
// sums (metrics.h) merged in any order.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "codecs/quant.h"  // Impl
#include "convert/metrics.h"
#include "convert/sizes.h"
#include "formats/dtype.h"
#include "formats/error.h"

namespace bitsmith {

// The default --types of `report`: q2_k,q3_k,q4_k,q5_k,q6_k,q8_0,e4m3fn,bf16.
std::span<const DType> DefaultReportTypes();

// Parses "q4_k,q8_0,bf16" (any element or block type, lower or upper case, no
// duplicates). Error (kBadUsage) names the unknown entry.
Result<std::vector<DType>> ParseTypeList(std::string_view list, std::string_view option);

struct ReportOptions {
  std::vector<DType> types;          // requested, in order (empty: DefaultReportTypes)
  std::string imatrix;               // llama.cpp imatrix file (.dat or GGUF), or empty
  std::optional<std::string> tensors;  // regex (RE2, as recipes) searched in names: only those are measured
  int threads = 0;                   // <= 0: all cores
  Fp8Blocking block;                 // FP8 element targets (128x128)
  bool fp8_via_f32 = false;          // block types from scaled FP8: quantize the f32 product
  Impl impl = Impl::kSimd;
  // Compare mode (`report OUT --reference ORIG`): x from the reference
  // checkpoint, x̂ = IN's tensors as stored (decoded), one "stored" candidate per
  // tensor -- the measured error of a finished conversion, to set against what
  // `report ORIG` / `plan` predicted. Names and shapes must match.
  std::string reference;
  std::atomic<uint64_t>* progress = nullptr;  // source elements processed
  std::atomic<uint64_t>* progress_total = nullptr;
};

// One requested type for one tensor.
struct ReportCandidate {
  DType requested;
  DType type;                  // the stored type (source type when passthrough)
  std::string type_name;       // its name (the file's spelling when bitsmith has no row)
  TypeChoice choice = TypeChoice::kWanted;
  std::string note;            // fallback reason, if any
  uint64_t bytes = 0;          // stored bytes, scales included
  double bpw = 0;              // bytes * 8 / params
  ErrorMetrics metrics;
};

struct ReportTensor {
  std::string name;
  std::vector<uint64_t> shape;
  uint64_t params = 0;
  std::string source_dtype;    // "bf16", "e4m3fn", "q5_0", ...
  uint64_t source_bytes = 0;   // its bytes in the checkpoint (FP8 scale included)
  // Non-finite reference values (NaN/inf weights): no candidate can be measured
  // (null metrics except for kept types); JSON shows one candidate, the source
  // type unchanged, so a plan keeps the tensor as it is.
  uint64_t nonfinite = 0;
  bool kept_only = false;      // 1-D or passthrough: one candidate in JSON (the type it keeps)
  int layer = -1;              // from "layers.N" / "blk.N" / "h.N" / "blocks.N"; -1: none
  std::string kind;            // "self_attn.q_proj", "mlp.experts.*.down_proj", "attn_q", ...
  std::vector<ReportCandidate> candidates;  // one per requested type, in order
};

struct ReportTotal {
  DType type;
  uint64_t bytes = 0;
  double bpw = 0;
  double mean_rel_mse = 0;     // Σ n_t rel_rmse_t² / Σ n_t (size-weighted mean of rel_rmse²)
  double mean_imatrix_rel_mse = 0;  // the same with imatrix_rel_rmse where measured
  size_t fallbacks = 0;
};

// Per layer and type: Σ bytes, Σ params, size-weighted mean rel_rmse².
struct ReportLayer {
  int layer = -1;              // -1: tensors outside any layer
  uint64_t params = 0;
  std::vector<uint64_t> bytes;      // per type
  std::vector<double> mean_rel_mse; // per type
};

struct Report {
  std::string model;           // the path given
  uint64_t params = 0;         // every reported tensor's elements
  std::vector<DType> types;
  std::vector<ReportTensor> tensors;   // checkpoint order (scale companions folded into weights)
  std::vector<ReportTotal> totals;     // per type
  std::vector<ReportLayer> layers;     // increasing layer, -1 last
  bool imatrix = false;
  bool compare = false;                // --reference: types = {one "stored" column}
  std::string reference;
  size_t imatrix_missing = 0;          // quantized tensors without an imatrix entry
  std::vector<std::string> warnings;
  double seconds = 0;
};

// The label of type column k: the type's name, or "stored" in compare mode.
std::string ReportTypeLabel(const Report& r, size_t k);

// Measures the checkpoint at `path` (OpenCheckpoint). Errors: the reader's, a
// bad regex or type list (kBadUsage), non-finite source values (kBadInput,
// naming the tensor, row and column), an imatrix that does not fit a tensor.
Result<Report> MeasureReport(const std::string& path, const ReportOptions& options);

// "layers.12" / "blk.12" / "h.12" / "blocks.12" -> 12, and the kind (the name
// after the layer, with ".weight" dropped and expert indices as '*').
int LayerOf(std::string_view name);
std::string KindOf(std::string_view name);

// {"model", "params", "types", "tensors": [{"name", "shape", "params",
// "source_dtype", "candidates": {TYPE: {"type", "bytes", "bpw", "rmse",
// "rel_rmse", "snr_db", "max_abs_err", "cosine", "imatrix_rel_rmse"}}}],
// "totals": {TYPE: {"bytes", "bpw", "mean_rel_mse"}}} -- exactly the issue's
// shape. A kept_only tensor has one candidate, keyed by the type it keeps.
nlohmann::json ReportToJson(const Report& r);

// CSV, one row per tensor x requested type: tensor,layer,kind,shape,params,
// source_dtype,requested,type,bytes,bpw,rmse,rel_rmse,snr_db,max_abs_err,cosine,
// imatrix_rel_rmse (non-finite and absent values empty).
std::string ReportToCsv(const Report& r);

}  // namespace bitsmith
