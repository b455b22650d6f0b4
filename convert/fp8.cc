#include "convert/fp8.h"

#include <cmath>    // std::isfinite, std::signbit
#include <cstring>  // std::memcpy

#include <fmt/format.h>

#include "codecs/element.h"  // DecodeBF16ToF32, DecodeF16ToF32
#include "convert/name_index.h"

namespace bitsmith {
namespace {

constexpr std::string_view kScaleInv = "_scale_inv";
constexpr std::string_view kScale = "_scale";
constexpr std::string_view kInputScale = ".input_scale";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool Contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

bool IsFp8(const TensorInfo& t) { return t.dtype == DType::kE4M3FN || t.dtype == DType::kE5M2; }

uint64_t DivCeil(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

// Rows of one matrix and columns of a weight; a 1-D weight is one row.
uint64_t MatrixRows(const std::vector<uint64_t>& s) { return s.size() >= 2 ? s[s.size() - 2] : 1; }
uint64_t Cols(const std::vector<uint64_t>& s) { return s.empty() ? 1 : s.back(); }

// weight_block_size: [bm, bn], two positive integers.
Result<Fp8Blocking> ParseBlockSize(const nlohmann::ordered_json& v, std::string_view where) {
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer() ||
      v[0].get<int64_t>() <= 0 || v[1].get<int64_t>() <= 0 || v[0].get<int64_t>() > (1 << 30) ||
      v[1].get<int64_t>() > (1 << 30))
    return MakeError(ErrorKind::kBadInput,
                     "config.json: {} is {} but must be [rows, cols], two positive integers", where,
                     v.dump());
  return Fp8Blocking{static_cast<uint32_t>(v[0].get<int64_t>()), static_cast<uint32_t>(v[1].get<int64_t>())};
}

// 1. What config.json says (kNone when it says nothing about FP8).
Result<Fp8Layout> LayoutFromConfig(const nlohmann::ordered_json* config) {
  Fp8Layout l;
  l.source = "tensor names (no quantization_config)";
  if (config == nullptr || !config->is_object() || !config->contains("quantization_config")) return l;
  const auto& qc = (*config)["quantization_config"];
  if (!qc.is_object()) return l;
  const std::string method = qc.contains("quant_method") && qc["quant_method"].is_string()
                                 ? qc["quant_method"].get<std::string>()
                                 : "";
  if (method == "fp8") {
    if (qc.contains("weight_block_size") && !qc["weight_block_size"].is_null()) {
      BITSMITH_ASSIGN_OR_RETURN(l.block, ParseBlockSize(qc["weight_block_size"],
                                                        "quantization_config.weight_block_size"));
      l.kind = Fp8LayoutKind::kBlockScaled;
      l.source = fmt::format("config.json quantization_config (quant_method fp8, weight_block_size [{}, {}])",
                             l.block.rows, l.block.cols);
    } else {
      l.kind = Fp8LayoutKind::kCompressedTensors;
      l.source = "config.json quantization_config (quant_method fp8, no weight_block_size: per-tensor or "
                 "per-channel weight_scale)";
    }
  } else if (method == "compressed-tensors") {
    l.kind = Fp8LayoutKind::kCompressedTensors;
    l.source = "config.json quantization_config (quant_method compressed-tensors)";
    // config_groups.<g>.weights.block_structure = [bm, bn] for the block strategy.
    if (qc.contains("config_groups") && qc["config_groups"].is_object())
      for (const auto& [name, g] : qc["config_groups"].items())
        if (g.is_object() && g.contains("weights") && g["weights"].is_object() &&
            g["weights"].contains("block_structure") && !g["weights"]["block_structure"].is_null()) {
          BITSMITH_ASSIGN_OR_RETURN(
              l.block, ParseBlockSize(g["weights"]["block_structure"],
                                      "quantization_config.config_groups." + name + ".weights.block_structure"));
        }
  }
  return l;
}

}  // namespace

std::string Fp8Layout::Describe() const {
  switch (kind) {
    case Fp8LayoutKind::kNone: return "no FP8 tensors";
    case Fp8LayoutKind::kBlockScaled:
      return fmt::format("block-scaled FP8 (DeepSeek-V3 style): FP8 weights x <name>_scale_inv per {}x{} block; "
                         "from {}",
                         block.rows, block.cols, source);
    case Fp8LayoutKind::kCompressedTensors:
      return fmt::format("compressed-tensors FP8: FP8 weights x <name>_scale (per-tensor, per-channel or "
                         "{}x{} blocks); from {}",
                         block.rows, block.cols, source);
    case Fp8LayoutKind::kUnscaled: return "unscaled FP8 (FP8 tensors without scale companions)";
  }
  return "?";
}

std::string_view ScaleKindName(ScaleKind k) {
  switch (k) {
    case ScaleKind::kBlock: return "blocks";
    case ScaleKind::kPerTensor: return "per-tensor";
    case ScaleKind::kPerChannel: return "per-channel";
  }
  return "?";
}

ScaleGrid BlockGrid(const std::vector<uint64_t>& shape, Fp8Blocking b) {
  ScaleGrid g;
  g.rows_per_matrix = std::max<uint64_t>(1, MatrixRows(shape));
  g.bm = b.rows;
  g.bn = b.cols;
  g.grid_rows = DivCeil(MatrixRows(shape), b.rows);
  g.grid_cols = DivCeil(Cols(shape), b.cols);
  return g;
}

std::vector<uint64_t> BlockScaleShape(const std::vector<uint64_t>& shape, Fp8Blocking b) {
  std::vector<uint64_t> s;
  for (size_t i = 0; i + 2 < shape.size(); ++i) s.push_back(shape[i]);
  s.push_back(DivCeil(MatrixRows(shape), b.rows));
  s.push_back(DivCeil(Cols(shape), b.cols));
  return s;
}

Result<Fp8Match> MatchFp8(std::span<const TensorInfo> tensors, const nlohmann::ordered_json* config,
                          const NameIndex* names) {
  Fp8Match m;
  BITSMITH_ASSIGN_OR_RETURN(m.layout, LayoutFromConfig(config));
  m.scaled_of.assign(tensors.size(), -1);
  m.scale_for.assign(tensors.size(), -1);
  NameIndex own;  // a repeated name resolves to its first tensor (as in a Checkpoint's)
  if (names == nullptr) own.Build(tensors);
  const NameIndex& by_name = names != nullptr ? *names : own;
  std::string key;  // reused: no allocation per lookup
  auto find = [&](std::string_view base, std::string_view suffix) -> long {
    key.assign(base).append(suffix);
    return by_name.Find(tensors, key);
  };

  bool any_inv = false, any_plain = false, any_fp8 = false;
  size_t fp8_count = 0;
  for (const TensorInfo& t : tensors) fp8_count += IsFp8(t) ? 1 : 0;
  m.scaled.reserve(fp8_count);  // one Fp8Scaled per FP8 weight at most (46 k for DeepSeek-V3)
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& w = tensors[i];
    if (!IsFp8(w)) continue;
    any_fp8 = true;
    // 1. The companion: "<w>_scale_inv" (block-scaled) first, then "<w>_scale".
    long s = find(w.name, kScaleInv);
    const bool inv = s >= 0;
    if (!inv) s = find(w.name, kScale);
    if (s < 0) {
      m.unscaled.push_back(i);
      continue;
    }
    const TensorInfo& st = tensors[static_cast<size_t>(s)];
    // 2. Scale dtype: F32, BF16 or F16 (widened exactly).
    if (st.dtype != DType::kF32 && st.dtype != DType::kBF16 && st.dtype != DType::kF16)
      return MakeError(ErrorKind::kUnsupported,
                       "{}: scale tensor '{}' of FP8 weight '{}' has dtype {}; FP8 scales must be F32, BF16 or F16",
                       st.file, st.name, w.name, st.raw_dtype);
    // 3. Shape: which rule does it fit?
    const Fp8Blocking b = m.layout.block;
    const std::vector<uint64_t> block_shape = BlockScaleShape(w.shape, b);
    const uint64_t n = st.elements();
    Fp8Scaled f;
    f.weight = i;
    f.scale = static_cast<size_t>(s);
    const uint64_t rows = w.rows(), cols = Cols(w.shape);
    if (st.shape == block_shape && !(b.rows == 0 || b.cols == 0)) {
      f.kind = ScaleKind::kBlock;
      f.grid = BlockGrid(w.shape, b);
    } else if (!inv && n == 1) {
      f.kind = ScaleKind::kPerTensor;
      f.grid = {std::max<uint64_t>(rows, 1), std::max<uint64_t>(rows, 1), std::max<uint64_t>(cols, 1), 1, 1};
    } else if (!inv && n == rows && (st.rank() == 1 || (st.rank() >= 2 && st.shape.back() == 1))) {
      f.kind = ScaleKind::kPerChannel;
      f.grid = {std::max<uint64_t>(rows, 1), 1, std::max<uint64_t>(cols, 1), std::max<uint64_t>(rows, 1), 1};
    } else {
      return MakeError(ErrorKind::kBadInput,
                       "{}: scale tensor '{}' has shape {} but its FP8 weight '{}' of shape {} needs {} "
                       "({}x{} blocks: ceil(rows/{}) x ceil(cols/{})){}",
                       st.file, st.name, ShapeString(st.shape), w.name, ShapeString(w.shape),
                       ShapeString(block_shape), b.rows, b.cols, b.rows, b.cols,
                       inv ? "" : fmt::format(", or [1] (per-tensor), or [{}, 1] (per-channel)", rows));
    }
    (inv ? any_inv : any_plain) = true;
    m.scaled_of[i] = static_cast<long>(m.scaled.size());
    m.scale_for[static_cast<size_t>(s)] = static_cast<long>(m.scaled.size());
    m.scaled.push_back(f);
  }

  // 4. Orphans: scale-named tensors that scale no FP8 weight.
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (m.scale_for[i] >= 0) continue;
    const std::string_view n = tensors[i].name;
    if (EndsWith(n, kScaleInv) || EndsWith(n, ".weight_scale")) {
      m.orphans.push_back(i);
    } else if (EndsWith(n, kInputScale)) {
      const long w = find(n.substr(0, n.size() - kInputScale.size()), ".weight");
      if (w >= 0 && m.scaled_of[static_cast<size_t>(w)] >= 0) m.input_scales.push_back(i);
    }
  }

  // 5. The layout, when the config did not say.
  if (m.layout.kind == Fp8LayoutKind::kNone) {
    if (any_inv) m.layout.kind = Fp8LayoutKind::kBlockScaled;
    else if (any_plain) m.layout.kind = Fp8LayoutKind::kCompressedTensors;
    else if (any_fp8) m.layout.kind = Fp8LayoutKind::kUnscaled;
  } else if (!any_fp8) {
    m.layout.source += " (but the checkpoint holds no FP8 tensor)";
  }
  return m;
}

Result<std::vector<float>> LoadScales(const ByteSource& src, const TensorInfo& scale,
                                      std::string_view weight_name, bool allow_nonfinite) {
  BITSMITH_ASSIGN_OR_RETURN(std::vector<uint8_t> raw, src.ReadRange(scale.offset, scale.nbytes));
  const uint64_t n = scale.elements();
  std::vector<float> out(static_cast<size_t>(n));
  // Widen exactly: bf16 is a shift, f16 -> f32 is exact.
  if (scale.dtype == DType::kF32 && raw.size() == n * 4) {
    std::memcpy(out.data(), raw.data(), raw.size());
  } else if (scale.dtype == DType::kBF16 && raw.size() == n * 2) {
    std::vector<uint16_t> h(n);
    std::memcpy(h.data(), raw.data(), raw.size());
    DecodeBF16ToF32(h.data(), out.data(), n);
  } else if (scale.dtype == DType::kF16 && raw.size() == n * 2) {
    std::vector<uint16_t> h(n);
    std::memcpy(h.data(), raw.data(), raw.size());
    DecodeF16ToF32(h.data(), out.data(), n);
  } else {
    return MakeError(ErrorKind::kUnsupported, "{}: scale tensor '{}' has dtype {} ({} bytes for {} values)",
                     scale.file, scale.name, scale.raw_dtype, raw.size(), n);
  }
  if (!allow_nonfinite) {
    for (size_t i = 0; i < out.size(); ++i) {
      const float v = out[i];
      if (!std::isfinite(v) || std::signbit(v))
        return MakeError(ErrorKind::kBadInput,
                         "{}: scale tensor '{}' (of FP8 weight '{}') holds {} at index {}: scales must be "
                         "finite and non-negative (a corrupt checkpoint? --allow-nonfinite converts it anyway)",
                         scale.file, scale.name, weight_name, fmt::format("{}", v), i);
    }
  }
  return out;
}

size_t FindNonFiniteFp8(DType fmt, const uint8_t* p, size_t n) {
  // A branch-free OR over 64-byte blocks (vectorised by the compiler), then the
  // exact position only when something was found.
  const uint8_t mask = fmt == DType::kE4M3FN ? 0x7F : 0x7C;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint8_t hit = 0;
    for (size_t k = 0; k < 64; ++k) hit |= static_cast<uint8_t>((p[i + k] & mask) == mask);
    if (hit) break;
  }
  for (; i < n; ++i)
    if ((p[i] & mask) == mask) return i;
  return n;
}

bool IsDefaultFp8Target(const TensorInfo& t) {
  if (EffectiveRank(t.shape) != 2) return false;
  const std::string_view n = t.name;
  if (!EndsWith(n, ".weight")) return false;
  if (Contains(n, "embed") || Contains(n, "norm") || Contains(n, "lm_head") || n == "output.weight" ||
      Contains(n, "shared_head.head"))
    return false;
  // MoE router gates ("mlp.gate.weight" in DeepSeek/Qwen, "router", llama.cpp's
  // ffn_gate_inp), not "gate_proj".
  if (EndsWith(n, ".gate.weight") || Contains(n, "router") || Contains(n, "gate_inp")) return false;
  return true;
}

float Fp8MaxFinite(DType fmt) { return fmt == DType::kE5M2 ? 57344.0f : 448.0f; }

nlohmann::ordered_json ConfigWithoutQuantization(nlohmann::ordered_json config) {
  if (config.is_object()) config.erase("quantization_config");
  return config;
}

nlohmann::ordered_json ConfigWithFp8(nlohmann::ordered_json config, DType fmt, Fp8Blocking b) {
  if (!config.is_object()) config = nlohmann::ordered_json::object();
  nlohmann::ordered_json qc = nlohmann::ordered_json::object();
  qc["activation_scheme"] = "dynamic";
  qc["fmt"] = fmt == DType::kE5M2 ? "e5m2" : "e4m3";
  qc["quant_method"] = "fp8";
  qc["weight_block_size"] = {b.rows, b.cols};
  config["quantization_config"] = qc;
  return config;
}

}  // namespace bitsmith
