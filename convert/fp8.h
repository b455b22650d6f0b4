// FP8 checkpoint layouts: which tensors are scaled FP8, where their scales
// are, how a scale applies to an element, and the config.json rules.
//
// Two layouts are recognised (--dry-run says which one it found):
//
//  1. Block-scaled FP8, DeepSeek-V3/R1 and Hugging Face "fp8" (transformers'
//     FineGrainedFP8, Qwen3-FP8): an e4m3fn (or e5m2) weight W of shape
//     [..., rows, cols] has a companion "<W>_scale_inv" of shape
//     [..., ceil(rows/bm), ceil(cols/bn)] and
//         w[i][j] = f32(code[i][j]) * scale_inv[i / bm][j / bn]
//     (DeepSeek-V3 inference/fp8_cast_bf16.py, weight_dequant in kernel.py).
//     bm x bn comes from config.json quantization_config.weight_block_size,
//     128 x 128 when absent. Despite its name the companion is MULTIPLIED.
//
//  2. compressed-tensors / vLLM FP8 (quantization_config.quant_method
//     "compressed-tensors", or "fp8" without weight_block_size): a companion
//     "<W>_scale" that is one value (per-tensor), one value per row
//     (per-channel: [rows, 1] or [rows]) or one per block (as above); again
//         w[i][j] = f32(code[i][j]) * scale.
//
// Every case is one formula with a ScaleGrid: the scale of element (g, j)
// (g = global row over all leading dimensions) is
//     scale[((g / rows_per_matrix) * grid_rows + (g % rows_per_matrix) / bm) * grid_cols + j / bn]
// with per-tensor = one block covering everything, per-channel = 1 x cols
// blocks.
//
// Scales may be stored as F32, BF16 or F16 and are widened exactly to f32;
// any other dtype is an error naming the tensor. A scale whose shape fits no
// rule is an error naming both tensors. NaN, inf and negative scales (and NaN
// weight codes, checked while converting) are corrupt checkpoints: errors
// unless the caller allows non-finite values.
//
// The reverse direction (making FP8 from BF16/F32, `--to e4m3fn`): see
// IsDefaultFp8Target for which tensors become FP8.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/file_io.h"
#include "convert/name_index.h"
#include "convert/sizes.h"  // Fp8Blocking
#include "convert/tensor_info.h"
#include "formats/error.h"

namespace bitsmith {

// Which FP8 layout a checkpoint uses.
enum class Fp8LayoutKind : uint8_t {
  kNone,               // no FP8 tensor
  kBlockScaled,        // DeepSeek / HF fp8: <w>_scale_inv per block
  kCompressedTensors,  // compressed-tensors / vLLM: <w>_scale per tensor / channel / block
  kUnscaled,           // FP8 tensors without any scale companion
};

struct Fp8Layout {
  Fp8LayoutKind kind = Fp8LayoutKind::kNone;
  Fp8Blocking block;  // bm x bn of block scales (128 x 128 unless the config says otherwise)
  // Where the layout came from: "config.json quantization_config (quant_method
  // fp8, weight_block_size [128, 128])" or "tensor names (no quantization_config)".
  std::string source;
  // One line for --dry-run, e.g. "block-scaled FP8 (DeepSeek-V3 style): e4m3fn
  // weights x <name>_scale_inv per 128x128 block".
  std::string Describe() const;
};

// How one scale tensor applies to its weight (see the formula above).
struct ScaleGrid {
  uint64_t rows_per_matrix = 1;  // rows of one matrix (the weight's shape[-2]; all rows for per-tensor/channel)
  uint64_t bm = 1, bn = 1;       // block extent in rows and columns
  uint64_t grid_rows = 1, grid_cols = 1;  // blocks per matrix in each direction
  // Index of the scale of element (global row g, column j).
  uint64_t Index(uint64_t g, uint64_t j) const {
    return ((g / rows_per_matrix) * grid_rows + (g % rows_per_matrix) / bm) * grid_cols + j / bn;
  }
  // Number of scales the weight needs.
  uint64_t Count(uint64_t total_rows) const {
    return (total_rows / rows_per_matrix) * grid_rows * grid_cols;
  }
};

enum class ScaleKind : uint8_t { kBlock, kPerTensor, kPerChannel };
std::string_view ScaleKindName(ScaleKind k);  // "128x128 blocks", "per-tensor", "per-channel"

// One scaled FP8 weight.
struct Fp8Scaled {
  size_t weight = 0;  // index into the tensor list
  size_t scale = 0;   // index of its scale tensor
  ScaleKind kind = ScaleKind::kBlock;
  ScaleGrid grid;
};

// The FP8 structure of a tensor list.
struct Fp8Match {
  Fp8Layout layout;
  std::vector<Fp8Scaled> scaled;   // in tensor order of the weights
  std::vector<size_t> unscaled;    // FP8 tensors with no scale companion
  std::vector<size_t> orphans;     // "<x>_scale_inv" / "<x>.weight_scale" with no FP8 weight <x>
  // Per tensor: index into `scaled` when the tensor is a scaled FP8 weight,
  // else -1; and whether it is the scale of one.
  std::vector<long> scaled_of;
  std::vector<long> scale_for;     // for a scale tensor: index into `scaled`, else -1
  // compressed-tensors activation scales ("<prefix>.input_scale") that belong
  // to a scaled weight "<prefix>.weight": meaningless once it is dequantized.
  std::vector<size_t> input_scales;
};

// Detects the layout (config first, tensor names second) and pairs every FP8
// weight with its scale. `config` is the parsed config.json or nullptr.
// Errors (kBadInput / kUnsupported): a scale of another dtype than F32, BF16 or
// F16; a scale whose shape fits no rule (naming both tensors and the expected
// shape); a quantization_config with a malformed weight_block_size.
// `names`: a NameIndex already built over `tensors` (a Checkpoint's, see
// Checkpoint::names()), or null to build one here.
Result<Fp8Match> MatchFp8(std::span<const TensorInfo> tensors, const nlohmann::ordered_json* config,
                          const NameIndex* names = nullptr);

// The grid of a block-scaled weight of this shape (used when making FP8).
ScaleGrid BlockGrid(const std::vector<uint64_t>& weight_shape, Fp8Blocking b);
// The companion's shape for that grid: [..., ceil(rows/bm), ceil(cols/bn)].
std::vector<uint64_t> BlockScaleShape(const std::vector<uint64_t>& weight_shape, Fp8Blocking b);

// Reads a scale tensor and widens it exactly to f32. Unless `allow_nonfinite`,
// NaN, +-inf and negative values are errors (kBadInput) naming the scale
// tensor, its weight, the index and the value.
Result<std::vector<float>> LoadScales(const ByteSource& src, const TensorInfo& scale,
                                      std::string_view weight_name, bool allow_nonfinite);

// Index of the first non-finite code in [p, p + n), or n: e4m3fn's NaN codes
// 0x7F/0xFF; e5m2's non-finite codes 0x7C-0x7F/0xFC-0xFF (inf included: a
// weight is finite).
size_t FindNonFiniteFp8(DType fmt, const uint8_t* p, size_t n);

// ---------------------------------------------------------------------------
// Making FP8 (`--to e4m3fn|e5m2`).

// The default rule for which tensors become FP8, after DeepSeek-V3's
// checkpoint: matrices (effective rank 2) named "*.weight" -- the linear
// projections -- except embeddings ("embed"), norms ("norm"), the output head
// ("lm_head", "output.weight", "shared_head.head") and MoE router gates
// ("*.gate.weight", "router", "gate_inp"), which stay as they are. Recipes /
// --tensor-type rules override it per tensor.
bool IsDefaultFp8Target(const TensorInfo& t);

// The largest finite value of the FP8 target (448 for e4m3fn, 57344 for e5m2).
float Fp8MaxFinite(DType fmt);

// ---------------------------------------------------------------------------
// config.json

// `config` without "quantization_config" (what a dequantized checkpoint needs).
nlohmann::ordered_json ConfigWithoutQuantization(nlohmann::ordered_json config);
// `config` with quantization_config = {"activation_scheme": "dynamic", "fmt":
// "e4m3"|"e5m2", "quant_method": "fp8", "weight_block_size": [bm, bn]}, as
// DeepSeek-V3 ships it.
nlohmann::ordered_json ConfigWithFp8(nlohmann::ordered_json config, DType fmt, Fp8Blocking b);

}  // namespace bitsmith
