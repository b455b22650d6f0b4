// The benchmark harness behind `bitsmith bench` and bench/bitsmith_bench.
//
// A case registers a factory (static registration, see BITSMITH_BENCH_CASE); the
// harness builds the workload once (inputs allocated and filled outside the
// timing), runs it once to warm up, then times passes until --min-time and keeps
// the median pass. Right before each case, in the same process, it times a
// memcpy moving the same number of bytes (read + written) with the same number
// of threads, and reports the ratio: ratio >= 1 means the kernel moves its bytes
// at least as fast as memcpy would. Ratios measured in one run are what we quote
// (docs/PERFORMANCE.md): these machines are shared and absolute GB/s drift.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bitsmith::bench {

struct Config {
  uint64_t bytes = 256ull << 20;  // target size of the largest array of a case
  int threads = 1;
  double min_seconds = 0.5;       // time spent per case (after warm-up)
  // Time single-thread passes in thread CPU time instead of wall clock: robust
  // on a machine shared with other jobs (wall clock under `nice` measures the
  // scheduler). Multi-thread passes always use wall clock.
  bool cpu_time = false;
};

struct Workload {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t elements = 0;         // elements processed per pass (for Melem/s)
  std::function<void(int threads)> run;  // one full pass
  // Optional: the same work done by ggml (dlopen'ed libggml-base.so, test-only);
  // empty when ggml is not available. Reported as bitsmith/ggml speed ratio.
  std::function<void(int threads)> ggml_run;
};

struct Case {
  std::string name;   // "decode e4m3fn->bf16"
  std::string group;  // "element", "block", "convert"
  std::function<Workload(const Config&)> make;
};

struct Measurement {
  std::string name, group;
  int threads = 1;
  double seconds = 0;            // median pass
  double gbps = 0;               // (read + written) bytes / s / 1e9
  double melems = 0;             // elements / s / 1e6
  double memcpy_gbps = 0;        // memcpy of the same traffic, same threads
  double memcpy_ratio = 0;       // gbps / memcpy_gbps
  double ggml_melems = 0;        // 0 when ggml is not available
  double ggml_ratio = 0;         // melems / ggml_melems
};

// Registers a case; returns true (for static initialisation).
bool Register(Case c);
const std::vector<Case>& Cases();

// Runs the cases whose name or group contains `filter` (all when empty) for each
// thread count, printing a table (or JSON lines when json = true) to stdout.
std::vector<Measurement> RunAll(const std::string& filter, const Config& base,
                                const std::vector<int>& thread_counts, bool print_human);

// Standalone main: bitsmith_bench [--filter S] [--bytes N] [--threads 1,2] [--json] [--min-time S]
int Main(int argc, char** argv);

// Times one callable: median seconds of passes run until min_seconds elapsed (at least 3).
double TimeMedian(const std::function<void()>& pass, double min_seconds, bool cpu_time = false);

}  // namespace bitsmith::bench

#define BITSMITH_BENCH_CONCAT_INNER_(a, b) a##b
#define BITSMITH_BENCH_CONCAT_(a, b) BITSMITH_BENCH_CONCAT_INNER_(a, b)
// BITSMITH_BENCH_CASE("decode e4m3fn->bf16", "element", [](const Config& c) { ... return w; });
#define BITSMITH_BENCH_CASE(NAME, GROUP, FACTORY)                                   \
  static const bool BITSMITH_BENCH_CONCAT_(bitsmith_bench_reg_, __LINE__) =        \
      ::bitsmith::bench::Register({NAME, GROUP, FACTORY})
