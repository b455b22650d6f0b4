// The SIMD lattice search of IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S
// (codecs/quant_iq_grid_simd.cc) against the scalar oracles (quant_iq_grid_ref.cc,
// byte-identical to ggml d99724f2 on the shared vectors): the same bytes on every
// compiled Highway target, for random rows of several scales and inputs made to hit
// the search's corners -- all-zero and constant sub-blocks, single spikes, exact
// ties between candidate scales and between neighbours (values on a coarse lattice),
// tiny and subnormal values, huge values (distances overflowing to inf), importance
// weights with zeros, and no importance weights at all -- with odd row counts and
// 1-3 threads. A mismatch prints the type, target, input, block and both blocks.
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "codecs/iq_grid_search.h"
#include "codecs/iq_kernels.h"
#include "codecs/quant.h"
#include "formats/dtype.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using test::Floats;
using test::Hex;

using QuantizeFn = void (*)(const float*, void*, int64_t, int64_t, const float*);
struct GridType {
  DType type;
  QuantizeFn ref, simd;
};
const GridType kGridTypes[] = {
    {DType::kIQ2_XXS, iq::QuantizeIQ2XXSRef, iq::QuantizeIQ2XXSGridSimd},
    {DType::kIQ2_XS, iq::QuantizeIQ2XSRef, iq::QuantizeIQ2XSGridSimd},
    {DType::kIQ2_S, iq::QuantizeIQ2SRef, iq::QuantizeIQ2SGridSimd},
    {DType::kIQ3_XXS, iq::QuantizeIQ3XXSRef, iq::QuantizeIQ3XXSGridSimd},
    {DType::kIQ3_S, iq::QuantizeIQ3SRef, iq::QuantizeIQ3SGridSimd},
};


struct Input {
  std::string name;
  int64_t n_per_row;
  std::vector<float> x;
  std::vector<float> w;  // empty: no importance weights
};

// Inputs of 3 or 5 rows (odd counts) of 256 or 768 values.
std::vector<Input> MakeInputs() {
  std::mt19937 rng(20261123);
  std::normal_distribution<float> gauss(0.f, 1.f);
  auto imatrix = [&](int64_t n, bool zeros) {
    std::vector<float> w(static_cast<size_t>(n));
    for (auto& v : w) v = std::exp(gauss(rng));
    if (zeros)
      for (size_t i = 0; i < w.size(); i += 3) w[i] = 0;  // every third weight 0
    return w;
  };
  std::vector<Input> in;
  for (float sigma : {0.02f, 1.f, 300.f}) {
    Input a{fmt::format("gauss sigma {}", sigma), 768, std::vector<float>(768 * 3), imatrix(768, false)};
    for (auto& v : a.x) v = sigma * gauss(rng);
    in.push_back(a);
  }
  {  // heavy tails: gaussian / uniform
    Input a{"cauchy-like", 256, std::vector<float>(256 * 5), imatrix(256, false)};
    std::uniform_real_distribution<float> u(0.05f, 1.f);
    for (auto& v : a.x) v = 0.01f * gauss(rng) / u(rng);
    in.push_back(a);
  }
  {  // all-zero sub-blocks between ordinary ones; an all-zero super-block
    Input a{"zero sub-blocks", 256, std::vector<float>(256 * 3), imatrix(256, false)};
    for (size_t i = 0; i < a.x.size(); ++i) a.x[i] = (i / 16) % 3 == 1 || i >= 512 ? 0.f : 0.1f * gauss(rng);
    in.push_back(a);
  }
  {  // constants (every candidate rounds alike: ties), with both signs per row
    Input a{"constants", 256, std::vector<float>(256 * 3), imatrix(256, false)};
    for (size_t i = 0; i < a.x.size(); ++i) a.x[i] = i < 256 ? 0.25f : i < 512 ? -1.f : (i % 2 ? 3.f : -3.f);
    in.push_back(a);
  }
  {  // single spikes in small noise
    Input a{"spikes", 256, std::vector<float>(256 * 3), imatrix(256, false)};
    for (auto& v : a.x) v = 1e-3f * gauss(rng);
    for (size_t i = 7; i < a.x.size(); i += 41) a.x[i] = (i % 2 ? 5.f : -5.f);
    in.push_back(a);
  }
  {  // coarse lattice values: many exact ties between neighbours and candidates
    Input a{"ties", 256, std::vector<float>(256 * 5), imatrix(256, false)};
    std::uniform_int_distribution<int> k(-4, 4);
    for (auto& v : a.x) v = 0.125f * static_cast<float>(k(rng));
    std::vector<float> flat(256, 1.f);
    Input b{"ties, flat weights", 256, a.x, flat};
    in.push_back(a);
    in.push_back(b);
  }
  {  // tiny (below and around the eps thresholds) and subnormal
    Input a{"tiny", 256, std::vector<float>(256 * 3), imatrix(256, false)};
    for (size_t i = 0; i < a.x.size(); ++i) {
      const float s = i < 256 ? 1e-20f : i < 512 ? 1e-9f : 1e-39f;
      a.x[i] = s * gauss(rng);
    }
    in.push_back(a);
  }
  {  // huge: squared distances overflow to inf
    Input a{"huge", 256, std::vector<float>(256 * 3), imatrix(256, false)};
    for (size_t i = 0; i < a.x.size(); ++i) a.x[i] = (i < 256 ? 1e15f : i < 512 ? 1e19f : 3e37f) * gauss(rng);
    in.push_back(a);
  }
  {  // importance weights with zeros, and all-zero weights on one row's span
    Input a{"imatrix zeros", 256, std::vector<float>(256 * 3), imatrix(256, true)};
    for (auto& v : a.x) v = 0.05f * gauss(rng);
    in.push_back(a);
    Input b{"imatrix all zero", 256, a.x, std::vector<float>(256, 0.f)};
    in.push_back(b);
  }
  {  // no importance weights (the oracles' fallbacks; QuantizeRows refuses for
     // IQ2_XXS/IQ2_XS, the kernels accept it)
    Input a{"no imatrix", 768, std::vector<float>(768 * 3), {}};
    for (auto& v : a.x) v = 0.05f * gauss(rng);
    in.push_back(a);
  }
  return in;
}

void CheckSame(const GridType& g, const Input& in, const std::vector<uint8_t>& ref, const std::vector<uint8_t>& q,
               const std::string& where) {
  const DTypeInfo& info = GetDType(g.type);
  if (q == ref) return;
  for (size_t b = 0; b * info.block_bytes < ref.size(); ++b) {
    if (std::memcmp(ref.data() + b * info.block_bytes, q.data() + b * info.block_bytes, info.block_bytes) == 0)
      continue;
    FAIL(info.name << " " << where << ", input '" << in.name << "', block " << b << "\n x = "
                   << Floats(in.x.data() + b * info.block_elems, static_cast<int>(info.block_elems))
                   << "\n oracle " << Hex(ref.data() + b * info.block_bytes, info.block_bytes) << "\n simd   "
                   << Hex(q.data() + b * info.block_bytes, info.block_bytes));
  }
}

TEST_CASE("iquant grid SIMD search: equals the oracle on every target (random and edge inputs)", "[iquant]") {
  const std::vector<Input> inputs = MakeInputs();
  for (const GridType& g : kGridTypes) {
    const DTypeInfo& info = GetDType(g.type);
    for (const Input& in : inputs) {
      const int64_t nrows = static_cast<int64_t>(in.x.size()) / in.n_per_row;
      const size_t bytes = static_cast<size_t>(in.x.size() / info.block_elems * info.block_bytes);
      const float* w = in.w.empty() ? nullptr : in.w.data();
      std::vector<uint8_t> ref(bytes, 0xAA);
      g.ref(in.x.data(), ref.data(), nrows, in.n_per_row, w);
      for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
        hwy::SetSupportedTargetsForTest(target);
        std::vector<uint8_t> q(bytes, 0x55);
        g.simd(in.x.data(), q.data(), nrows, in.n_per_row, w);
        CheckSame(g, in, ref, q, std::string("target ") + hwy::TargetName(target));
      }
      hwy::SetSupportedTargetsForTest(0);
      // Through the public entry point, several threads (imatrix types need w).
      if (w == nullptr && info.requires_imatrix) continue;
      for (int threads : {1, 2, 3}) {
        std::vector<uint8_t> q(bytes, 0x33);
        REQUIRE(QuantizeRows(g.type, in.x, q, in.n_per_row, w, Impl::kSimd, threads).ok());
        CheckSame(g, in, ref, q, fmt::format("QuantizeRows, {} threads", threads));
      }
    }
  }
}

TEST_CASE("iquant grid SIMD search: many random sub-block scales and weightings", "[iquant]") {
  // Each super-block gets its own scale (1e-6 .. 1e6) and shape; the imatrix
  // mixes ordinary, tiny and zero weights.
  std::mt19937 rng(99);
  std::normal_distribution<float> gauss(0.f, 1.f);
  std::uniform_real_distribution<float> expo(-6.f, 6.f);
  const int64_t n_per_row = 256 * 8;
  const int64_t nrows = 5;
  Input in{"random scales", n_per_row, std::vector<float>(static_cast<size_t>(n_per_row * nrows)),
           std::vector<float>(static_cast<size_t>(n_per_row))};
  for (size_t b = 0; b < in.x.size(); b += 256) {
    const float s = std::pow(10.f, expo(rng));
    const int shape = static_cast<int>(rng() % 3);
    for (size_t i = b; i < b + 256; ++i) {
      const float v = gauss(rng);
      in.x[i] = s * (shape == 0 ? v : shape == 1 ? v * v * v : std::round(4 * v) / 4);
    }
  }
  for (size_t i = 0; i < in.w.size(); ++i) in.w[i] = i % 17 == 0 ? 0.f : i % 13 == 0 ? 1e-20f : std::exp(gauss(rng));
  for (const GridType& g : kGridTypes) {
    const DTypeInfo& info = GetDType(g.type);
    const size_t bytes = static_cast<size_t>(in.x.size() / info.block_elems * info.block_bytes);
    std::vector<uint8_t> ref(bytes);
    g.ref(in.x.data(), ref.data(), nrows, n_per_row, in.w.data());
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      std::vector<uint8_t> q(bytes);
      g.simd(in.x.data(), q.data(), nrows, n_per_row, in.w.data());
      CheckSame(g, in, ref, q, std::string("target ") + hwy::TargetName(target));
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

}  // namespace
}  // namespace bitsmith
