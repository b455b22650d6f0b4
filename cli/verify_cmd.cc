// `bitsmith verify IN OUT`: recompute what `convert IN OUT` must have written
// with the scalar reference codecs and report the first difference per tensor.
#include <fmt/format.h>

#include "cli/commands.h"
#include "convert/convert.h"

namespace bitsmith::cli {
namespace {

struct Args {
  std::string in, out, imatrix, fp8_via = "bf16";
  bool allow_nonfinite = false, all = false;
  int threads = 0;
};

Runner Setup(CLI::App& sub) {
  auto a = std::make_shared<Args>();
  auto json = std::make_shared<JsonOut>();
  sub.add_option("IN", a->in, "The input convert was given")->required();
  sub.add_option("OUT", a->out, "The output convert wrote")->required();
  sub.add_option("--imatrix", a->imatrix, "The --imatrix convert was given (it changes quantized bytes)");
  sub.add_option("--fp8-via", a->fp8_via, "The --fp8-via convert was given: bf16 (default) or f32");
  sub.add_flag("--allow-nonfinite", a->allow_nonfinite, "As convert --allow-nonfinite");
  sub.add_flag("--all", a->all, "List every tensor (default: only the ones that differ)");
  sub.add_option("--threads", a->threads, "Worker threads (default: all cores)");
  json->Add(sub);
  return [a, json]() -> int {
    VerifyOptions o;
    o.input = a->in;
    o.output = a->out;
    o.imatrix = a->imatrix;
    if (a->fp8_via == "f32") o.fp8_via_f32 = true;
    else if (a->fp8_via != "bf16")
      return ReportError(MakeError(ErrorKind::kBadUsage, "--fp8-via '{}': expected bf16 or f32", a->fp8_via));
    o.allow_nonfinite = a->allow_nonfinite;
    o.threads = a->threads;
    auto rep = VerifyConversion(o);
    if (!rep.ok()) return ReportError(rep.error());
    if (json->active()) {
      nlohmann::json j;
      j["input"] = o.input;
      j["output"] = o.output;
      j["ok"] = rep->ok();
      j["problems"] = rep->problems;
      j["mismatches"] = rep->mismatches;
      nlohmann::json ts = nlohmann::json::array();
      for (const TensorVerdict& v : rep->tensors)
        ts.push_back({{"name", v.name}, {"from", v.from}, {"to", v.to}, {"op", v.op}, {"identical", v.identical},
                      {"detail", v.detail}});
      j["tensors"] = std::move(ts);
      if (Status s = json->Write(j); !s.ok()) return ReportError(s.error());
    }
    if (!json->to_stdout()) {
      fmt::print("bitsmith verify: {} -> {} (recomputed with the scalar reference codecs)\n", o.input, o.output);
      for (const TensorVerdict& v : rep->tensors)
        if (a->all || !v.identical)
          fmt::print("  {:<56} {:>7} -> {:<7} {:<12} {}\n", v.name, v.from, v.to, v.op,
                     v.identical ? "identical" : "DIFFERS: " + v.detail);
      for (const std::string& p : rep->problems) fmt::print("  problem: {}\n", p);
      const size_t same = rep->tensors.size() - rep->mismatches;
      fmt::print("  {} of {} tensors identical{}{}\n", same, rep->tensors.size(),
                 rep->mismatches ? fmt::format(", {} differ", rep->mismatches) : "",
                 rep->problems.empty() ? "" : fmt::format(", {} problem(s)", rep->problems.size()));
    }
    return rep->ok() ? kExitOk : kExitFailed;
  };
}

BITSMITH_COMMAND("verify",
                 "Check a converted checkpoint: recompute every tensor from the input with the scalar "
                 "reference codecs and report the first difference per tensor",
                 21, Setup);

}  // namespace
}  // namespace bitsmith::cli
