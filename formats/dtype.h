// Storage types: what a tensor in a weight file is made of.
//
// One table row per type a tensor can have: the element formats (one value per
// code), plain integer/bool storage types, and the block formats (a fixed number
// of elements sharing scales in a fixed number of bytes). A row gives the
// lower-case bitsmith name, the block geometry, ggml's type id (GGUF) and the
// safetensors dtype string where they exist. Sizes of every tensor in every file
// and every "what would it weigh" figure come from here, after ggml's
// designated-initializer type_traits[] (ggml/src/ggml.c).
//
// Block layouts (the structs, value formulas and pack/unpack helpers) live in
// formats/blocks.h; the codecs behind each row live in codecs/.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "formats/element_format.h"

namespace bitsmith {

enum class DType : uint8_t {
  // Element formats (same order as ElementFormatId).
  kF32, kF16, kBF16, kE4M3FN, kE5M2, kE4M3FNUZ, kE5M2FNUZ, kE4M3B11FNUZ, kE8M0FNU,
  kE3M2FN, kE2M3FN, kE2M1FN, kI8, kU8, kI4, kU4,
  // Other plain storage types.
  kF64, kI16, kI32, kI64, kU16, kU32, kU64, kBool,
  // ggml block types.
  kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ8_1, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kQ8_K,
  kIQ2_XXS, kIQ2_XS, kIQ3_XXS, kIQ1_S, kIQ4_NL, kIQ3_S, kIQ2_S, kIQ4_XS, kIQ1_M,
  kTQ1_0, kTQ2_0, kMXFP4,
  // OCP Microscaling (MX v1.0) and NVIDIA NVFP4 blocks (no ggml type id).
  kMXFP8_E4M3, kMXFP8_E5M2, kMXFP6_E3M2, kMXFP6_E2M3, kMXINT8, kMXFP4_OCP, kNVFP4,
  kCount
};
inline constexpr int kNumDTypes = static_cast<int>(DType::kCount);

enum class DTypeKind : uint8_t {
  kFloat,  // element float format (decodable to f32)
  kInt,    // integer or bool storage
  kBlock,  // block format: block_elems elements in block_bytes bytes
};

struct DTypeInfo {
  DType id;
  std::string_view name;         // bitsmith's lower-case name ("q4_k", "e4m3fn")
  DTypeKind kind;
  int block_elems;               // elements per block (1 for plain types)
  int block_bytes;               // bytes per block
  int ggml_type;                 // ggml_type enum value, -1 when ggml has none
  std::string_view safetensors;  // safetensors dtype string, empty when none
  std::optional<ElementFormatId> element;  // for element formats
  bool requires_imatrix;         // ggml_quantize_requires_imatrix()
  std::string_view summary;

  constexpr bool is_block() const { return kind == DTypeKind::kBlock; }
  // Bits per weight, scales included (e.g. q4_k: 144*8/256 = 4.5).
  constexpr double bits_per_weight() const { return 8.0 * block_bytes / block_elems; }
};

namespace dtype_detail {
constexpr DTypeInfo Elem(DType id, std::string_view name, int bytes, int ggml, std::string_view st,
                         ElementFormatId ef, std::string_view summary) {
  return {id, name, ef == ElementFormatId::kInt8 || ef == ElementFormatId::kUint8 ||
                            ef == ElementFormatId::kInt4 || ef == ElementFormatId::kUint4
                        ? DTypeKind::kInt : DTypeKind::kFloat,
          1, bytes, ggml, st, ef, false, summary};
}
constexpr DTypeInfo Plain(DType id, std::string_view name, DTypeKind kind, int bytes, int ggml,
                          std::string_view st, std::string_view summary) {
  return {id, name, kind, 1, bytes, ggml, st, std::nullopt, false, summary};
}
constexpr DTypeInfo Block(DType id, std::string_view name, int elems, int bytes, int ggml,
                          bool requires_imatrix, std::string_view summary) {
  return {id, name, DTypeKind::kBlock, elems, bytes, ggml, "", std::nullopt, requires_imatrix,
          summary};
}
using E = ElementFormatId;
}  // namespace dtype_detail

// The table. Row order = DType order (checked below). ggml ids: ggml.h enum ggml_type.
// Element formats of fewer than 8 bits (e3m2fn, e2m3fn, e2m1fn, int4, uint4) are
// stored one code per byte here (the raw-array convention of `encode`/`decode`).
inline constexpr std::array<DTypeInfo, kNumDTypes> kDTypes = [] {
  using namespace dtype_detail;
  using D = DType;
  return std::array<DTypeInfo, kNumDTypes>{{
      Elem(D::kF32, "f32", 4, 0, "F32", E::kF32, "IEEE binary32"),
      Elem(D::kF16, "f16", 2, 1, "F16", E::kF16, "IEEE binary16"),
      Elem(D::kBF16, "bf16", 2, 30, "BF16", E::kBF16, "bfloat16"),
      Elem(D::kE4M3FN, "e4m3fn", 1, -1, "F8_E4M3", E::kE4M3FN, "FP8 E4M3 (OCP)"),
      Elem(D::kE5M2, "e5m2", 1, -1, "F8_E5M2", E::kE5M2, "FP8 E5M2 (OCP)"),
      Elem(D::kE4M3FNUZ, "e4m3fnuz", 1, -1, "", E::kE4M3FNUZ, "FP8 E4M3 FNUZ"),
      Elem(D::kE5M2FNUZ, "e5m2fnuz", 1, -1, "", E::kE5M2FNUZ, "FP8 E5M2 FNUZ"),
      Elem(D::kE4M3B11FNUZ, "e4m3b11fnuz", 1, -1, "", E::kE4M3B11FNUZ, "FP8 E4M3 bias 11 FNUZ"),
      Elem(D::kE8M0FNU, "e8m0fnu", 1, -1, "F8_E8M0", E::kE8M0FNU, "E8M0 power-of-two scale"),
      Elem(D::kE3M2FN, "e3m2fn", 1, -1, "", E::kE3M2FN, "FP6 E3M2, one code per byte"),
      Elem(D::kE2M3FN, "e2m3fn", 1, -1, "", E::kE2M3FN, "FP6 E2M3, one code per byte"),
      Elem(D::kE2M1FN, "e2m1fn", 1, -1, "", E::kE2M1FN, "FP4 E2M1, one code per byte"),
      Elem(D::kI8, "int8", 1, 24, "I8", E::kInt8, "signed 8-bit integer"),
      Elem(D::kU8, "uint8", 1, -1, "U8", E::kUint8, "unsigned 8-bit integer"),
      Elem(D::kI4, "int4", 1, -1, "", E::kInt4, "signed 4-bit integer, one per byte"),
      Elem(D::kU4, "uint4", 1, -1, "", E::kUint4, "unsigned 4-bit integer, one per byte"),
      Plain(D::kF64, "f64", DTypeKind::kFloat, 8, 28, "F64", "IEEE binary64"),
      Plain(D::kI16, "int16", DTypeKind::kInt, 2, 25, "I16", "signed 16-bit integer"),
      Plain(D::kI32, "int32", DTypeKind::kInt, 4, 26, "I32", "signed 32-bit integer"),
      Plain(D::kI64, "int64", DTypeKind::kInt, 8, 27, "I64", "signed 64-bit integer"),
      Plain(D::kU16, "uint16", DTypeKind::kInt, 2, -1, "U16", "unsigned 16-bit integer"),
      Plain(D::kU32, "uint32", DTypeKind::kInt, 4, -1, "U32", "unsigned 32-bit integer"),
      Plain(D::kU64, "uint64", DTypeKind::kInt, 8, -1, "U64", "unsigned 64-bit integer"),
      Plain(D::kBool, "bool", DTypeKind::kInt, 1, -1, "BOOL", "boolean, one byte"),
      Block(D::kQ4_0, "q4_0", 32, 18, 2, false, "ggml Q4_0: fp16 d, 4-bit levels"),
      Block(D::kQ4_1, "q4_1", 32, 20, 3, false, "ggml Q4_1: fp16 d and m, 4-bit levels"),
      Block(D::kQ5_0, "q5_0", 32, 22, 6, false, "ggml Q5_0: fp16 d, 5-bit levels"),
      Block(D::kQ5_1, "q5_1", 32, 24, 7, false, "ggml Q5_1: fp16 d and m, 5-bit levels"),
      Block(D::kQ8_0, "q8_0", 32, 34, 8, false, "ggml Q8_0: fp16 d, int8 levels"),
      Block(D::kQ8_1, "q8_1", 32, 36, 9, false, "ggml Q8_1 (activations): fp16 d and sum"),
      Block(D::kQ2_K, "q2_k", 256, 84, 10, false, "ggml Q2_K: 16x16, 4-bit scale+min, 2-bit"),
      Block(D::kQ3_K, "q3_k", 256, 110, 11, false, "ggml Q3_K: 16x16, 6-bit scales, 3-bit"),
      Block(D::kQ4_K, "q4_k", 256, 144, 12, false, "ggml Q4_K: 8x32, 6-bit scale+min, 4-bit"),
      Block(D::kQ5_K, "q5_k", 256, 176, 13, false, "ggml Q5_K: 8x32, 6-bit scale+min, 5-bit"),
      Block(D::kQ6_K, "q6_k", 256, 210, 14, false, "ggml Q6_K: 16x16, int8 scales, 6-bit"),
      Block(D::kQ8_K, "q8_k", 256, 292, 15, false, "ggml Q8_K (activations): f32 d, int8"),
      Block(D::kIQ2_XXS, "iq2_xxs", 256, 66, 16, true, "ggml IQ2_XXS: E8 lattice, 2.06 bpw"),
      Block(D::kIQ2_XS, "iq2_xs", 256, 74, 17, true, "ggml IQ2_XS: E8 lattice, 2.31 bpw"),
      Block(D::kIQ3_XXS, "iq3_xxs", 256, 98, 18, false, "ggml IQ3_XXS: D4 lattice, 3.06 bpw"),
      Block(D::kIQ1_S, "iq1_s", 256, 50, 19, true, "ggml IQ1_S: 1.56 bpw"),
      Block(D::kIQ4_NL, "iq4_nl", 32, 18, 20, false, "ggml IQ4_NL: non-linear 4-bit"),
      Block(D::kIQ3_S, "iq3_s", 256, 110, 21, false, "ggml IQ3_S: 3.44 bpw"),
      Block(D::kIQ2_S, "iq2_s", 256, 82, 22, false, "ggml IQ2_S: 2.56 bpw"),
      Block(D::kIQ4_XS, "iq4_xs", 256, 136, 23, false, "ggml IQ4_XS: non-linear 4-bit, 6-bit scales"),
      Block(D::kIQ1_M, "iq1_m", 256, 56, 29, false, "ggml IQ1_M: 1.75 bpw"),
      Block(D::kTQ1_0, "tq1_0", 256, 54, 34, false, "ggml TQ1_0: ternary, base-3 packed"),
      Block(D::kTQ2_0, "tq2_0", 256, 66, 35, false, "ggml TQ2_0: ternary, 2-bit"),
      Block(D::kMXFP4, "mxfp4", 32, 17, 39, false, "ggml MXFP4: E8M0 scale + 32 E2M1"),
      Block(D::kMXFP8_E4M3, "mxfp8_e4m3", 32, 33, -1, false, "OCP MXFP8: E8M0 + 32 E4M3"),
      Block(D::kMXFP8_E5M2, "mxfp8_e5m2", 32, 33, -1, false, "OCP MXFP8: E8M0 + 32 E5M2"),
      Block(D::kMXFP6_E3M2, "mxfp6_e3m2", 32, 25, -1, false, "OCP MXFP6: E8M0 + 32 packed E3M2"),
      Block(D::kMXFP6_E2M3, "mxfp6_e2m3", 32, 25, -1, false, "OCP MXFP6: E8M0 + 32 packed E2M3"),
      Block(D::kMXINT8, "mxint8", 32, 33, -1, false, "OCP MXINT8: E8M0 + 32 int8 (1.6 fixed)"),
      Block(D::kMXFP4_OCP, "mxfp4_ocp", 32, 17, -1, false, "OCP MXFP4 (RNE): E8M0 + 32 E2M1"),
      Block(D::kNVFP4, "nvfp4", 16, 9, -1, false, "NVFP4: E4M3 scale + 16 E2M1 (+ f32 tensor scale)"),
  }};
}();

namespace dtype_detail {
constexpr bool InOrder() {
  for (int i = 0; i < kNumDTypes; ++i)
    if (static_cast<int>(kDTypes[i].id) != i) return false;
  for (int i = 0; i < kNumElementFormats; ++i)  // element rows mirror ElementFormatId
    if (!kDTypes[i].element || static_cast<int>(*kDTypes[i].element) != i) return false;
  return true;
}
}  // namespace dtype_detail
static_assert(dtype_detail::InOrder(), "kDTypes rows must follow DType order");

constexpr const DTypeInfo& GetDType(DType t) { return kDTypes[static_cast<int>(t)]; }
constexpr DType DTypeOf(ElementFormatId e) { return static_cast<DType>(static_cast<int>(e)); }

static_assert(GetDType(DType::kQ4_K).bits_per_weight() == 4.5);
static_assert(GetDType(DType::kQ2_K).bits_per_weight() == 2.625);
static_assert(GetDType(DType::kQ6_K).bits_per_weight() == 6.5625);

// Lookups. Names are lower case; FindDType also accepts upper-case ggml spellings
// ("Q4_K", "IQ2_XXS") and ml_dtypes names ("float8_e4m3fn"). nullopt if unknown.
std::optional<DType> FindDType(std::string_view name);
std::optional<DType> DTypeFromGgml(int ggml_type);
std::optional<DType> DTypeFromSafetensors(std::string_view st_dtype);

// Bytes of a row of n elements; nullopt when n is not a multiple of the block size.
std::optional<uint64_t> RowBytes(DType t, uint64_t n);

// ggml's name for a type id ("q4_K", "bf16"), including ids bitsmith has no row
// for (removed ids 4, 5, 31-33, 36-38 give nullopt).
std::optional<std::string_view> GgmlTypeName(int ggml_type);
inline constexpr int kGgmlTypeCount = 40;  // GGML_TYPE_COUNT at ggml d99724f2

}  // namespace bitsmith
