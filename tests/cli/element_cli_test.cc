// `bitsmith encode / decode / explain / table / bench` run as a user would:
// exit codes, atomic outputs, stdin/stdout, JSON validity.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "codecs/element.h"
#include "formats/half.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;

std::string Exe() { return test::BitsmithExe().string(); }
std::string Q(const fs::path& p) {
  std::string s(1, '\'');  // built up, not by operator+ (GCC 12 -Wrestrict false positive)
  s += p.string();
  s += '\'';
  return s;
}

void WriteBytes(const fs::path& p, const void* data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

std::vector<float> SomeFloats(size_t n) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0, 50);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  v[0] = 1000.0f;            // overflows e4m3fn
  v[1] = -INFINITY;
  v[2] = F32FromBits(0x7FC00001);
  v[3] = -0.0f;
  v[4] = 464.0f;
  return v;
}

// Files with no temporary leftovers in a directory.
bool NoTempFiles(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-bitsmith") != std::string::npos) return false;
  return true;
}

TEST_CASE("encode / decode: files, both modes, byte-identical to the codec", "[cli][element]") {
  test::TempDir tmp;
  const std::vector<float> x = SomeFloats(300001);  // several L2-sized chunks, odd tail
  WriteBytes(tmp / "w.f32", x.data(), 4 * x.size());
  for (bool sat : {false, true}) {
    auto r = test::Run(Exe() + " encode --to e4m3fn " + (sat ? "--saturate " : "") + Q(tmp / "w.f32") + " " +
                       Q(tmp / "w.fp8"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    const std::vector<uint8_t> got = test::ReadFile(tmp / "w.fp8");
    std::vector<uint8_t> want(x.size());
    REQUIRE(Encode(ElementFormatId::kE4M3FN, x, want, sat ? Overflow::kSaturate : Overflow::kNonSaturating,
                   Impl::kReference).ok());
    REQUIRE(got == want);
    // decode -> bf16 and -> f32.
    r = test::Run(Exe() + " decode --from e4m3fn --to bf16 --threads 2 " + Q(tmp / "w.fp8") + " " + Q(tmp / "w.bf16"));
    REQUIRE(r.status == 0);
    const std::vector<uint8_t> bf = test::ReadFile(tmp / "w.bf16");
    REQUIRE(bf.size() == 2 * x.size());
    for (size_t i = 0; i < x.size(); i += 997) {
      uint16_t b;
      std::memcpy(&b, bf.data() + 2 * i, 2);
      INFO("at " << i);
      REQUIRE(b == (DecodeToF32BitsRef(ElementFormatId::kE4M3FN, want[i]) >> 16));
    }
    r = test::Run(Exe() + " decode --from e4m3fn " + Q(tmp / "w.fp8") + " " + Q(tmp / "w.out.f32"));
    REQUIRE(r.status == 0);
    REQUIRE(fs::file_size(tmp / "w.out.f32") == 4 * x.size());
  }
  CHECK(NoTempFiles(tmp.path()));
}

TEST_CASE("encode --from bf16 / f16, every element format, thread counts agree", "[cli][element]") {
  test::TempDir tmp;
  std::vector<uint16_t> bf(65536);
  for (uint32_t i = 0; i < 65536; ++i) bf[i] = static_cast<uint16_t>(i);
  WriteBytes(tmp / "all.bf16", bf.data(), 2 * bf.size());
  for (const char* to : {"e5m2", "e2m1fn", "int4", "e8m0fnu", "f16"}) {
    auto r1 = test::Run(Exe() + " encode --from bf16 --to " + to + " --threads 1 " + Q(tmp / "all.bf16") + " " +
                        Q(tmp / "a"));
    auto r2 = test::Run(Exe() + " encode --from bf16 --to " + to + " --threads 3 " + Q(tmp / "all.bf16") + " " +
                        Q(tmp / "b"));
    INFO(to << ": " << r1.err << r2.err);
    REQUIRE(r1.status == 0);
    REQUIRE(r2.status == 0);
    REQUIRE(test::ReadFile(tmp / "a") == test::ReadFile(tmp / "b"));
    // Spot-check against the oracle.
    const ElementFormat* f = FindElementFormat(to);
    const auto out = test::ReadFile(tmp / "a");
    const size_t eb = ElementBytes(f->id);
    REQUIRE(out.size() == eb * 65536);
    for (uint32_t i = 0; i < 65536; i += 251) {
      uint32_t code = 0;
      std::memcpy(&code, out.data() + eb * i, eb);
      REQUIRE(code == EncodeF32Ref(f->id, F32FromBits(i << 16)));
    }
  }
}

TEST_CASE("encode / decode through stdin and stdout", "[cli][element]") {
  test::TempDir tmp;
  const std::vector<float> x = SomeFloats(12345);
  WriteBytes(tmp / "w.f32", x.data(), 4 * x.size());
  auto r = test::Run("cat " + Q(tmp / "w.f32") + " | " + Exe() + " encode --to e5m2 - - > " + Q(tmp / "s.fp8"));
  INFO(r.err);
  REQUIRE(r.status == 0);
  r = test::Run(Exe() + " encode --to e5m2 " + Q(tmp / "w.f32") + " " + Q(tmp / "f.fp8"));
  REQUIRE(r.status == 0);
  REQUIRE(test::ReadFile(tmp / "s.fp8") == test::ReadFile(tmp / "f.fp8"));
  r = test::Run("cat " + Q(tmp / "f.fp8") + " | " + Exe() + " decode --from e5m2 --to bf16 - " + Q(tmp / "d.bf16"));
  REQUIRE(r.status == 0);
  r = test::Run(Exe() + " decode --from e5m2 --to bf16 " + Q(tmp / "f.fp8") + " -");
  REQUIRE(r.status == 0);
  const auto d = test::ReadFile(tmp / "d.bf16");
  REQUIRE(std::string(d.begin(), d.end()) == r.out);
}

TEST_CASE("encode / decode errors: one line, exit 2, nothing written", "[cli][element]") {
  test::TempDir tmp;
  const std::vector<uint8_t> seven(7, 1);
  WriteBytes(tmp / "seven.f32", seven.data(), seven.size());
  struct Case {
    std::string args, needle;
  };
  const std::vector<Case> cases = {
      {"encode --to e4m3fn " + Q(tmp / "seven.f32") + " " + Q(tmp / "out"), "7 bytes"},
      {"encode --to e9m9 " + Q(tmp / "seven.f32") + " " + Q(tmp / "out"), "unknown format"},
      {"encode --to e4m3fn " + Q(tmp / "missing.f32") + " " + Q(tmp / "out"), "cannot open"},
      {"encode --to q4_k " + Q(tmp / "seven.f32") + " " + Q(tmp / "out"), "needs --row N"},
      {"encode --to e4m3fn --from e5m2 " + Q(tmp / "seven.f32") + " " + Q(tmp / "out"), "--from"},
      {"decode --from e4m3fn --to e5m2 " + Q(tmp / "seven.f32") + " " + Q(tmp / "out"), "--to"},
      {"decode --from bf16 " + Q(tmp / "seven.f32") + " " + Q(tmp / "out"), "7 bytes"},
      {"decode --from q8_0 " + Q(tmp / "seven.f32") + " " + Q(tmp / "out"), "not a whole number of 32-element q8_0 blocks"},
      {"encode --to e4m3fn " + Q(tmp.path()) + " " + Q(tmp / "out"), "directory"},
  };
  for (const Case& c : cases) {
    const auto r = test::Run(Exe() + " " + c.args);
    INFO(c.args << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(c.needle) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(!fs::exists(tmp / "out"));
  }
  // A short stdin (not a multiple of 4 bytes) also fails with exit 2 and leaves no OUT.
  const auto r = test::Run("cat " + Q(tmp / "seven.f32") + " | " + Exe() + " encode --to e4m3fn - " + Q(tmp / "out"));
  CHECK(r.status == 2);
  CHECK(!fs::exists(tmp / "out"));
  CHECK(NoTempFiles(tmp.path()));
}

TEST_CASE("encode replaces an existing OUT atomically, and keeps it on failure", "[cli][element]") {
  test::TempDir tmp;
  const std::vector<float> x = SomeFloats(1000);
  WriteBytes(tmp / "w.f32", x.data(), 4 * x.size());
  WriteBytes(tmp / "out", "old contents", 12);
  // A failing run (unreadable input) leaves the old OUT untouched.
  auto r = test::Run(Exe() + " encode --to e4m3fn " + Q(tmp / "nope") + " " + Q(tmp / "out"));
  REQUIRE(r.status == 2);
  const auto old = test::ReadFile(tmp / "out");
  REQUIRE(std::string(old.begin(), old.end()) == "old contents");
  // A hard link to the old OUT keeps the old bytes: OUT was renamed over, not rewritten in place.
  fs::create_hard_link(tmp / "out", tmp / "link");
  r = test::Run(Exe() + " encode --to e4m3fn " + Q(tmp / "w.f32") + " " + Q(tmp / "out"));
  REQUIRE(r.status == 0);
  REQUIRE(fs::file_size(tmp / "out") == 1000);
  const auto linked = test::ReadFile(tmp / "link");
  CHECK(std::string(linked.begin(), linked.end()) == "old contents");
  CHECK(NoTempFiles(tmp.path()));
}

TEST_CASE("explain a code: fields, exact value, JSON", "[cli][element]") {
  auto r = test::Run(Exe() + " explain 0x5B --format e4m3fn --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["format"] == "e4m3fn");
  CHECK(j["code"] == "0x5B");
  CHECK(j["bits"] == "0b0_1011_011");
  CHECK(j["sign"] == 0);
  CHECK(j["exponent_field"] == 11);
  CHECK(j["mantissa_field"] == 3);
  CHECK(j["exponent"] == 4);
  CHECK(j["class"] == "normal");
  CHECK(j["value"] == "22");  // 2^4 * 1.375
  CHECK(j["formula"].get<std::string>().find("2^(11-7)") != std::string::npos);
  // Binary spelling, subnormal, NaN, the smallest f32 subnormal printed exactly.
  r = test::Run(Exe() + " explain 0b0_0000_001 --format e4m3fn --json");
  REQUIRE(r.status == 0);
  auto k = nlohmann::json::parse(r.out);
  CHECK(k["class"] == "subnormal");
  CHECK(k["value"] == "0.001953125");
  CHECK(k["exponent"] == -6);
  r = test::Run(Exe() + " explain 0x80 --format e4m3fnuz --json");
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["class"] == "nan");
  r = test::Run(Exe() + " explain 0x00000001 --format f32 --json");
  REQUIRE(r.status == 0);
  const std::string v = nlohmann::json::parse(r.out)["value"];
  CHECK(v.rfind("0.00000000000000000000000000000000000000000000140129846432481707", 0) == 0);
  CHECK(v.size() == 2 + 149);  // "0." + 149 decimals
  // Human output names the fields.
  r = test::Run(Exe() + " explain 0x7E --format e4m3fn");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("448") != std::string::npos);
  CHECK(r.out.find("normal") != std::string::npos);
  // Errors.
  r = test::Run(Exe() + " explain 0x1FF --format e4m3fn");
  CHECK(r.status == 2);
  r = test::Run(Exe() + " explain 0x5B --format nope");
  CHECK(r.status == 2);
  r = test::Run(Exe() + " explain 12abc --format e4m3fn");
  CHECK(r.status == 2);
}

TEST_CASE("explain a number: code, both modes, errors, neighbors", "[cli][element]") {
  auto r = test::Run(Exe() + " explain 3.14 --format e4m3fn --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["input"] == "3.14");
  CHECK(j["code"] == "0x45");  // 3.25 = 2^1 * 1.625
  CHECK(j["value"] == "3.25");
  CHECK(j["saturated_code"] == "0x45");
  CHECK(std::fabs(j["abs_error"].get<double>() - (3.25 - double(3.14f))) < 1e-12);
  CHECK(std::fabs(j["rel_error"].get<double>() - (3.25 - double(3.14f)) / double(3.14f)) < 1e-12);
  REQUIRE(j["neighbors"].size() == 2);
  CHECK(j["neighbors"][0]["code"] == "0x44");
  CHECK(j["neighbors"][0]["value"] == "3");
  CHECK(j["neighbors"][1]["code"] == "0x45");
  // Overflow: the two modes differ.
  r = test::Run(Exe() + " explain 1000 --format e4m3fn --json");
  REQUIRE(r.status == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["code"] == "0x7F");
  CHECK(j["class"] == "nan");
  CHECK(j["saturated_code"] == "0x7E");
  CHECK(j["abs_error"].is_null());
  // A negative number, with and without `--`.
  for (const char* args : {" explain -1e-3 --format e5m2 --json", " explain --format e5m2 --json -- -1e-3"}) {
    r = test::Run(Exe() + args);
    INFO(args << ": " << r.err);
    REQUIRE(r.status == 0);
    j = nlohmann::json::parse(r.out);
    CHECK(j["sign"] == 1);
    CHECK(j["code"] == "0x94");  // -1e-3 = -2^-10 * 1.024 -> -2^-10 * 1.00 = 0b1_00101_00
  }
  // inf and nan.
  r = test::Run(Exe() + " explain inf --format e5m2 --json");
  REQUIRE(r.status == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["code"] == "0x7C");
  CHECK(j["saturated_code"] == "0x7B");
  r = test::Run(Exe() + " explain nan --format e2m1fn --json");
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["code"] == "0x0");
  // Human output and --json FILE (human output still printed).
  test::TempDir tmp;
  r = test::Run(Exe() + " explain 0.3 --format bf16 --json " + Q(tmp / "e.json"));
  REQUIRE(r.status == 0);
  CHECK(r.out.find("neighbors") != std::string::npos);
  const auto bytes = test::ReadFile(tmp / "e.json");
  CHECK(nlohmann::json::parse(std::string(bytes.begin(), bytes.end()))["format"] == "bf16");
}

TEST_CASE("table lists every code with its exact value", "[cli][element]") {
  auto r = test::Run(Exe() + " table e2m1fn --csv");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("code,bits,class,value\n") == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 17);
  CHECK(r.out.find("0x7,0b0_11_1,normal,6\n") != std::string::npos);
  CHECK(r.out.find("0x1,0b0_00_1,subnormal,0.5\n") != std::string::npos);
  CHECK(r.out.find("0x8,0b1_00_0,zero,-0\n") != std::string::npos);
  r = test::Run(Exe() + " table e4m3fn");
  REQUIRE(r.status == 0);
  CHECK(r.out.find("448") != std::string::npos);
  CHECK(r.out.find("0x7F") != std::string::npos);
  r = test::Run(Exe() + " table bf16");
  CHECK(r.status == 2);
  r = test::Run(Exe() + " table q4_k");
  CHECK(r.status == 2);
}

TEST_CASE("bench runs a tiny element case and writes JSON", "[cli][element]") {
  auto r = test::Run(Exe() + " bench --filter 'encode f32->e4m3fn' --bytes 1MiB --threads 1 --min-time 0.01 --json");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["results"].size() == 1);
  CHECK(j["results"][0]["name"] == "encode f32->e4m3fn");
  CHECK(j["results"][0]["memcpy_ratio"].get<double>() > 0);
  r = test::Run(Exe() + " bench --filter no-such-case --bytes 1MiB");
  CHECK(r.status == 2);
}

TEST_CASE("explain takes a negative number after '--', as its help says", "[cli][element]") {
  // -1e-3 in e4m3fn lies between the codes 0x80 (-0) and 0x81 (-2^-9 = -0.001953125).
  auto r = test::Run(Exe() + " explain --format e4m3fn --json -- -1e-3");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["sign"] == 1);
  CHECK(j["code"] == "0x81");  // |x| = 0.001 > 2^-10 (the midpoint of 0 and 2^-9): rounds up
  r = test::Run(Exe() + " explain --format e4m3fn -- 3.5 4");
  CHECK(r.status == 2);
}

}  // namespace
}  // namespace bitsmith
