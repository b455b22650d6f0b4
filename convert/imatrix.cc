#include "convert/imatrix.h"

#include <cmath>    // std::isfinite, std::lround
#include <cstring>  // std::memcpy

#include <fmt/format.h>

#include "convert/gguf.h"
#include "convert/json_text.h"  // PrintableText

namespace bitsmith {
namespace {

constexpr std::string_view kInSum2 = ".in_sum2";
constexpr std::string_view kCounts = ".counts";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A bounds-checked little-endian cursor over bytes already read.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, const std::string& name) : b_(b), name_(name) {}
  uint64_t left() const { return b_.size() - pos_; }
  uint64_t pos() const { return pos_; }
  Result<int32_t> I32(std::string_view what) {
    if (left() < 4)
      return MakeError(ErrorKind::kBadInput, "{}: file ends at byte {} while reading {}", name_, pos_, what);
    int32_t v;
    std::memcpy(&v, b_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  Result<std::span<const uint8_t>> Bytes(uint64_t n, std::string_view what) {
    if (n > left())
      return MakeError(ErrorKind::kBadInput, "{}: {} needs {} bytes at byte {} but only {} are left", name_, what,
                       n, pos_, left());
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> b_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

Status CheckSums(const std::string& file, const std::string& name, std::span<const float> v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || v[i] < 0)
      return MakeError(ErrorKind::kBadInput,
                       "{}: imatrix entry '{}' holds {} at index {}: importance sums must be finite and >= 0",
                       file, PrintableText(name), v[i], i);
  return Status::Ok();
}

Result<Imatrix> ReadLegacy(const ByteSource& src) {
  Imatrix im;
  im.path = src.name();
  im.legacy = true;
  // The whole file is read once: a legacy imatrix is a few hundred MB at most,
  // and every length below is checked against what is left of it.
  BITSMITH_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, src.ReadRange(0, src.size()));
  Cursor c(bytes, im.path);
  BITSMITH_ASSIGN_OR_RETURN(int32_t n_entries, c.I32("the number of entries"));
  // Each entry takes at least 16 bytes (three i32 and one value).
  if (n_entries < 1 || static_cast<uint64_t>(n_entries) > c.left() / 16)
    return MakeError(ErrorKind::kBadInput,
                     "{}: the number of entries is {} but must be in [1, {}] for a file of {} bytes (not an "
                     "imatrix file?)",
                     im.path, n_entries, c.left() / 16, src.size());
  for (int32_t e = 0; e < n_entries; ++e) {
    BITSMITH_ASSIGN_OR_RETURN(int32_t len, c.I32("a name length"));
    if (len < 1 || static_cast<uint64_t>(len) > c.left())
      return MakeError(ErrorKind::kBadInput, "{}: entry {}: name length {} must be in [1, {}]", im.path, e, len,
                       c.left());
    BITSMITH_ASSIGN_OR_RETURN(auto name_bytes, c.Bytes(static_cast<uint64_t>(len), "a name"));
    std::string name(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
    BITSMITH_ASSIGN_OR_RETURN(int32_t ncall, c.I32("ncall"));
    BITSMITH_ASSIGN_OR_RETURN(int32_t nval, c.I32("nval"));
    if (nval < 1 || static_cast<uint64_t>(nval) > c.left() / 4)
      return MakeError(ErrorKind::kBadInput, "{}: entry '{}': {} values claimed but must be in [1, {}]", im.path,
                       PrintableText(name), nval, c.left() / 4);
    BITSMITH_ASSIGN_OR_RETURN(auto data, c.Bytes(static_cast<uint64_t>(nval) * 4, "the values"));
    std::vector<float> v(static_cast<size_t>(nval));
    std::memcpy(v.data(), data.data(), data.size());
    BITSMITH_RETURN_IF_ERROR(CheckSums(im.path, name, v));
    // llama-quantize: divide by ncall when positive.
    if (ncall > 0)
      for (float& x : v) x = x / static_cast<float>(ncall);
    if (!im.values.emplace(name, std::move(v)).second)
      return MakeError(ErrorKind::kBadInput, "{}: duplicate entry '{}'", im.path, PrintableText(name));
  }
  // Optional trailer: chunk count and dataset name.
  if (c.left() >= 4) {
    BITSMITH_ASSIGN_OR_RETURN(int32_t chunks, c.I32("the chunk count"));
    im.chunk_count = chunks;
    if (c.left() >= 4) {
      BITSMITH_ASSIGN_OR_RETURN(int32_t len, c.I32("the dataset name length"));
      if (len > 0 && static_cast<uint64_t>(len) <= c.left()) {
        BITSMITH_ASSIGN_OR_RETURN(auto ds, c.Bytes(static_cast<uint64_t>(len), "the dataset name"));
        im.datasets.emplace_back(reinterpret_cast<const char*>(ds.data()), ds.size());
      }
    }
  }
  return im;
}

Result<Imatrix> ReadGgufImatrix(const ByteSource& src) {
  BITSMITH_ASSIGN_OR_RETURN(GgufFile g, ReadGguf(src));
  Imatrix im;
  im.path = src.name();
  if (const GgufValue* d = g.Find("imatrix.datasets"); d && d->is_array() && d->elem_type == GgufType::kString)
    im.datasets = d->strings;
  if (const GgufValue* c = g.Find("imatrix.chunk_count"))
    im.chunk_count = c->AsInt().value_or(0);
  // Pair "<name>.in_sum2" with "<name>.counts".
  std::map<std::string, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> pairs;
  for (const GgufTensorInfo& t : g.tensors) {
    if (EndsWith(t.name, kInSum2)) pairs[t.name.substr(0, t.name.size() - kInSum2.size())].first = &t;
    else if (EndsWith(t.name, kCounts)) pairs[t.name.substr(0, t.name.size() - kCounts.size())].second = &t;
  }
  if (pairs.empty())
    return MakeError(ErrorKind::kBadInput, "{}: a GGUF file without any '<tensor>.in_sum2' entry: not an imatrix",
                     im.path);
  for (const auto& [name, p] : pairs) {
    if (!p.first || !p.second)
      return MakeError(ErrorKind::kBadInput, "{}: imatrix entry '{}' has {} but no {} tensor", im.path,
                       PrintableText(name), p.first ? kInSum2 : kCounts, p.first ? kCounts : kInSum2);
    const GgufTensorInfo& s = *p.first;
    const GgufTensorInfo& c = *p.second;
    if (s.ggml_type != 0 || c.ggml_type != 0)
      return MakeError(ErrorKind::kBadInput, "{}: imatrix entry '{}': in_sum2 and counts must be F32", im.path,
                       PrintableText(name));
    uint64_t ns = 1, nc = 1;
    for (uint64_t d : s.ne) ns *= d;  // the reader checked these products
    for (uint64_t d : c.ne) nc *= d;
    if (nc == 0 || ns == 0 || ns % nc != 0)
      return MakeError(ErrorKind::kBadInput,
                       "{}: imatrix entry '{}': {} sums do not split into {} matrices (counts)", im.path,
                       PrintableText(name), ns, nc);
    BITSMITH_ASSIGN_OR_RETURN(std::vector<uint8_t> sb, src.ReadRange(g.data_offset + s.offset, ns * 4));
    BITSMITH_ASSIGN_OR_RETURN(std::vector<uint8_t> cb, src.ReadRange(g.data_offset + c.offset, nc * 4));
    std::vector<float> sums(ns), counts(nc);
    std::memcpy(sums.data(), sb.data(), sb.size());
    std::memcpy(counts.data(), cb.data(), cb.size());
    BITSMITH_RETURN_IF_ERROR(CheckSums(im.path, name + std::string(kInSum2), sums));
    BITSMITH_RETURN_IF_ERROR(CheckSums(im.path, name + std::string(kCounts), counts));
    const uint64_t ne0 = ns / nc;
    for (uint64_t m = 0; m < nc; ++m) {
      // llama.cpp rounds the stored count to an integer (std::lround), then
      // divides in float; a zero count means "no data": weight 1.
      const float count = static_cast<float>(std::lround(counts[m]));
      for (uint64_t i = 0; i < ne0; ++i) {
        float& v = sums[m * ne0 + i];
        v = count > 0.0f ? v / count : 1.0f;
      }
    }
    im.values.emplace(name, std::move(sums));
  }
  return im;
}

}  // namespace

Result<Imatrix> ReadImatrix(const ByteSource& src) {
  uint8_t magic[4] = {0, 0, 0, 0};
  if (src.size() >= 4) BITSMITH_RETURN_IF_ERROR(src.ReadAt(0, magic));
  if (std::memcmp(magic, "GGUF", 4) == 0) return ReadGgufImatrix(src);
  return ReadLegacy(src);
}

Result<Imatrix> ReadImatrixFile(const std::string& path) {
  BITSMITH_ASSIGN_OR_RETURN(InputFile f, InputFile::Open(path));
  return ReadImatrix(f);
}

Result<uint64_t> ImatrixMatrices(const Imatrix& im, const TensorInfo& t, const std::vector<float>& values) {
  const uint64_t row = t.row_length();
  // A 3-D tensor [n_mat, rows, cols] (merged experts) has one imatrix row per matrix.
  const uint64_t n_mat = t.rank() >= 3 ? t.elements() / std::max<uint64_t>(1, row * t.shape[t.rank() - 2]) : 1;
  if (values.size() != row * n_mat)
    return MakeError(ErrorKind::kBadInput,
                     "{}: imatrix entry '{}' has {} values but tensor '{}' of shape {} needs {} ({} per row x "
                     "{} matrices)",
                     im.path, t.name, values.size(), t.name, ShapeString(t.shape), row * n_mat, row, n_mat);
  return n_mat;
}

std::vector<uint8_t> WriteLegacyImatrix(const std::map<std::string, std::pair<int32_t, std::vector<float>>>& entries,
                                        int32_t chunk_count, const std::string& dataset) {
  std::vector<uint8_t> out;
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  auto i32 = [&](int32_t v) { put(&v, 4); };
  i32(static_cast<int32_t>(entries.size()));
  for (const auto& [name, e] : entries) {
    i32(static_cast<int32_t>(name.size()));
    put(name.data(), name.size());
    i32(e.first);
    i32(static_cast<int32_t>(e.second.size()));
    put(e.second.data(), e.second.size() * 4);
  }
  i32(chunk_count);
  i32(static_cast<int32_t>(dataset.size()));
  put(dataset.data(), dataset.size());
  return out;
}

}  // namespace bitsmith
