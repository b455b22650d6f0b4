// convert/report.h: metrics against a direct computation (plain double loops
// over independently reconstructed values), FP8 references, imatrix weighting,
// the JSON shape of issue 6, determinism over thread counts, names -> layers,
// and the HTML page (well-formed, self-contained).
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "codecs/quant.h"
#include "convert/convert_fixture.h"
#include "convert/imatrix.h"
#include "convert/report.h"
#include "convert/report_html.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;
using test::BF16ToF32;
using test::E4M3ToFloat;
using test::F32ToBF16;

// Direct metrics: plain double sums over x and x̂ (no exact summation).
struct Direct {
  double rmse, rel, max_abs, cosine, wrel = -1;
};
Direct DirectMetrics(const std::vector<float>& x, const std::vector<float>& y, size_t cols,
                     const std::vector<float>* w = nullptr) {
  double e2 = 0, x2 = 0, xy = 0, y2 = 0, mx = 0, we2 = 0, wx2 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(y[i]) - static_cast<double>(x[i]);
    e2 += e * e;
    x2 += static_cast<double>(x[i]) * x[i];
    xy += static_cast<double>(x[i]) * y[i];
    y2 += static_cast<double>(y[i]) * y[i];
    mx = std::max(mx, std::fabs(e));
    if (w) {
      we2 += (*w)[i % cols] * e * e;
      wx2 += (*w)[i % cols] * static_cast<double>(x[i]) * x[i];
    }
  }
  Direct d{std::sqrt(e2 / static_cast<double>(x.size())), std::sqrt(e2 / x2), mx, xy / std::sqrt(x2 * y2)};
  if (w) d.wrel = std::sqrt(we2 / wx2);
  return d;
}

void CheckClose(const ErrorMetrics& m, const Direct& d) {
  CHECK(m.rmse == Approx(d.rmse).epsilon(1e-12));
  CHECK(m.rel_rmse == Approx(d.rel).epsilon(1e-12));
  CHECK(m.snr_db == Approx(-20 * std::log10(d.rel)).epsilon(1e-12));
  CHECK(m.max_abs_err == d.max_abs);  // exact in double
  CHECK(m.cosine == Approx(d.cosine).epsilon(1e-12));
  if (d.wrel >= 0) {
    REQUIRE(m.imatrix_rel_rmse.has_value());
    CHECK(*m.imatrix_rel_rmse == Approx(d.wrel).epsilon(1e-12));
  }
}

std::vector<float> F32Values(const test::TestTensor& t) {
  std::vector<float> v(t.bytes.size() / 4);
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}
std::vector<float> Bf16Values(const test::TestTensor& t) {
  std::vector<float> v(t.bytes.size() / 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = BF16ToF32(static_cast<uint16_t>(t.bytes[2 * i] | (t.bytes[2 * i + 1] << 8)));
  return v;
}

// x̂ of a block type through one whole-tensor QuantizeRows call (the report cuts
// tensors into chunks and threads; the bytes must not depend on it).
std::vector<float> BlockRoundTrip(DType t, const std::vector<float>& x, size_t cols, const float* im = nullptr) {
  const size_t rows = x.size() / cols;
  std::vector<uint8_t> q(rows * (cols / GetDType(t).block_elems) * GetDType(t).block_bytes);
  REQUIRE(QuantizeRows(t, x, q, static_cast<int64_t>(cols), im, Impl::kReference).ok());
  std::vector<float> y(x.size());
  REQUIRE(DequantizeRows(t, q, y, Impl::kReference).ok());
  return y;
}

// e4m3fn of f32 v by exhaustive search: nearest finite code, ties to the even
// code, saturating at +-448 (independent of the codecs).
float NearestE4M3(float v) {
  if (v >= 448.0f) return 448.0f;
  if (v <= -448.0f) return -448.0f;
  float best = 0;
  double bd = INFINITY;
  int bc = 0;
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const float f = E4M3ToFloat(static_cast<uint8_t>(c));
    const double d = std::fabs(static_cast<double>(f) - v);
    if (d < bd || (d == bd && (c & 1) == 0 && (bc & 1) == 1)) bd = d, best = f, bc = c;
  }
  return best == 0 ? std::copysign(0.0f, v) : best;
}

// 128x128 tile-scaled e4m3fn round trip (DeepSeek's weight quantization).
std::vector<float> TiledE4M3(const std::vector<float>& x, size_t rows, size_t cols) {
  std::vector<float> y(x.size());
  for (size_t r0 = 0; r0 < rows; r0 += 128)
    for (size_t c0 = 0; c0 < cols; c0 += 128) {
      float amax = 0;
      for (size_t r = r0; r < std::min(rows, r0 + 128); ++r)
        for (size_t c = c0; c < std::min(cols, c0 + 128); ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
      const float s = amax == 0 ? 1.0f : amax / 448.0f;
      for (size_t r = r0; r < std::min(rows, r0 + 128); ++r)
        for (size_t c = c0; c < std::min(cols, c0 + 128); ++c) {
          const float q = x[r * cols + c] / s;
          y[r * cols + c] = NearestE4M3(q) * s;
        }
    }
  return y;
}

const ReportTensor& FindTensor(const Report& r, const std::string& name) {
  for (const ReportTensor& t : r.tensors)
    if (t.name == name) return t;
  FAIL("no tensor " << name);
  return r.tensors[0];
}
const ReportCandidate& Cand(const ReportTensor& t, DType d) {
  for (const ReportCandidate& c : t.candidates)
    if (c.requested == d) return c;
  FAIL("no candidate " << GetDType(d).name << " for " << t.name);
  return t.candidates[0];
}

TEST_CASE("report: metrics equal a direct computation on small tensors", "[report]") {
  test::TempDir dir;
  const test::TestTensor a = test::FloatTensor("blk.0.attn_q.weight", {300, 256}, 11, "F32");
  const test::TestTensor b = test::FloatTensor("blk.1.ffn_down.weight", {40, 512}, 12, "BF16", 0.3f);
  const test::TestTensor c = test::FloatTensor("blk.1.attn_norm.weight", {64}, 13, "F32");
  const test::TestTensor d = test::FloatTensor("blk.2.attn_v.weight", {16, 96}, 14, "F32");  // q4_k -> q5_0
  test::WriteShard(dir / "m.safetensors", {a, b, c, d});
  ReportOptions o;
  o.types = {DType::kQ4_K, DType::kQ8_0, DType::kBF16, DType::kE4M3FN, DType::kQ6_K};
  o.threads = 2;
  auto r = MeasureReport((dir / "m.safetensors").string(), o);
  REQUIRE(r.ok());
  REQUIRE(r->tensors.size() == 4);

  const std::vector<float> xa = F32Values(a), xb = Bf16Values(b), xd = F32Values(d);
  for (DType t : {DType::kQ4_K, DType::kQ8_0, DType::kQ6_K}) {
    INFO(GetDType(t).name);
    CheckClose(Cand(FindTensor(*r, a.name), t).metrics, DirectMetrics(xa, BlockRoundTrip(t, xa, 256), 256));
    CheckClose(Cand(FindTensor(*r, b.name), t).metrics, DirectMetrics(xb, BlockRoundTrip(t, xb, 512), 512));
  }
  // Fallbacks are measured at the stored type: q4_k -> q5_0 for 96-element rows.
  const ReportCandidate& fb = Cand(FindTensor(*r, d.name), DType::kQ4_K);
  CHECK(fb.type == DType::kQ5_0);
  CHECK(fb.choice == TypeChoice::kFallback);
  CheckClose(fb.metrics, DirectMetrics(xd, BlockRoundTrip(DType::kQ5_0, xd, 96), 96));
  CHECK(fb.bytes == 16 * 3 * 22);
  // bf16: one RNE rounding.
  std::vector<float> ya(xa.size());
  for (size_t i = 0; i < xa.size(); ++i) ya[i] = BF16ToF32(F32ToBF16(xa[i]));
  CheckClose(Cand(FindTensor(*r, a.name), DType::kBF16).metrics, DirectMetrics(xa, ya, 256));
  // A bf16 source asked for bf16 is kept: exact.
  const ReportCandidate& kept = Cand(FindTensor(*r, b.name), DType::kBF16);
  CHECK(kept.metrics.rel_rmse == 0);
  CHECK(std::isinf(kept.metrics.snr_db));
  CHECK(kept.metrics.cosine == 1);
  // e4m3fn: 128x128 tiles, scale = amax / 448 (a 300-row tensor has a ragged last tile row).
  const ReportCandidate& f8 = Cand(FindTensor(*r, a.name), DType::kE4M3FN);
  CheckClose(f8.metrics, DirectMetrics(xa, TiledE4M3(xa, 300, 256), 256));
  CHECK(f8.bytes == 300 * 256 + 3 * 2 * 4);  // codes + one f32 scale per tile
  // 1-D: f32 for block types (exact from f32), its only JSON candidate.
  const ReportTensor& norm = FindTensor(*r, c.name);
  CHECK(norm.kept_only);
  CHECK(Cand(norm, DType::kQ4_K).type == DType::kF32);
  CHECK(Cand(norm, DType::kQ4_K).metrics.rel_rmse == 0);
  // Sizes.
  CHECK(Cand(FindTensor(*r, a.name), DType::kQ4_K).bytes == 300 * 144);
  CHECK(Cand(FindTensor(*r, a.name), DType::kQ4_K).bpw == Approx(4.5));
  // Totals: sum of candidate bytes; mean_rel_mse = size-weighted mean of rel_rmse^2.
  for (size_t k = 0; k < o.types.size(); ++k) {
    uint64_t bytes = 0;
    double num = 0;
    for (const ReportTensor& t : r->tensors) {
      bytes += t.candidates[k].bytes;
      num += static_cast<double>(t.params) * t.candidates[k].metrics.rel_rmse * t.candidates[k].metrics.rel_rmse;
    }
    CHECK(r->totals[k].bytes == bytes);
    CHECK(r->totals[k].mean_rel_mse == Approx(num / static_cast<double>(r->params)).epsilon(1e-12));
  }
  // Layers: blk.0, blk.1, blk.2.
  REQUIRE(r->layers.size() == 3);
  CHECK(r->layers[1].layer == 1);
  CHECK(r->layers[1].params == 40 * 512 + 64);
}

TEST_CASE("report: scaled FP8 reference is code x scale before bf16 / block types quantize bf16(x)", "[report]") {
  test::TempDir dir;
  const auto shards = test::DeepSeekShards();
  test::WriteCheckpoint(dir.path() / "ck", shards, test::DeepSeekConfig());
  ReportOptions o;
  o.types = {DType::kQ8_0, DType::kBF16, DType::kE4M3FN};
  auto r = MeasureReport((dir.path() / "ck").string(), o);
  REQUIRE(r.ok());
  // Scale companions are folded into their weights.
  for (const ReportTensor& t : r->tensors) CHECK(t.name.find("scale_inv") == std::string::npos);
  const std::string name = "model.layers.0.self_attn.q_a_proj.weight";  // [200, 300], scales [2, 3]
  const test::TestTensor& w = test::FindTest(shards, name);
  const test::TestTensor& s = test::FindTest(shards, name + "_scale_inv");
  std::vector<float> x(200 * 300), xb(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t row = i / 300, col = i % 300;
    x[i] = E4M3ToFloat(w.bytes[i]) * test::ScaleValue(s, (row / 128) * 3 + col / 128);
    xb[i] = BF16ToF32(F32ToBF16(x[i]));
  }
  const ReportTensor& t = FindTensor(*r, name);
  CHECK(t.source_dtype == "e4m3fn");
  CheckClose(Cand(t, DType::kBF16).metrics, DirectMetrics(x, xb, 300));
  // q8_0 would not fit 300-element rows: f16 fallback.
  const ReportCandidate& q = Cand(t, DType::kQ8_0);
  CHECK(q.type == DType::kF16);
  // e4m3fn: kept as it is, scale included.
  const ReportCandidate& f8 = Cand(t, DType::kE4M3FN);
  CHECK(f8.metrics.rel_rmse == 0);
  CHECK(f8.bytes == 200 * 300 + 6 * 4);
  CHECK(Cand(t, DType::kBF16).bytes == 200 * 300 * 2);
  // A block type from scaled FP8: q8_0 of bf16(x), error against x.
  const std::string g = "model.layers.0.mlp.gate_proj.weight";  // [256, 128], scales [2, 1] in the other shard
  const test::TestTensor& gw = test::FindTest(shards, g);
  const test::TestTensor& gs = test::FindTest(shards, g + "_scale_inv");
  std::vector<float> gx(256 * 128), gq(gx.size());
  for (size_t i = 0; i < gx.size(); ++i) {
    gx[i] = E4M3ToFloat(gw.bytes[i]) * test::ScaleValue(gs, i / 128 / 128);
    gq[i] = BF16ToF32(F32ToBF16(gx[i]));
  }
  CheckClose(Cand(FindTensor(*r, g), DType::kQ8_0).metrics, DirectMetrics(gx, BlockRoundTrip(DType::kQ8_0, gq, 128), 128));
  // The embedding is not an FP8 target (convert keeps it): exact, its own bytes.
  const ReportCandidate& emb = Cand(FindTensor(*r, "model.embed_tokens.weight"), DType::kE4M3FN);
  CHECK(emb.type == DType::kBF16);
  CHECK(emb.metrics.rel_rmse == 0);
}

TEST_CASE("report: imatrix quantizes like llama-quantize and weights imatrix_rel_rmse", "[report]") {
  test::TempDir dir;
  const test::TestTensor a = test::FloatTensor("blk.0.ffn_up.weight", {8, 256}, 21, "F32");
  const test::TestTensor b = test::FloatTensor("blk.0.ffn_gate.weight", {8, 256}, 22, "F32");  // no imatrix entry
  test::WriteShard(dir / "m.safetensors", {a, b});
  std::vector<float> sums(256);
  test::Rng rng(5);
  for (float& v : sums) v = 0.1f + 10 * rng.Uniform() * rng.Uniform();
  const std::vector<uint8_t> im = WriteLegacyImatrix({{a.name, {2, sums}}}, 2, "test");
  {
    std::ofstream f(dir / "im.dat", std::ios::binary);
    f.write(reinterpret_cast<const char*>(im.data()), static_cast<std::streamsize>(im.size()));
  }
  std::vector<float> w(256);
  for (size_t i = 0; i < 256; ++i) w[i] = sums[i] / 2;  // importance = sums / ncall
  ReportOptions o;
  o.types = {DType::kQ4_K, DType::kQ3_K, DType::kBF16};
  o.imatrix = (dir / "im.dat").string();
  auto r = MeasureReport((dir / "m.safetensors").string(), o);
  REQUIRE(r.ok());
  CHECK(r->imatrix);
  CHECK(r->imatrix_missing == 1);
  const std::vector<float> x = F32Values(a);
  for (DType t : {DType::kQ4_K, DType::kQ3_K}) {
    INFO(GetDType(t).name);
    const std::vector<float> y = BlockRoundTrip(t, x, 256, w.data());
    CheckClose(Cand(FindTensor(*r, a.name), t).metrics, DirectMetrics(x, y, 256, &w));
    // Quantizing without the imatrix gives other values (the imatrix was used).
    CHECK(BlockRoundTrip(t, x, 256) != y);
  }
  CHECK_FALSE(Cand(FindTensor(*r, b.name), DType::kQ4_K).metrics.imatrix_rel_rmse.has_value());
  const nlohmann::json j = ReportToJson(*r);
  CHECK(j["tensors"][0]["candidates"]["q4_k"]["imatrix_rel_rmse"].is_number());
  CHECK(j["tensors"][1]["candidates"]["q4_k"]["imatrix_rel_rmse"].is_null());
}

TEST_CASE("report: JSON has exactly the issue's shape / the same for any thread count", "[report]") {
  if (!test::HaveShared("models/tiny-rwkv-7v0-834K")) return;
  const std::string path = (test::SharedDir() / "models/tiny-rwkv-7v0-834K/model-q5_0.gguf").string();
  std::string first;
  for (int threads : {1, 2, 3, 5}) {
    ReportOptions o;
    o.types = {DType::kQ2_K, DType::kQ4_K, DType::kQ5_0, DType::kE4M3FN, DType::kBF16};
    o.threads = threads;
    auto r = MeasureReport(path, o);
    REQUIRE(r.ok());
    const std::string dump = ReportToJson(*r).dump();
    if (first.empty()) first = dump;
    INFO("threads " << threads);
    CHECK(dump == first);
  }
  const nlohmann::json j = nlohmann::json::parse(first);
  auto keys = [](const nlohmann::json& o) {
    std::set<std::string> k;
    for (const auto& [key, v] : o.items()) k.insert(key);
    return k;
  };
  CHECK(keys(j) == std::set<std::string>{"model", "params", "types", "tensors", "totals"});
  CHECK(j["types"] == nlohmann::json::array({"q2_k", "q4_k", "q5_0", "e4m3fn", "bf16"}));
  uint64_t params = 0;
  for (const auto& t : j["tensors"]) {
    CHECK(keys(t) == std::set<std::string>{"name", "shape", "params", "source_dtype", "candidates"});
    params += t["params"].get<uint64_t>();
    CHECK(t["shape"].is_array());
    for (const auto& [type, c] : t["candidates"].items()) {
      CHECK(keys(c) == std::set<std::string>{"type", "bytes", "bpw", "rmse", "rel_rmse", "snr_db", "max_abs_err",
                                             "cosine", "imatrix_rel_rmse"});
      CHECK(c["bytes"].is_number_unsigned());
      CHECK(c["imatrix_rel_rmse"].is_null());
      // The q5_0 tensors asked for q5_0 are kept: exact, snr null (+inf).
      if (type == "q5_0" && t["source_dtype"] == "q5_0") {
        CHECK(c["rel_rmse"] == 0);
        CHECK(c["snr_db"].is_null());
      }
    }
    size_t rank = t["shape"].size();  // effective rank: leading 1s do not count
    for (size_t d = 0; d + 1 < t["shape"].size() && t["shape"][d] == 1; ++d) --rank;
    if (rank <= 1) {
      REQUIRE(t["candidates"].size() == 1);
      CHECK(t["candidates"].begin().key() == "f32");
    } else {
      CHECK(t["candidates"].size() == 5);
    }
  }
  CHECK(j["params"] == params);
  CHECK(keys(j["totals"]) == std::set<std::string>{"q2_k", "q4_k", "q5_0", "e4m3fn", "bf16"});
  for (const auto& [type, tot] : j["totals"].items())
    CHECK(keys(tot) == std::set<std::string>{"bytes", "bpw", "mean_rel_mse"});
}

TEST_CASE("report: --reference measures a file against another / exact against itself", "[report]") {
  test::TempDir dir;
  const test::TestTensor a = test::FloatTensor("blk.0.attn_q.weight", {8, 256}, 31, "F32");
  const test::TestTensor b = test::FloatTensor("blk.0.attn_q.weight", {8, 256}, 31, "BF16");  // same values, rounded
  test::WriteShard(dir / "a.safetensors", {a});
  test::WriteShard(dir / "b.safetensors", {b});
  ReportOptions o;
  o.reference = (dir / "a.safetensors").string();
  auto self = MeasureReport((dir / "a.safetensors").string(), o);
  REQUIRE(self.ok());
  REQUIRE(self->tensors.size() == 1);
  CHECK(self->tensors[0].candidates[0].metrics.rel_rmse == 0);
  auto r = MeasureReport((dir / "b.safetensors").string(), o);
  REQUIRE(r.ok());
  const ReportCandidate& c = r->tensors[0].candidates[0];
  CHECK(c.type == DType::kBF16);
  CHECK(c.bytes == 8 * 256 * 2);
  const std::vector<float> x = F32Values(a);
  CheckClose(c.metrics, DirectMetrics(x, Bf16Values(b), 256));
  const nlohmann::json j = ReportToJson(*r);
  CHECK(j["types"] == nlohmann::json::array({"stored"}));
  CHECK(j["tensors"][0]["candidates"].contains("bf16"));
  // Different shapes or missing names are errors naming the tensor.
  test::WriteShard(dir / "c.safetensors", {test::FloatTensor("blk.0.attn_q.weight", {4, 256}, 31, "F32")});
  auto bad = MeasureReport((dir / "c.safetensors").string(), o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("blk.0.attn_q.weight") != std::string::npos);
}

TEST_CASE("report: layer index and tensor kind from names", "[report]") {
  CHECK(LayerOf("model.layers.12.self_attn.q_proj.weight") == 12);
  CHECK(LayerOf("blk.3.ffn_down.weight") == 3);
  CHECK(LayerOf("transformer.h.7.attn.c_attn.weight") == 7);
  CHECK(LayerOf("blocks.0.att.key.weight") == 0);
  CHECK(LayerOf("model.embed_tokens.weight") == -1);
  CHECK(LayerOf("output.weight") == -1);
  CHECK(LayerOf("xblk.3.w") == -1);  // the marker must start a name component
  CHECK(KindOf("model.layers.12.self_attn.q_proj.weight") == "self_attn.q_proj");
  CHECK(KindOf("model.layers.5.mlp.experts.17.down_proj.weight") == "mlp.experts.*.down_proj");
  CHECK(KindOf("blk.3.ffn_down_exps.weight") == "ffn_down_exps");
  CHECK(KindOf("model.embed_tokens.weight") == "embed_tokens");
}

TEST_CASE("report: bad options are usage errors naming the problem", "[report]") {
  CHECK(ParseTypeList("q4_k,q9_z", "--types").error().message.find("q9_z") != std::string::npos);
  CHECK(ParseTypeList("q4_k,,q8_0", "--types").error().kind == ErrorKind::kBadUsage);
  CHECK(ParseTypeList("q4_k,Q4_K", "--types").error().message.find("twice") != std::string::npos);
  auto ok = ParseTypeList("q4_k, bf16", "--types");
  REQUIRE(ok.ok());
  CHECK(ok->size() == 2);
  test::TempDir dir;
  test::WriteShard(dir / "m.safetensors", {test::FloatTensor("a.weight", {4, 32}, 1, "F32")});
  ReportOptions o;
  o.tensors = "([";
  CHECK(MeasureReport((dir / "m.safetensors").string(), o).error().kind == ErrorKind::kBadUsage);
  o.tensors = "^nothing$";
  auto r = MeasureReport((dir / "m.safetensors").string(), o);
  REQUIRE(r.ok());
  CHECK(r->tensors.empty());
}

// A minimal XML well-formedness check: every tag closed in order (void tags
// self-closed), attributes quoted, entities known.
std::string WellFormedProblem(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = s.find("<html");
  if (i == std::string::npos) return "no <html>";
  while (i < s.size()) {
    const size_t lt = s.find('<', i);
    // Text between tags: '&' must start a known entity.
    for (size_t k = i; k < std::min(lt, s.size()); ++k)
      if (s[k] == '&') {
        const size_t semi = s.find(';', k);
        const std::string ent = s.substr(k, semi - k + 1);
        if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&#39;" &&
            !(ent.size() > 3 && ent[1] == '#'))
          return "bad entity " + ent;
      }
    if (lt == std::string::npos) break;
    const size_t gt = s.find('>', lt);
    if (gt == std::string::npos) return "unterminated tag";
    std::string tag = s.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return "</" + name + "> closes " + (stack.empty() ? "nothing" : stack.back());
      stack.pop_back();
      continue;
    }
    if (tag.back() == '/') continue;
    if (tag[0] == '!') continue;
    stack.push_back(tag.substr(0, tag.find_first_of(" \n")));
    if (stack.back() == "style") {  // raw text until </style>
      const size_t end = s.find("</style>", i);
      if (end == std::string::npos) return "unterminated <style>";
      i = end;
    }
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  return "";
}

TEST_CASE("report: the HTML page is well-formed and self-contained", "[report]") {
  test::TempDir dir;
  test::WriteShard(dir / "m.safetensors",
                   {test::FloatTensor("model.layers.0.mlp.down_proj.weight", {64, 256}, 1, "F32"),
                    test::FloatTensor("model.layers.1.mlp.down_proj.weight", {64, 256}, 2, "F32"),
                    test::FloatTensor("model.layers.1.<odd>&\"name\".weight", {64, 256}, 3, "F32"),
                    test::FloatTensor("model.norm.weight", {256}, 4, "F32")});
  ReportOptions o;
  auto r = MeasureReport((dir / "m.safetensors").string(), o);
  REQUIRE(r.ok());
  const std::string html = RenderReportHtml(*r);
  CHECK(WellFormedProblem(html) == "");
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(html.find("&lt;odd&gt;&amp;&quot;name&quot;") != std::string::npos);
  // Three charts.
  size_t svgs = 0;
  for (size_t p = 0; (p = html.find("<svg", p)) != std::string::npos; ++p) ++svgs;
  CHECK(svgs == 3);
  CHECK(WellFormedProblem("<html><body><p></body></html>") != "");  // the checker can fail
}

}  // namespace
}  // namespace bitsmith
