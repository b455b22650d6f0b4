// `bitsmith bench [--filter S] [--bytes N] [--threads LIST] [--min-time S] [--cpu-time] [--json [FILE]]`:
// the benchmark cases of bench/ (bench/registry.h), each timed single- and
// multi-threaded with the ratio to a memcpy of the same bytes in the same run.
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench/registry.h"
#include "cli/commands.h"

namespace bitsmith::cli {
namespace {

struct BenchOptions {
  std::string filter, bytes = "256MiB", threads, min_time = "0.5";
  bool cpu_time = false;
};

Runner Setup(CLI::App& sub) {
  auto o = std::make_shared<BenchOptions>();
  auto json = std::make_shared<JsonOut>();
  sub.add_option("--filter", o->filter, "Only cases whose name or group contains S (e.g. e4m3fn, element)");
  sub.add_option("--bytes", o->bytes, "Size of each case's largest array (default 256MiB; e.g. 64MiB, 1GiB)");
  sub.add_option("--threads", o->threads, "Comma-separated thread counts (default: 1 and all cores)");
  sub.add_option("--min-time", o->min_time, "Seconds per case and thread count (default 0.5)");
  sub.add_flag("--cpu-time", o->cpu_time,
               "Time single-thread passes in thread CPU time (for a machine shared with other jobs)");
  json->Add(sub);
  return [o, json]() -> int {
    bench::Config cfg;
    const auto bytes = ParseSize(o->bytes);
    if (!bytes || *bytes == 0)
      return ReportError(MakeError(ErrorKind::kBadUsage, "--bytes {}: not a size (e.g. 256MiB)", o->bytes));
    cfg.bytes = *bytes;
    cfg.cpu_time = o->cpu_time;
    char* end = nullptr;
    cfg.min_seconds = std::strtod(o->min_time.c_str(), &end);
    if (end == o->min_time.c_str() || *end != '\0' || !(cfg.min_seconds >= 0))
      return ReportError(MakeError(ErrorKind::kBadUsage, "--min-time {}: not a number of seconds", o->min_time));
    std::vector<int> threads;
    if (o->threads.empty()) {
      threads = {1};
      const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      if (all > 1) threads.push_back(all);
    } else {
      std::stringstream ss(o->threads);
      std::string item;
      while (std::getline(ss, item, ',')) {
        char* e = nullptr;
        const long t = std::strtol(item.c_str(), &e, 10);
        if (e == item.c_str() || *e != '\0' || t < 1 || t > 4096)
          return ReportError(MakeError(ErrorKind::kBadUsage, "--threads {}: '{}' is not a thread count in [1, 4096]",
                                       o->threads, item));
        threads.push_back(static_cast<int>(t));
      }
    }
    bool any = false;
    for (const auto& c : bench::Cases())
      any |= o->filter.empty() || c.name.find(o->filter) != std::string::npos ||
             c.group.find(o->filter) != std::string::npos;
    if (!any)
      return ReportError(MakeError(ErrorKind::kBadUsage, "--filter {}: no benchmark case matches", o->filter));
    const auto results = bench::RunAll(o->filter, cfg, threads, !json->to_stdout());
    if (json->active()) {
      nlohmann::json j = {{"bytes", cfg.bytes}, {"min_seconds", cfg.min_seconds}, {"cpu_time", cfg.cpu_time}, {"results", nlohmann::json::array()}};
      for (const auto& m : results)
        j["results"].push_back({{"name", m.name},
                                {"group", m.group},
                                {"threads", m.threads},
                                {"seconds", m.seconds},
                                {"gbps", m.gbps},
                                {"melems", m.melems},
                                {"memcpy_gbps", m.memcpy_gbps},
                                {"memcpy_ratio", m.memcpy_ratio},
                                {"ggml_melems", m.ggml_melems},
                                {"ggml_ratio", m.ggml_ratio}});
      if (Status s = json->Write(j); !s.ok()) return ReportError(s.error());
    }
    return kExitOk;
  };
}

BITSMITH_COMMAND("bench", "Measure codec throughput against memcpy (GB/s and ratio)", 90, Setup);

}  // namespace
}  // namespace bitsmith::cli
