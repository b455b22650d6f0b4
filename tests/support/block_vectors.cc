// Reader for ggml's reference block vectors: see block_vectors.h and the schema in
// tests/data/blocks/README.md, section 3.
#include "support/block_vectors.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/test_data.h"

namespace bitsmith::test {

uint64_t Fnv1a64(const void* data, size_t n) {
  // 64-bit FNV-1a: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One blob reference {"file", "offset", "nbytes", ["fnv1a64"]}: read it, check the
// digest when the manifest records one, and the expected size when given.
std::vector<uint8_t> Blob(const std::filesystem::path& dir, const nlohmann::json& ref,
                          const std::string& what, uint64_t expect_bytes) {
  const std::string file = ref.at("file").get<std::string>();
  const uint64_t offset = ref.at("offset").get<uint64_t>();
  const uint64_t nbytes = ref.at("nbytes").get<uint64_t>();
  if (nbytes != expect_bytes)
    FAIL(what << ": manifest says " << nbytes << " bytes, the case needs " << expect_bytes);
  std::vector<uint8_t> bytes = ReadRange(dir / file, offset, nbytes);
  if (ref.contains("fnv1a64") && !ref["fnv1a64"].is_null()) {
    const std::string want = Lower(ref["fnv1a64"].get<std::string>());
    const std::string got = fmt::format("{:016x}", Fnv1a64(bytes.data(), bytes.size()));
    if (got != want)
      FAIL(what << ": FNV-1a 64 of " << file << " [" << offset << ", +" << nbytes << ") is " << got
                << ", the manifest says " << want << " (corrupted test data?)");
  }
  return bytes;
}

std::vector<float> AsFloats(const std::vector<uint8_t>& b) {
  std::vector<float> f(b.size() / 4);
  std::memcpy(f.data(), b.data(), f.size() * 4);  // little-endian host (x86-64, aarch64)
  return f;
}

}  // namespace

std::vector<BlockVectorCase> LoadBlockVectors(const std::filesystem::path& dir,
                                              const std::string& type_filter) {
  const std::vector<uint8_t> text = ReadFile(dir / "manifest.json");
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(text.begin(), text.end());
  } catch (const std::exception& e) {
    FAIL(dir / "manifest.json" << " is not valid JSON: " << e.what());
  }
  if (m.value("endianness", "little") != "little")
    FAIL(dir / "manifest.json" << ": endianness " << m["endianness"] << " is not supported");
  const std::string filter = Lower(type_filter);
  std::vector<BlockVectorCase> out;
  for (const auto& c : m.at("cases")) {
    BlockVectorCase v;
    v.id = c.at("id").get<std::string>();
    v.type = c.at("type").get<std::string>();
    const auto dt = FindDType(v.type);
    if (!dt) FAIL(v.id << ": type '" << v.type << "' has no row in formats/dtype.h");
    v.dtype = *dt;
    const DTypeInfo& info = GetDType(v.dtype);
    if (!filter.empty() && filter != Lower(v.type) && filter != info.name) continue;
    if (c.contains("type_id") && c["type_id"].get<int>() != info.ggml_type)
      FAIL(v.id << ": ggml type id " << c["type_id"] << " but dtype.h says " << info.ggml_type);
    v.n_per_row = c.at("n_per_row").get<int64_t>();
    v.nrows = c.at("nrows").get<int64_t>();
    v.distribution = c.value("distribution", "");
    const auto row_bytes = RowBytes(v.dtype, static_cast<uint64_t>(v.n_per_row));
    if (v.n_per_row <= 0 || v.nrows <= 0 || !row_bytes)
      FAIL(v.id << ": bad shape " << v.nrows << " x " << v.n_per_row << " for " << info.name);
    const uint64_t nvals = static_cast<uint64_t>(v.nrows * v.n_per_row);
    v.input = AsFloats(Blob(dir, c.at("input"), v.id + " input", 4 * nvals));
    if (c.contains("imatrix_data") && !c["imatrix_data"].is_null())
      v.imatrix = AsFloats(Blob(dir, c["imatrix_data"], v.id + " imatrix",
                                4 * static_cast<uint64_t>(v.n_per_row)));
    v.quant = Blob(dir, c.at("quant"), v.id + " quant", static_cast<uint64_t>(v.nrows) * *row_bytes);
    v.dequant = AsFloats(Blob(dir, c.at("dequant"), v.id + " dequant", 4 * nvals));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace bitsmith::test
