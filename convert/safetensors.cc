#include "convert/safetensors.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <filesystem>
#include <iterator>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "convert/json_text.h"
#include "convert/name_index.h"

namespace bitsmith {

// ---------------------------------------------------------------------------
// The dtype table (safetensors/src/tensor.rs, enum Dtype and Dtype::bitsize).

namespace {
constexpr std::array<SafetensorsDType, 20> kStDTypes = {{
    {"BOOL", 8, DType::kBool},
    {"F4", 4, std::nullopt},       // packed FP4 E2M1, two per byte
    {"F6_E2M3", 6, std::nullopt},  // packed FP6, four per three bytes
    {"F6_E3M2", 6, std::nullopt},
    {"U8", 8, DType::kU8},
    {"I8", 8, DType::kI8},
    {"F8_E5M2", 8, DType::kE5M2},
    {"F8_E4M3", 8, DType::kE4M3FN},
    {"F8_E8M0", 8, DType::kE8M0FNU},
    {"I16", 16, DType::kI16},
    {"U16", 16, DType::kU16},
    {"F16", 16, DType::kF16},
    {"BF16", 16, DType::kBF16},
    {"I32", 32, DType::kI32},
    {"U32", 32, DType::kU32},
    {"F32", 32, DType::kF32},
    {"C64", 64, std::nullopt},  // complex64
    {"F64", 64, DType::kF64},
    {"I64", 64, DType::kI64},
    {"U64", 64, DType::kU64},
}};

std::string KnownDTypeList() {
  std::string s;
  for (const auto& d : kStDTypes) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}
}  // namespace

std::span<const SafetensorsDType> SafetensorsDTypes() { return kStDTypes; }

const SafetensorsDType* FindSafetensorsDType(std::string_view name) {
  for (const auto& d : kStDTypes)
    if (d.name == name) return &d;
  return nullptr;
}

std::optional<std::string_view> SafetensorsDTypeName(DType t) {
  for (const auto& d : kStDTypes)
    if (d.dtype == t) return d.name;
  return std::nullopt;
}

Result<uint64_t> SafetensorsTensorBytes(std::string_view dtype, const std::vector<uint64_t>& shape,
                                        std::string_view name) {
  const SafetensorsDType* d = FindSafetensorsDType(dtype);
  if (!d)
    return MakeError(ErrorKind::kUnsupported, "tensor '{}': unknown safetensors dtype '{}' (known: {})",
                     name, dtype, KnownDTypeList());
  const auto elems = CheckedElements(shape);
  const auto bits = elems ? CheckedMul(*elems, static_cast<uint64_t>(d->bits)) : std::nullopt;
  if (!bits)
    return MakeError(ErrorKind::kBadInput,
                     "tensor '{}': shape {} of {} overflows 64 bits when counting its bytes", name,
                     ShapeString(shape), dtype);
  if (*bits % 8 != 0)
    return MakeError(ErrorKind::kBadInput,
                     "tensor '{}': {} elements of {} ({} bits each) are not a whole number of bytes",
                     name, *elems, dtype, d->bits);
  return *bits / 8;
}

// ---------------------------------------------------------------------------
// Reading: a SAX parser that builds only the descriptors, so memory stays a
// small multiple of the header text whatever the header claims.

namespace {

using json = nlohmann::json;

struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t offsets[2] = {0, 0};  // data_offsets (the first two entries)
  uint64_t n_offsets = 0;        // entries data_offsets had (valid: exactly 2)
  bool have_dtype = false, have_shape = false, have_offsets = false;
};

class HeaderSax {
 public:
  static constexpr int kMaxDepth = 64;

  std::vector<RawTensor> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;
  bool has_metadata = false;
  std::optional<Error> error;

  // --- scalars
  bool null() { return Scalar("null", nullptr); }
  bool boolean(bool) { return Scalar("a boolean", nullptr); }
  bool number_integer(json::number_integer_t v) {
    if (v >= 0) return number_unsigned(static_cast<uint64_t>(v));
    return Scalar(fmt::format("the negative number {}", v), nullptr);
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (InArray()) {
      // 1. Elements of "shape" and "data_offsets" (end_array checks there were 2 offsets).
      if (field_ == Field::kShape) {
        cur_.shape.push_back(v);
      } else {
        if (cur_.n_offsets < 2) cur_.offsets[cur_.n_offsets] = v;
        ++cur_.n_offsets;
      }
      return true;
    }
    return Scalar(fmt::format("the number {}", v), nullptr);
  }
  bool number_float(json::number_float_t, const json::string_t& text) {
    return Scalar(fmt::format("the number {} (not an unsigned 64-bit integer)", text), nullptr);
  }
  bool string(json::string_t& s) { return Scalar(fmt::format("the string \"{}\"", Clip(s)), &s); }
  bool binary(json::binary_t&) { return Fail("binary value in the header"); }

  // --- containers
  bool start_object(std::size_t) {
    if (skip_ > 0) return Enter(true);
    if (depth_ == 0) return Enter(false);  // the root object
    if (depth_ == 1) {                     // a tensor entry or __metadata__
      if (in_meta_) has_metadata = true;
      else cur_ = RawTensor{}, cur_.name = key_;
      return Enter(false);
    }
    if (depth_ == 2 && field_ == Field::kOther) return Enter(true);  // unknown field: skip
    return Fail(fmt::format("{}: unexpected object", Where()));
  }
  bool end_object() {
    if (skip_ > 0) return Leave();
    if (depth_ == 2 && !in_meta_) {
      if (!cur_.have_dtype || !cur_.have_shape || !cur_.have_offsets)
        return Fail(fmt::format("tensor '{}': missing \"{}\"", Clip(cur_.name),
                                !cur_.have_dtype ? "dtype" : !cur_.have_shape ? "shape" : "data_offsets"));
      tensors.push_back(std::move(cur_));
      cur_ = {};
    }
    return Leave();
  }
  bool start_array(std::size_t) {
    if (skip_ > 0) return Enter(true);
    if (depth_ == 0) return Fail("header is not a JSON object");
    if (depth_ == 2 && !in_meta_ && (field_ == Field::kShape || field_ == Field::kOffsets)) {
      (field_ == Field::kShape ? cur_.have_shape : cur_.have_offsets) = true;
      return Enter(false);
    }
    if (depth_ == 2 && !in_meta_ && field_ == Field::kOther) return Enter(true);
    return Fail(fmt::format("{}: unexpected array", Where()));
  }
  bool end_array() {
    if (skip_ > 0) return Leave();
    if (field_ == Field::kOffsets && cur_.n_offsets != 2)
      return Fail(fmt::format("tensor '{}': data_offsets has {} entries, expected [begin, end]",
                              Clip(cur_.name), cur_.n_offsets));
    return Leave();
  }
  bool key(json::string_t& k) {
    if (skip_ > 0) return true;
    if (depth_ == 1) {
      if (!top_keys_.insert(k).second) return Fail(fmt::format("duplicate tensor name '{}'", Clip(k)));
      in_meta_ = k == "__metadata__";
      key_ = k;
      return true;
    }
    if (depth_ == 2 && in_meta_) {
      if (!meta_keys_.insert(k).second)
        return Fail(fmt::format("__metadata__: duplicate key '{}'", Clip(k)));
      meta_key_ = k;
      return true;
    }
    if (depth_ == 2) {
      if (!field_keys_.insert(k).second)
        return Fail(fmt::format("tensor '{}': duplicate field \"{}\"", Clip(cur_.name), Clip(k)));
      field_ = k == "dtype" ? Field::kDtype : k == "shape" ? Field::kShape
             : k == "data_offsets" ? Field::kOffsets : Field::kOther;
      return true;
    }
    return Fail(fmt::format("{}: unexpected key '{}'", Where(), Clip(k)));
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) {
    // nlohmann's message names the byte position and what it expected.
    std::string what = ex.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Fail(fmt::format("header is not valid JSON (at byte {} of the header): {}", pos, what));
  }

 private:
  enum class Field { kNone, kDtype, kShape, kOffsets, kOther };

  static std::string Clip(const std::string& s) { return s.size() <= 200 ? s : s.substr(0, 200) + "..."; }
  bool InArray() const { return skip_ == 0 && depth_ == 3; }
  std::string Where() const {
    if (depth_ <= 1) return "header";
    if (in_meta_) return "__metadata__";
    return fmt::format("tensor '{}'", Clip(cur_.name));
  }
  bool Fail(std::string msg) {
    if (!error) error = Error{ErrorKind::kBadInput, std::move(msg)};
    return false;
  }
  bool Enter(bool skipping) {
    if (depth_ + skip_ >= kMaxDepth) return Fail(fmt::format("header nests deeper than {} levels", kMaxDepth));
    if (skipping) {
      ++skip_;
      return true;
    }
    ++depth_;
    if (depth_ == 2) field_keys_.clear(), field_ = Field::kNone;
    if (depth_ == 2 && in_meta_) meta_keys_.clear();
    return true;
  }
  bool Leave() {
    if (skip_ > 0) --skip_;
    else --depth_;
    return true;
  }
  // A scalar value (string when `s` is set).
  bool Scalar(const std::string& what, json::string_t* s) {
    if (skip_ > 0) return true;
    if (depth_ == 0) return Fail("header is not a JSON object");
    if (depth_ == 1)
      return Fail(fmt::format("{} '{}': expected an object, found {}", in_meta_ ? "entry" : "tensor",
                              Clip(key_), what));
    if (depth_ == 2 && in_meta_) {
      if (!s)
        return Fail(fmt::format("__metadata__ '{}': values must be strings, found {}", Clip(meta_key_), what));
      metadata.emplace_back(meta_key_, std::move(*s));
      return true;
    }
    if (depth_ == 2) {
      if (field_ == Field::kDtype) {
        if (!s) return Fail(fmt::format("tensor '{}': dtype must be a string, found {}", Clip(cur_.name), what));
        cur_.dtype = std::move(*s);
        cur_.have_dtype = true;
        return true;
      }
      if (field_ == Field::kOther) return true;  // unknown fields are ignored, as tensor.rs does
      return Fail(fmt::format("tensor '{}': \"{}\" must be an array of unsigned integers, found {}",
                              Clip(cur_.name), field_ == Field::kShape ? "shape" : "data_offsets", what));
    }
    return Fail(fmt::format("tensor '{}': {} entries must be unsigned 64-bit integers, found {}",
                            Clip(cur_.name), field_ == Field::kShape ? "shape" : "data_offsets", what));
  }

  int depth_ = 0;  // containers entered that we interpret
  int skip_ = 0;   // containers entered inside an ignored value
  bool in_meta_ = false;
  Field field_ = Field::kNone;
  std::string key_, meta_key_;
  RawTensor cur_;
  std::unordered_set<std::string> top_keys_, meta_keys_, field_keys_;
};

// The fast path: a strict scanner for headers in the plain form every writer
// produces -- an object of tensor entries {"dtype": "...", "shape": [...],
// "data_offsets": [b, e]} and an optional "__metadata__" object of string
// values; strings of printable ASCII without escapes, unsigned integers, JSON
// whitespace. It builds the same RawTensors and metadata HeaderSax would, and
// gives up (returns false) on anything else -- escapes, non-ASCII, unknown
// fields, other value types, duplicates, malformed JSON -- so that HeaderSax
// (nlohmann's validating parser) decides every unusual header and produces
// every error message. Parsing 92 k tensor entries this way takes
// milliseconds instead of the SAX parser's ~0.3 s.
class FastScanner {
 public:
  explicit FastScanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void SkipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool Eat(char c) {
    SkipWs();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  bool Peek(char c) {
    SkipWs();
    return p_ < end_ && *p_ == c;
  }
  bool AtEnd() {
    SkipWs();
    return p_ == end_;
  }
  // A string of printable ASCII (0x20-0x7F) without escapes.
  bool String(std::string_view& out) {
    if (!Eat('"')) return false;
    const char* b = p_;
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(b, static_cast<size_t>(p_ - b));
        ++p_;
        return true;
      }
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++p_;
    }
    return false;
  }
  // An unsigned integer that fits in 64 bits, as JSON spells it (no leading
  // zeros, no fraction or exponent: those are floats for nlohmann).
  bool Unsigned(uint64_t& v) {
    SkipWs();
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    v = 0;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
        const uint64_t d = static_cast<uint64_t>(*p_ - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        ++p_;
      }
    }
    return p_ == end_ || !(*p_ == '.' || *p_ == 'e' || *p_ == 'E' || (*p_ >= '0' && *p_ <= '9'));
  }
  bool UnsignedArray(std::vector<uint64_t>& out) {
    if (!Eat('[')) return false;
    if (Eat(']')) return true;
    do {
      uint64_t v;
      if (!Unsigned(v)) return false;
      out.push_back(v);
    } while (Eat(','));
    return Eat(']');
  }
  // Exactly two unsigned integers: [a, b].
  bool UnsignedPair(uint64_t (&out)[2]) {
    return Eat('[') && Unsigned(out[0]) && Eat(',') && Unsigned(out[1]) && Eat(']');
  }

 private:
  const char* p_;
  const char* end_;
};

bool FastHeader(std::string_view text, std::vector<RawTensor>& tensors,
                std::vector<std::pair<std::string, std::string>>& metadata, bool& has_metadata) {
  FastScanner s(text);
  if (!s.Eat('{')) return false;
  std::vector<std::string_view> keys;  // top-level keys, for the duplicate check
  if (!s.Eat('}')) {
    do {
      std::string_view key;
      if (!s.String(key) || !s.Eat(':') || !s.Eat('{')) return false;
      keys.push_back(key);
      if (key == "__metadata__") {
        has_metadata = true;
        std::vector<std::string_view> meta_keys;
        if (!s.Eat('}')) {
          do {
            std::string_view k, v;
            if (!s.String(k) || !s.Eat(':') || !s.String(v)) return false;
            meta_keys.push_back(k);
            metadata.emplace_back(std::string(k), std::string(v));
          } while (s.Eat(','));
          if (!s.Eat('}')) return false;
        }
        std::sort(meta_keys.begin(), meta_keys.end());
        if (std::adjacent_find(meta_keys.begin(), meta_keys.end()) != meta_keys.end()) return false;
        continue;
      }
      RawTensor& t = tensors.emplace_back();
      t.name = std::string(key);
      if (s.Peek('}')) return false;  // missing fields
      do {
        std::string_view field;
        if (!s.String(field) || !s.Eat(':')) return false;
        if (field == "dtype") {
          std::string_view d;
          if (t.have_dtype || !s.String(d)) return false;
          t.dtype = std::string(d);
          t.have_dtype = true;
        } else if (field == "shape") {
          if (t.have_shape || !s.UnsignedArray(t.shape)) return false;
          t.have_shape = true;
        } else if (field == "data_offsets") {
          if (t.have_offsets || !s.UnsignedPair(t.offsets)) return false;
          t.have_offsets = true;
          t.n_offsets = 2;
        } else {
          return false;  // unknown field: HeaderSax decides
        }
      } while (s.Eat(','));
      if (!s.Eat('}') || !t.have_dtype || !t.have_shape || !t.have_offsets) return false;
    } while (s.Eat(','));
    if (!s.Eat('}')) return false;
  }
  if (!s.AtEnd()) return false;
  // Duplicate top-level keys (tensor names or "__metadata__" twice).
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) == keys.end();
}

}  // namespace

Result<SafetensorsFile> ReadSafetensors(const ByteSource& src) {
  const std::string& path = src.name();
  SafetensorsFile f;
  f.path = path;
  f.file_size = src.size();

  // 1. The 8-byte header length, checked against the reader's cap and the file.
  if (f.file_size < 8)
    return MakeError(ErrorKind::kBadInput,
                     "{}: {} bytes is too short for a safetensors file (8-byte header length missing)",
                     path, f.file_size);
  std::array<uint8_t, 8> len_bytes{};
  BITSMITH_RETURN_IF_ERROR(src.ReadAt(0, len_bytes));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kSafetensorsMaxHeader)
    return MakeError(ErrorKind::kBadInput,
                     "{}: header length {} exceeds the safetensors limit of {} bytes (not a "
                     "safetensors file, or corrupt)",
                     path, n, kSafetensorsMaxHeader);
  if (n > f.file_size - 8)
    return MakeError(ErrorKind::kBadInput,
                     "{}: header length {} runs past the end of the file ({} bytes): truncated or "
                     "not a safetensors file",
                     path, n, f.file_size);
  if (n < 2)
    return MakeError(ErrorKind::kBadInput, "{}: header length {} is too short for a JSON object", path, n);
  f.header_length = n;
  f.data_offset = 8 + n;

  // 2. Parse the JSON header (UTF-8 and syntax are checked by nlohmann's lexer).
  //    (n was checked against the file size above; the buffer is not zeroed
  //    first: ReadAt fills all of it or fails.)
  std::unique_ptr<uint8_t[]> text_buf(new uint8_t[n]);
  BITSMITH_RETURN_IF_ERROR(src.ReadAt(8, std::span<uint8_t>(text_buf.get(), n)));
  const std::span<const uint8_t> text(text_buf.get(), n);
  // nlohmann's lexer takes a NUL byte for the end of the input and would ignore
  // whatever follows it; JSON has no place for one outside a string (where the
  // lexer rejects raw control characters anyway), so refuse it here.
  if (const void* nul = std::memchr(text.data(), 0, text.size()); nul != nullptr)
    return MakeError(ErrorKind::kBadInput, "{}: header is not valid JSON: NUL byte at byte {} of the header",
                     path, static_cast<const uint8_t*>(nul) - text.data());
  std::vector<RawTensor> raw;
  if (!detail::g_safetensors_slow_path &&
      FastHeader(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), raw, f.metadata,
                 f.has_metadata)) {
    // Parsed by the fast scanner (the plain form every writer produces).
  } else {
    raw.clear();
    f.metadata.clear();
    f.has_metadata = false;
    HeaderSax sax;
    const bool ok = json::sax_parse(text.data(), text.data() + text.size(), &sax, json::input_format_t::json,
                                    /*strict=*/true, /*ignore_comments=*/false);
    if (!ok || sax.error) {
      Error e = sax.error ? *sax.error : Error{ErrorKind::kBadInput, "header is not valid JSON"};
      e.message = path + ": " + e.message;
      return e;
    }
    f.has_metadata = sax.has_metadata;
    f.metadata = std::move(sax.metadata);
    raw = std::move(sax.tensors);
  }
  text_buf.reset();

  // 3. Each tensor: known dtype, byte length = elements x bits / 8, range inside
  //    the data section.
  const uint64_t data_len = f.file_size - f.data_offset;
  f.tensors.reserve(raw.size());
  for (RawTensor& r : raw) {
    if (r.name.empty()) return MakeError(ErrorKind::kBadInput, "{}: a tensor has an empty name", path);
    const SafetensorsDType* d = FindSafetensorsDType(r.dtype);
    if (!d)
      return MakeError(ErrorKind::kUnsupported, "{}: tensor '{}' has unknown dtype '{}' (known: {})",
                       path, r.name, r.dtype, KnownDTypeList());
    auto bytes = SafetensorsTensorBytes(r.dtype, r.shape, r.name);
    if (!bytes.ok()) {
      Error e = bytes.take_error();
      e.message = path + ": " + e.message;
      return e;
    }
    const uint64_t begin = r.offsets[0], end = r.offsets[1];
    if (end < begin)
      return MakeError(ErrorKind::kBadInput, "{}: tensor '{}': data_offsets [{}, {}] end before they begin",
                       path, r.name, begin, end);
    if (end > data_len)
      return MakeError(ErrorKind::kBadInput,
                       "{}: tensor '{}': data_offsets [{}, {}] run past the end of the data section "
                       "({} bytes after the {}-byte header)",
                       path, r.name, begin, end, data_len, f.data_offset);
    if (end - begin != *bytes)
      return MakeError(ErrorKind::kBadInput,
                       "{}: tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}",
                       path, r.name, ShapeString(r.shape), r.dtype, *bytes, begin, end, end - begin);
    TensorInfo t;
    t.name = std::move(r.name);
    t.dtype = d->dtype;
    t.raw_dtype = std::move(r.dtype);
    t.shape = std::move(r.shape);
    t.file = path;
    t.offset = f.data_offset + begin;
    t.nbytes = *bytes;
    f.tensors.push_back(std::move(t));
  }

  // 4. Sorted by offset, the tensors must tile the data section exactly
  //    (tensor.rs Metadata::validate and the MetadataIncompleteBuffer check).
  //    Writers usually list the tensors in data order: sort only when not.
  const auto by_offset = [](const TensorInfo& a, const TensorInfo& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  };
  if (!std::is_sorted(f.tensors.begin(), f.tensors.end(), by_offset))
    std::stable_sort(f.tensors.begin(), f.tensors.end(), by_offset);
  uint64_t pos = f.data_offset;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : f.tensors) {
    if (t.offset < pos)
      return MakeError(ErrorKind::kBadInput,
                       "{}: tensors '{}' and '{}' overlap: data [{}, {}) and [{}, {})", path, prev->name,
                       t.name, prev->offset - f.data_offset, pos - f.data_offset,
                       t.offset - f.data_offset, t.offset + t.nbytes - f.data_offset);
    if (t.offset > pos)
      return MakeError(ErrorKind::kBadInput,
                       "{}: {} unused bytes (data offsets [{}, {})) before tensor '{}'{}: safetensors "
                       "data must be contiguous",
                       path, t.offset - pos, pos - f.data_offset, t.offset - f.data_offset, t.name,
                       prev ? fmt::format(" after '{}'", prev->name) : std::string());
    pos = t.offset + t.nbytes;
    prev = &t;
  }
  if (pos != f.file_size)
    return MakeError(ErrorKind::kBadInput,
                     "{}: {} trailing bytes after the last tensor's data (data ends at byte {}, the "
                     "file at {})",
                     path, f.file_size - pos, pos, f.file_size);
  return f;
}

Result<SafetensorsFile> ReadSafetensorsFile(const std::string& path) {
  BITSMITH_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(path));
  return ReadSafetensors(in);
}

// ---------------------------------------------------------------------------
// Writing.

Result<SafetensorsTensorSpec> SafetensorsSpec(std::string name, DType dtype, std::vector<uint64_t> shape) {
  auto st = SafetensorsDTypeName(dtype);
  if (!st)
    return MakeError(ErrorKind::kUnsupported,
                     "tensor '{}': dtype {} has no safetensors spelling (safetensors stores: {})", name,
                     GetDType(dtype).name, KnownDTypeList());
  return SafetensorsTensorSpec{std::move(name), std::string(*st), std::move(shape)};
}

Result<SafetensorsTensorSpec> SafetensorsSpecOf(const TensorInfo& t) {
  if (t.ggml_type < 0 && FindSafetensorsDType(t.raw_dtype))
    return SafetensorsTensorSpec{t.name, t.raw_dtype, t.shape};
  if (!t.dtype)
    return MakeError(ErrorKind::kUnsupported, "tensor '{}': dtype '{}' is unknown to bitsmith", t.name,
                     t.raw_dtype);
  return SafetensorsSpec(t.name, *t.dtype, t.shape);
}

namespace {
void AppendDecimal(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
}  // namespace

Result<PlannedFile> PlanSafetensors(
    const std::string& path, std::span<const SafetensorsTensorSpec> tensors,
    const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata) {
  PlannedFile plan;
  plan.path = path;
  std::string h = "{";
  bool first = true;
  if (metadata) {
    h += "\"__metadata__\":{";
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < metadata->size(); ++i) {
      const auto& [k, v] = (*metadata)[i];
      if (!seen.insert(k).second)
        return MakeError(ErrorKind::kBadInput, "{}: duplicate __metadata__ key '{}'", path, k);
      if (!IsValidUtf8(k) || !IsValidUtf8(v))
        return MakeError(ErrorKind::kBadInput, "{}: __metadata__ '{}' is not valid UTF-8", path,
                         PrintableText(k));
      if (i) h += ',';
      h += JsonQuote(k) + ":" + JsonQuote(v);
    }
    h += "}";
    first = false;
  }
  std::unordered_set<std::string_view> names;
  names.reserve(tensors.size());
  plan.tensors.reserve(tensors.size());
  size_t chars = h.size() + 2;
  for (const SafetensorsTensorSpec& t : tensors) chars += t.name.size() + t.dtype.size() + 21 * t.shape.size() + 80;
  h.reserve(chars);
  uint64_t offset = 0;
  for (const SafetensorsTensorSpec& t : tensors) {
    if (t.name.empty()) return MakeError(ErrorKind::kBadInput, "{}: a tensor has an empty name", path);
    if (t.name == "__metadata__")
      return MakeError(ErrorKind::kBadInput, "{}: a tensor cannot be named __metadata__", path);
    if (!IsValidUtf8(t.name))
      return MakeError(ErrorKind::kBadInput, "{}: tensor name '{}' is not valid UTF-8", path,
                       PrintableText(t.name));
    if (!names.insert(t.name).second)
      return MakeError(ErrorKind::kBadInput, "{}: duplicate tensor name '{}'", path, t.name);
    BITSMITH_ASSIGN_OR_RETURN(uint64_t nbytes, SafetensorsTensorBytes(t.dtype, t.shape, t.name));
    auto end = CheckedAdd(offset, nbytes);
    if (!end) return MakeError(ErrorKind::kBadInput, "{}: total size overflows 64 bits", path);
    if (!first) h += ',';
    first = false;
    AppendJsonQuoted(h, t.name);
    h += ":{\"dtype\":";
    AppendJsonQuoted(h, t.dtype);
    h += ",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i) h += ',';
      AppendDecimal(h, t.shape[i]);
    }
    h += "],\"data_offsets\":[";
    AppendDecimal(h, offset);
    h += ',';
    AppendDecimal(h, *end);
    h += "]}";
    plan.tensors.push_back({t.name, offset, nbytes});  // relative for now
    offset = *end;
  }
  h += "}";
  // Pad with spaces to a multiple of 8 bytes, as tensor.rs prepare() does.
  h.append((8 - h.size() % 8) % 8, ' ');
  if (h.size() > kSafetensorsMaxHeader)
    return MakeError(ErrorKind::kBadInput,
                     "{}: the header would be {} bytes, over the {}-byte limit of safetensors readers: "
                     "shard the output",
                     path, h.size(), kSafetensorsMaxHeader);
  const uint64_t n = h.size();
  plan.header.resize(8 + h.size());
  for (int i = 0; i < 8; ++i) plan.header[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(h.begin(), h.end(), plan.header.begin() + 8);
  for (PlannedTensor& t : plan.tensors) t.offset += plan.header.size();
  auto size = CheckedAdd(plan.header.size(), offset);
  if (!size) return MakeError(ErrorKind::kBadInput, "{}: total size overflows 64 bits", path);
  plan.size = *size;
  return plan;
}

std::vector<std::pair<size_t, size_t>> GroupIntoShards(std::span<const uint64_t> unit_bytes,
                                                       uint64_t max_shard_bytes) {
  std::vector<std::pair<size_t, size_t>> groups;
  size_t begin = 0;
  uint64_t cur = 0;
  for (size_t i = 0; i < unit_bytes.size(); ++i) {
    const uint64_t nbytes = unit_bytes[i];
    if (i > begin && (cur + nbytes > max_shard_bytes || cur + nbytes < cur)) {
      groups.emplace_back(begin, i);
      begin = i;
      cur = 0;
    }
    cur += nbytes;
  }
  if (begin < unit_bytes.size() || groups.empty()) groups.emplace_back(begin, unit_bytes.size());
  return groups;
}

std::string ShardFileName(std::string_view stem, size_t index, size_t count) {
  return fmt::format("{}-{:05d}-of-{:05d}.safetensors", stem, index, count);
}

Result<SafetensorsShardPlan> PlanSafetensorsShards(
    const std::string& out_dir,
    std::span<const std::pair<std::string, std::vector<SafetensorsTensorSpec>>> groups,
    const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata,
    const std::vector<std::pair<std::string, std::string>>& index_metadata) {
  SafetensorsShardPlan plan;
  // (tensor, shard) pairs: views into the planned files' names, which stay
  // put while plan.shards grows (moving a PlannedFile keeps its buffers).
  std::vector<std::pair<std::string_view, std::string_view>> weight_map;
  std::unordered_set<std::string> files;
  uint64_t total = 0;
  size_t count = 0;
  for (const auto& [file, specs] : groups) count += specs.size();
  weight_map.reserve(count);
  plan.shards.reserve(groups.size());
  // The first tensor (in shard order) that an earlier shard already holds, as
  // an error; a hash map over the planned shards, run only when a name is
  // known to repeat (the sorted weight_map below finds out for free).
  auto first_repeat = [&]() -> std::optional<Error> {
    std::unordered_map<std::string_view, std::string_view> shard_of;
    for (size_t g = 0; g < plan.shards.size(); ++g)
      for (const PlannedTensor& t : plan.shards[g].tensors) {
        auto [it, fresh] = shard_of.emplace(t.name, groups[g].first);
        if (!fresh)
          return Error{ErrorKind::kBadInput, fmt::format("tensor '{}' is in two shards ({} and {})", t.name,
                                                         it->second, groups[g].first)};
      }
    return std::nullopt;
  };
  for (const auto& [file, specs] : groups) {
    // Any error here comes after a name repeated across the shards planned so
    // far, which is reported first.
    Result<PlannedFile> f = Error{ErrorKind::kInternal, ""};
    if (!IsPlainFileName(file))
      f = MakeError(ErrorKind::kBadInput, "shard name '{}' is not a plain file name", file);
    else if (!files.insert(file).second)
      f = MakeError(ErrorKind::kBadInput, "duplicate shard name '{}'", file);
    else
      f = PlanSafetensors((std::filesystem::path(out_dir) / file).string(), specs, metadata);
    if (!f.ok()) {
      if (auto e = first_repeat()) return *e;
      return f.take_error();
    }
    plan.shards.push_back(std::move(*f));
    for (const PlannedTensor& t : plan.shards.back().tensors) {
      weight_map.emplace_back(t.name, file);
      total += t.nbytes;
    }
  }
  // The index lists the tensors sorted by name (std::string order). Equal
  // names end up side by side: a tensor in two shards.
  std::sort(weight_map.begin(), weight_map.end());
  for (size_t i = 1; i < weight_map.size(); ++i)
    if (weight_map[i].first == weight_map[i - 1].first) {
      if (auto e = first_repeat()) return *e;
      return MakeError(ErrorKind::kInternal, "tensor '{}' repeated in the shard plan", weight_map[i].first);
    }
  if (groups.size() == 1 && groups[0].first == "model.safetensors") return plan;
  // The index text as nlohmann's dump(2) writes {"metadata": {...},
  // "weight_map": {...}} (sorted keys): the metadata through nlohmann, the
  // weight_map -- 46 k entries for DeepSeek-V3 -- written directly, with the
  // same string escaping (JsonQuote; the names are valid UTF-8, checked by
  // PlanSafetensors).
  json index;
  index["metadata"] = json::object();
  for (const auto& [k, v] : index_metadata) {
    json parsed = json::parse(v, nullptr, /*allow_exceptions=*/false);
    index["metadata"][k] = parsed.is_discarded() ? json(v) : parsed;
  }
  index["metadata"]["total_size"] = total;
  index["weight_map"] = json::object();
  std::string text = index.dump(2);
  constexpr std::string_view kEmptyMap = "\"weight_map\": {}\n}";
  if (!weight_map.empty() && text.size() >= kEmptyMap.size() &&
      std::string_view(text).substr(text.size() - kEmptyMap.size()) == kEmptyMap) {
    text.resize(text.size() - kEmptyMap.size());
    text += "\"weight_map\": {";
    size_t chars = 0;
    for (const auto& [t, f] : weight_map) chars += t.size() + f.size() + 12;
    text.reserve(text.size() + chars + 8);
    for (size_t i = 0; i < weight_map.size(); ++i) {
      text += i ? ",\n    " : "\n    ";
      AppendJsonQuoted(text, weight_map[i].first);
      text += ": ";
      AppendJsonQuoted(text, weight_map[i].second);
    }
    text += "\n  }\n}";
  }
  plan.index_path = (std::filesystem::path(out_dir) / std::string(kSafetensorsIndexName)).string();
  plan.index_json = std::move(text) + "\n";
  return plan;
}

Result<SafetensorsShardPlan> PlanSafetensorsSharded(
    const std::string& out_dir, std::span<const SafetensorsTensorSpec> tensors,
    const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata,
    uint64_t max_shard_bytes, std::string_view stem) {
  std::vector<uint64_t> bytes;
  bytes.reserve(tensors.size());
  for (const SafetensorsTensorSpec& t : tensors) {
    auto b = SafetensorsTensorBytes(t.dtype, t.shape, t.name);
    bytes.push_back(b.ok() ? *b : 0);  // invalid specs fail later, in PlanSafetensorsShards
  }
  const auto ranges = GroupIntoShards(bytes, max_shard_bytes == 0 ? UINT64_MAX : max_shard_bytes);
  std::vector<std::pair<std::string, std::vector<SafetensorsTensorSpec>>> groups;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const std::string name = ranges.size() == 1 ? std::string(stem) + ".safetensors"
                                                : ShardFileName(stem, i + 1, ranges.size());
    groups.emplace_back(name, std::vector<SafetensorsTensorSpec>(tensors.begin() + ranges[i].first,
                                                                 tensors.begin() + ranges[i].second));
  }
  return PlanSafetensorsShards(out_dir, groups, metadata);
}

// ---------------------------------------------------------------------------
// The index.

bool IsPlainFileName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name)
    if (c == '/' || c == '\\' || c == '\0') return false;
  return true;
}

std::vector<std::string> SafetensorsIndex::files() const {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const auto& [tensor, file] : weight_map)
    if (seen.insert(file).second) out.push_back(file);
  return out;
}

namespace {

// SAX for the index: {"metadata": {...}?, "weight_map": {name: file}, ...}.
// Values under "metadata" are captured as compact JSON text; other top-level
// keys are ignored. Duplicate keys anywhere we interpret are errors.
class IndexSax {
 public:
  static constexpr int kMaxDepth = 64;
  SafetensorsIndex index;
  bool have_weight_map = false;
  std::optional<Error> error;

  bool null() { return Value(json(nullptr)); }
  bool boolean(bool v) { return Value(json(v)); }
  bool number_integer(json::number_integer_t v) { return Value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Value(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return Value(json(v)); }
  bool string(json::string_t& s) { return Value(json(std::move(s))); }
  bool binary(json::binary_t&) { return Fail("binary value"); }
  bool start_object(std::size_t) { return Open(json::object()); }
  bool start_array(std::size_t) { return Open(json::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(json::string_t& k) {
    if (depth_ == 1) {
      if (!top_.insert(k).second) return Fail(fmt::format("duplicate key \"{}\"", k));
      section_ = k == "weight_map" ? Section::kWeightMap : k == "metadata" ? Section::kMetadata : Section::kOther;
    } else if (depth_ == 2 && section_ == Section::kWeightMap) {
      if (!names_.insert(k).second) return Fail(fmt::format("weight_map lists tensor '{}' twice", k));
    } else if (depth_ == 2 && section_ == Section::kMetadata) {
      if (!meta_keys_.insert(k).second) return Fail(fmt::format("metadata: duplicate key \"{}\"", k));
    } else if (!stack_.empty() && stack_.back()->is_object() && stack_.back()->contains(k)) {
      return Fail(fmt::format("duplicate key \"{}\"", k));
    }
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) {
    std::string what = ex.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Fail(fmt::format("not valid JSON (at byte {}): {}", pos, what));
  }

 private:
  enum class Section { kNone, kWeightMap, kMetadata, kOther };
  bool Fail(std::string m) {
    if (!error) error = Error{ErrorKind::kBadInput, std::move(m)};
    return false;
  }
  bool Open(json v) {
    if (depth_ >= kMaxDepth) return Fail(fmt::format("nests deeper than {} levels", kMaxDepth));
    if (depth_ == 0) {
      if (!v.is_object()) return Fail("the index is not a JSON object");
      ++depth_;
      return true;
    }
    if (depth_ == 1) {
      if (section_ == Section::kWeightMap && !v.is_object()) return Fail("weight_map is not an object");
      if (section_ == Section::kMetadata && !v.is_object()) return Fail("metadata is not an object");
      if (section_ == Section::kWeightMap) have_weight_map = true;
      ++depth_;
      return true;
    }
    if (depth_ == 2 && section_ == Section::kWeightMap)
      return Fail(fmt::format("weight_map['{}'] is not a file name string", key_));
    // Inside metadata (captured) or an ignored section (captured and dropped).
    ++depth_;
    if (stack_.empty()) {
      captured_ = std::move(v);
      capture_key_ = key_;
      stack_.push_back(&captured_);
      return true;
    }
    json* parent = stack_.back();
    json* child = parent->is_array() ? &parent->emplace_back(std::move(v)) : &((*parent)[key_] = std::move(v));
    stack_.push_back(child);
    return true;
  }
  bool Close() {
    --depth_;
    if (!stack_.empty()) {
      stack_.pop_back();
      if (stack_.empty() && depth_ == 2 && section_ == Section::kMetadata) AddMeta(capture_key_, captured_);
    }
    return true;
  }
  void AddMeta(const std::string& k, const json& v) {
    index.metadata.emplace_back(k, v.dump());
    if (k == "total_size" && v.is_number_unsigned()) index.total_size = v.get<uint64_t>();
  }
  bool Value(json v) {
    if (depth_ == 0) return Fail("the index is not a JSON object");
    if (depth_ == 1) {
      if (section_ == Section::kWeightMap) return Fail("weight_map is not an object");
      if (section_ == Section::kMetadata) return Fail("metadata is not an object");
      return true;
    }
    if (depth_ == 2 && section_ == Section::kWeightMap) {
      if (!v.is_string()) return Fail(fmt::format("weight_map['{}'] is not a file name string", key_));
      std::string file = v.get<std::string>();
      if (!IsPlainFileName(file))
        return Fail(fmt::format("weight_map['{}'] = \"{}\" is not a plain file name inside the "
                                "checkpoint directory (no '/', '..' or absolute paths)",
                                key_, PrintableText(file)));
      index.weight_map.emplace_back(key_, std::move(file));
      return true;
    }
    if (depth_ == 2 && section_ == Section::kMetadata) {
      AddMeta(key_, v);
      return true;
    }
    if (stack_.empty()) return true;
    json* parent = stack_.back();
    if (parent->is_array()) parent->push_back(std::move(v));
    else (*parent)[key_] = std::move(v);
    return true;
  }

  int depth_ = 0;
  Section section_ = Section::kNone;
  std::string key_, capture_key_;
  json captured_;
  std::vector<json*> stack_;
  std::unordered_set<std::string> top_, names_, meta_keys_;
};

}  // namespace

// The index's fast path (see FastHeader): {"metadata": {key: unsigned integer
// or plain string, ...}?, "weight_map": {name: plain file name, ...}} in the
// plain form; anything else (other keys or value types, escapes, duplicates,
// a file name IndexSax would refuse) goes to IndexSax. The metadata values'
// compact JSON text is what nlohmann's dump() writes for them: the digits,
// or the string between quotes (no character in a plain string needs an
// escape).
namespace {
// `add(tensor, file)` receives each weight_map entry (views into `text`);
// `index` gets the metadata and total_size.
template <typename AddEntry>
bool FastIndex(std::string_view text, SafetensorsIndex& index, AddEntry&& add) {
  FastScanner s(text);
  bool have_weight_map = false, have_metadata = false;
  if (!s.Eat('{')) return false;
  if (s.Eat('}')) return false;  // no weight_map: IndexSax says so
  do {
    std::string_view key;
    if (!s.String(key) || !s.Eat(':') || !s.Eat('{')) return false;
    std::vector<std::string_view> keys;
    if (key == "weight_map") {
      if (have_weight_map) return false;
      have_weight_map = true;
      if (!s.Eat('}')) {
        do {
          std::string_view tensor, file;
          if (!s.String(tensor) || !s.Eat(':') || !s.String(file) || !IsPlainFileName(file)) return false;
          keys.push_back(tensor);
          add(tensor, file);
        } while (s.Eat(','));
        if (!s.Eat('}')) return false;
      }
    } else if (key == "metadata") {
      if (have_metadata) return false;
      have_metadata = true;
      if (!s.Eat('}')) {
        do {
          std::string_view k, v;
          uint64_t u = 0;
          if (!s.String(k) || !s.Eat(':')) return false;
          keys.push_back(k);
          if (s.Peek('"')) {
            if (!s.String(v)) return false;
            index.metadata.emplace_back(std::string(k), "\"" + std::string(v) + "\"");
          } else {
            if (!s.Unsigned(u)) return false;
            index.metadata.emplace_back(std::string(k), std::to_string(u));
            if (k == "total_size") index.total_size = u;
          }
        } while (s.Eat(','));
        if (!s.Eat('}')) return false;
      }
    } else {
      return false;  // other top-level keys: IndexSax
    }
    // Duplicate keys go to the full parser. (A hash table, not a sort: sorting
    // 92 k names with long common prefixes was 5% of a DeepSeek-V3 dry-run.)
    if (FirstRepeatedName(keys) >= 0) return false;
  } while (s.Eat(','));
  return s.Eat('}') && s.AtEnd() && have_weight_map;
}
}  // namespace

Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view text, const std::string& name) {
  // A NUL would end nlohmann's input early (see ReadSafetensors).
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    return MakeError(ErrorKind::kBadInput, "{}: not valid JSON: NUL byte at byte {}", name, nul);
  if (!detail::g_safetensors_slow_path) {
    SafetensorsIndex fast;
    fast.weight_map.reserve(text.size() / 80);  // entries take ~100 bytes of text (0.8x the text at most)
    if (FastIndex(text, fast, [&](std::string_view t, std::string_view f) {
          fast.weight_map.emplace_back(std::string(t), std::string(f));
        }))
      return fast;
  }
  IndexSax sax;
  const bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true, false);
  if (!ok || sax.error) {
    Error e = sax.error ? *sax.error : Error{ErrorKind::kBadInput, "not valid JSON"};
    e.message = name + ": " + e.message;
    return e;
  }
  if (!sax.have_weight_map)
    return MakeError(ErrorKind::kBadInput, "{}: no \"weight_map\" object: not a safetensors index", name);
  return std::move(sax.index);
}

namespace {
Result<std::vector<uint8_t>> ReadIndexBytes(const std::string& path) {
  constexpr uint64_t kMaxIndex = uint64_t{256} << 20;
  BITSMITH_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(path));
  if (in.size() > kMaxIndex)
    return MakeError(ErrorKind::kBadInput, "{}: {} bytes is larger than the {}-byte limit for an index",
                     path, in.size(), kMaxIndex);
  return in.ReadRange(0, in.size());
}
}  // namespace

Result<SafetensorsIndex> ReadSafetensorsIndex(const std::string& path) {
  BITSMITH_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadIndexBytes(path));
  return ParseSafetensorsIndex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                               path);
}

Result<SafetensorsIndexView> ReadSafetensorsIndexView(const std::string& path) {
  SafetensorsIndexView v;
  BITSMITH_ASSIGN_OR_RETURN(v.text, ReadIndexBytes(path));
  const std::string_view text(reinterpret_cast<const char*>(v.text.data()), v.text.size());
  // 1. The fast scanner, entries as views into the text (the same checks as
  //    ParseSafetensorsIndex's fast path: a NUL goes to the full parser).
  if (!detail::g_safetensors_slow_path && text.find('\0') == std::string_view::npos) {
    v.weight_map.reserve(text.size() / 80);
    if (FastIndex(text, v.index, [&](std::string_view t, std::string_view f) { v.weight_map.emplace_back(t, f); }))
      return v;
    v.weight_map.clear();
    v.index = SafetensorsIndex{};
  }
  // 2. Anything unusual: ParseSafetensorsIndex (every error message), views
  //    into its strings (a vector's elements stay put when the vector moves).
  BITSMITH_ASSIGN_OR_RETURN(v.index, ParseSafetensorsIndex(text, path));
  v.text.clear();
  v.text.shrink_to_fit();
  v.weight_map.clear();
  v.weight_map.reserve(v.index.weight_map.size());
  for (const auto& [t, f] : v.index.weight_map) v.weight_map.emplace_back(t, f);
  return v;
}

}  // namespace bitsmith
