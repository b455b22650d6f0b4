#include "bench/registry.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>  // clock_gettime
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "codecs/parallel.h"

namespace bitsmith::bench {

namespace {
std::vector<Case>& Registry() {
  static std::vector<Case> cases;
  return cases;
}
}  // namespace

bool Register(Case c) {
  Registry().push_back(std::move(c));
  return true;
}
const std::vector<Case>& Cases() { return Registry(); }

namespace {
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
}  // namespace

double TimeMedian(const std::function<void()>& pass, double min_seconds, bool cpu_time) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> times;
  const auto start = Clock::now();
  double spent = 0;  // in the chosen clock: a loaded machine does not cut the sample short
  while (times.size() < 3 || spent < min_seconds) {
    const auto t0 = Clock::now();
    const double c0 = cpu_time ? ThreadCpuSeconds() : 0;
    pass();
    const double dt = cpu_time ? ThreadCpuSeconds() - c0
                               : std::chrono::duration<double>(Clock::now() - t0).count();
    times.push_back(dt);
    spent += dt;
    if (std::chrono::duration<double>(Clock::now() - start).count() > 60 * std::max(min_seconds, 0.1)) break;
    if (times.size() >= 1000) break;
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

namespace {
// memcpy moving `traffic` bytes (traffic/2 read + traffic/2 written), split
// across `threads` the same way the kernels split their rows.
double MemcpyGbps(uint64_t traffic, int threads, double min_seconds, bool cpu_time) {
  const size_t n = std::max<uint64_t>(traffic / 2, 4096);
  std::vector<uint8_t> src(n, 1), dst(n, 0);
  auto pass = [&] {
    ParallelFor(n, 1 << 20, threads, [&](size_t begin, size_t end) {
      std::memcpy(dst.data() + begin, src.data() + begin, end - begin);
    });
  };
  pass();
  return 2.0 * static_cast<double>(n) / TimeMedian(pass, min_seconds, cpu_time) / 1e9;
}
}  // namespace

std::vector<Measurement> RunAll(const std::string& filter, const Config& base,
                                const std::vector<int>& thread_counts, bool print_human) {
  std::vector<Measurement> out;
  if (print_human)
    fmt::print("{:<34} {:>3} {:>10} {:>10} {:>10} {:>8} {:>10}\n", "case", "thr", "GB/s",
               "Melem/s", "memcpy", "ratio", "vs ggml");
  for (const Case& c : Cases()) {
    if (!filter.empty() && c.name.find(filter) == std::string::npos &&
        c.group.find(filter) == std::string::npos)
      continue;
    Workload w = c.make(base);
    for (int threads : thread_counts) {
      Measurement m;
      m.name = c.name;
      m.group = c.group;
      m.threads = threads;
      const uint64_t traffic = w.bytes_read + w.bytes_written;
      const bool cpu = base.cpu_time && threads == 1;
      m.memcpy_gbps = MemcpyGbps(traffic, threads, base.min_seconds / 2, cpu);
      w.run(threads);  // warm-up
      m.seconds = TimeMedian([&] { w.run(threads); }, base.min_seconds, cpu);
      m.gbps = static_cast<double>(traffic) / m.seconds / 1e9;
      m.melems = static_cast<double>(w.elements) / m.seconds / 1e6;
      m.memcpy_ratio = m.gbps / m.memcpy_gbps;
      if (w.ggml_run) {
        w.ggml_run(threads);
        const double s = TimeMedian([&] { w.ggml_run(threads); }, base.min_seconds, cpu);
        m.ggml_melems = static_cast<double>(w.elements) / s / 1e6;
        m.ggml_ratio = m.melems / m.ggml_melems;
      }
      if (print_human) {
        std::string vs = m.ggml_ratio > 0 ? fmt::format("{:.2f}x", m.ggml_ratio) : "-";
        fmt::print("{:<34} {:>3} {:>10.2f} {:>10.1f} {:>10.2f} {:>7.2f}x {:>10}\n", m.name,
                   m.threads, m.gbps, m.melems, m.memcpy_gbps, m.memcpy_ratio, vs);
        std::fflush(stdout);
      }
      out.push_back(m);
    }
  }
  return out;
}

int Main(int argc, char** argv) {
  std::string filter;
  Config cfg;
  std::vector<int> threads = {1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--filter") filter = next();
    else if (a == "--bytes") cfg.bytes = std::stoull(next());
    else if (a == "--min-time") cfg.min_seconds = std::stod(next());
    else if (a == "--json") json = true;
    else if (a == "--cpu-time") cfg.cpu_time = true;
    else if (a == "--threads") {
      threads.clear();
      std::string s = next();
      size_t pos = 0;
      while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        threads.push_back(std::stoi(s.substr(pos, comma - pos)));
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    } else {
      fmt::print(stderr, "usage: bitsmith_bench [--filter S] [--bytes N] [--threads 1,2] [--min-time S] [--cpu-time] [--json]\n");
      return 2;
    }
  }
  auto results = RunAll(filter, cfg, threads, !json);
  if (json) {
    for (auto& m : results)
      fmt::print("{{\"name\":\"{}\",\"group\":\"{}\",\"threads\":{},\"gbps\":{:.4f},\"melems\":{:.3f},"
                 "\"memcpy_gbps\":{:.4f},\"memcpy_ratio\":{:.4f},\"ggml_melems\":{:.3f},\"ggml_ratio\":{:.4f}}}\n",
                 m.name, m.group, m.threads, m.gbps, m.melems, m.memcpy_gbps, m.memcpy_ratio,
                 m.ggml_melems, m.ggml_ratio);
  }
  return 0;
}

}  // namespace bitsmith::bench
