#include "support/malformed_files.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <tuple>

#include <fmt/format.h>

#include "codecs/element.h"
#include "codecs/quant.h"
#include "formats/dtype.h"

namespace bitsmith::test {

// ---------------------------------------------------------------------------
// Builders.

std::vector<uint8_t> StBytes(const std::string& header, const std::vector<uint8_t>& data, bool pad) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8);
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<uint8_t> StBytes(const std::string& header, size_t data_len, bool pad) {
  std::vector<uint8_t> data(data_len);
  for (size_t i = 0; i < data_len; ++i) data[i] = static_cast<uint8_t>(i * 7 + 1);
  return StBytes(header, data, pad);
}

GgufBytes& GgufBytes::Raw(const std::string& s) {
  bytes.insert(bytes.end(), s.begin(), s.end());
  return *this;
}
GgufBytes& GgufBytes::U8(uint8_t v) {
  bytes.push_back(v);
  return *this;
}
GgufBytes& GgufBytes::U16(uint16_t v) {
  for (int i = 0; i < 2; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}
GgufBytes& GgufBytes::U32(uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}
GgufBytes& GgufBytes::U64(uint64_t v) {
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}
GgufBytes& GgufBytes::Str(const std::string& s) { return U64(s.size()).Raw(s); }
GgufBytes& GgufBytes::Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version, const std::string& magic) {
  return Raw(magic).U32(version).U64(n_tensors).U64(n_kv);
}
GgufBytes& GgufBytes::KvU32(const std::string& key, uint32_t v) { return Str(key).U32(4).U32(v); }
GgufBytes& GgufBytes::KvStr(const std::string& key, const std::string& v) { return Str(key).U32(8).Str(v); }
GgufBytes& GgufBytes::Tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
                             uint64_t offset) {
  Str(name).U32(static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) U64(d);
  return U32(type).U64(offset);
}
GgufBytes& GgufBytes::PadTo(size_t alignment) {
  while (bytes.size() % alignment) bytes.push_back(0);
  return *this;
}
GgufBytes& GgufBytes::Zeros(size_t n) {
  bytes.resize(bytes.size() + n, 0);
  return *this;
}

// ---------------------------------------------------------------------------
// Valid bases.

namespace {

// Every safetensors dtype and its width in bits (safetensors/src/tensor.rs),
// written here rather than taken from bitsmith's reader.
constexpr std::pair<const char*, int> kStDTypeBits[] = {
    {"BOOL", 8}, {"U8", 8},   {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},
    {"U16", 16}, {"F16", 16}, {"BF16", 16}, {"I32", 32},   {"U32", 32},    {"F32", 32},    {"C64", 64},
    {"F64", 64}, {"I64", 64}, {"U64", 64}, {"F4", 4},     {"F6_E2M3", 6}, {"F6_E3M2", 6}};

const std::string kStHeader =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}})";

std::vector<uint8_t> ValidSt() { return StBytes(kStHeader, 24); }

// One tensor entry of a header.
std::string Entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t b,
                  uint64_t e) {
  return fmt::format(R"("{}":{{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})", name, dtype, shape, b, e);
}

// A one-tensor-per-name F32 [2] shard.
std::vector<uint8_t> Shard(const std::vector<std::string>& names) {
  std::string h = "{";
  for (size_t i = 0; i < names.size(); ++i) h += (i ? "," : "") + Entry(names[i], "F32", "[2]", 8 * i, 8 * i + 8);
  return StBytes(h + "}", 8 * names.size());
}

struct GgufBase {
  std::vector<uint8_t> bytes;
  // The boundaries worth truncating at: (name, byte position, expected error).
  std::vector<std::tuple<std::string, size_t, std::string>> marks;
};

// A GGUF with two KVs and two tensors: a f32 [2, 4] (ne {4, 2}) and a q8_0 [32].
GgufBase ValidGguf() {
  GgufBase g;
  GgufBytes b;
  b.Raw("GGUF");
  g.marks.emplace_back("after_magic", b.size(), "unexpected end of file reading the version");
  b.U32(3);
  g.marks.emplace_back("after_version", b.size(), "unexpected end of file reading the tensor count");
  b.U64(2);
  g.marks.emplace_back("in_counts", b.size() + 3, "unexpected end of file reading the metadata count");
  b.U64(2);
  g.marks.emplace_back("after_counts", b.size(), "room for at most 0 key-value pairs");
  g.marks.emplace_back("in_first_key", b.size() + 10, "room for at most 0 key-value pairs");
  b.KvStr("general.architecture", "test");
  g.marks.emplace_back("in_value_type", b.size() + 8 + 17 + 2, "unexpected end of file reading a value type");
  b.KvU32("general.alignment", 32);
  g.marks.emplace_back("after_kv", b.size(), "unexpected end of file reading a tensor name");
  g.marks.emplace_back("in_tensor_info", b.size() + 12, "unexpected end of file reading n_dims");
  b.Tensor("a", {4, 2}, 0, 0);
  b.Tensor("b", {32}, 8, 32);
  g.marks.emplace_back("after_tensor_infos", b.size(), "data section would start at byte 192, past the end");
  b.PadTo(32);
  g.marks.emplace_back("at_data_start", b.size(), "runs past the end of the file");
  for (int i = 0; i < 32; ++i) b.U8(static_cast<uint8_t>(i));
  g.marks.emplace_back("mid_data", b.size() + 17, "runs past the end of the file");
  b.U16(0x3C00);  // q8_0 d = 1.0
  for (int i = 0; i < 32; ++i) b.U8(static_cast<uint8_t>(i - 16));
  b.PadTo(32);
  g.bytes = std::move(b.bytes);
  return g;
}

// A GGUF with one f32 tensor [4] and the given extra bytes builder for the
// metadata: used by the KV cases.
std::vector<uint8_t> GgufWithKv(uint64_t n_kv, const std::function<void(GgufBytes&)>& kv) {
  GgufBytes b;
  b.Header(1, n_kv);
  kv(b);
  b.Tensor("t", {4}, 0, 0).PadTo(32).Zeros(16).PadTo(32);
  return b.bytes;
}

// A GGUF with one tensor info written by `info` (n_tensors = 1, no KV) followed
// by `data` bytes of data section.
std::vector<uint8_t> GgufWithTensor(const std::function<void(GgufBytes&)>& info, size_t data) {
  GgufBytes b;
  b.Header(1, 0);
  info(b);
  b.PadTo(32).Zeros(data);
  return b.bytes;
}

MalformedCase One(std::string name, std::string format, std::string expect, std::vector<uint8_t> bytes) {
  const std::string file = name + (format == "gguf" ? ".gguf" : ".safetensors");
  MalformedCase c{std::move(name), std::move(format), std::move(expect), {}, file};
  c.files.emplace_back(file, std::move(bytes));
  return c;
}

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::vector<uint8_t> Truncate(std::vector<uint8_t> v, size_t n) {
  v.resize(std::min(n, v.size()));
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------
// The catalogue.

std::vector<MalformedCase> MalformedCatalogue() {
  std::vector<MalformedCase> cs;
  auto st = [&](std::string name, std::string expect, std::vector<uint8_t> bytes) {
    cs.push_back(One(std::move(name), "safetensors", std::move(expect), std::move(bytes)));
  };
  auto gg = [&](std::string name, std::string expect, std::vector<uint8_t> bytes) {
    cs.push_back(One(std::move(name), "gguf", std::move(expect), std::move(bytes)));
  };
  auto hdr = [](const std::string& body) { return "{" + body + "}"; };

  // --- safetensors: the header length.
  st("st_empty", "too short", {});
  st("st_truncated_length", "too short", {0x10, 0, 0, 0, 0});
  {
    auto v = ValidSt();
    v[0] = 0xE8, v[1] = 0x03;  // N = 1000 in a 150-byte file
    st("st_header_len_beyond_file", "runs past the end of the file", v);
  }
  {
    auto v = ValidSt();
    for (int i = 0; i < 8; ++i) v[i] = 0xFF;
    v[7] = 0x7F;  // N = 2^63 - 1
    st("st_header_len_huge", "exceeds the safetensors limit", v);
  }
  st("st_header_len_zero", "too short for a JSON object", StBytes("", 0, false));
  // --- the JSON.
  st("st_header_not_json", "not valid JSON", StBytes(R"({"a":{"dtype":"F32",)", 0));
  st("st_header_not_object", "not a JSON object", StBytes("[1,2,3]", 0));
  st("st_header_bad_utf8", "not valid JSON", StBytes("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4));
  // A header padded with NUL bytes instead of spaces (N counts them).
  st("st_header_nul_padding", "not valid JSON", StBytes(kStHeader + std::string(3, '\0'), 24, false));
  st("st_entry_not_object", "expected an object", StBytes(hdr(R"("a":5)"), 0));
  st("st_metadata_not_string", "values must be strings",
     StBytes(hdr(R"("__metadata__":{"n":1},)" + Entry("a", "F32", "[1]", 0, 4)), 4));
  st("st_duplicate_name", "duplicate tensor name 'a'",
     StBytes(hdr(Entry("a", "F32", "[1]", 0, 4) + "," + Entry("a", "F32", "[1]", 4, 8)), 8));
  st("st_duplicate_field", "duplicate field", StBytes(hdr(R"("a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]})"), 4));
  st("st_empty_name", "empty name", StBytes(hdr(Entry("", "F32", "[1]", 0, 4)), 4));
  st("st_missing_offsets", "missing \"data_offsets\"", StBytes(hdr(R"("a":{"dtype":"F32","shape":[1]})"), 4));
  st("st_missing_dtype", "missing \"dtype\"", StBytes(hdr(R"("a":{"shape":[1],"data_offsets":[0,4]})"), 4));
  st("st_offsets_three", "data_offsets has 3 entries",
     StBytes(hdr(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})"), 4));
  st("st_shape_negative", "negative number -1", StBytes(hdr(Entry("a", "F32", "[-1]", 0, 4)), 4));
  st("st_shape_float", "not an unsigned 64-bit integer", StBytes(hdr(Entry("a", "F32", "[2.5]", 0, 4)), 4));
  st("st_shape_huge_number", "not an unsigned 64-bit integer",
     StBytes(hdr(Entry("a", "F32", "[99999999999999999999999]", 0, 4)), 4));
  st("st_dtype_not_string", "dtype must be a string",
     StBytes(hdr(R"("a":{"dtype":7,"shape":[1],"data_offsets":[0,4]})"), 4));
  {
    std::string deep = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)";
    deep += std::string(100, '[') + std::string(100, ']') + "}";
    st("st_deep_nesting", "nests deeper than", StBytes(hdr(deep), 4));
  }
  // --- dtypes and sizes.
  st("st_unknown_dtype", "unknown dtype 'F7'", StBytes(hdr(Entry("w", "F7", "[2]", 0, 2)), 2));
  st("st_dtype_size_mismatch", "needs 16 bytes", StBytes(hdr(Entry("w", "F32", "[2,2]", 0, 12)), 12));
  st("st_shape_overflow", "overflows 64 bits",
     StBytes(hdr(Entry("w", "F32", "[4294967296,4294967296,16]", 0, 4)), 4));
  st("st_f4_odd_elements", "not a whole number of bytes", StBytes(hdr(Entry("w", "F4", "[3]", 0, 2)), 2));
  // --- offsets.
  st("st_offsets_reversed", "end before they begin", StBytes(hdr(Entry("w", "F32", "[0]", 8, 0)), 8));
  st("st_offsets_out_of_range", "run past the end of the data section",
     StBytes(hdr(Entry("w", "F32", "[4]", 0, 16)), 8));
  st("st_offsets_overlap", "overlap",
     StBytes(hdr(Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12)), 12));
  st("st_offsets_gap", "unused bytes",
     StBytes(hdr(Entry("a", "F32", "[1]", 0, 4) + "," + Entry("b", "F32", "[1]", 8, 12)), 12));
  st("st_offsets_not_from_zero", "unused bytes", StBytes(hdr(Entry("a", "F32", "[1]", 4, 8)), 8));
  st("st_trailing_bytes", "trailing bytes", StBytes(kStHeader, 40));
  // --- truncation at every boundary of a valid file.
  {
    const auto v = ValidSt();
    const size_t n = v.size() - 24 - 8;  // header length
    const std::pair<const char*, size_t> cuts[] = {
        {"st_trunc_in_length", 4}, {"st_trunc_after_length", 8}, {"st_trunc_in_header", 8 + n / 2},
        {"st_trunc_after_header", 8 + n}, {"st_trunc_in_first_tensor", 8 + n + 7},
        {"st_trunc_in_last_tensor", v.size() - 1}};
    for (auto [name, at] : cuts) {
      const bool short_len = at < 8;
      const bool in_header = at >= 8 && at < 8 + n;
      st(name, short_len ? "too short" : in_header ? "runs past the end of the file" : "run past the end",
         Truncate(v, at));
    }
  }

  // --- sharded checkpoint directories.
  auto dir_case = [&](std::string name, std::string expect, std::string index,
                      std::vector<std::pair<std::string, std::vector<uint8_t>>> shards) {
    MalformedCase c{std::move(name), "index", std::move(expect), std::move(shards), "."};
    c.files.emplace_back("model.safetensors.index.json", Bytes(index));
    cs.push_back(std::move(c));
  };
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  dir_case("idx_bad_json", "not valid JSON", R"({"weight_map": {"a": "x.safetensors",)", {{s1, Shard({"a"})}});
  dir_case("idx_not_object", "not a JSON object", "[]", {});
  dir_case("idx_no_weight_map", "no \"weight_map\"", R"({"metadata": {"total_size": 8}})", {{s1, Shard({"a"})}});
  dir_case("idx_weight_map_not_object", "weight_map is not an object", R"({"weight_map": ["a"]})", {});
  dir_case("idx_weight_map_value_not_string", "is not a file name string", R"({"weight_map": {"a": 1}})", {});
  dir_case("idx_duplicate_entry", "twice",
           R"({"weight_map": {"a": ")" + s1 + R"(", "a": ")" + s1 + R"("}})", {{s1, Shard({"a"})}});
  dir_case("idx_empty_weight_map", "weight_map is empty", R"({"weight_map": {}})", {});
  dir_case("idx_traversal_dotdot", "not a plain file name", R"({"weight_map": {"a": "../model.safetensors"}})",
           {{s1, Shard({"a"})}});
  dir_case("idx_traversal_subdir", "not a plain file name", R"({"weight_map": {"a": "sub/../../x.safetensors"}})",
           {});
  dir_case("idx_traversal_absolute", "not a plain file name", R"({"weight_map": {"a": "/etc/passwd"}})", {});
  dir_case("idx_missing_shard", "which is missing", R"({"weight_map": {"a": ")" + s1 + R"(", "b": ")" + s2 + R"("}})",
           {{s1, Shard({"a"})}});
  dir_case("idx_missing_tensor", "has no such tensor",
           R"({"weight_map": {"a": ")" + s1 + R"(", "zz": ")" + s1 + R"("}})", {{s1, Shard({"a"})}});
  dir_case("idx_wrong_shard", "but it is in",
           R"({"weight_map": {"a": ")" + s1 + R"(", "b": ")" + s1 + R"(", "c": ")" + s2 + R"("}})",
           {{s1, Shard({"a"})}, {s2, Shard({"b", "c"})}});
  dir_case("idx_tensor_in_two_shards", "is in two shards",
           R"({"weight_map": {"a": ")" + s1 + R"(", "b": ")" + s2 + R"("}})",
           {{s1, Shard({"a", "b"})}, {s2, Shard({"b"})}});
  dir_case("idx_bad_shard", "header length", R"({"weight_map": {"a": ")" + s1 + R"("}})",
           {{s1, Truncate(Shard({"a"}), 12)}});

  // --- GGUF: magic, version, counts.
  const GgufBase base = ValidGguf();
  gg("gguf_empty", "too short for a GGUF file", {});
  {
    auto v = base.bytes;
    std::memcpy(v.data(), "GGUX", 4);
    gg("gguf_bad_magic", "bad magic 'GGUX'", v);
    std::memcpy(v.data(), "tjgg", 4);
    gg("gguf_legacy_ggjt", "legacy GGML/GGJT", v);
  }
  gg("gguf_version_0", "version 0 is not supported", GgufBytes().Header(0, 0, 0).bytes);
  gg("gguf_version_1", "v1 is not supported", GgufBytes().Header(0, 0, 1).bytes);
  gg("gguf_version_4", "version 4 is not supported", GgufBytes().Header(0, 0, 4).bytes);
  gg("gguf_big_endian", "big-endian", GgufBytes().Header(0, 0, 0x03000000).bytes);
  gg("gguf_huge_tensor_count", "tensor count 1152921504606846976",
     GgufBytes().Header(uint64_t{1} << 60, 0).Zeros(64).bytes);
  gg("gguf_huge_kv_count", "metadata count 18446744073709551615", GgufBytes().Header(0, UINT64_MAX).Zeros(64).bytes);
  gg("gguf_kv_count_beyond_file", "room for at most", GgufBytes().Header(0, 100).KvU32("general.alignment", 32).bytes);
  // --- GGUF: metadata.
  gg("gguf_key_len_beyond_file", "only", GgufWithKv(1, [](GgufBytes& b) { b.U64(uint64_t{1} << 40).Raw("abc"); }));
  gg("gguf_string_value_beyond_file", "only",
     GgufWithKv(1, [](GgufBytes& b) { b.Str("k").U32(8).U64(uint64_t{1} << 62).Raw("xy"); }));
  gg("gguf_array_len_huge", "array of 2305843009213693952 u32",
     GgufWithKv(1, [](GgufBytes& b) { b.Str("k").U32(9).U32(4).U64(uint64_t{1} << 61); }));
  gg("gguf_string_array_len_huge", "array of 4611686018427387904 str",
     GgufWithKv(1, [](GgufBytes& b) { b.Str("k").U32(9).U32(8).U64(uint64_t{1} << 62); }));
  gg("gguf_bad_value_type", "value type 13, not a GGUF type", GgufWithKv(1, [](GgufBytes& b) { b.Str("k").U32(13).U32(0); }));
  gg("gguf_bad_array_elem_type", "array element type 77",
     GgufWithKv(1, [](GgufBytes& b) { b.Str("k").U32(9).U32(77).U64(1).U32(0); }));
  gg("gguf_nested_array_too_deep", "nested deeper than", GgufWithKv(1, [](GgufBytes& b) {
       b.Str("k").U32(9);
       for (int i = 0; i < 20; ++i) b.U32(9).U64(1);
       b.U32(4).U64(0);
     }));
  gg("gguf_duplicate_key", "duplicate metadata key 'k'",
     GgufWithKv(2, [](GgufBytes& b) { b.KvU32("k", 1).KvU32("k", 2); }));
  gg("gguf_empty_key", "metadata key 0 is empty", GgufWithKv(1, [](GgufBytes& b) { b.KvU32("", 1); }));
  gg("gguf_alignment_not_pow2", "general.alignment 48 is not a power of two",
     GgufWithKv(1, [](GgufBytes& b) { b.KvU32("general.alignment", 48); }));
  gg("gguf_alignment_zero", "general.alignment 0 is not a power of two",
     GgufWithKv(1, [](GgufBytes& b) { b.KvU32("general.alignment", 0); }));
  gg("gguf_alignment_too_big", "general.alignment 2097152 exceeds the maximum",
     GgufWithKv(1, [](GgufBytes& b) { b.KvU32("general.alignment", 1u << 21); }));
  gg("gguf_alignment_wrong_type", "general.alignment has type u64",
     GgufWithKv(1, [](GgufBytes& b) { b.Str("general.alignment").U32(10).U64(32); }));
  // --- GGUF: tensor infos.
  gg("gguf_ndims_5", "has 5 dimensions",
     GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {1, 1, 1, 1, 1}, 0, 0); }, 4));
  gg("gguf_unknown_type_id", "ggml type id 40 is unknown", GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {32}, 40, 0); }, 64));
  gg("gguf_removed_type_id", "ggml type id 4 is a removed type", GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {32}, 4, 0); }, 64));
  gg("gguf_huge_type_id", "ggml type id 4294967295 is unknown",
     GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {32}, 0xFFFFFFFFu, 0); }, 64));
  gg("gguf_ne_negative", "is negative as int64", GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {UINT64_MAX}, 0, 0); }, 4));
  gg("gguf_ne_overflow", "more than 2^63 - 1 elements",
     GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0); }, 4));
  gg("gguf_row_not_block_multiple", "not a multiple of the block size 32",
     GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {33}, 2, 0); }, 64));
  gg("gguf_misaligned_offset", "is not a multiple of the alignment 32",
     GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {4}, 0, 8); }, 64));
  gg("gguf_data_beyond_file", "runs past the end of the file",
     GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {64}, 0, 0); }, 100));
  gg("gguf_offset_huge", "runs past the end of the file",
     GgufWithTensor([](GgufBytes& b) { b.Tensor("t", {4}, 0, UINT64_MAX - 31); }, 32));
  gg("gguf_overlapping_tensors", "overlap", [] {
    GgufBytes b;
    b.Header(2, 0).Tensor("a", {16}, 0, 32).Tensor("b", {16}, 0, 0).PadTo(32).Zeros(96);
    return b.bytes;
  }());
  gg("gguf_duplicate_tensor", "duplicate tensor name 'a'", [] {
    GgufBytes b;
    b.Header(2, 0).Tensor("a", {4}, 0, 0).Tensor("a", {4}, 0, 32).PadTo(32).Zeros(64);
    return b.bytes;
  }());
  gg("gguf_empty_tensor_name", "has an empty name", GgufWithTensor([](GgufBytes& b) { b.Tensor("", {4}, 0, 0); }, 32));
  gg("gguf_data_start_beyond_file", "past the end of the file", [] {
    GgufBytes b;
    b.Header(1, 0).Tensor("t", {0}, 0, 0);  // 0 elements but the data section must still start in the file
    return b.bytes;
  }());
  // --- GGUF: truncation at every boundary of a valid file.
  for (const auto& [mark, at, expect] : base.marks) gg("gguf_trunc_" + mark, expect, Truncate(base.bytes, at));

  // --- GGUF split sets.
  auto split_file = [](int no, int count, int32_t total, const std::string& tensor) {
    GgufBytes b;
    b.Header(1, 3);
    b.Str("split.no").U32(2).U16(static_cast<uint16_t>(no));
    b.Str("split.count").U32(2).U16(static_cast<uint16_t>(count));
    b.Str("split.tensors.count").U32(5).U32(static_cast<uint32_t>(total));
    b.Tensor(tensor, {4}, 0, 0).PadTo(32).Zeros(16).PadTo(32);
    return b.bytes;
  };
  auto split_case = [&](std::string name, std::string expect,
                        std::vector<std::pair<std::string, std::vector<uint8_t>>> files) {
    cs.push_back({std::move(name), "gguf_split", std::move(expect), std::move(files), "m-00001-of-00002.gguf"});
  };
  split_case("gguf_split_missing", "split 2 of 2 is missing", {{"m-00001-of-00002.gguf", split_file(0, 2, 2, "a")}});
  split_case("gguf_split_bad_no", "split.no = 0 and split.count = 2",
             {{"m-00001-of-00002.gguf", split_file(0, 2, 2, "a")}, {"m-00002-of-00002.gguf", split_file(0, 2, 2, "b")}});
  split_case("gguf_split_tensor_count", "split.tensors.count is 5",
             {{"m-00001-of-00002.gguf", split_file(0, 2, 5, "a")}, {"m-00002-of-00002.gguf", split_file(1, 2, 5, "b")}});
  split_case("gguf_split_duplicate_tensor", "also in an earlier split",
             {{"m-00001-of-00002.gguf", split_file(0, 2, 2, "a")}, {"m-00002-of-00002.gguf", split_file(1, 2, 2, "a")}});
  return cs;
}

std::filesystem::path Materialize(const MalformedCase& c, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (const auto& [rel, bytes] : c.files) {
    std::ofstream f(dir / rel, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  return c.open == "." ? dir : dir / c.open;
}

std::vector<std::pair<std::string, std::vector<uint8_t>>> ValidSeeds(const std::string& format) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  if (format == "safetensors") {
    out.emplace_back("valid_two_tensors", ValidSt());
    out.emplace_back("valid_no_metadata", StBytes(R"({"w":{"dtype":"F16","shape":[3,1],"data_offsets":[0,6]}})", 6));
    std::string all = "{";
    uint64_t off = 0;
    for (const auto& [dtype, bits] : kStDTypeBits) {
      const uint64_t n = 4 * static_cast<uint64_t>(bits) / 8;
      all += (off ? "," : "") + Entry(std::string("t_") + dtype, dtype, "[2,2]", off, off + n);
      off += n;
    }
    out.emplace_back("valid_every_dtype", StBytes(all + R"(,"scalar":{"dtype":"F32","shape":[],"data_offsets":[)" +
                                                      std::to_string(off) + "," + std::to_string(off + 4) + "]}}",
                                                  off + 4));
    out.emplace_back("valid_empty_tensor", StBytes(R"({"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}})", 0));
    out.emplace_back("index_valid", Bytes(R"({"metadata":{"total_size":16},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})"));
    // As transformers writes it (indent 2, newlines), metadata of several keys and
    // value types; weight_map before metadata; an empty weight_map; escapes and
    // non-plain values (IndexSax's slow path).
    out.emplace_back("index_pretty", Bytes("{\n  \"metadata\": {\n    \"total_size\": 1234,\n    \"format\": \"pt\"\n  },\n"
                                           "  \"weight_map\": {\n    \"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\",\n"
                                           "    \"lm_head.weight\": \"model-00002-of-00002.safetensors\"\n  }\n}\n"));
    out.emplace_back("index_map_first", Bytes(R"({"weight_map":{"x.weight":"model.safetensors"},"metadata":{"total_size":2,"mergekit_version":"0.1.2"}})"));
    out.emplace_back("index_empty_map", Bytes(R"({"metadata":{},"weight_map":{}})"));
    out.emplace_back("index_slow_path", Bytes(R"({"metadata":{"total_size":1.5e3,"nested":{"a":[1,true,null]},"esc":"a"bé"},"weight_map":{"w.0":"s.safetensors","v":"s.safetensors"}})"));
  } else {
    out.emplace_back("valid_two_tensors", ValidGguf().bytes);
    GgufBytes b;
    // Every value type, nested arrays, and a tensor of each of a few block types.
    b.Header(3, 15, 2);
    b.Str("u8").U32(0).U8(1);
    b.Str("i8").U32(1).U8(0xFF);
    b.Str("u16").U32(2).U16(2);
    b.Str("i16").U32(3).U16(0xFFFE);
    b.KvU32("u32", 3);
    b.Str("i32").U32(5).U32(0xFFFFFFFC);
    b.Str("f32").U32(6).U32(0x3FC00000);
    b.Str("bool").U32(7).U8(1);
    b.KvStr("str", "hello");
    b.Str("arr_str").U32(9).U32(8).U64(2).Str("a").Str("bc");
    b.Str("u64").U32(10).U64(5);
    b.Str("i64").U32(11).U64(UINT64_MAX);
    b.Str("f64").U32(12).U64(0x3FF8000000000000);
    b.Str("arr_arr").U32(9).U32(9).U64(2).U32(4).U64(1).U32(7).U32(8).U64(1).Str("x");
    b.Str("arr_f32").U32(9).U32(6).U64(2).U32(0).U32(0x3F800000);
    b.Tensor("q4k", {256, 2}, 12, 0).Tensor("f16", {3}, 1, 288).Tensor("iq4", {32}, 20, 320);
    b.PadTo(32).Zeros(320 + 18).PadTo(32);
    out.emplace_back("valid_every_kv_type", b.bytes);
    out.emplace_back("valid_no_tensors", GgufBytes().Header(0, 1).KvStr("general.name", "x").bytes);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Seeds of the other fuzz targets.

namespace {

using Seeds = std::vector<std::pair<std::string, std::vector<uint8_t>>>;

void PutF32(std::vector<uint8_t>& out, float v) {
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}
void PutI32(std::vector<uint8_t>& out, int32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(static_cast<uint32_t>(v) >> (8 * i)));
}
// `bytes` after their length as a u16, little-endian (the convert target's sections).
void PutU16Prefixed(std::vector<uint8_t>& out, const std::vector<uint8_t>& bytes) {
  out.push_back(static_cast<uint8_t>(bytes.size() & 0xFF)), out.push_back(static_cast<uint8_t>(bytes.size() >> 8));
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// A legacy .dat imatrix, byte by byte (llama.cpp's format, see convert/imatrix.h).
std::vector<uint8_t> LegacyImatrix(const std::vector<std::tuple<std::string, int32_t, std::vector<float>>>& entries,
                                   bool trailer, int32_t chunks = 5, const std::string& dataset = "wiki.train.raw") {
  std::vector<uint8_t> out;
  PutI32(out, static_cast<int32_t>(entries.size()));
  for (const auto& [name, ncall, v] : entries) {
    PutI32(out, static_cast<int32_t>(name.size()));
    out.insert(out.end(), name.begin(), name.end());
    PutI32(out, ncall);
    PutI32(out, static_cast<int32_t>(v.size()));
    for (float x : v) PutF32(out, x);
  }
  if (trailer) {
    PutI32(out, chunks);
    PutI32(out, static_cast<int32_t>(dataset.size()));
    out.insert(out.end(), dataset.begin(), dataset.end());
  }
  return out;
}

// A GGUF imatrix: "<name>.in_sum2" F32 [n_per_row, n_mat] and "<name>.counts"
// F32 [1, n_mat] per entry, plus the imatrix.* KVs.
std::vector<uint8_t> GgufImatrix(const std::vector<std::tuple<std::string, std::vector<float>, std::vector<float>>>& entries,
                                 bool with_counts = true) {
  GgufBytes b;
  b.Header(entries.size() * (with_counts ? 2 : 1), 3);
  b.Str("imatrix.datasets").U32(9).U32(8).U64(1).Str("wiki.train.raw");
  b.KvU32("imatrix.chunk_count", 5);
  b.KvU32("imatrix.chunk_size", 512);
  uint64_t off = 0;
  std::vector<uint8_t> data;
  auto tensor = [&](const std::string& name, const std::vector<float>& v, uint64_t ne0, uint64_t ne1) {
    b.Tensor(name, {ne0, ne1}, 0, off);
    for (float x : v) PutF32(data, x);
    while (data.size() % 32) data.push_back(0);
    off = data.size();
  };
  for (const auto& [name, sums, counts] : entries) {
    tensor(name + ".in_sum2", sums, sums.size() / counts.size(), counts.size());
    if (with_counts) tensor(name + ".counts", counts, 1, counts.size());
  }
  b.PadTo(32);
  b.bytes.insert(b.bytes.end(), data.begin(), data.end());
  return b.bytes;
}

std::vector<uint8_t> Prefixed(std::initializer_list<uint8_t> head, const std::vector<uint8_t>& rest) {
  std::vector<uint8_t> out(head);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

// Bytes of n e4m3fn codes, never NaN (0x7F / 0xFF).
std::vector<uint8_t> Fp8Codes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = static_cast<uint8_t>(seed + i * 37);
    if ((c & 0x7F) == 0x7F) c ^= 1;
    v[i] = c;
  }
  return v;
}
std::vector<uint8_t> F32Data(size_t n, float scale) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i < n; ++i) PutF32(v, scale * static_cast<float>(static_cast<int>(i % 17) - 8));
  return v;
}
// rows x cols values of type `t`, little-endian, small and finite: element
// formats from f32 by the scalar oracle, integers and f64 directly, block types
// by bitsmith's quantizer (an imatrix of ones where the type requires one).
std::vector<uint8_t> TypedData(DType t, size_t rows, size_t cols) {
  const DTypeInfo& d = GetDType(t);
  const size_t n = rows * cols;
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i)
    f[i] = 0.01f * static_cast<float>(static_cast<int>(i % 17) - 8) + 0.001f * static_cast<float>(i % 5);
  std::vector<uint8_t> out;
  if (d.is_block()) {
    out.resize(rows * RowBytes(t, cols).value_or(0));
    const std::vector<float> ones(cols, 1.0f);
    if (QuantizeRows(t, f, out, static_cast<int64_t>(cols), d.requires_imatrix ? ones.data() : nullptr,
                     Impl::kReference)
            .ok())
      return out;
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i * 37 + 11);  // no quantizer
    return out;
  }
  const bool is_signed = t == DType::kI8 || t == DType::kI4 || t == DType::kI16 || t == DType::kI32 ||
                         t == DType::kI64;
  auto put = [&](uint64_t v, int bytes) {
    for (int b = 0; b < bytes; ++b) out.push_back(static_cast<uint8_t>(v >> (8 * b)));
  };
  for (size_t i = 0; i < n; ++i) {
    const int64_t k = is_signed ? static_cast<int64_t>(i % 7) - 3 : static_cast<int64_t>(i % 7);
    if (d.element) {
      float v = d.kind == DTypeKind::kInt ? static_cast<float>(k) : f[i];
      if (*d.element == ElementFormatId::kE8M0FNU) v = std::ldexp(1.0f, static_cast<int>(i % 5) - 2);
      put(EncodeF32Ref(*d.element, v), static_cast<int>(ElementBytes(*d.element)));
    } else if (t == DType::kF64) {
      const double x = f[i];
      uint64_t bits;
      std::memcpy(&bits, &x, 8);
      put(bits, 8);
    } else if (t == DType::kBool) {
      put(i & 1, 1);
    } else {
      put(static_cast<uint64_t>(k), d.block_bytes);
    }
  }
  return out;
}

std::vector<uint8_t> Bf16Data(size_t n) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i < n; ++i) {  // bf16 of (i % 9 - 4) / 16: exact small values
    float f = static_cast<float>(static_cast<int>(i % 9) - 4) / 16.0f;
    uint32_t u;
    std::memcpy(&u, &f, 4);
    v.push_back(static_cast<uint8_t>(u >> 16));
    v.push_back(static_cast<uint8_t>(u >> 24));
  }
  return v;
}
std::vector<uint8_t> Cat(std::vector<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<uint8_t>>> FuzzSeeds(const std::string& target) {
  Seeds out;
  if (target == "imatrix") {
    const std::vector<float> v8 = {1, 2, 3, 4, 5, 6, 7, 8};
    out.emplace_back("legacy_valid", LegacyImatrix({{"blk.0.attn_q.weight", 10, v8}, {"blk.0.ffn_up.weight", 0, {0.5f, 0.25f}}}, true));
    out.emplace_back("legacy_no_trailer", LegacyImatrix({{"output.weight", 3, v8}}, false));
    out.emplace_back("legacy_negative_sum", LegacyImatrix({{"a", 1, {1, -2}}}, true));
    out.emplace_back("legacy_nan_sum", LegacyImatrix({{"a", 1, {1, std::nanf("")}}}, true));
    out.emplace_back("legacy_duplicate", LegacyImatrix({{"a", 1, {1}}, {"a", 1, {2}}}, true));
    out.emplace_back("legacy_huge_nval", [] {
      auto b = LegacyImatrix({{"a", 1, {1, 2}}}, true);
      b[4 + 4 + 1 + 4] = 0xFF, b[4 + 4 + 1 + 7] = 0x7F;  // nval = 0x7F0000FF-ish
      return b;
    }());
    out.emplace_back("gguf_valid", GgufImatrix({{"blk.0.ffn_up.weight", {1, 2, 3, 4, 5, 6, 7, 8}, {4}}}));
    out.emplace_back("gguf_3d_experts", GgufImatrix({{"blk.1.ffn_down_exps.weight", {1, 2, 3, 4, 5, 6, 7, 8}, {2, 0}},
                                                     {"output.weight", {9, 9}, {1}}}));
    out.emplace_back("gguf_missing_counts", GgufImatrix({{"a", {1, 2}, {1}}}, false));
    out.emplace_back("gguf_count_fraction", GgufImatrix({{"a", {1, 2}, {0.4f}}}));
  } else if (target == "recipe") {
    using namespace std::string_literals;  // "...\0..."s keeps the NUL between recipe and names
    out.emplace_back("typical", Bytes("# experts low, attention high\n"
                                      "ffn_(up|gate)_exps=iq1_s\n"
                                      "ffn_down_exps = iq2_xxs\n"
                                      "attn_kv_a_mqa=q6_k\n"
                                      "^output\\.weight$=Q6_K\r\n"
                                      ".*=q4_k\n"
                                      "\0blk.3.ffn_up_exps.weight\noutput.weight\nblk.0.attn_kv_a_mqa.weight"s));
    out.emplace_back("lookahead", Bytes("(?=blk\\.1)ffn=bf16\n(a|b)*c{2,3}[^x]=f16\n\0blk.1.ffn.weight\nabcc"s));
    out.emplace_back("bad_regex", Bytes("ffn_(up=q4_k\n\0x"s));
    out.emplace_back("bad_type", Bytes("attn=q4_x\n"s));
    out.emplace_back("no_equals", Bytes("attn q4_k\n"s));
    out.emplace_back("escaped_names", Bytes("\0model.layers.0.mlp.experts.(1).w[0]\n^$.|?*+{}\\\nblk.0"s));
  } else if (target == "explain") {
    const std::vector<std::pair<uint8_t, std::string>> vals = {
        {3, "0x5B"}, {3, "0b0_1011_011"}, {3, "3.14"}, {4, "-1e-3"}, {1, "inf"}, {2, "nan"},
        {1, "65504"}, {0, "0x7F800001"}, {8, "0x00"}, {5, "1e-40"}, {3, "0x1p-9"}, {3, "0xFFF"}};
    int k = 0;
    for (const auto& [fmt_index, v] : vals) {
      std::vector<uint8_t> b = {fmt_index, static_cast<uint8_t>(k & 1)};
      b.insert(b.end(), v.begin(), v.end());
      out.emplace_back("value_" + std::to_string(k++), b);
    }
  } else if (target == "convert") {
    // DeepSeek FP8, block 2x4 from config.json: w [4,8] e4m3fn + scale_inv [2,2] F32 + a BF16 norm.
    {
      std::vector<uint8_t> scales;
      for (float s : {1.0f / 256, 1.0f / 128, 3.0f / 1024, 1.0f / 64}) PutF32(scales, s);
      const std::string h =
          R"({"__metadata__":{"format":"pt"},"model.layers.0.mlp.up_proj.weight":{"dtype":"F8_E4M3","shape":[4,8],"data_offsets":[0,32]},)"
          R"("model.layers.0.mlp.up_proj.weight_scale_inv":{"dtype":"F32","shape":[2,2],"data_offsets":[32,48]},)"
          R"("model.norm.weight":{"dtype":"BF16","shape":[8],"data_offsets":[48,64]}})";
      const auto st = StBytes(h, Cat({Fp8Codes(32, 3), scales, Bf16Data(8)}));
      out.emplace_back("fp8_block_to_bf16_dir", Prefixed({1, 0x40, 1 | (2 << 2)}, st));
      out.emplace_back("fp8_block_to_f32_file", Prefixed({3, 0x41, 1 | (2 << 2)}, st));
      out.emplace_back("fp8_block_to_q8_0_gguf", Prefixed({5, 0x42, 1 | (2 << 2)}, st));
      out.emplace_back("fp8_block_copy", Prefixed({0, 0x40, 1 | (2 << 2)}, st));
    }
    // FP8 [2,32] with one 128x128 scale -> q8_0 / q4_0 / iq4_nl (GGUF).
    {
      std::vector<uint8_t> scale;
      PutF32(scale, 1.0f / 512);
      const std::string h =
          R"({"w.weight":{"dtype":"F8_E4M3","shape":[2,32],"data_offsets":[0,64]},)"
          R"("w.weight_scale_inv":{"dtype":"F32","shape":[1,1],"data_offsets":[64,68]}})";
      const auto st = StBytes(h, Cat({Fp8Codes(64, 11), scale}));
      out.emplace_back("fp8_to_q8_0", Prefixed({5, 0x40, 3 | (3 << 2)}, st));
      out.emplace_back("fp8_to_iq4_nl_via_f32", Prefixed({9, 0xC0, 3 | (3 << 2)}, st));
    }
    // F32 [1,256] and BF16 [2,32]: k-quants, legacy quants, FP8 targets, casts.
    {
      const std::string h = R"({"__metadata__":{"format":"pt"},"model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[1,256],"data_offsets":[0,1024]},)"
                            R"("model.layers.0.self_attn.k_proj.weight":{"dtype":"BF16","shape":[2,32],"data_offsets":[1024,1152]}})";
      const auto st = StBytes(h, Cat({F32Data(256, 0.01f), Bf16Data(64)}));
      out.emplace_back("float_to_q4_k", Prefixed({7, 0x02, 0}, st));
      out.emplace_back("float_to_q6_k", Prefixed({8, 0x02, 0}, st));
      out.emplace_back("float_to_q5_1", Prefixed({10, 0x02, 0}, st));
      out.emplace_back("float_to_e4m3fn_dir", Prefixed({4, 0x00, 0}, st));
      out.emplace_back("float_to_e5m2_file", Prefixed({11, 0x01, 0}, st));
      out.emplace_back("float_cast_all_f16", Prefixed({2, 0x21, 0}, st));
      out.emplace_back("float_copy_gguf", Prefixed({0, 0x02, 0}, st));
    }
    // Unscaled FP8 (no companion): kept, cast with scale 1, refused.
    {
      const auto st = StBytes(R"({"x.weight":{"dtype":"F8_E4M3","shape":[4,4],"data_offsets":[0,16]}})", Fp8Codes(16, 5));
      out.emplace_back("unscaled_keep", Prefixed({1, 0x08, 0}, st));
      out.emplace_back("unscaled_cast", Prefixed({1, 0x10, 0}, st));
      out.emplace_back("unscaled_error", Prefixed({1, 0x00, 0}, st));
    }
    // GGUF inputs (byte 2 bit 4; bit 5 --allow-requantize): an f32 and a q8_0
    // tensor of shape [2,32] (ggml order ne = {32, 2}).
    {
      GgufBytes b;
      b.Header(2, 1).KvStr("general.architecture", "llama");
      b.Tensor("blk.0.attn_q.weight", {32, 2}, 0, 0).Tensor("blk.0.attn_k.weight", {32, 2}, 8, 256);
      b.PadTo(32);
      std::vector<uint8_t> data = F32Data(64, 0.02f);
      std::vector<uint8_t> q8;  // two q8_0 blocks: fp16 scale 0x2000 (2^-7), codes -16..15
      for (int blk = 0; blk < 2; ++blk) {
        q8.push_back(0x00), q8.push_back(0x20);
        for (int i = 0; i < 32; ++i) q8.push_back(static_cast<uint8_t>(i - 16 + blk));
      }
      data.insert(data.end(), q8.begin(), q8.end());
      b.bytes.insert(b.bytes.end(), data.begin(), data.end());
      out.emplace_back("gguf_copy", Prefixed({0, 0x02, 0x10}, b.bytes));
      out.emplace_back("gguf_requantize_q4_0", Prefixed({6, 0x02, 0x30}, b.bytes));
      out.emplace_back("gguf_requantize_refused", Prefixed({6, 0x02, 0x10}, b.bytes));
      out.emplace_back("gguf_to_q6_k_falls_back", Prefixed({8, 0x02, 0x10}, b.bytes));
      out.emplace_back("gguf_to_bf16_dir", Prefixed({1, 0x00, 0x10}, b.bytes));
      out.emplace_back("gguf_to_f32_file", Prefixed({3, 0x01, 0x10}, b.bytes));
      out.emplace_back("gguf_valid_every_kv_type_to_q8_0", Prefixed({5, 0x02, 0x30}, ValidSeeds("gguf")[1].second));
    }
    // Byte 2 bit 6: the extension byte X and its sections (fuzz/convert_fuzz.cc):
    // shard limits, --strict, --block, recipes, imatrices, --resume and --force
    // checks; byte 2 bit 7: a sharded input (u16 split point, two shards + index).
    {
      const std::string h = R"({"model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[1,256],"data_offsets":[0,1024]},)"
                            R"("model.layers.0.self_attn.k_proj.weight":{"dtype":"BF16","shape":[2,32],"data_offsets":[1024,1152]},)"
                            R"("model.norm.weight":{"dtype":"BF16","shape":[32],"data_offsets":[1152,1216]}})";
      const auto st = StBytes(h, Cat({F32Data(256, 0.01f), Bf16Data(64), Bf16Data(32)}));
      auto ext = [&](std::initializer_list<uint8_t> head, const std::string& section) {
        std::vector<uint8_t> b(head);
        b.insert(b.end(), section.begin(), section.end());
        b.insert(b.end(), st.begin(), st.end());
        return b;
      };
      // Directory output, a shard per tensor (X bits 0-1 = 1), then --resume: shard 0
      // listed and damaged since / shards 0, 2 listed and the rest gone / no partial
      // directory / a fuzzed manifest; --force.
      out.emplace_back("ext_resume_damaged", ext({1, 0x00, 0x40, 0x41, 0x11}, ""));
      out.emplace_back("ext_resume_listed_missing", ext({1, 0x00, 0x40, 0x41, 0x25}, ""));
      out.emplace_back("ext_resume_no_partial", ext({2, 0x00, 0x40, 0x41, 0x63}, ""));
      const std::string manifest = R"({"bitsmith_manifest": 2, "job": "", "files": {}})";
      out.emplace_back("ext_resume_manifest", ext({3, 0x00, 0x40, 0x41, 0x80, static_cast<uint8_t>(manifest.size())}, manifest));
      out.emplace_back("ext_force", ext({0, 0x00, 0x40, 0x82}, ""));
      out.emplace_back("ext_resume_force_4k", ext({1, 0x20, 0x40, 0xC2, 0x0F}, ""));
      // GGUF splits (a file per tensor) with a recipe; --strict.
      const std::string recipe = "# seed\nk_proj=q8_0\nnorm=f32\n";
      out.emplace_back("ext_gguf_split_recipe", ext({7, 0x02, 0x40, 0x11, static_cast<uint8_t>(recipe.size())}, recipe));
      out.emplace_back("ext_gguf_strict_q6_k", ext({8, 0x02, 0x40, 0x04}, ""));
      // FP8 target with --block 2x4 (byte 2 bits 0-3), strict.
      out.emplace_back("ext_e4m3fn_block_2x4", ext({4, 0x00, 0x40 | 1 | (2 << 2), 0x0C}, ""));
    }
    // An imatrix (X bit 5) for w.weight [4,256]: legacy .dat -> q4_k, GGUF -> iq4_nl.
    {
      const auto st = StBytes(R"({"w.weight":{"dtype":"F32","shape":[4,256],"data_offsets":[0,4096]}})",
                              F32Data(1024, 0.02f));
      std::vector<float> im(256);
      for (int i = 0; i < 256; ++i) im[i] = 0.5f + static_cast<float>(i % 7);
      auto with = [&](std::initializer_list<uint8_t> head, const std::vector<uint8_t>& imatrix) {
        std::vector<uint8_t> b(head);
        PutU16Prefixed(b, imatrix);
        b.insert(b.end(), st.begin(), st.end());
        return b;
      };
      out.emplace_back("ext_imatrix_dat_q4_k", with({7, 0x02, 0x40, 0x20}, LegacyImatrix({{"w.weight", 1, im}}, true)));
      out.emplace_back("ext_imatrix_gguf_iq4_nl", with({9, 0x02, 0x40, 0x20}, GgufImatrix({{"w.weight", im, {3.0f}}})));
    }
    // A sharded DeepSeek FP8 input: the weight in shard 1, its scale and a norm in shard 2.
    {
      std::vector<uint8_t> scales;
      for (float s : {1.0f / 256, 1.0f / 128, 3.0f / 1024, 1.0f / 64}) PutF32(scales, s);
      const auto a = StBytes(R"({"model.layers.0.mlp.up_proj.weight":{"dtype":"F8_E4M3","shape":[4,8],"data_offsets":[0,32]}})",
                             Fp8Codes(32, 3));
      const auto b = StBytes(R"({"model.layers.0.mlp.up_proj.weight_scale_inv":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("model.norm.weight":{"dtype":"BF16","shape":[8],"data_offsets":[16,32]}})",
                             Cat({scales, Bf16Data(8)}));
      auto sharded = [&](std::initializer_list<uint8_t> head) {
        std::vector<uint8_t> v(head);
        PutU16Prefixed(v, a);  // the split point, then shard 1
        v.insert(v.end(), b.begin(), b.end());
        return v;
      };
      out.emplace_back("sharded_fp8_to_bf16_dir", sharded({1, 0x40, 1 | (2 << 2) | 0x80}));
      out.emplace_back("sharded_fp8_to_q8_0", sharded({5, 0x42, 1 | (2 << 2) | 0x80}));
      out.emplace_back("sharded_fp8_copy_resume", sharded({0, 0x40, 1 | (2 << 2) | 0x80 | 0x40, 0x41, 0x13}));
    }
    // Type sweeps, so that every reader and codec path is a seed rather than a
    // combination the fuzzer must stumble on: a GGUF input of every ggml type
    // bitsmith reads to every target (requantizing allowed); a safetensors
    // input of every safetensors dtype (unsupported ones included) to every
    // target, and the two FP8 dtypes with 128x128 block scales to every target
    // (directly and --fp8-via f32, and with a zero, an infinite or a negative scale).
    // Weights have 2 rows: a [1, n] tensor is 1-D to ggml (ggml_n_dims) and
    // llama.cpp, kept like a norm and never quantized.
    {
      static const char* const kTargetNames[12] = {"copy", "bf16",   "f16",  "f32",    "e4m3fn", "q8_0",
                                                   "q4_0", "q4_k",   "q6_k", "iq4_nl", "q5_1",   "e5m2"};
      int k = 0;
      for (const DTypeInfo& d : kDTypes) {
        if (d.ggml_type < 0) continue;
        const auto data = TypedData(d.id, 2, 256);
        GgufBytes b;
        b.Header(1, 1).KvStr("general.architecture", "llama");
        b.Tensor("blk.0.ffn_up.weight", {256, 2}, static_cast<uint32_t>(d.ggml_type), 0).PadTo(32);
        b.bytes.insert(b.bytes.end(), data.begin(), data.end());
        // Every target, --allow-requantize (byte 2 bit 5), the output kind in turn.
        for (uint8_t to = 0; to < 12; ++to)
          out.emplace_back("sweep_gguf_" + std::string(d.name) + "_to_" + kTargetNames[to],
                           Prefixed({to, static_cast<uint8_t>(k++ % 3), 0x30}, b.bytes));
      }
      const std::string w = "model.layers.0.mlp.up_proj.weight";
      int j = 0;
      for (const auto& [st, bits] : kStDTypeBits) {
        std::vector<uint8_t> data(2 * 256 * static_cast<size_t>(bits) / 8);
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 37 + 11);
        for (const DTypeInfo& d : kDTypes)
          if (d.safetensors == st) data = TypedData(d.id, 2, 256);
        const std::string head = fmt::format(R"({{"{}":{{"dtype":"{}","shape":[2,256],"data_offsets":[0,{}]}})", w,
                                             st, data.size());
        const bool fp8 = std::string(st) == "F8_E4M3" || std::string(st) == "F8_E5M2";
        const auto plain = StBytes(head + "}", data);
        // The weight and a [1, 2] F32 scale_inv holding s0, s1.
        auto scaled_by = [&](float s0, float s1) {
          std::vector<uint8_t> scales;
          PutF32(scales, s0), PutF32(scales, s1);
          return StBytes(head + fmt::format(R"(,"{}_scale_inv":{{"dtype":"F32","shape":[1,2],"data_offsets":[{},{}]}}}})",
                                            w, data.size(), data.size() + 8),
                         Cat({data, scales}));
        };
        const auto scaled = scaled_by(1.0f / 256, 1.0f / 64);
        // A zero scale (the other 0.0123), and with --allow-nonfinite (byte 1 bit 2) an
        // infinite and a negative one: the tensor leaves the fused row kernel for the
        // per-segment path (pipeline.cc DecodeScaledSegment), whose finite-scale
        // segments run the scaled decode kernels with a scale that is not a power of two.
        const auto zero_scale = scaled_by(0.0f, 0.0123f);
        const auto inf_scale = scaled_by(std::numeric_limits<float>::infinity(), -0.0123f);
        for (uint8_t to = 0; to < 12; ++to) {
          const uint8_t kind = static_cast<uint8_t>((j + to) % 3);  // directory, .safetensors, .gguf
          const std::string name = std::string("sweep_st_") + st + "_to_" + kTargetNames[to];
          // Unscaled FP8: --unscaled cast (byte 1 bits 3-4 = 2), else it is refused.
          out.emplace_back(name, Prefixed({to, static_cast<uint8_t>(kind | (fp8 ? 0x10 : 0)), 0}, plain));
          // With block scales: a DeepSeek config.json (byte 1 bit 6) with 128x128 blocks (byte 2).
          if (fp8) {
            out.emplace_back(name + "_scaled", Prefixed({to, static_cast<uint8_t>(0x40 | kind), 0x0F}, scaled));
            // --fp8-via f32 (byte 1 bit 7).
            out.emplace_back(name + "_scaled_via_f32", Prefixed({to, static_cast<uint8_t>(0xC0 | kind), 0x0F}, scaled));
            out.emplace_back(name + "_scaled_zero", Prefixed({to, static_cast<uint8_t>(0x40 | kind), 0x0F}, zero_scale));
            out.emplace_back(name + "_scaled_inf_allowed",
                             Prefixed({to, static_cast<uint8_t>(0x44 | kind), 0x0F}, inf_scale));
          }
        }
        ++j;
      }
    }
    // And every type as a recipe's target (X bit 4; an imatrix, X bit 5, for the
    // types that require one), into a GGUF file and into a safetensors directory.
    {
      const auto st = StBytes(R"({"model.layers.0.mlp.down_proj.weight":{"dtype":"F32","shape":[2,256],"data_offsets":[0,2048]}})",
                              F32Data(512, 0.01f));
      std::vector<float> im(256);
      for (int i = 0; i < 256; ++i) im[i] = 0.25f + static_cast<float>(i % 5);
      const auto imatrix = LegacyImatrix({{"model.layers.0.mlp.down_proj.weight", 4, im}}, true);
      for (const DTypeInfo& d : kDTypes) {
        const std::string recipe = "down_proj=" + std::string(d.name) + "\n";
        // GGUF output, directory output, and (block types that do not need one)
        // GGUF output with an imatrix: the imatrix-weighted quantizers.
        for (const int variant : {0, 1, 2}) {
          if (variant == 2 && (!d.is_block() || d.requires_imatrix)) continue;
          const uint8_t kind = variant == 1 ? 0 : 2;
          const bool with_imatrix = d.requires_imatrix || variant == 2;
          std::vector<uint8_t> b = {static_cast<uint8_t>(kind == 2 ? 7 : 1), kind, 0x40,  // --to q4_k / bf16
                                    static_cast<uint8_t>(0x10 | (with_imatrix ? 0x20 : 0)),
                                    static_cast<uint8_t>(recipe.size())};
          b.insert(b.end(), recipe.begin(), recipe.end());
          if (with_imatrix) PutU16Prefixed(b, imatrix);
          b.insert(b.end(), st.begin(), st.end());
          out.emplace_back("sweep_recipe_" + std::string(d.name) + (variant == 0 ? "_gguf" : variant == 1 ? "_dir" : "_imatrix_gguf"), b);
        }
      }
    }
  } else if (target == "ggml_diff") {
    // byte 0 type index, 1 blocks-1, 2 rows-1, 3 flags (imatrix bit, value mode),
    // 4 exponent; then values. One seed per type index, value modes in turn.
    for (int t = 0; t < 40; ++t)
      for (int mode = t % 4; mode == t % 4; ++mode) {
        std::vector<uint8_t> b = {static_cast<uint8_t>(t), static_cast<uint8_t>(t % 3), static_cast<uint8_t>(mode % 2),
                                  static_cast<uint8_t>((mode << 1) | (t & 1)), static_cast<uint8_t>(mode == 1 ? 250 : 4)};
        for (int i = 0; i < 96; ++i) b.push_back(static_cast<uint8_t>(i * 29 + t * 7 + mode));
        if (mode == 0 || mode == 3)  // raw f32 bits: small normal values (exponent bytes 0x3C..0x3F)
          for (size_t i = 8; i < b.size(); i += 4) b[i] = static_cast<uint8_t>(0x3C + (b[i] & 3));
        out.emplace_back("t" + std::to_string(t) + "_m" + std::to_string(mode), b);
      }
  }
  return out;
}

}  // namespace bitsmith::test
