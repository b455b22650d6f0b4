// k-quants against ggml's reference vectors (tests/data/blocks), read directly
// from manifest.json: quantize bytes (with and without imatrix) and dequantized
// floats, through the scalar reference and the SIMD kernels on every compiled
// Highway target. (tests/codecs/block_vectors_test.cc runs the same vectors for
// every block type through the public QuantizeRows API.)
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <hwy/targets.h>
#include <nlohmann/json.hpp>

#include "codecs/quant_k.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

struct KCase {
  std::string id;
  DType type;
  int64_t n_per_row, nrows;
  std::vector<float> input, imatrix, dequant;
  std::vector<uint8_t> quant;
};

template <typename T>
std::vector<T> Blob(const std::filesystem::path& dir, const nlohmann::json& ref) {
  const std::vector<uint8_t> bytes =
      test::ReadRange(dir / ref["file"].get<std::string>(), ref["offset"].get<uint64_t>(),
                      ref["nbytes"].get<uint64_t>());
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

std::vector<KCase> LoadKCases() {
  const auto dir = test::DataDir() / "blocks";
  std::ifstream in(dir / "manifest.json");
  REQUIRE(in.good());
  const nlohmann::json m = nlohmann::json::parse(in);
  std::vector<KCase> cases;
  for (const auto& c : m["cases"]) {
    const std::string type = c["type"];
    DType t;
    if (type == "q2_K") t = DType::kQ2_K;
    else if (type == "q3_K") t = DType::kQ3_K;
    else if (type == "q4_K") t = DType::kQ4_K;
    else if (type == "q5_K") t = DType::kQ5_K;
    else if (type == "q6_K") t = DType::kQ6_K;
    else continue;
    KCase k{c["id"], t, c["n_per_row"], c["nrows"], {}, {}, {}, {}};
    k.input = Blob<float>(dir, c["input"]);
    if (!c["imatrix_data"].is_null()) k.imatrix = Blob<float>(dir, c["imatrix_data"]);
    k.quant = Blob<uint8_t>(dir, c["quant"]);
    k.dequant = Blob<float>(dir, c["dequant"]);
    cases.push_back(std::move(k));
  }
  return cases;
}

// First differing byte, or -1.
int64_t FirstDiff(const uint8_t* a, const uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return -1;
}

void CheckCase(const KCase& c, const kquant::KernelSet& k, bool simd, const std::string& where) {
  const int bb = GetDType(c.type).block_bytes;
  std::vector<uint8_t> q(c.quant.size(), 0xA5);
  (simd ? k.quantize_simd : k.quantize_ref)(c.input.data(), q.data(), c.nrows, c.n_per_row,
                                            c.imatrix.empty() ? nullptr : c.imatrix.data());
  const int64_t diff = FirstDiff(q.data(), c.quant.data(), q.size());
  INFO(c.id << " " << where << ": first differing byte " << diff << " (block " << diff / bb
            << ", byte " << diff % bb << ")");
  CHECK(diff == -1);
  std::vector<float> y(c.dequant.size(), -7.f);
  (simd ? k.dequantize_simd : k.dequantize_ref)(c.quant.data(), y.data(),
                                                static_cast<int64_t>(y.size()));
  const int64_t fdiff = FirstDiff(reinterpret_cast<const uint8_t*>(y.data()),
                                  reinterpret_cast<const uint8_t*>(c.dequant.data()),
                                  y.size() * sizeof(float));
  INFO("dequant: first differing float " << fdiff / 4);
  CHECK(fdiff == -1);
}

TEST_CASE("k-quant reference reproduces ggml's vectors", "[kquant]") {
  const auto cases = LoadKCases();
  REQUIRE(cases.size() == 50);
  for (const auto& c : cases) CheckCase(c, *kquant::KernelsFor(c.type), false, "ref");
}

TEST_CASE("k-quant SIMD reproduces ggml's vectors on every target", "[kquant]") {
  const auto cases = LoadKCases();
  REQUIRE(cases.size() == 50);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const auto& c : cases)
      CheckCase(c, *kquant::KernelsFor(c.type), true, std::string("simd ") + hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace bitsmith
