// TensorPlans: what `convert` does to every tensor, computed from headers alone.
//
// BuildConversionPlan opens the input (OpenCheckpoint: headers, never data),
// detects its FP8 layout (convert/fp8.h), decides per tensor the operation and
// the stored type (the shared fallback rule of convert/sizes.h plus the
// options), lays out every output file with the real writers (safetensors
// shards + index, single files, GGUF and GGUF splits), and records each
// tensor's output offset. `--dry-run` prints this plan; the pipeline
// (convert/pipeline.h) executes it; `verify` builds the same kind of plan
// from an input and an output. So the sizes printed before a run are the
// sizes written -- they come from the same PlannedFile.
//
// Decisions, in order, for each input tensor (first that applies):
//  1. A scale companion of a scaled FP8 weight goes with its weight (dropped
//     when the weight is dequantized, copied when it is copied). Orphan scales
//     ("<x>_scale_inv" with no FP8 weight <x>) are dropped with a warning.
//  2. The wanted type: the first --tensor-type / --recipe rule matching the
//     name, else --to, else none.
//  3. Scaled FP8 weight: none -> copied (GGUF output: bf16, GGUF has no FP8
//     type); bf16/f16/f32 -> dequantized exactly as fp8_cast_bf16 does; a block
//     type -> dequantized (f32 product, then bf16 rounding unless --fp8-via
//     f32) and quantized.
//     Unscaled FP8 with a wanted type: an error naming it, unless --unscaled
//     keep (copied) or cast (scale 1).
//  4. Other tensors: --to a wide float converts only FP8 weights unless
//     --cast-all (as fp8_cast_bf16 leaves everything else alone) -- except
//     GGUF inputs going to safetensors, whose tensors are all converted; --to
//     e4m3fn/e5m2 converts the tensors IsDefaultFp8Target picks; a block
//     type (GGUF output) applies to every tensor. A rule always applies.
//     ResolveTargetType (sizes.h) then gives the stored type and any fallback
//     (--strict: a fallback is an error).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "convert/file_io.h"
#include "convert/fp8.h"
#include "convert/imatrix.h"
#include "convert/recipe.h"
#include "convert/sizes.h"
#include "convert/tensor_info.h"
#include "formats/error.h"

namespace bitsmith {

enum class UnscaledFp8 : uint8_t {
  kError,  // default: an FP8 tensor without a scale cannot be converted
  kKeep,   // copy it unchanged (fp8_cast_bf16's behaviour: a mixed-dtype result)
  kCast,   // convert it with scale 1
};

struct ConvertOptions {
  std::string input;
  std::string output;
  std::optional<DType> to;           // --to
  std::vector<RecipeRule> rules;     // --tensor-type (in order) then --recipe lines
  bool cast_all = false;             // --cast-all
  UnscaledFp8 unscaled = UnscaledFp8::kError;
  bool allow_nonfinite = false;      // --allow-nonfinite
  Fp8Blocking block;                 // --block (FP8 targets), 128x128 by default
  std::string imatrix;               // --imatrix FILE
  bool fp8_via_f32 = false;          // --fp8-via f32
  bool strict = false;               // --strict: a fallback type is an error
  bool allow_requantize = false;     // --allow-requantize
  uint64_t max_shard_size = 0;       // --max-shard-size (0: mirror the input's shards, or 5 GB)
  uint64_t split_max_size = 0;       // --split-max-size for GGUF output (0: one file)
};

enum class OutputKind : uint8_t {
  kDirectory,        // sharded safetensors checkpoint (+ index, config, tokenizer, ...)
  kSafetensorsFile,  // one .safetensors file
  kGguf,             // one .gguf file (or splits with --split-max-size)
};
// ".gguf" -> kGguf, ".safetensors" -> kSafetensorsFile, anything else a directory.
OutputKind OutputKindOf(const std::string& path);

enum class TensorOp : uint8_t {
  kCopy,         // bytes unchanged
  kCast,         // element float -> element float: exact decode, one RNE rounding
  kDequantFp8,   // scaled FP8 -> f32 product (one RNE multiply) -> bf16/f16/f32 (RNE)
  kQuantizeFp8,  // float -> FP8 codes e4m3fn(f32(w / scale)) + "<name>_scale_inv" (amax / max)
  kQuantize,     // float, FP8 or block source -> block type (QuantizeRows)
  kDequantize,   // block type -> element float
};
std::string_view TensorOpName(TensorOp op);  // "copy", "cast", "dequant-fp8", ...

struct TensorPlan {
  std::string name;              // output name (= input name)
  size_t src = 0;                // index into ConversionPlan::input.tensors (verify: its own list)
  std::optional<DType> from;     // source storage type (nullopt: unknown, copy only)
  std::string from_name;         // its lower-case name (the file's spelling when unknown)
  DType to = DType::kF32;        // stored type (for kCopy: the source type)
  TensorOp op = TensorOp::kCopy;
  std::vector<uint64_t> shape;   // row-major

  // Scaled FP8 source: its scale tensor (index into the input list; -1 = a
  // constant scale of 1, `--unscaled cast`) and how it applies.
  long scale = -1;
  ScaleKind scale_kind = ScaleKind::kBlock;
  ScaleGrid grid;
  bool via_bf16 = true;          // kQuantize from scaled FP8: round the product to bf16 first

  // FP8 target (kQuantizeFp8): block scales created beside the weight.
  Fp8Blocking out_block = Fp8Blocking::None();
  std::string out_scale_name;    // "<name>_scale_inv" (empty when unscaled)
  std::vector<uint64_t> out_scale_shape;

  // Copying a scaled FP8 weight unchanged: its scale is copied with it.
  long copy_scale = -1;          // index of the scale tensor (input list)
  std::string copy_scale_name;

  // Importance weights (kQuantize): n_per_row x imatrix_matrices values, or null.
  const std::vector<float>* imatrix = nullptr;
  uint64_t imatrix_matrices = 1;

  uint64_t bytes_in = 0;    // source bytes, its scale included
  uint64_t bytes_out = 0;   // output bytes, created / copied scale included
  TypeChoice choice = TypeChoice::kWanted;
  std::string note;         // why the stored type is not the wanted one (fallback, kept 1-D, ...)
  bool fallback = false;    // a real fallback (what --strict refuses)
  std::string rule;         // the rule that chose the type ("--tensor-type", "recipe.txt:3"), if any

  // Where the bytes go: index into ConversionPlan::files, absolute offsets of
  // the data and of the created/copied scale (part 1).
  int out_file = -1;
  uint64_t out_offset = 0;
  uint64_t out_scale_offset = 0;
  uint64_t out_scale_bytes = 0;
};

// One output file.
struct OutputFilePlan {
  std::string name;             // file name inside the output directory (or the output path's name)
  PlannedFile planned;          // path = final path, header bytes, size
  std::vector<size_t> tensors;  // plans writing into it, in file order
};

// A tensor of the input that does not appear in the output. Positions, not
// copied names (46 k scales for DeepSeek-V3): DroppedName / DroppedReason.
struct DroppedTensor {
  size_t src = 0;      // index into ConversionPlan::input.tensors
  long scale_of = -1;  // a scale: the FP8 weight (input index) it was applied to while dequantizing
  std::string reason;  // otherwise, why it is dropped
};

// A non-weight file of the output directory.
struct ExtraFilePlan {
  std::string name;                   // file name in OUT
  std::string source;                 // path copied, when `content` is empty
  std::optional<std::string> content; // rewritten text (config.json)
  std::string note;                   // "quantization_config removed", ...
};

struct ConversionPlan {
  ConvertOptions options;
  Checkpoint input;
  OutputKind out_kind = OutputKind::kDirectory;
  std::string out_path;
  Fp8Match fp8;
  std::shared_ptr<Imatrix> imatrix;
  std::vector<std::string> imatrix_missing;  // quantized tensors without an imatrix entry

  std::vector<TensorPlan> tensors;        // output order
  std::vector<OutputFilePlan> files;      // weight files in order
  std::string index_name;                 // "model.safetensors.index.json" or empty
  std::string index_json;
  std::vector<ExtraFilePlan> extras;
  std::vector<DroppedTensor> dropped;
  std::vector<std::string> warnings;
  std::string container_note;             // e.g. safetensors -> GGUF is a container conversion

  uint64_t bytes_in = 0;       // tensor data read (dropped scales included)
  uint64_t bytes_out = 0;      // tensor data written
  uint64_t file_bytes_out = 0; // sum of the output weight files' sizes (headers and padding included)
  size_t fallbacks = 0;
  bool mirrors_shards = false; // one output shard per input shard
};

// Builds the whole plan from headers. Errors: bad usage (a block type to a
// safetensors output, FP8 to GGUF, ...), bad input (missing scale, bad scale
// shape, ...), unsupported (no codec for the type, f64 casts).
Result<ConversionPlan> BuildConversionPlan(const ConvertOptions& options);

// The dropped tensor's name, and why it is dropped ("scale of '<weight>',
// applied while dequantizing it", or DroppedTensor::reason).
const std::string& DroppedName(const ConversionPlan& plan, const DroppedTensor& d);
std::string DroppedReason(const ConversionPlan& plan, const DroppedTensor& d);

// The llama_ftype value llama.cpp stores in general.file_type for a model
// whose weights are mostly `t` (k-quants: the _S variant, the mixture closest
// to a pure model); nullopt when llama.cpp has none.
std::optional<uint32_t> LlamaFileType(DType t);

// The machine-readable summary (`--json`): per tensor name, from, to, op,
// shape, bytes_in, bytes_out, fallback, file; dropped tensors; files; totals;
// plus the members of `extra` (an object: the CLI's dry_run, seconds, ...).
// Streamed to `sink` in pieces of about 1 MiB: the text is what nlohmann's
// dump(2) writes for the whole document (sorted keys, 2-space indents), without
// building it (46 k tensor objects for DeepSeek-V3 took 125 MB and most of the
// dry-run's time as one json document). Strings that are not valid UTF-8 (GGUF
// tensor names are arbitrary bytes) appear as PrintableText.
void WritePlanJson(const ConversionPlan& plan, const nlohmann::json& extra,
                   const std::function<void(std::string_view)>& sink);
// The same text as one string.
std::string PlanJsonText(const ConversionPlan& plan, const nlohmann::json& extra = nlohmann::json::object());

}  // namespace bitsmith
