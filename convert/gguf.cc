#include "convert/gguf.h"

#include <algorithm>
#include <array>
#include <bit>       // std::has_single_bit
#include <cmath>     // std::isfinite
#include <cstring>   // std::memcpy
#include <filesystem>
#include <regex>
#include <unordered_set>

#include <fmt/format.h>

#include "convert/json_text.h"
#include "formats/dtype.h"

namespace bitsmith {

// ---------------------------------------------------------------------------
// Types and values.

std::string_view GgufTypeName(GgufType t) {
  static constexpr std::string_view kNames[kGgufTypeCount] = {
      "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < kGgufTypeCount ? kNames[i] : std::string_view("?");
}

int GgufTypeSize(GgufType t) {
  static constexpr int kSizes[kGgufTypeCount] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  const auto i = static_cast<uint32_t>(t);
  return i < kGgufTypeCount ? kSizes[i] : 0;
}

namespace {

template <typename T>
GgufValue Scalar(GgufType type, T v) {
  GgufValue out;
  out.type = type;
  out.raw.resize(sizeof(T));
  std::memcpy(out.raw.data(), &v, sizeof(T));  // little-endian host (x86-64, aarch64)
  return out;
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

GgufValue GgufValue::U8(uint8_t v) { return Scalar(GgufType::kU8, v); }
GgufValue GgufValue::I8(int8_t v) { return Scalar(GgufType::kI8, v); }
GgufValue GgufValue::U16(uint16_t v) { return Scalar(GgufType::kU16, v); }
GgufValue GgufValue::I16(int16_t v) { return Scalar(GgufType::kI16, v); }
GgufValue GgufValue::U32(uint32_t v) { return Scalar(GgufType::kU32, v); }
GgufValue GgufValue::I32(int32_t v) { return Scalar(GgufType::kI32, v); }
GgufValue GgufValue::U64(uint64_t v) { return Scalar(GgufType::kU64, v); }
GgufValue GgufValue::I64(int64_t v) { return Scalar(GgufType::kI64, v); }
GgufValue GgufValue::F32(float v) { return Scalar(GgufType::kF32, v); }
GgufValue GgufValue::F64(double v) { return Scalar(GgufType::kF64, v); }
GgufValue GgufValue::Bool(bool v) { return Scalar(GgufType::kBool, static_cast<uint8_t>(v ? 1 : 0)); }
GgufValue GgufValue::Str(std::string v) {
  GgufValue out;
  out.type = GgufType::kString;
  out.strings.push_back(std::move(v));
  return out;
}
GgufValue GgufValue::StrArray(std::vector<std::string> v) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = GgufType::kString;
  out.strings = std::move(v);
  return out;
}
GgufValue GgufValue::NumArray(GgufType elem, std::vector<uint8_t> bytes) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = elem;
  out.raw = std::move(bytes);
  return out;
}

uint64_t GgufValue::count() const {
  if (type != GgufType::kArray) return 1;
  if (elem_type == GgufType::kString) return strings.size();
  if (elem_type == GgufType::kArray) return arrays.size();
  const int size = GgufTypeSize(elem_type);
  return size > 0 ? raw.size() / static_cast<size_t>(size) : 0;
}

std::optional<int64_t> GgufValue::AsInt() const {
  if (raw.empty() || type == GgufType::kArray) return std::nullopt;
  const uint8_t* p = raw.data();
  switch (type) {
    case GgufType::kU8: return Load<uint8_t>(p);
    case GgufType::kI8: return Load<int8_t>(p);
    case GgufType::kBool: return Load<uint8_t>(p) != 0;
    case GgufType::kU16: return Load<uint16_t>(p);
    case GgufType::kI16: return Load<int16_t>(p);
    case GgufType::kU32: return Load<uint32_t>(p);
    case GgufType::kI32: return Load<int32_t>(p);
    case GgufType::kI64: return Load<int64_t>(p);
    case GgufType::kU64: {
      const uint64_t v = Load<uint64_t>(p);
      if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    default: return std::nullopt;
  }
}

std::optional<uint64_t> GgufValue::AsUInt() const {
  if (type == GgufType::kU64 && raw.size() == 8) return Load<uint64_t>(raw.data());
  auto v = AsInt();
  if (!v || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

std::optional<double> GgufValue::AsDouble() const {
  if (type == GgufType::kF32 && raw.size() == 4) return Load<float>(raw.data());
  if (type == GgufType::kF64 && raw.size() == 8) return Load<double>(raw.data());
  if (type == GgufType::kU64) {
    if (auto u = AsUInt()) return static_cast<double>(*u);
  }
  if (auto i = AsInt()) return static_cast<double>(*i);
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Reading.

namespace {

// Sequential reads from a ByteSource through a bounded window, so a header of
// many small fields costs few preads. Every read is checked against the bytes
// left in the source first.
class Cursor {
 public:
  explicit Cursor(const ByteSource& src) : src_(src) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return src_.size() - pos_; }

  Status Read(void* dst, size_t n, std::string_view what) {
    if (n > remaining())
      return MakeError(ErrorKind::kBadInput,
                       "{}: unexpected end of file reading {} at byte {} (needs {} bytes, {} left)",
                       src_.name(), what, pos_, n, remaining());
    auto* out = static_cast<uint8_t*>(dst);
    while (n > 0) {
      if (pos_ < win_start_ || pos_ >= win_start_ + win_.size()) {
        // Refill the window at pos_.
        const uint64_t len = std::min<uint64_t>(kWindow, remaining());
        win_.resize(static_cast<size_t>(len));
        BITSMITH_RETURN_IF_ERROR(src_.ReadAt(pos_, win_));
        win_start_ = pos_;
      }
      const size_t off = static_cast<size_t>(pos_ - win_start_);
      const size_t take = std::min(n, win_.size() - off);
      std::memcpy(out, win_.data() + off, take);
      out += take;
      n -= take;
      pos_ += take;
    }
    return Status::Ok();
  }
  template <typename T>
  Result<T> Get(std::string_view what) {
    T v;
    BITSMITH_RETURN_IF_ERROR(Read(&v, sizeof(T), what));
    return v;
  }
  Result<std::string> String(std::string_view what) {
    BITSMITH_ASSIGN_OR_RETURN(uint64_t len, Get<uint64_t>(what));
    if (len > remaining())
      return MakeError(ErrorKind::kBadInput,
                       "{}: {} has length {} at byte {}, but only {} bytes are left in the file",
                       src_.name(), what, len, pos_ - 8, remaining());
    std::string s(static_cast<size_t>(len), '\0');
    BITSMITH_RETURN_IF_ERROR(Read(s.data(), s.size(), what));
    return s;
  }

 private:
  static constexpr uint64_t kWindow = uint64_t{1} << 20;
  const ByteSource& src_;
  uint64_t pos_ = 0;
  uint64_t win_start_ = 0;
  std::vector<uint8_t> win_;
};

std::string KeyName(const std::string& k) { return PrintableText(k, 120); }

Result<GgufValue> ReadValue(Cursor& c, const ByteSource& src, GgufType type, const std::string& key,
                            int depth);

// One array: element type, count (checked against the bytes left), elements.
Result<GgufValue> ReadArray(Cursor& c, const ByteSource& src, const std::string& key, int depth) {
  if (depth >= kGgufMaxArrayDepth)
    return MakeError(ErrorKind::kBadInput, "{}: key '{}': arrays nested deeper than {} levels",
                     src.name(), KeyName(key), kGgufMaxArrayDepth);
  BITSMITH_ASSIGN_OR_RETURN(uint32_t et, c.Get<uint32_t>("an array element type"));
  if (et >= kGgufTypeCount)
    return MakeError(ErrorKind::kBadInput,
                     "{}: key '{}': array element type {} is not a GGUF type (must be in [0, {}))",
                     src.name(), KeyName(key), et, kGgufTypeCount);
  BITSMITH_ASSIGN_OR_RETURN(uint64_t n, c.Get<uint64_t>("an array length"));
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = static_cast<GgufType>(et);
  // Smallest encoding of one element: its size, a string's 8-byte length, a
  // nested array's 4-byte type and 8-byte count.
  const int esize = GgufTypeSize(v.elem_type);
  const uint64_t min_elem = esize > 0 ? esize : v.elem_type == GgufType::kString ? 8 : 12;
  if (n > c.remaining() / min_elem)
    return MakeError(ErrorKind::kBadInput,
                     "{}: key '{}': array of {} {} needs at least {} bytes but only {} are left in "
                     "the file",
                     src.name(), KeyName(key), n, GgufTypeName(v.elem_type),
                     CheckedMul(n, min_elem).value_or(UINT64_MAX), c.remaining());
  if (esize > 0) {
    v.raw.resize(static_cast<size_t>(n * static_cast<uint64_t>(esize)));
    BITSMITH_RETURN_IF_ERROR(c.Read(v.raw.data(), v.raw.size(), "array data"));
  } else if (v.elem_type == GgufType::kString) {
    // No reserve(n): growth follows the bytes actually read.
    for (uint64_t i = 0; i < n; ++i) {
      BITSMITH_ASSIGN_OR_RETURN(std::string s, c.String("an array string"));
      v.strings.push_back(std::move(s));
    }
  } else {
    // Each element is an array value without a type tag of its own (gguf.md:
    // the array's type says what its elements are): element type, count, data.
    for (uint64_t i = 0; i < n; ++i) {
      BITSMITH_ASSIGN_OR_RETURN(GgufValue a, ReadArray(c, src, key, depth + 1));
      v.arrays.push_back(std::move(a));
    }
  }
  return v;
}

Result<GgufValue> ReadValue(Cursor& c, const ByteSource& src, GgufType type, const std::string& key,
                            int depth) {
  if (type == GgufType::kArray) return ReadArray(c, src, key, depth);
  GgufValue v;
  v.type = type;
  if (type == GgufType::kString) {
    BITSMITH_ASSIGN_OR_RETURN(std::string s, c.String("a string value"));
    v.strings.push_back(std::move(s));
    return v;
  }
  v.raw.resize(static_cast<size_t>(GgufTypeSize(type)));
  BITSMITH_RETURN_IF_ERROR(c.Read(v.raw.data(), v.raw.size(), "a value"));
  return v;
}

std::string GgmlTypeLabel(int id) {
  if (auto n = GgmlTypeName(id)) return std::string(*n);
  return fmt::format("type {}", id);
}

}  // namespace

Result<uint64_t> GgufTensorBytes(int ggml_type, const std::vector<uint64_t>& ne, std::string_view name) {
  const auto dt = DTypeFromGgml(ggml_type);
  if (!dt) {
    const bool removed = ggml_type >= 0 && ggml_type < kGgmlTypeCount;
    return MakeError(ErrorKind::kBadInput,
                     "tensor '{}': ggml type id {} is {} (known ids: 0-3, 6-30, 34, 35, 39)",
                     PrintableText(name), ggml_type,
                     removed ? "a removed type ggml no longer reads" : "unknown");
  }
  const DTypeInfo& info = GetDType(*dt);
  if (ne.size() > static_cast<size_t>(kGgmlMaxDims))
    return MakeError(ErrorKind::kBadInput, "tensor '{}': {} dimensions, GGUF allows at most {}",
                     PrintableText(name), ne.size(), kGgmlMaxDims);
  // Like gguf.cpp: each ne fits int64 and the element count stays below 2^63.
  uint64_t elems = 1;
  for (uint64_t d : ne) {
    auto m = CheckedMul(elems, d);
    if (d > static_cast<uint64_t>(INT64_MAX) || !m || *m > static_cast<uint64_t>(INT64_MAX))
      return MakeError(ErrorKind::kBadInput,
                       "tensor '{}': ne {} has more than 2^63 - 1 elements (or a dimension >= 2^63)",
                       PrintableText(name), ShapeString(ne));
    elems = *m;
  }
  const uint64_t row = ne.empty() ? 1 : ne[0];
  if (row % static_cast<uint64_t>(info.block_elems) != 0)
    return MakeError(ErrorKind::kBadInput,
                     "tensor '{}' of type {} has {} elements per row (ne[0]), not a multiple of the "
                     "block size {}",
                     PrintableText(name), info.name, row, info.block_elems);
  auto bytes = CheckedMul(elems / static_cast<uint64_t>(info.block_elems),
                          static_cast<uint64_t>(info.block_bytes));
  if (!bytes)
    return MakeError(ErrorKind::kBadInput, "tensor '{}': byte size of ne {} overflows 64 bits",
                     PrintableText(name), ShapeString(ne));
  return *bytes;
}

Result<GgufFile> ReadGguf(const ByteSource& src) {
  const std::string& path = src.name();
  GgufFile f;
  f.path = path;
  f.file_size = src.size();
  Cursor c(src);

  // 1. Magic and version.
  std::array<char, 4> magic{};
  if (src.size() < 4)
    return MakeError(ErrorKind::kBadInput, "{}: {} bytes is too short for a GGUF file", path, src.size());
  BITSMITH_RETURN_IF_ERROR(c.Read(magic.data(), 4, "the magic"));
  if (std::string_view(magic.data(), 4) != "GGUF") {
    const std::string found = PrintableText(std::string_view(magic.data(), 4));
    const bool legacy = std::string_view(magic.data(), 4) == "lmgg" ||
                        std::string_view(magic.data(), 4) == "fmgg" ||
                        std::string_view(magic.data(), 4) == "tjgg";
    return MakeError(ErrorKind::kBadInput, "{}: bad magic '{}' (expected 'GGUF'){}", path, found,
                     legacy ? ": a legacy GGML/GGJT file, convert it with llama.cpp first" : "");
  }
  BITSMITH_ASSIGN_OR_RETURN(f.version, c.Get<uint32_t>("the version"));
  if ((f.version & 0xFFFF) == 0 && f.version != 0)
    return MakeError(ErrorKind::kUnsupported,
                     "{}: version field 0x{:08X}: a big-endian GGUF file (bitsmith reads little-endian "
                     "GGUF v2 and v3)",
                     path, f.version);
  if (f.version == 1)
    return MakeError(ErrorKind::kUnsupported, "{}: GGUF v1 is not supported (v2 and v3 are), as in ggml", path);
  if (f.version != 2 && f.version != 3)
    return MakeError(ErrorKind::kUnsupported, "{}: GGUF version {} is not supported (must be 2 or 3)", path,
                     f.version);

  // 2. Counts, checked against the bytes left: a KV takes at least 13 bytes
  //    (key length 8, type 4, a 1-byte value), a tensor info at least 24
  //    (name length 8, n_dims 4, type 4, offset 8).
  BITSMITH_ASSIGN_OR_RETURN(uint64_t n_tensors, c.Get<uint64_t>("the tensor count"));
  BITSMITH_ASSIGN_OR_RETURN(uint64_t n_kv, c.Get<uint64_t>("the metadata count"));
  if (n_kv > c.remaining() / 13)
    return MakeError(ErrorKind::kBadInput,
                     "{}: metadata count {} but the file has room for at most {} key-value pairs", path,
                     n_kv, c.remaining() / 13);
  if (n_tensors > c.remaining() / 24)
    return MakeError(ErrorKind::kBadInput,
                     "{}: tensor count {} but the file has room for at most {} tensor infos", path,
                     n_tensors, c.remaining() / 24);

  // 3. Metadata.
  std::unordered_set<std::string> keys;
  f.kv.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    BITSMITH_ASSIGN_OR_RETURN(std::string key, c.String("a metadata key"));
    if (key.empty()) return MakeError(ErrorKind::kBadInput, "{}: metadata key {} is empty", path, i);
    if (!keys.insert(key).second)
      return MakeError(ErrorKind::kBadInput, "{}: duplicate metadata key '{}'", path, KeyName(key));
    BITSMITH_ASSIGN_OR_RETURN(uint32_t type, c.Get<uint32_t>("a value type"));
    if (type >= kGgufTypeCount)
      return MakeError(ErrorKind::kBadInput,
                       "{}: key '{}' has value type {}, not a GGUF type (must be in [0, {}))", path,
                       KeyName(key), type, kGgufTypeCount);
    BITSMITH_ASSIGN_OR_RETURN(GgufValue value, ReadValue(c, src, static_cast<GgufType>(type), key, 0));
    f.kv.push_back({std::move(key), std::move(value)});
  }

  // 4. general.alignment: a u32 power of two (gguf.cpp reads it with
  //    gguf_get_val_u32, which asserts the type).
  if (const GgufValue* a = f.Find("general.alignment")) {
    if (a->type != GgufType::kU32)
      return MakeError(ErrorKind::kBadInput, "{}: general.alignment has type {}, must be u32", path,
                       GgufTypeName(a->type));
    const uint32_t al = *a->AsUInt();
    if (al == 0 || !std::has_single_bit(al))
      return MakeError(ErrorKind::kBadInput, "{}: general.alignment {} is not a power of two", path, al);
    if (al > kGgufMaxAlignment)
      return MakeError(ErrorKind::kBadInput, "{}: general.alignment {} exceeds the maximum {} that ggml accepts",
                       path, al, kGgufMaxAlignment);
    f.alignment = al;
  }

  // 5. Tensor infos.
  std::unordered_set<std::string> names;
  f.tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    BITSMITH_ASSIGN_OR_RETURN(t.name, c.String("a tensor name"));
    if (t.name.empty()) return MakeError(ErrorKind::kBadInput, "{}: tensor {} has an empty name", path, i);
    if (!names.insert(t.name).second)
      return MakeError(ErrorKind::kBadInput, "{}: duplicate tensor name '{}'", path, KeyName(t.name));
    BITSMITH_ASSIGN_OR_RETURN(uint32_t n_dims, c.Get<uint32_t>("n_dims"));
    if (n_dims > static_cast<uint32_t>(kGgmlMaxDims))
      return MakeError(ErrorKind::kBadInput, "{}: tensor '{}' has {} dimensions (n_dims must be in [0, {}])",
                       path, KeyName(t.name), n_dims, kGgmlMaxDims);
    t.ne.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      BITSMITH_ASSIGN_OR_RETURN(t.ne[d], c.Get<uint64_t>("a dimension"));
      if (t.ne[d] > static_cast<uint64_t>(INT64_MAX))
        return MakeError(ErrorKind::kBadInput, "{}: tensor '{}': ne[{}] = {} is negative as int64", path,
                         KeyName(t.name), d, static_cast<int64_t>(t.ne[d]));
    }
    BITSMITH_ASSIGN_OR_RETURN(uint32_t type, c.Get<uint32_t>("a tensor type"));
    t.ggml_type = type > static_cast<uint32_t>(INT32_MAX) ? -1 : static_cast<int>(type);
    BITSMITH_ASSIGN_OR_RETURN(t.offset, c.Get<uint64_t>("a tensor offset"));
    auto bytes = GgufTensorBytes(t.ggml_type, t.ne, t.name);
    if (!bytes.ok()) {
      Error e = bytes.take_error();
      if (t.ggml_type < 0) e.message = fmt::format("tensor '{}': ggml type id {} is unknown", KeyName(t.name), type);
      e.message = path + ": " + e.message;
      return e;
    }
    t.nbytes = *bytes;
    f.tensors.push_back(std::move(t));
  }

  // 6. The data section starts at the next multiple of the alignment.
  const uint64_t pos = c.pos();
  f.data_offset = pos + (f.alignment - pos % f.alignment) % f.alignment;
  if (n_tensors > 0 && f.data_offset > f.file_size)
    return MakeError(ErrorKind::kBadInput,
                     "{}: the data section would start at byte {}, past the end of the file ({} bytes)",
                     path, f.data_offset, f.file_size);

  // 7. Each tensor: aligned offset, data inside the file; then no overlaps.
  const uint64_t data_len = f.data_offset <= f.file_size ? f.file_size - f.data_offset : 0;
  uint64_t expected = 0;
  for (const GgufTensorInfo& t : f.tensors) {
    if (t.offset % f.alignment != 0)
      return MakeError(ErrorKind::kBadInput,
                       "{}: tensor '{}': data offset {} is not a multiple of the alignment {}", path,
                       KeyName(t.name), t.offset, f.alignment);
    const auto end = CheckedAdd(t.offset, t.nbytes);
    if (!end || *end > data_len)
      return MakeError(ErrorKind::kBadInput,
                       "{}: tensor '{}': data [{}, {}) of the data section runs past the end of the file "
                       "(the data section has {} bytes)",
                       path, KeyName(t.name), t.offset, end.value_or(UINT64_MAX), data_len);
    if (t.offset != expected) f.canonical_layout = false;
    expected = t.offset + t.nbytes + (f.alignment - t.nbytes % f.alignment) % f.alignment;
  }
  if (!f.canonical_layout) {
    std::vector<const GgufTensorInfo*> order;
    for (const auto& t : f.tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
      return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
    });
    for (size_t i = 1; i < order.size(); ++i)
      if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
        return MakeError(ErrorKind::kBadInput, "{}: tensors '{}' and '{}' overlap: data [{}, {}) and [{}, {})",
                         path, KeyName(order[i - 1]->name), KeyName(order[i]->name),
                         order[i - 1]->offset, order[i - 1]->offset + order[i - 1]->nbytes,
                         order[i]->offset, order[i]->offset + order[i]->nbytes);
  }
  return f;
}

Result<GgufFile> ReadGgufFile(const std::string& path) {
  BITSMITH_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(path));
  return ReadGguf(in);
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  for (const GgufKV& kv_ : kv)
    if (kv_.key == key) return &kv_.value;
  return nullptr;
}

std::vector<TensorInfo> GgufFile::Tensors(int file_index) const {
  std::vector<TensorInfo> out;
  out.reserve(tensors.size());
  for (const GgufTensorInfo& g : tensors) {
    TensorInfo t;
    t.name = g.name;
    t.dtype = DTypeFromGgml(g.ggml_type);
    t.raw_dtype = GgmlTypeLabel(g.ggml_type);
    t.shape.assign(g.ne.rbegin(), g.ne.rend());
    t.file = path;
    t.offset = data_offset + g.offset;
    t.nbytes = g.nbytes;
    t.ggml_type = g.ggml_type;
    t.file_index = file_index;
    out.push_back(std::move(t));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Splits.

std::string GgufSplitPath(std::string_view prefix, int index, int count) {
  return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, index + 1, count);
}

std::optional<GgufSplitName> ParseGgufSplitPath(std::string_view path) {
  static const std::regex kRe(R"(^(.*)-([0-9]{5})-of-([0-9]{5})\.gguf$)");
  std::cmatch m;
  if (!std::regex_match(path.begin(), path.end(), m, kRe)) return std::nullopt;
  GgufSplitName s;
  s.prefix = m[1].str();
  s.index = std::stoi(m[2].str()) - 1;
  s.count = std::stoi(m[3].str());
  if (s.count < 1 || s.index < 0 || s.index >= s.count) return std::nullopt;
  return s;
}

Result<std::vector<GgufFile>> ReadGgufSplits(const std::string& path) {
  std::vector<GgufFile> files;
  const auto split = ParseGgufSplitPath(path);
  if (!split) {
    BITSMITH_ASSIGN_OR_RETURN(GgufFile f, ReadGgufFile(path));
    if (const GgufValue* c = f.Find(kGgufSplitCount); c && c->AsUInt().value_or(1) > 1)
      return MakeError(ErrorKind::kBadInput,
                       "{}: split.count is {} but the file name is not a split name "
                       "(<prefix>-00001-of-{:05d}.gguf)",
                       path, *c->AsUInt(), *c->AsUInt());
    files.push_back(std::move(f));
    return files;
  }
  std::unordered_set<std::string> names;
  uint64_t total = 0;
  for (int i = 0; i < split->count; ++i) {
    const std::string p = GgufSplitPath(split->prefix, i, split->count);
    auto f = ReadGgufFile(p);
    if (!f.ok()) {
      Error e = f.take_error();
      if (!std::filesystem::exists(p))
        e.message = fmt::format("{}: split {} of {} is missing ({})", path, i + 1, split->count, e.message);
      return e;
    }
    const GgufValue* no = f->Find(kGgufSplitNo);
    const GgufValue* count = f->Find(kGgufSplitCount);
    if (!no || !count || !no->AsUInt() || !count->AsUInt())
      return MakeError(ErrorKind::kBadInput, "{}: a split file without integer {} and {} keys", p,
                       kGgufSplitNo, kGgufSplitCount);
    if (*no->AsUInt() != static_cast<uint64_t>(i) || *count->AsUInt() != static_cast<uint64_t>(split->count))
      return MakeError(ErrorKind::kBadInput,
                       "{}: split.no = {} and split.count = {}, but the name says split {} of {}", p,
                       *no->AsUInt(), *count->AsUInt(), i, split->count);
    for (const GgufTensorInfo& t : f->tensors)
      if (!names.insert(t.name).second)
        return MakeError(ErrorKind::kBadInput, "{}: tensor '{}' is also in an earlier split", p,
                         KeyName(t.name));
    total += f->tensors.size();
    files.push_back(std::move(*f));
  }
  if (const GgufValue* tc = files[0].Find(kGgufSplitTensorsCount)) {
    if (tc->AsUInt() != total)
      return MakeError(ErrorKind::kBadInput, "{}: split.tensors.count is {} but the {} splits hold {} tensors",
                       files[0].path, tc->AsInt().value_or(-1), split->count, total);
  }
  return files;
}

// ---------------------------------------------------------------------------
// Writing.

GgufTensorSpec GgufSpecOf(const GgufTensorInfo& t) { return {t.name, t.ne, t.ggml_type}; }

namespace {

class ByteWriter {
 public:
  std::vector<uint8_t> bytes;
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  template <typename T>
  void Put(T v) {
    Raw(&v, sizeof(T));
  }
  void Str(const std::string& s) {
    Put<uint64_t>(s.size());
    Raw(s.data(), s.size());
  }
};

Status WriteValue(ByteWriter& w, const GgufValue& v, const std::string& key, int depth) {
  if (v.type == GgufType::kString) {
    if (v.strings.size() != 1)
      return MakeError(ErrorKind::kInternal, "key '{}': a string value needs exactly one string", key);
    w.Str(v.strings[0]);
    return Status::Ok();
  }
  if (v.type != GgufType::kArray) {
    if (static_cast<uint32_t>(v.type) >= kGgufTypeCount || v.raw.size() != static_cast<size_t>(GgufTypeSize(v.type)))
      return MakeError(ErrorKind::kInternal, "key '{}': value of type {} has {} bytes", key,
                       GgufTypeName(v.type), v.raw.size());
    w.Raw(v.raw.data(), v.raw.size());
    return Status::Ok();
  }
  if (depth >= kGgufMaxArrayDepth)
    return MakeError(ErrorKind::kBadInput, "key '{}': arrays nested deeper than {} levels", key, kGgufMaxArrayDepth);
  w.Put<uint32_t>(static_cast<uint32_t>(v.elem_type));
  w.Put<uint64_t>(v.count());
  if (v.elem_type == GgufType::kString) {
    for (const std::string& s : v.strings) w.Str(s);
  } else if (v.elem_type == GgufType::kArray) {
    for (const GgufValue& a : v.arrays) {
      if (a.type != GgufType::kArray)
        return MakeError(ErrorKind::kInternal, "key '{}': an array of arrays holds a non-array", key);
      BITSMITH_RETURN_IF_ERROR(WriteValue(w, a, key, depth + 1));
    }
  } else {
    const int size = GgufTypeSize(v.elem_type);
    if (size <= 0 || v.raw.size() % static_cast<size_t>(size) != 0)
      return MakeError(ErrorKind::kInternal, "key '{}': array of {} has {} bytes", key,
                       GgufTypeName(v.elem_type), v.raw.size());
    w.Raw(v.raw.data(), v.raw.size());
  }
  return Status::Ok();
}

Result<uint32_t> AlignmentOf(std::span<const GgufKV> kv, const std::string& path) {
  for (const GgufKV& e : kv) {
    if (e.key != "general.alignment") continue;
    if (e.value.type != GgufType::kU32)
      return MakeError(ErrorKind::kBadInput, "{}: general.alignment must be u32, not {}", path,
                       GgufTypeName(e.value.type));
    const uint32_t a = *e.value.AsUInt();
    if (a == 0 || !std::has_single_bit(a))
      return MakeError(ErrorKind::kBadInput, "{}: general.alignment {} is not a power of two", path, a);
    if (a > kGgufMaxAlignment)
      return MakeError(ErrorKind::kBadInput, "{}: general.alignment {} exceeds the maximum {} that ggml accepts",
                       path, a, kGgufMaxAlignment);
    return a;
  }
  return kGgufDefaultAlignment;
}

uint64_t PadTo(uint64_t n, uint64_t a) { return n + (a - n % a) % a; }

}  // namespace

Result<PlannedFile> PlanGguf(const std::string& path, uint32_t version, std::span<const GgufKV> kv,
                             std::span<const GgufTensorSpec> tensors) {
  if (version != 2 && version != 3)
    return MakeError(ErrorKind::kBadUsage, "{}: can only write GGUF v2 or v3, not v{}", path, version);
  BITSMITH_ASSIGN_OR_RETURN(const uint32_t alignment, AlignmentOf(kv, path));
  ByteWriter w;
  w.Raw("GGUF", 4);
  w.Put<uint32_t>(version);
  w.Put<uint64_t>(tensors.size());
  w.Put<uint64_t>(kv.size());
  std::unordered_set<std::string> seen;
  for (const GgufKV& e : kv) {
    if (e.key.empty()) return MakeError(ErrorKind::kBadInput, "{}: a metadata key is empty", path);
    if (!seen.insert(e.key).second)
      return MakeError(ErrorKind::kBadInput, "{}: duplicate metadata key '{}'", path, KeyName(e.key));
    w.Str(e.key);
    w.Put<uint32_t>(static_cast<uint32_t>(e.value.type));
    Status s = WriteValue(w, e.value, e.key, 0);
    if (!s.ok()) {
      Error err = s.take_error();
      err.message = path + ": " + err.message;
      return err;
    }
  }
  PlannedFile plan;
  plan.path = path;
  seen.clear();
  uint64_t offset = 0;
  for (const GgufTensorSpec& t : tensors) {
    if (t.name.empty()) return MakeError(ErrorKind::kBadInput, "{}: a tensor has an empty name", path);
    if (t.name.size() >= static_cast<size_t>(kGgmlMaxName))
      return MakeError(ErrorKind::kBadInput,
                       "{}: tensor name '{}' is {} bytes; ggml needs names shorter than {} bytes", path,
                       KeyName(t.name), t.name.size(), kGgmlMaxName);
    if (!seen.insert(t.name).second)
      return MakeError(ErrorKind::kBadInput, "{}: duplicate tensor name '{}'", path, KeyName(t.name));
    auto nbytes = GgufTensorBytes(t.ggml_type, t.ne, t.name);
    if (!nbytes.ok()) {
      Error err = nbytes.take_error();
      err.message = path + ": " + err.message;
      return err;
    }
    w.Str(t.name);
    w.Put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) w.Put<uint64_t>(d);
    w.Put<uint32_t>(static_cast<uint32_t>(t.ggml_type));
    w.Put<uint64_t>(offset);
    plan.tensors.push_back({t.name, offset, *nbytes});  // relative for now
    const auto next = CheckedAdd(offset, PadTo(*nbytes, alignment));
    if (!next) return MakeError(ErrorKind::kBadInput, "{}: total size overflows 64 bits", path);
    offset = *next;
  }
  w.bytes.resize(static_cast<size_t>(PadTo(w.bytes.size(), alignment)), 0);
  plan.header = std::move(w.bytes);
  for (PlannedTensor& t : plan.tensors) t.offset += plan.header.size();
  plan.size = plan.header.size() + offset;
  return plan;
}

Result<std::vector<PlannedFile>> PlanGgufSplit(const std::string& path, uint32_t version,
                                               std::span<const GgufKV> kv,
                                               std::span<const GgufTensorSpec> tensors,
                                               uint64_t max_split_bytes) {
  BITSMITH_ASSIGN_OR_RETURN(const uint32_t alignment, AlignmentOf(kv, path));
  // 1. Group tensors as gguf-split's split_strategy does.
  std::vector<std::vector<GgufTensorSpec>> groups(1);
  uint64_t cur = 0;
  for (const GgufTensorSpec& t : tensors) {
    BITSMITH_ASSIGN_OR_RETURN(uint64_t nbytes, GgufTensorBytes(t.ggml_type, t.ne, t.name));
    const uint64_t padded = PadTo(nbytes, alignment);
    const auto next = CheckedAdd(cur, padded);
    if (!groups.back().empty() && (!next || *next > max_split_bytes)) {
      groups.emplace_back();
      cur = padded;
    } else {
      cur = next.value_or(UINT64_MAX);
    }
    groups.back().push_back(t);
  }
  const int count = static_cast<int>(groups.size());
  if (count > 65535)
    return MakeError(ErrorKind::kBadUsage, "{}: {} splits, more than split.count (u16) can hold", path, count);
  if (tensors.size() > static_cast<size_t>(INT32_MAX))
    return MakeError(ErrorKind::kBadUsage, "{}: too many tensors for split.tensors.count (i32)", path);
  // 2. Metadata: all KVs (without stale split keys) in split 0, then the split keys.
  std::string prefix = path;
  if (prefix.size() > 5 && prefix.substr(prefix.size() - 5) == ".gguf") prefix.resize(prefix.size() - 5);
  std::vector<PlannedFile> out;
  for (int i = 0; i < count; ++i) {
    std::vector<GgufKV> skv;
    if (i == 0) {
      for (const GgufKV& e : kv)
        if (e.key != kGgufSplitNo && e.key != kGgufSplitCount && e.key != kGgufSplitTensorsCount)
          skv.push_back(e);
    } else if (alignment != kGgufDefaultAlignment) {
      skv.push_back({"general.alignment", GgufValue::U32(alignment)});
    }
    skv.push_back({std::string(kGgufSplitNo), GgufValue::U16(static_cast<uint16_t>(i))});
    skv.push_back({std::string(kGgufSplitCount), GgufValue::U16(static_cast<uint16_t>(count))});
    skv.push_back({std::string(kGgufSplitTensorsCount), GgufValue::I32(static_cast<int32_t>(tensors.size()))});
    BITSMITH_ASSIGN_OR_RETURN(PlannedFile f, PlanGguf(GgufSplitPath(prefix, i, count), version, skv, groups[i]));
    out.push_back(std::move(f));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Display.

namespace {

std::string Separated(uint64_t n) {
  const std::string d = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) s += ',';
    s += d[i];
  }
  return s;
}

std::string ScalarText(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::kU8: return std::to_string(Load<uint8_t>(p));
    case GgufType::kI8: return std::to_string(Load<int8_t>(p));
    case GgufType::kU16: return std::to_string(Load<uint16_t>(p));
    case GgufType::kI16: return std::to_string(Load<int16_t>(p));
    case GgufType::kU32: return std::to_string(Load<uint32_t>(p));
    case GgufType::kI32: return std::to_string(Load<int32_t>(p));
    case GgufType::kU64: return std::to_string(Load<uint64_t>(p));
    case GgufType::kI64: return std::to_string(Load<int64_t>(p));
    case GgufType::kF32: return fmt::format("{}", Load<float>(p));
    case GgufType::kF64: return fmt::format("{}", Load<double>(p));
    case GgufType::kBool: return Load<uint8_t>(p) ? "true" : "false";
    default: return "?";
  }
}

nlohmann::json ScalarJson(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::kU8: return Load<uint8_t>(p);
    case GgufType::kI8: return Load<int8_t>(p);
    case GgufType::kU16: return Load<uint16_t>(p);
    case GgufType::kI16: return Load<int16_t>(p);
    case GgufType::kU32: return Load<uint32_t>(p);
    case GgufType::kI32: return Load<int32_t>(p);
    case GgufType::kU64: return Load<uint64_t>(p);
    case GgufType::kI64: return Load<int64_t>(p);
    case GgufType::kF32: {
      const float f = Load<float>(p);
      return std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(fmt::format("{}", f));
    }
    case GgufType::kF64: {
      const double f = Load<double>(p);
      return std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(fmt::format("{}", f));
    }
    case GgufType::kBool: return Load<uint8_t>(p) != 0;
    default: return nullptr;
  }
}

std::string ArrayCountText(const GgufValue& v) {
  const uint64_t n = v.count();
  const std::string_view et = v.elem_type == GgufType::kString ? (n == 1 ? "string" : "strings")
                              : v.elem_type == GgufType::kArray ? (n == 1 ? "array" : "arrays")
                                                                 : GgufTypeName(v.elem_type);
  return fmt::format("[{} {}]", Separated(n), et);
}

}  // namespace

std::string GgufValueSummary(const GgufValue& v, size_t max_chars) {
  if (v.type == GgufType::kString) {
    std::string s = PrintableText(v.strings[0], max_chars);
    return s;
  }
  if (v.type != GgufType::kArray) return ScalarText(v.type, v.raw.data());
  // Short arrays in full when they fit, else "[N type]".
  const uint64_t n = v.count();
  if (n <= 16 && v.elem_type != GgufType::kArray) {
    std::string s = "[";
    for (uint64_t i = 0; i < n; ++i) {
      if (i) s += ", ";
      if (v.elem_type == GgufType::kString) s += JsonQuote(PrintableText(v.strings[i], 40));
      else s += ScalarText(v.elem_type, v.raw.data() + i * static_cast<uint64_t>(GgufTypeSize(v.elem_type)));
      if (s.size() > max_chars) return ArrayCountText(v);
    }
    return s + "]";
  }
  return ArrayCountText(v);
}

nlohmann::json GgufValueJson(const GgufValue& v, size_t max_array) {
  if (v.type == GgufType::kString) {
    return IsValidUtf8(v.strings[0]) ? nlohmann::json(v.strings[0]) : nlohmann::json(PrintableText(v.strings[0], 1 << 20));
  }
  if (v.type != GgufType::kArray) return ScalarJson(v.type, v.raw.data());
  const uint64_t n = v.count();
  if (n > max_array)
    return {{"type", "array"}, {"element_type", GgufTypeName(v.elem_type)}, {"count", n}};
  nlohmann::json a = nlohmann::json::array();
  for (uint64_t i = 0; i < n; ++i) {
    if (v.elem_type == GgufType::kString) a.push_back(IsValidUtf8(v.strings[i]) ? v.strings[i] : PrintableText(v.strings[i]));
    else if (v.elem_type == GgufType::kArray) a.push_back(GgufValueJson(v.arrays[i], max_array));
    else a.push_back(ScalarJson(v.elem_type, v.raw.data() + i * static_cast<uint64_t>(GgufTypeSize(v.elem_type))));
  }
  return a;
}

}  // namespace bitsmith
