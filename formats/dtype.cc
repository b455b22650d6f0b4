#include "formats/dtype.h"

#include <cctype>
#include <string>

namespace bitsmith {

std::optional<DType> FindDType(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const DTypeInfo& t : kDTypes)
    if (t.name == lower) return t.id;
  if (const ElementFormat* f = FindElementFormat(lower)) return DTypeOf(f->id);
  // A few spellings users type: fp32, fp16, float32, i8, u8, f8_e4m3 ...
  static constexpr std::pair<std::string_view, DType> kAliases[] = {
      {"fp32", DType::kF32}, {"float32", DType::kF32}, {"fp16", DType::kF16},
      {"float16", DType::kF16}, {"half", DType::kF16}, {"bfloat16", DType::kBF16},
      {"fp64", DType::kF64}, {"float64", DType::kF64}, {"i8", DType::kI8}, {"u8", DType::kU8},
      {"i16", DType::kI16}, {"i32", DType::kI32}, {"i64", DType::kI64},
      {"f8_e4m3", DType::kE4M3FN}, {"f8_e5m2", DType::kE5M2}, {"f8_e8m0", DType::kE8M0FNU},
  };
  for (auto& [alias, t] : kAliases)
    if (alias == lower) return t;
  return std::nullopt;
}

std::optional<DType> DTypeFromGgml(int ggml_type) {
  if (ggml_type < 0) return std::nullopt;
  for (const DTypeInfo& t : kDTypes)
    if (t.ggml_type == ggml_type) return t.id;
  return std::nullopt;
}

std::optional<DType> DTypeFromSafetensors(std::string_view st) {
  if (st.empty()) return std::nullopt;
  for (const DTypeInfo& t : kDTypes)
    if (t.safetensors == st) return t.id;
  return std::nullopt;
}

std::optional<uint64_t> RowBytes(DType t, uint64_t n) {
  const DTypeInfo& info = GetDType(t);
  if (n % static_cast<uint64_t>(info.block_elems) != 0) return std::nullopt;
  return n / static_cast<uint64_t>(info.block_elems) * static_cast<uint64_t>(info.block_bytes);
}

std::optional<std::string_view> GgmlTypeName(int ggml_type) {
  // ggml's own spelling (ggml.c type_traits[].type_name).
  static constexpr std::string_view kNames[kGgmlTypeCount] = {
      "f32", "f16", "q4_0", "q4_1", "", "", "q5_0", "q5_1", "q8_0", "q8_1",
      "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
      "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m",
      "bf16", "", "", "", "tq1_0", "tq2_0", "", "", "", "mxfp4"};
  if (ggml_type < 0 || ggml_type >= kGgmlTypeCount || kNames[ggml_type].empty()) return std::nullopt;
  return kNames[ggml_type];
}

}  // namespace bitsmith
