#include "convert/tensor_plan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "convert/json_text.h"

#include "codecs/quant.h"  // GetBlockCodec
#include "convert/gguf.h"
#include "convert/safetensors.h"

namespace bitsmith {
namespace fs = std::filesystem;
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsWideFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }
bool IsFp8(DType t) { return t == DType::kE4M3FN || t == DType::kE5M2; }
bool IsBlock(DType t) { return GetDType(t).is_block(); }
bool IsElementFloat(DType t) {
  const DTypeInfo& d = GetDType(t);
  return d.kind == DTypeKind::kFloat && d.element.has_value();
}

std::string TypeName(DType t) { return std::string(GetDType(t).name); }

// Reads config.json of a checkpoint directory, if there is one.
Result<std::optional<nlohmann::ordered_json>> ReadConfig(const Checkpoint& ck, std::string* path_out) {
  for (const std::string& f : ck.extra_files) {
    if (fs::path(f).filename() != "config.json") continue;
    *path_out = f;
    std::ifstream in(f, std::ios::binary);
    if (!in) return MakeError(ErrorKind::kIo, "{}: cannot read", f);
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return MakeError(ErrorKind::kBadInput, "{}: not a JSON object", f);
    return std::optional<nlohmann::ordered_json>(std::move(j));
  }
  return std::optional<nlohmann::ordered_json>();
}

// GGUF metadata value as a __metadata__ string: strings as they are, every
// other value as its JSON text (arrays in full).
std::string GgufValueText(const GgufValue& v) {
  if (const std::string* s = v.AsString()) return *s;
  nlohmann::json j = GgufValueJson(v, SIZE_MAX);
  return j.dump();
}

// config.json scalars as GGUF metadata "config.<key>" (a container conversion
// keeps them; llama.cpp's loader would want its own architecture keys).
void AddConfigKv(const nlohmann::ordered_json& config, std::vector<GgufKV>& kv) {
  for (const auto& [k, v] : config.items()) {
    const std::string key = "config." + k;
    if (v.is_boolean()) kv.push_back({key, GgufValue::Bool(v.get<bool>())});
    else if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      kv.push_back({key, u <= UINT32_MAX ? GgufValue::U32(static_cast<uint32_t>(u)) : GgufValue::U64(u)});
    } else if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      kv.push_back({key, i >= INT32_MIN && i <= INT32_MAX ? GgufValue::I32(static_cast<int32_t>(i))
                                                          : GgufValue::I64(i)});
    } else if (v.is_number_float()) {
      kv.push_back({key, GgufValue::F64(v.get<double>())});
    } else if (v.is_string()) {
      kv.push_back({key, GgufValue::Str(v.get<std::string>())});
    }
  }
}

// Sets (in place, keeping the KV order) or appends a key.
void SetKv(std::vector<GgufKV>& kv, const std::string& key, GgufValue v) {
  for (GgufKV& e : kv)
    if (e.key == key) {
      e.value = std::move(v);
      return;
    }
  kv.push_back({key, std::move(v)});
}

// The output spec of one plan (and of its scale part).
struct OutSpec {
  size_t plan;
  std::string name;
  DType dtype;
  std::string st_dtype;            // safetensors spelling (unknown source types: the file's)
  std::vector<uint64_t> shape;
  int part;                        // 0 data, 1 scale
};

}  // namespace

OutputKind OutputKindOf(const std::string& path) {
  if (EndsWith(path, ".gguf")) return OutputKind::kGguf;
  if (EndsWith(path, ".safetensors")) return OutputKind::kSafetensorsFile;
  return OutputKind::kDirectory;
}

std::string_view TensorOpName(TensorOp op) {
  switch (op) {
    case TensorOp::kCopy: return "copy";
    case TensorOp::kCast: return "cast";
    case TensorOp::kDequantFp8: return "dequant-fp8";
    case TensorOp::kQuantizeFp8: return "quantize-fp8";
    case TensorOp::kQuantize: return "quantize";
    case TensorOp::kDequantize: return "dequantize";
  }
  return "?";
}

std::optional<uint32_t> LlamaFileType(DType t) {
  // llama.h enum llama_ftype.
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ4_1: return 3;
    case DType::kQ8_0: return 7;
    case DType::kQ5_0: return 8;
    case DType::kQ5_1: return 9;
    case DType::kQ2_K: return 10;
    case DType::kQ3_K: return 11;  // Q3_K_S
    case DType::kQ4_K: return 14;  // Q4_K_S
    case DType::kQ5_K: return 16;  // Q5_K_S
    case DType::kQ6_K: return 18;
    case DType::kIQ2_XXS: return 19;
    case DType::kIQ2_XS: return 20;
    case DType::kIQ3_XXS: return 23;
    case DType::kIQ1_S: return 24;
    case DType::kIQ4_NL: return 25;
    case DType::kIQ3_S: return 26;
    case DType::kIQ2_S: return 28;
    case DType::kIQ4_XS: return 30;
    case DType::kIQ1_M: return 31;
    case DType::kBF16: return 32;
    case DType::kTQ1_0: return 36;
    case DType::kTQ2_0: return 37;
    case DType::kMXFP4: return 38;
    default: return std::nullopt;
  }
}

Result<ConversionPlan> BuildConversionPlan(const ConvertOptions& options) {
  ConversionPlan p;
  p.options = options;
  p.out_path = options.output;
  p.out_kind = OutputKindOf(options.output);
  BITSMITH_ASSIGN_OR_RETURN(p.input, OpenCheckpoint(options.input));
  p.warnings = p.input.warnings;
  const Checkpoint& ck = p.input;
  const std::vector<TensorInfo>& in = ck.tensors;
  const bool gguf_in = ck.format == FileFormat::kGguf;
  const bool gguf_out = p.out_kind == OutputKind::kGguf;

  // 1. Options that cannot work whatever the tensors.
  auto check_target = [&](DType t, std::string_view where) -> Status {
    // OCP MX and NVFP4 blocks have no ggml type and no safetensors dtype: no
    // weight file bitsmith writes can hold them (report --types measures MX).
    if (IsBlock(t) && GetDType(t).ggml_type < 0)
      return MakeError(ErrorKind::kBadUsage,
                       "{}: {} is not a conversion target: neither GGUF (ggml has no type for it) nor "
                       "safetensors stores it",
                       where, TypeName(t));
    if (gguf_out && (IsFp8(t) || (!IsWideFloat(t) && !IsBlock(t))))
      return MakeError(ErrorKind::kBadUsage, "{}: {} cannot be stored in a GGUF file (use f32, f16, bf16 or a "
                       "block type such as q4_k)", where, TypeName(t));
    if (!gguf_out && IsBlock(t))
      return MakeError(ErrorKind::kBadUsage,
                       "{}: {} is a GGUF block type: the output must be a .gguf file (got '{}')", where,
                       TypeName(t), options.output);
    if (!gguf_out && !IsWideFloat(t) && !IsFp8(t))
      return MakeError(ErrorKind::kBadUsage, "{}: {} is not a conversion target (use bf16, f16, f32, e4m3fn or e5m2)",
                       where, TypeName(t));
    if (IsBlock(t)) {
      const BlockCodec* c = GetBlockCodec(t);
      if (c == nullptr || c->quantize == nullptr)
        return MakeError(ErrorKind::kUnsupported, "{}: bitsmith cannot quantize to {} yet", where, TypeName(t));
    }
    return Status::Ok();
  };
  if (options.to) BITSMITH_RETURN_IF_ERROR(check_target(*options.to, "--to"));
  for (const RecipeRule& r : options.rules) BITSMITH_RETURN_IF_ERROR(check_target(r.type, r.where));
  if (options.split_max_size != 0 && !gguf_out)
    return MakeError(ErrorKind::kBadUsage, "--split-max-size is for GGUF output; use --max-shard-size for safetensors");
  if (options.max_shard_size != 0 && p.out_kind != OutputKind::kDirectory)
    return MakeError(ErrorKind::kBadUsage, "--max-shard-size needs a directory output (got '{}')", options.output);

  // 2. config.json and the FP8 layout.
  std::string config_path;
  std::optional<nlohmann::ordered_json> config;
  if (!gguf_in) {
    BITSMITH_ASSIGN_OR_RETURN(config, ReadConfig(ck, &config_path));
  }
  BITSMITH_ASSIGN_OR_RETURN(p.fp8, MatchFp8(in, config ? &*config : nullptr, &ck.names()));
  const Fp8Match& fp8 = p.fp8;

  // 3. The imatrix.
  if (!options.imatrix.empty()) {
    BITSMITH_ASSIGN_OR_RETURN(Imatrix im, ReadImatrixFile(options.imatrix));
    p.imatrix = std::make_shared<Imatrix>(std::move(im));
  }

  // Per input tensor flags (vectors, not hash sets: 92 k tensors for DeepSeek-V3).
  std::vector<uint8_t> skip(in.size(), 0);  // scale tensors handled with their weight, input scales
  for (const Fp8Scaled& s : fp8.scaled) skip[s.scale] = 1;
  for (size_t i : fp8.input_scales) skip[i] = 1;
  p.dropped.reserve(fp8.orphans.size() + fp8.scaled.size() + fp8.input_scales.size());
  for (size_t o : fp8.orphans) {
    skip[o] = 1;
    p.dropped.push_back({o, -1, "orphan scale: no FP8 weight of that name"});
    p.bytes_in += in[o].nbytes;
    p.warnings.push_back(fmt::format("dropping orphan scale tensor '{}' (no FP8 weight '{}')", in[o].name,
                                     in[o].name.substr(0, in[o].name.rfind('_'))));
  }

  // 4. One TensorPlan per output tensor.
  std::vector<uint8_t> dequantized(in.size(), 0);  // weights whose scales / input scales go
  p.tensors.reserve(in.size() - fp8.scaled.size());
  std::vector<std::string> requant_refused, strict_refused, missing_scale;
  for (size_t i = 0; i < in.size(); ++i) {
    if (skip[i]) continue;
    const TensorInfo& t = in[i];
    TensorPlan tp;
    tp.name = t.name;
    tp.src = i;
    tp.from = t.dtype;
    tp.from_name = t.dtype_name();
    tp.to = t.dtype.value_or(DType::kU8);
    tp.shape = t.shape;
    tp.bytes_in = t.nbytes;
    tp.bytes_out = t.nbytes;

    // 4a. The wanted type.
    std::optional<DType> wanted = options.to;
    bool by_rule = false;
    if (const RecipeRule* r = FirstMatch(options.rules, t.name)) {
      wanted = r->type;
      by_rule = true;
      tp.rule = r->where;
    }
    const long scaled_idx = fp8.scaled_of[i];
    const bool is_fp8 = t.dtype && IsFp8(*t.dtype);

    auto set_resolved = [&](DType want) -> Status {
      ResolvedType r = ResolveTargetType(t, want);
      tp.choice = r.choice;
      tp.note = r.fallback_reason;
      tp.fallback = r.fell_back();
      if (r.passthrough) {
        tp.op = TensorOp::kCopy;
        tp.to = r.used;
        return Status::Ok();
      }
      tp.to = r.used;
      if (tp.fallback && options.strict) strict_refused.push_back(fmt::format("{} ({})", t.name, tp.note));
      return Status::Ok();
    };

    if (scaled_idx >= 0) {
      // 4b. A scaled FP8 weight.
      const Fp8Scaled& s = fp8.scaled[static_cast<size_t>(scaled_idx)];
      const TensorInfo& st = in[s.scale];
      tp.bytes_in += st.nbytes;
      std::optional<DType> w = wanted;
      if (!w && gguf_out) {
        w = DType::kBF16;
        tp.note = "GGUF has no FP8 type: dequantized to bf16";
      }
      if (!w || *w == *t.dtype) {
        tp.op = TensorOp::kCopy;
        tp.copy_scale = static_cast<long>(s.scale);
        tp.copy_scale_name = st.name;
        tp.scale_kind = s.kind;
        tp.grid = s.grid;
        tp.bytes_out = t.nbytes + st.nbytes;
        if (gguf_out) return MakeError(ErrorKind::kBadUsage, "'{}': FP8 cannot be stored in GGUF", t.name);
      } else if (IsFp8(*w)) {
        return MakeError(ErrorKind::kUnsupported,
                         "'{}': converting {} to {} directly is not supported (convert to bf16 first)", t.name,
                         tp.from_name, TypeName(*w));
      } else {
        BITSMITH_RETURN_IF_ERROR(set_resolved(*w));
        tp.scale = static_cast<long>(s.scale);
        tp.scale_kind = s.kind;
        tp.grid = s.grid;
        tp.via_bf16 = !options.fp8_via_f32;
        tp.op = IsBlock(tp.to) ? TensorOp::kQuantize : TensorOp::kDequantFp8;
        if (!IsBlock(tp.to) && !IsWideFloat(tp.to))
          return MakeError(ErrorKind::kUnsupported, "'{}': cannot dequantize FP8 to {}", t.name, TypeName(tp.to));
        dequantized[i] = 1;
        // (Concatenated, not fmt::format: 46 k of them for DeepSeek-V3.)
        p.dropped.push_back({s.scale, static_cast<long>(i), {}});
      }
    } else if (is_fp8 && (wanted || gguf_out) && wanted != t.dtype) {
      // 4c. Unscaled FP8 asked to change.
      const DType w = wanted.value_or(DType::kBF16);
      if (options.unscaled == UnscaledFp8::kError) {
        missing_scale.push_back(t.name);
        continue;
      }
      if (options.unscaled == UnscaledFp8::kKeep) {
        if (gguf_out)
          return MakeError(ErrorKind::kBadUsage, "'{}': --unscaled keep cannot keep FP8 in a GGUF file", t.name);
        tp.op = TensorOp::kCopy;
        tp.note = "FP8 without scale kept unchanged (--unscaled keep)";
      } else {
        if (IsFp8(w))
          return MakeError(ErrorKind::kUnsupported, "'{}': converting {} to {} directly is not supported", t.name,
                           tp.from_name, TypeName(w));
        BITSMITH_RETURN_IF_ERROR(set_resolved(w));
        tp.scale = -1;  // a constant scale of 1
        tp.scale_kind = ScaleKind::kPerTensor;
        tp.grid = {std::max<uint64_t>(1, t.rows()), std::max<uint64_t>(1, t.rows()),
                   std::max<uint64_t>(1, t.row_length()), 1, 1};
        tp.via_bf16 = !options.fp8_via_f32;
        tp.op = IsBlock(tp.to) ? TensorOp::kQuantize : TensorOp::kDequantFp8;
        tp.note = "FP8 without scale converted with scale 1 (--unscaled cast)";
      }
    } else if (!t.dtype) {
      // 4d. A dtype bitsmith does not know: copied (safetensors) or refused.
      if (gguf_out)
        return MakeError(ErrorKind::kUnsupported, "'{}': dtype {} cannot be stored in GGUF", t.name, t.raw_dtype);
      tp.op = TensorOp::kCopy;
      tp.choice = TypeChoice::kKeptType;
      tp.note = fmt::format("dtype {} is unknown to bitsmith: copied unchanged", t.raw_dtype);
    } else {
      // 4e. Everything else.
      const DType src = *t.dtype;
      bool convert = false;
      if (wanted) {
        if (by_rule) convert = true;
        else if (IsBlock(*wanted)) convert = true;
        else if (IsFp8(*wanted)) convert = IsDefaultFp8Target(t);
        else convert = options.cast_all || gguf_in || IsBlock(src);
      }
      if (!convert && gguf_out && GetDType(src).ggml_type < 0)
        return MakeError(ErrorKind::kUnsupported, "'{}': {} cannot be stored in GGUF", t.name, tp.from_name);
      if (!convert && !gguf_out && IsBlock(src))
        return MakeError(ErrorKind::kBadUsage,
                         "'{}' is {}: safetensors cannot store GGUF block types; use --to bf16 or --to f32",
                         t.name, tp.from_name);
      if (convert) BITSMITH_RETURN_IF_ERROR(set_resolved(*wanted));
      if (tp.op == TensorOp::kCopy && convert && tp.to != src) {
        // set_resolved decided a conversion: which one?
        if (src == DType::kF64)
          return MakeError(ErrorKind::kUnsupported, "'{}': f64 tensors can only be copied", t.name);
        if (IsBlock(tp.to)) {
          tp.op = TensorOp::kQuantize;
          if (IsBlock(src)) {
            if (!options.allow_requantize) requant_refused.push_back(fmt::format("{} ({})", t.name, tp.from_name));
            const BlockCodec* c = GetBlockCodec(src);
            if (!c || !c->dequantize)
              return MakeError(ErrorKind::kUnsupported, "'{}': bitsmith cannot dequantize {} yet", t.name,
                               tp.from_name);
          }
        } else if (IsFp8(tp.to)) {
          // FP8 from any float source, a GGUF block type included (dequantized
          // first): block scales as --block says, NaN/inf refused. (Block sources
          // once went to kDequantize here: unscaled, non-saturating codes beside a
          // config.json announcing block scales -- a convert fuzz finding.)
          if (IsBlock(src)) {
            const BlockCodec* c = GetBlockCodec(src);
            if (!c || !c->dequantize)
              return MakeError(ErrorKind::kUnsupported, "'{}': bitsmith cannot dequantize {} yet", t.name,
                               tp.from_name);
          }
          tp.op = TensorOp::kQuantizeFp8;
          tp.out_block = options.block;
          if (!options.block.none()) {
            tp.out_scale_name = t.name + "_scale_inv";
            tp.out_scale_shape = BlockScaleShape(t.shape, options.block);
            if (ck.Find(tp.out_scale_name) != nullptr)
              return MakeError(ErrorKind::kBadInput, "'{}': the input already has a tensor named '{}'", t.name,
                               tp.out_scale_name);
          }
        } else if (IsBlock(src)) {
          const BlockCodec* c = GetBlockCodec(src);
          if (!c || !c->dequantize)
            return MakeError(ErrorKind::kUnsupported, "'{}': bitsmith cannot dequantize {} yet", t.name,
                             tp.from_name);
          tp.op = TensorOp::kDequantize;
        } else if (IsElementFloat(src) && IsElementFloat(tp.to)) {
          tp.op = TensorOp::kCast;
        } else {
          return MakeError(ErrorKind::kUnsupported, "'{}': cannot convert {} to {}", t.name, tp.from_name,
                           TypeName(tp.to));
        }
      }
      if (tp.op == TensorOp::kCopy) tp.to = src;
    }

    // 4f. Output bytes and the imatrix.
    if (tp.op != TensorOp::kCopy) {
      ResolvedType r;
      r.used = tp.to;
      tp.bytes_out = PlannedBytes(t, r, tp.op == TensorOp::kQuantizeFp8 ? tp.out_block : Fp8Blocking::None());
    }
    if (tp.op == TensorOp::kQuantize) {
      if (tp.to != DType::kF32 && !tp.shape.empty() && GetDType(tp.to).is_block()) {
        const BlockCodec* c = GetBlockCodec(tp.to);
        const std::vector<float>* v = p.imatrix ? p.imatrix->Find(t.name) : nullptr;
        if (v != nullptr && c->uses_imatrix) {
          BITSMITH_ASSIGN_OR_RETURN(tp.imatrix_matrices, ImatrixMatrices(*p.imatrix, t, *v));
          tp.imatrix = v;
        } else if (v == nullptr && (p.imatrix || GetDType(tp.to).requires_imatrix)) {
          p.imatrix_missing.push_back(t.name);
        }
      }
    }
    p.bytes_in += tp.bytes_in;
    p.bytes_out += tp.bytes_out;
    if (tp.fallback) ++p.fallbacks;
    p.tensors.push_back(std::move(tp));
  }
  for (size_t i : fp8.input_scales) {
    const std::string& n = in[i].name;
    const std::string w = n.substr(0, n.size() - std::string_view(".input_scale").size()) + ".weight";
    const TensorInfo* wt = ck.Find(w);
    if (wt != nullptr && dequantized[static_cast<size_t>(wt - in.data())]) {
      p.dropped.push_back({i, -1, fmt::format("activation scale of '{}', meaningless once it is dequantized", w)});
      p.bytes_in += in[i].nbytes;
    } else {
      // Kept: find where it goes (after the loop, appended as a copy).
      TensorPlan tp;
      tp.name = n;
      tp.src = i;
      tp.from = in[i].dtype;
      tp.from_name = in[i].dtype_name();
      tp.to = in[i].dtype.value_or(DType::kU8);
      tp.shape = in[i].shape;
      tp.bytes_in = tp.bytes_out = in[i].nbytes;
      p.bytes_in += tp.bytes_in;
      p.bytes_out += tp.bytes_out;
      p.tensors.push_back(std::move(tp));
    }
  }
  // Keep input order (input scales were appended).
  if (!fp8.input_scales.empty())
    std::stable_sort(p.tensors.begin(), p.tensors.end(),
                     [](const TensorPlan& a, const TensorPlan& b) { return a.src < b.src; });

  // 5. Refusals that list every tensor concerned.
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t k = 0; k < v.size() && k < 10; ++k) s += (k ? ", " : "") + v[k];
    if (v.size() > 10) s += fmt::format(", ... ({} in all)", v.size());
    return s;
  };
  if (!missing_scale.empty())
    return MakeError(ErrorKind::kBadInput,
                     "{} FP8 tensor(s) have no scale companion ('<name>_scale_inv' or '<name>_scale'): {}. "
                     "Use --unscaled keep to copy them unchanged or --unscaled cast to convert them with scale 1",
                     missing_scale.size(), list(missing_scale));
  if (!strict_refused.empty())
    return MakeError(ErrorKind::kBadInput, "--strict: {} tensor(s) would fall back to another type: {}",
                     strict_refused.size(), list(strict_refused));
  if (!requant_refused.empty())
    return MakeError(ErrorKind::kBadUsage,
                     "{} tensor(s) are already quantized: {}. Requantizing loses quality; pass --allow-requantize "
                     "to do it anyway",
                     requant_refused.size(), list(requant_refused));
  // A lone .safetensors file has no config.json to record an FP8 block size
  // other than 128x128, and readers (bitsmith's own included) then assume
  // 128x128: such an output could not be read back (convert fuzz finding: a
  // copy of a 2x4-block checkpoint into out.safetensors failed verify).
  if (p.out_kind == OutputKind::kSafetensorsFile) {
    std::vector<std::string> odd;
    bool created = false;  // --block applies to scales convert creates, not to copied ones
    for (const TensorPlan& tp : p.tensors) {
      Fp8Blocking b = Fp8Blocking::None();
      if (tp.op == TensorOp::kQuantizeFp8) b = tp.out_block;
      else if (tp.op == TensorOp::kCopy && tp.copy_scale >= 0 && tp.scale_kind == ScaleKind::kBlock)
        b = fp8.layout.block;
      if (b.none() || b == Fp8Blocking{}) continue;
      odd.push_back(fmt::format("{} ({}x{})", tp.name, b.rows, b.cols));
      created |= tp.op == TensorOp::kQuantizeFp8;
    }
    if (!odd.empty())
      return MakeError(ErrorKind::kBadUsage,
                       "{}: a single .safetensors file cannot record FP8 block scales other than 128x128 (readers "
                       "take the block size from config.json's quantization_config.weight_block_size): {} tensor(s) "
                       "would have them: {}. Convert into a directory (its config.json records the block size){}",
                       options.output, odd.size(), list(odd), created ? ", or use --block 128x128" : "");
  }
  // A conversion that would write no tensor at all (an empty checkpoint, or one
  // holding nothing but orphan scales, which are dropped) is refused: an output
  // without tensors is not a checkpoint (OpenCheckpoint and verify flag it).
  if (p.tensors.empty())
    return MakeError(ErrorKind::kBadInput, "{}: nothing to convert: the output would hold no tensors ({} tensor(s) in "
                     "the input, {} of them orphan scale tensors that convert drops)",
                     options.input, in.size(), fp8.orphans.size());
  {
    std::vector<std::string> need;
    for (const TensorPlan& tp : p.tensors)
      if (tp.op == TensorOp::kQuantize && GetDType(tp.to).requires_imatrix && tp.imatrix == nullptr)
        need.push_back(fmt::format("{} ({})", tp.name, TypeName(tp.to)));
    if (!need.empty())
      return MakeError(ErrorKind::kBadUsage, "{} tensor(s) need an importance matrix for their type and {}: {}",
                       need.size(), p.imatrix ? "have no entry in " + p.imatrix->path : "no --imatrix was given",
                       list(need));
  }
  if (p.imatrix && !p.imatrix_missing.empty())
    p.warnings.push_back(fmt::format("{} quantized tensor(s) have no imatrix entry and are quantized without one: {}",
                                     p.imatrix_missing.size(), list(p.imatrix_missing)));

  // 6. Output specs in order: each tensor, then its created or copied scale.
  std::vector<OutSpec> specs;
  specs.reserve(p.tensors.size() + fp8.scaled.size());
  for (size_t k = 0; k < p.tensors.size(); ++k) {
    const TensorPlan& tp = p.tensors[k];
    const TensorInfo& t = in[tp.src];
    OutSpec s{k, tp.name, tp.to, "", tp.shape, 0};
    if (tp.op == TensorOp::kCopy && !t.dtype) s.st_dtype = t.raw_dtype;
    specs.push_back(std::move(s));
    if (!tp.out_scale_name.empty()) specs.push_back({k, tp.out_scale_name, DType::kF32, "", tp.out_scale_shape, 1});
    if (tp.copy_scale >= 0) {
      const TensorInfo& st = in[static_cast<size_t>(tp.copy_scale)];
      specs.push_back({k, st.name, *st.dtype, "", st.shape, 1});
    }
  }

  // 7. Lay out the files.
  const std::string out_dir =
      p.out_kind == OutputKind::kDirectory ? options.output : fs::path(options.output).parent_path().string();
  std::vector<PlannedFile> planned;
  if (gguf_out) {
    std::vector<GgufKV> kv;
    uint32_t version = 3;
    bool changed = false;
    for (const TensorPlan& tp : p.tensors) changed |= tp.op != TensorOp::kCopy;
    if (gguf_in) {
      version = ck.gguf[0].version;
      for (const GgufKV& e : ck.gguf[0].kv)
        if (e.key.rfind("split.", 0) != 0) kv.push_back(e);
    } else {
      kv.push_back({"general.name", GgufValue::Str(fs::path(ck.path).filename().string())});
      if (config) AddConfigKv(*config, kv);
      p.container_note =
          "safetensors -> GGUF is a container conversion: tensor names are kept as in the input and "
          "config.json scalars become 'config.*' metadata, so llama.cpp's model loader (which needs its own "
          "architecture, tensor names and tokenizer metadata) cannot load it yet";
    }
    if (changed) {
      // general.file_type: the type holding most parameters among converted tensors.
      std::map<DType, uint64_t> params;
      for (const TensorPlan& tp : p.tensors)
        if (tp.op != TensorOp::kCopy) params[tp.to] += in[tp.src].elements();
      DType main = DType::kF32;
      uint64_t best = 0;
      for (const auto& [d, n] : params)
        if (n > best && d != DType::kF32) best = n, main = d;
      if (auto ft = LlamaFileType(main)) SetKv(kv, "general.file_type", GgufValue::U32(*ft));
      if (IsBlock(main)) SetKv(kv, "general.quantization_version", GgufValue::U32(2));  // GGML_QNT_VERSION
    }
    std::vector<GgufTensorSpec> gs;
    for (const OutSpec& s : specs) {
      GgufTensorSpec g;
      g.name = s.name;
      // A scalar (shape []) keeps n_dims 0, which ggml's reader takes as one
      // element: a GGUF tensor stored with n_dims 0 is rewritten as it was (it
      // came back as [1] before, and verify rightly flagged the changed shape:
      // a convert fuzz finding).
      g.ne.assign(s.shape.rbegin(), s.shape.rend());
      g.ggml_type = GetDType(s.dtype).ggml_type;
      if (g.ggml_type < 0)
        return MakeError(ErrorKind::kUnsupported, "'{}': {} cannot be stored in GGUF", s.name, TypeName(s.dtype));
      gs.push_back(std::move(g));
    }
    if (options.split_max_size != 0) {
      BITSMITH_ASSIGN_OR_RETURN(planned, PlanGgufSplit(options.output, version, kv, gs, options.split_max_size));
    } else {
      BITSMITH_ASSIGN_OR_RETURN(PlannedFile f, PlanGguf(options.output, version, kv, gs));
      planned.push_back(std::move(f));
    }
  } else {
    // safetensors: metadata from the input (GGUF: every KV as a string).
    std::optional<std::vector<std::pair<std::string, std::string>>> meta;
    if (gguf_in) {
      meta.emplace();
      for (const GgufKV& e : ck.gguf[0].kv)
        if (e.key.rfind("split.", 0) != 0) meta->emplace_back(e.key, GgufValueText(e.value));
    } else if (!ck.shards.empty() && ck.shards[0].has_metadata) {
      meta = ck.shards[0].metadata;
    }
    std::vector<SafetensorsTensorSpec> st;
    std::vector<size_t> file_of;  // input file of each spec
    st.reserve(specs.size());
    file_of.reserve(specs.size());
    for (OutSpec& s : specs) {  // names and shapes moved: only `plan` is used below
      if (!s.st_dtype.empty()) {
        st.push_back({std::move(s.name), std::move(s.st_dtype), std::move(s.shape)});
      } else {
        BITSMITH_ASSIGN_OR_RETURN(SafetensorsTensorSpec sp,
                                  SafetensorsSpec(std::move(s.name), s.dtype, std::move(s.shape)));
        st.push_back(std::move(sp));
      }
      file_of.push_back(static_cast<size_t>(in[p.tensors[s.plan].src].file_index));
    }
    if (p.out_kind == OutputKind::kSafetensorsFile) {
      BITSMITH_ASSIGN_OR_RETURN(PlannedFile f, PlanSafetensors(options.output, st, meta));
      planned.push_back(std::move(f));
    } else {
      std::vector<std::pair<std::string, std::vector<SafetensorsTensorSpec>>> groups;
      const bool sharded_in = !gguf_in && (ck.index.has_value() || ck.files.size() > 1);
      p.mirrors_shards = sharded_in && options.max_shard_size == 0;
      if (p.mirrors_shards) {
        // One output shard per input shard, same basename (as fp8_cast_bf16 does).
        groups.resize(ck.files.size());
        for (size_t f = 0; f < ck.files.size(); ++f) groups[f].first = fs::path(ck.files[f]).filename().string();
        for (size_t k = 0; k < st.size(); ++k) groups[file_of[k]].second.push_back(std::move(st[k]));
      } else {
        // transformers' rule (GroupIntoShards), with a weight and its scale as
        // one unit so that they share a shard.
        const uint64_t max = options.max_shard_size ? options.max_shard_size : kSafetensorsDefaultShardSize;
        std::vector<size_t> unit_begin;  // the first spec of each unit
        std::vector<uint64_t> unit_bytes;
        for (size_t k = 0; k < specs.size(); ++k)
          if (k == 0 || specs[k].plan != specs[k - 1].plan) {
            unit_begin.push_back(k);
            unit_bytes.push_back(p.tensors[specs[k].plan].bytes_out);
          }
        unit_begin.push_back(specs.size());
        std::vector<std::pair<size_t, size_t>> ranges = GroupIntoShards(unit_bytes, max);
        for (auto& [b, e] : ranges) b = unit_begin[b], e = unit_begin[e];  // units -> specs
        for (size_t g = 0; g < ranges.size(); ++g)
          groups.emplace_back(ranges.size() == 1 ? "model.safetensors" : ShardFileName("model", g + 1, ranges.size()),
                              std::vector<SafetensorsTensorSpec>(
                                  std::make_move_iterator(st.begin() + ranges[g].first),
                                  std::make_move_iterator(st.begin() + ranges[g].second)));
      }
      std::vector<std::pair<std::string, std::string>> index_meta;
      if (ck.index)
        for (const auto& [k, v] : ck.index->metadata)
          if (k != "total_size") index_meta.emplace_back(k, v);
      BITSMITH_ASSIGN_OR_RETURN(SafetensorsShardPlan sp, PlanSafetensorsShards(out_dir, groups, meta, index_meta));
      planned = std::move(sp.shards);
      if (!sp.index_path.empty()) {
        p.index_name = fs::path(sp.index_path).filename().string();
        p.index_json = std::move(sp.index_json);
      }
    }
  }

  // 8. Where every tensor goes: (file, planned tensor) per spec.
  //    (Pointers into the planned tensors: moving a PlannedFile keeps their storage.)
  using Where = std::pair<int, const PlannedTensor*>;
  std::vector<Where> loc(specs.size(), Where{-1, nullptr});
  {
    // The writers keep the order they were given: the specs in order, or, for
    // a mirrored directory output, grouped by input shard in order. Walk the
    // planned files in that order, checking every name; anything unexpected
    // falls back to a lookup by name.
    std::vector<size_t> order(specs.size());
    if (p.mirrors_shards && !gguf_out) {
      std::vector<size_t> start(ck.files.size() + 1, 0);
      for (const OutSpec& s : specs) ++start[static_cast<size_t>(in[p.tensors[s.plan].src].file_index) + 1];
      for (size_t f = 1; f < start.size(); ++f) start[f] += start[f - 1];
      for (size_t i = 0; i < specs.size(); ++i)
        order[start[static_cast<size_t>(in[p.tensors[specs[i].plan].src].file_index)]++] = i;
    } else {
      for (size_t i = 0; i < specs.size(); ++i) order[i] = i;
    }
    auto spec_name = [&](const OutSpec& s) -> const std::string& {
      const TensorPlan& tp = p.tensors[s.plan];
      return s.part == 0 ? tp.name : !tp.out_scale_name.empty() ? tp.out_scale_name : tp.copy_scale_name;
    };
    size_t pos = 0;
    bool in_order = true;
    for (size_t f = 0; f < planned.size() && in_order; ++f)
      for (const PlannedTensor& t : planned[f].tensors) {
        if (pos == order.size() || t.name != spec_name(specs[order[pos]])) {
          in_order = false;
          break;
        }
        loc[order[pos++]] = {static_cast<int>(f), &t};
      }
    if (!in_order || pos != order.size()) {
      std::unordered_map<std::string_view, Where> where;
      where.reserve(specs.size());
      for (size_t f = 0; f < planned.size(); ++f)
        for (const PlannedTensor& t : planned[f].tensors) where[t.name] = {static_cast<int>(f), &t};
      for (size_t i = 0; i < specs.size(); ++i) {
        auto it = where.find(spec_name(specs[i]));
        loc[i] = it == where.end() ? Where{-1, nullptr} : it->second;
      }
    }
  }
  p.files.resize(planned.size());
  for (size_t f = 0; f < planned.size(); ++f) {
    p.files[f].name = fs::path(planned[f].path).filename().string();
    p.file_bytes_out += planned[f].size;
    p.files[f].planned = std::move(planned[f]);
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    TensorPlan& tp = p.tensors[specs[i].plan];
    const auto [file, t] = loc[i];
    if (specs[i].part == 0) {
      if (t == nullptr) return MakeError(ErrorKind::kInternal, "'{}' missing from the output layout", tp.name);
      tp.out_file = file;
      tp.out_offset = t->offset;
      p.files[static_cast<size_t>(tp.out_file)].tensors.push_back(specs[i].plan);
    } else {
      const std::string& sn = !tp.out_scale_name.empty() ? tp.out_scale_name : tp.copy_scale_name;
      if (t == nullptr) return MakeError(ErrorKind::kInternal, "'{}' missing from the output layout", sn);
      // A scale may land in another shard than its weight (shard limits):
      // the pipeline writes part 1 into the scale's own file.
      tp.out_scale_offset = t->offset;
      tp.out_scale_bytes = t->nbytes;
      if (file != tp.out_file)
        return MakeError(ErrorKind::kInternal, "'{}' and its scale were laid out in different files", tp.name);
    }
  }

  // 9. Non-weight files (directory outputs from safetensors inputs).
  bool any_dequant = false, any_fp8_out = false;
  for (const TensorPlan& tp : p.tensors) {
    any_dequant |= tp.op == TensorOp::kDequantFp8 || (tp.op == TensorOp::kQuantize && tp.scale >= 0);
    any_fp8_out |= tp.op == TensorOp::kQuantizeFp8 && !tp.out_block.none();
  }
  if (p.out_kind == OutputKind::kDirectory) {
    bool wrote_config = false;
    for (const std::string& f : ck.extra_files) {
      ExtraFilePlan e;
      e.name = fs::path(f).filename().string();
      e.source = f;
      if (e.name == "config.json" && config) {
        if (any_fp8_out) {
          e.content = ConfigWithFp8(*config, options.to.value_or(DType::kE4M3FN), options.block).dump(2) + "\n";
          e.note = "quantization_config written (fp8, weight_block_size)";
        } else if (any_dequant && config->contains("quantization_config")) {
          e.content = ConfigWithoutQuantization(*config).dump(2) + "\n";
          e.note = "quantization_config removed";
        }
        wrote_config = true;
      }
      p.extras.push_back(std::move(e));
    }
    if (any_fp8_out && !wrote_config) {
      ExtraFilePlan e;
      e.name = "config.json";
      e.content = ConfigWithFp8(nlohmann::ordered_json::object(), options.to.value_or(DType::kE4M3FN), options.block)
                      .dump(2) + "\n";
      e.note = "created with quantization_config only (the input has no config.json)";
      p.extras.push_back(std::move(e));
    }
    for (const ExtraFilePlan& e : p.extras)
      for (const OutputFilePlan& f : p.files)
        if (f.name == e.name || e.name == p.index_name)
          return MakeError(ErrorKind::kBadInput, "'{}': an extra file has the name of an output weight file", e.name);
  } else if (!ck.extra_files.empty() && !gguf_out) {
    p.warnings.push_back(fmt::format("a single-file output: the {} non-weight file(s) beside the input (config.json, "
                                     "tokenizer, ...) are not copied",
                                     ck.extra_files.size()));
  }
  return p;
}

namespace {

// Text that nlohmann's dump(2) writes, produced piece by piece into `out`.
class PrettyJson {
 public:
  explicit PrettyJson(std::string& out) : out_(out) {}
  void Put(std::string_view s) { out_.append(s); }
  void Indent(int depth) { out_.append(2 * static_cast<size_t>(depth), ' '); }
  void Key(std::string_view k, int depth) {
    Indent(depth);
    AppendJsonQuoted(out_, k);
    out_.append(": ");
  }
  void String(std::string_view s) {
    std::string scratch;
    AppendJsonQuoted(out_, Utf8OrPrintable(s, scratch));
  }
  void Unsigned(uint64_t v) {
    char buf[24];
    const auto r = fmt::format_to_n(buf, sizeof(buf), "{}", v);
    out_.append(buf, r.size);
  }
  void Value(const nlohmann::json& j, int depth) { AppendIndentedDump(out_, j, depth); }

 private:
  std::string& out_;
};

}  // namespace

const std::string& DroppedName(const ConversionPlan& p, const DroppedTensor& d) {
  return p.input.tensors[d.src].name;
}

std::string DroppedReason(const ConversionPlan& p, const DroppedTensor& d) {
  if (d.scale_of < 0) return d.reason;
  const std::string& w = p.input.tensors[static_cast<size_t>(d.scale_of)].name;
  std::string r;
  r.reserve(w.size() + 45);
  r.append("scale of '").append(w).append("', applied while dequantizing it");
  return r;
}

void WritePlanJson(const ConversionPlan& p, const nlohmann::json& extra,
                   const std::function<void(std::string_view)>& sink) {
  using json = nlohmann::json;
  std::string out;
  PrettyJson w(out);
  auto flush = [&](bool force) {
    if (!force && out.size() < (size_t{1} << 20)) return;
    sink(out);
    out.clear();
  };
  // Top-level members in nlohmann::json's (sorted) key order: the small ones as
  // json values, the two that grow with the tensor count written directly.
  std::map<std::string, std::function<void()>> members;
  auto small = [&](const std::string& key, json v) { members[key] = [&w, v = std::move(v)] { w.Value(v, 1); }; };
  small("input", Utf8OrPrintable(p.options.input));
  small("output", Utf8OrPrintable(p.out_path));
  small("input_format", p.input.format == FileFormat::kGguf ? "gguf" : "safetensors");
  small("output_format", p.out_kind == OutputKind::kGguf               ? "gguf"
                         : p.out_kind == OutputKind::kSafetensorsFile ? "safetensors"
                                                                       : "safetensors-dir");
  small("fp8_layout", Utf8OrPrintable(p.fp8.layout.Describe()));
  members["tensors"] = [&] {
    if (p.tensors.empty()) return w.Put("[]");
    w.Put("[\n");
    for (size_t i = 0; i < p.tensors.size(); ++i) {
      const TensorPlan& tp = p.tensors[i];
      // {"bytes_in", "bytes_out", "fallback", "file", "from", "name", "note"?, "op",
      //  "rule"?, "scale"?, "scale_in"?, "shape", "to"}: sorted, as nlohmann orders them.
      w.Indent(2);
      w.Put("{\n");
      w.Key("bytes_in", 3), w.Unsigned(tp.bytes_in), w.Put(",\n");
      w.Key("bytes_out", 3), w.Unsigned(tp.bytes_out), w.Put(",\n");
      w.Key("fallback", 3);
      if (tp.fallback) w.String(tp.note);
      else w.Put("null");
      w.Put(",\n");
      w.Key("file", 3);
      w.String(p.files.empty() || tp.out_file < 0 ? std::string_view()
                                                  : std::string_view(p.files[static_cast<size_t>(tp.out_file)].name));
      w.Put(",\n");
      w.Key("from", 3), w.String(tp.from_name), w.Put(",\n");
      w.Key("name", 3), w.String(tp.name), w.Put(",\n");
      if (!tp.note.empty()) w.Key("note", 3), w.String(tp.note), w.Put(",\n");
      w.Key("op", 3), w.String(TensorOpName(tp.op)), w.Put(",\n");
      if (!tp.rule.empty()) w.Key("rule", 3), w.String(tp.rule), w.Put(",\n");
      if (!tp.out_scale_name.empty()) w.Key("scale", 3), w.String(tp.out_scale_name), w.Put(",\n");
      if (tp.scale >= 0)
        w.Key("scale_in", 3), w.String(p.input.tensors[static_cast<size_t>(tp.scale)].name), w.Put(",\n");
      w.Key("shape", 3);
      if (tp.shape.empty()) {
        w.Put("[]");
      } else {
        w.Put("[\n");
        for (size_t d = 0; d < tp.shape.size(); ++d) {
          w.Indent(4);
          w.Unsigned(tp.shape[d]);
          w.Put(d + 1 < tp.shape.size() ? ",\n" : "\n");
        }
        w.Indent(3);
        w.Put("]");
      }
      w.Put(",\n");
      w.Key("to", 3);
      w.String(tp.op == TensorOp::kCopy && !tp.from ? std::string_view(tp.from_name) : GetDType(tp.to).name);
      w.Put("\n");
      w.Indent(2);
      w.Put(i + 1 < p.tensors.size() ? "},\n" : "}\n");
      flush(false);
    }
    w.Indent(1);
    w.Put("]");
  };
  members["dropped"] = [&] {
    if (p.dropped.empty()) return w.Put("[]");
    w.Put("[\n");
    for (size_t i = 0; i < p.dropped.size(); ++i) {
      const DroppedTensor& d = p.dropped[i];
      w.Indent(2);
      w.Put("{\n");
      w.Key("name", 3), w.String(DroppedName(p, d)), w.Put(",\n");
      w.Key("reason", 3), w.String(DroppedReason(p, d)), w.Put("\n");
      w.Indent(2);
      w.Put(i + 1 < p.dropped.size() ? "},\n" : "}\n");
      flush(false);
    }
    w.Indent(1);
    w.Put("]");
  };
  json files = json::array();
  for (const OutputFilePlan& f : p.files)
    files.push_back({{"name", Utf8OrPrintable(f.name)}, {"bytes", f.planned.size}, {"tensors", f.tensors.size()}});
  small("files", std::move(files));
  json extras = json::array();
  for (const ExtraFilePlan& e : p.extras)
    extras.push_back({{"name", Utf8OrPrintable(e.name)}, {"note", Utf8OrPrintable(e.note)}});
  small("extra_files", std::move(extras));
  if (!p.index_name.empty()) small("index", Utf8OrPrintable(p.index_name));
  json warnings = json::array();
  for (const std::string& s : p.warnings) warnings.push_back(Utf8OrPrintable(s));
  small("warnings", std::move(warnings));
  small("totals", {{"tensors", p.tensors.size()},
                   {"dropped", p.dropped.size()},
                   {"bytes_in", p.bytes_in},
                   {"bytes_out", p.bytes_out},
                   {"file_bytes_out", p.file_bytes_out},
                   {"fallbacks", p.fallbacks}});
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) small(k, v);

  w.Put("{\n");
  size_t k = 0;
  for (const auto& [key, write] : members) {
    w.Key(key, 1);
    write();
    w.Put(++k < members.size() ? ",\n" : "\n");
    flush(false);
  }
  w.Put("}");
  flush(true);
}

std::string PlanJsonText(const ConversionPlan& plan, const nlohmann::json& extra) {
  std::string text;
  WritePlanJson(plan, extra, [&](std::string_view s) { text.append(s); });
  return text;
}

}  // namespace bitsmith
