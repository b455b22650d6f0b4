// convert: faults. `kill -9` of a multi-shard conversion at random points
// (20 times), then --resume: OUT never holds a complete-looking wrong file and
// the resumed output is byte-identical to an uninterrupted run. Two
// conversions into one OUT: the second is refused naming the first's pid; a
// killed run's lock is detected as stale. The progress line appears only on a
// terminal; -q silences warnings.
//
// The runs are slowed with the pipeline's test hook
// BITSMITH_TEST_ITEM_DELAY_US (a sleep after every work item) so the kills
// land mid-run on any machine.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "convert/manifest.h"
#include "convert_fixture.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;
using test::TestTensor;

// 8 shards, each with two FP8 weights (scales beside them, one in the next
// shard) and a BF16 norm: 8 output shards + index + config + tokenizer.
void WriteManyShards(const fs::path& dir) {
  std::vector<std::pair<std::string, std::vector<TestTensor>>> shards;
  const int n = 8;
  for (int s = 0; s < n; ++s) {
    const std::string L = "model.layers." + std::to_string(s) + ".";
    std::vector<TestTensor> ts = {
        test::Fp8Tensor(L + "mlp.up_proj.weight", {256, 384}, 100 + s),
        test::ScaleTensor(L + "mlp.up_proj.weight_scale_inv", {2, 3}, 200 + s),
        test::Fp8Tensor(L + "mlp.down_proj.weight", {200, 256}, 300 + s),
        test::FloatTensor(L + "input_layernorm.weight", {384}, 400 + s),
    };
    if (s > 0) ts.push_back(test::ScaleTensor("model.layers." + std::to_string(s - 1) + ".mlp.down_proj.weight_scale_inv",
                                              {2, 2}, 500 + s));
    if (s == n - 1) ts.push_back(test::ScaleTensor(L + "mlp.down_proj.weight_scale_inv", {2, 2}, 600));
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, n);
    shards.push_back({name, ts});
  }
  test::WriteCheckpoint(dir, shards, test::DeepSeekConfig());
}

std::map<std::string, std::vector<uint8_t>> DirFiles(const fs::path& dir) {
  std::map<std::string, std::vector<uint8_t>> m;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) m[e.path().filename().string()] = test::ReadFile(e.path());
  return m;
}

std::string Exe() { return "'" + test::BitsmithExe().string() + "'"; }

std::string ConvertCmd(const fs::path& in, const fs::path& out, const std::string& extra = "") {
  return Exe() + " convert '" + in.string() + "' '" + out.string() + "' --to bf16 --threads 1 " + extra;
}

// OUT after a kill: every file there is either absent from the reference or
// byte-identical to it; the index only when every shard is complete.
void CheckNothingWrong(const fs::path& out, const std::map<std::string, std::vector<uint8_t>>& ref) {
  if (!fs::exists(out)) return;
  std::set<std::string> present;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string n = e.path().filename().string();
    if (n == kPartialDirName) continue;
    INFO("OUT holds " << n);
    REQUIRE(e.is_regular_file());
    auto it = ref.find(n);
    REQUIRE(it != ref.end());  // no stray (temporary or foreign) file in OUT
    CHECK(test::ReadFile(e.path()) == it->second);
    present.insert(n);
  }
  if (present.count("model.safetensors.index.json"))
    for (const auto& [n, bytes] : ref) CHECK(present.count(n));
}

TEST_CASE("convert: kill -9 at random points, then --resume gives the uninterrupted bytes", "[convert][fault]") {
  test::TempDir tmp;
  WriteManyShards(tmp / "in");
  REQUIRE(test::Run(ConvertCmd(tmp / "in", tmp / "ref")).status == 0);
  const auto ref = DirFiles(tmp / "ref");
  REQUIRE(ref.size() == 12);  // 8 shards, index, config, tokenizer, generation_config
  // How long a slowed run takes here.
  const std::string slow = "BITSMITH_TEST_ITEM_DELAY_US=15000 ";
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(test::Run(slow + ConvertCmd(tmp / "in", tmp / "timed")).status == 0);
  const double full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(DirFiles(tmp / "timed") == ref);

  test::Rng rng(2024);
  int mid_run = 0, kept = 0;
  for (int k = 0; k < 20; ++k) {
    const fs::path out = tmp / ("out" + std::to_string(k));
    const double at = full * (0.05 + 0.9 * rng.Uniform());
    INFO("kill " << k << " at " << at << " s of " << full << " s");
    const auto r = test::Run("bash -c \"" + slow + ConvertCmd(tmp / "in", out, "-q") + " & pid=\\$!; sleep " +
                             std::to_string(at) + "; kill -9 \\$pid; wait \\$pid; true\"");
    REQUIRE(r.status == 0);
    if (fs::exists(out / std::string(kPartialDirName))) ++mid_run;
    CheckNothingWrong(out, ref);
    // Without --resume a partial OUT is refused.
    if (fs::exists(out) && !fs::is_empty(out)) {
      const auto refused = test::Run(ConvertCmd(tmp / "in", out));
      CHECK(refused.status != 0);
      CHECK_THAT(refused.err, Catch::Contains("--resume"));
    }
    const auto res = test::Run(ConvertCmd(tmp / "in", out, "--resume"));
    INFO(res.out << res.err);
    REQUIRE(res.status == 0);
    if (res.out.find("kept from the interrupted run") != std::string::npos) ++kept;
    CHECK(DirFiles(out) == ref);
    CHECK(!fs::exists(out / std::string(kPartialDirName)));
    fs::remove_all(out);
  }
  WARN("kill -9 test: " << mid_run << " of 20 kills landed mid-run, " << kept << " resumes kept finished shards");
  CHECK(mid_run >= 5);
  CHECK(kept >= 1);
}

// Waits (up to `seconds`) for a predicate.
template <class F>
bool WaitFor(F f, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

std::string Slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST_CASE("convert: a second conversion into the same OUT is refused - a dead owner's lock is stale",
          "[convert][fault]") {
  test::TempDir tmp;
  WriteManyShards(tmp / "in");
  REQUIRE(test::Run(ConvertCmd(tmp / "in", tmp / "ref")).status == 0);
  const auto ref = DirFiles(tmp / "ref");
  const fs::path out = tmp / "out";
  const fs::path lock = out / std::string(kPartialDirName) / "lock";
  const std::string slow = "BITSMITH_TEST_ITEM_DELAY_US=20000 ";

  // 1. First run in the background; its pid is in the lock file.
  const auto bg = test::Run("bash -c \"" + slow + ConvertCmd(tmp / "in", out) + " > '" + (tmp / "a.log").string() +
                            "' 2>&1 & echo \\$!\"");
  REQUIRE(bg.status == 0);
  const int pid = std::atoi(bg.out.c_str());
  REQUIRE(pid > 0);
  REQUIRE(WaitFor([&] { return std::atoi(Slurp(lock).c_str()) == pid; }, 20));
  // 2. A second one (with --resume, so the lock is the only obstacle) is refused, naming the pid.
  const auto second = test::Run(ConvertCmd(tmp / "in", out, "--resume"));
  CHECK(second.status != 0);
  CHECK_THAT(second.err, Catch::Contains("pid " + std::to_string(pid)) && Catch::Contains("another bitsmith"));
  // 3. Kill the first: its lock is stale; --resume takes it over, says so, finishes.
  ::kill(pid, SIGKILL);
  REQUIRE(WaitFor([&] { return ::kill(pid, 0) != 0 || Slurp("/proc/" + std::to_string(pid) + "/stat").find(") Z") !=
                                                         std::string::npos; },
                  20));
  REQUIRE(fs::exists(lock));
  CheckNothingWrong(out, ref);
  const auto res = test::Run(ConvertCmd(tmp / "in", out, "--resume"));
  INFO(res.out << res.err);
  REQUIRE(res.status == 0);
  CHECK_THAT(res.err, Catch::Contains("stale lock") && Catch::Contains("pid " + std::to_string(pid)));
  CHECK(DirFiles(out) == ref);

  // 4. A partial OUT of one job cannot be resumed by another (other --to); a
  //    run that fails is not reported as stale afterwards.
  const fs::path out2 = tmp / "out2";
  const auto bg2 = test::Run("bash -c \"" + slow + ConvertCmd(tmp / "in", out2) + " > /dev/null 2>&1 & echo \\$!\"");
  const int pid2 = std::atoi(bg2.out.c_str());
  REQUIRE(pid2 > 0);
  const fs::path manifest = out2 / std::string(kPartialDirName) / "manifest.json";
  REQUIRE(WaitFor([&] { return Slurp(manifest).find("model-00001-of-00008") != std::string::npos; }, 30));
  ::kill(pid2, SIGKILL);
  REQUIRE(WaitFor([&] { return ::kill(pid2, 0) != 0 || Slurp("/proc/" + std::to_string(pid2) + "/stat").find(") Z") !=
                                                          std::string::npos; },
                  20));
  const auto other = test::Run(Exe() + " convert '" + (tmp / "in").string() + "' '" + out2.string() +
                               "' --to f16 --threads 1 --resume");
  CHECK(other.status != 0);
  CHECK_THAT(other.err, Catch::Contains("different"));
  CHECK(Slurp(out2 / std::string(kPartialDirName) / "lock").empty());
  const auto res2 = test::Run(ConvertCmd(tmp / "in", out2, "--resume"));
  REQUIRE(res2.status == 0);
  CHECK_THAT(res2.err, !Catch::Contains("stale lock"));
  CHECK(DirFiles(out2) == ref);
}

TEST_CASE("convert: progress only on a terminal - -q silences warnings", "[convert][cli]") {
  test::TempDir tmp;
  WriteManyShards(tmp / "in");
  // An orphan scale gives a warning.
  test::WriteShard(tmp / "in" / "extra.safetensors", {test::ScaleTensor("orphan.weight_scale_inv", {1, 1}, 9)});
  {
    auto idx = nlohmann::json::parse(Slurp(tmp / "in" / "model.safetensors.index.json"));
    idx["weight_map"]["orphan.weight_scale_inv"] = "extra.safetensors";
    test::WriteText(tmp / "in" / "model.safetensors.index.json", idx.dump(2));
  }
  const std::string slow = "BITSMITH_TEST_ITEM_DELAY_US=40000 ";
  // Not a terminal: no progress line (no carriage return, no ETA), but the warning.
  auto piped = test::Run(slow + ConvertCmd(tmp / "in", tmp / "a"));
  REQUIRE(piped.status == 0);
  CHECK(piped.out.find('\r') == std::string::npos);
  CHECK(piped.err.find('\r') == std::string::npos);
  CHECK_THAT(piped.err, !Catch::Contains("ETA"));
  CHECK_THAT(piped.err, Catch::Contains("warning") && Catch::Contains("orphan.weight_scale_inv"));
  auto quiet = test::Run(ConvertCmd(tmp / "in", tmp / "b", "-q"));
  REQUIRE(quiet.status == 0);
  CHECK(quiet.err.empty());
  // On a terminal (script(1) gives the command a pty): the progress line.
  if (std::system("command -v script >/dev/null 2>&1") != 0) return;
  auto tty = test::Run("script -qfec \"" + slow + ConvertCmd(tmp / "in", tmp / "c") + "\" /dev/null");
  INFO(tty.out << tty.err);
  REQUIRE(tty.status == 0);
  CHECK_THAT(tty.out, Catch::Contains("ETA") && Catch::Contains("GB/s"));
  // stdout a file, stderr a terminal: still nothing (stdout is not a terminal).
  auto half = test::Run("script -qfec \"" + slow + ConvertCmd(tmp / "in", tmp / "d") + " > '" +
                        (tmp / "d.log").string() + "'\" /dev/null");
  REQUIRE(half.status == 0);
  CHECK_THAT(half.out, !Catch::Contains("ETA"));
}

}  // namespace
}  // namespace bitsmith
