// `bitsmith table FMT [--csv]`: every code of a format of 8 bits or fewer, with
// its bit fields, class and exact value.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/element_text.h"
#include "formats/dtype.h"
#include "formats/element_format.h"

namespace bitsmith::cli {
namespace {

Runner Setup(CLI::App& sub) {
  auto name = std::make_shared<std::string>();
  auto csv = std::make_shared<bool>(false);
  sub.add_option("FMT", *name, "Element format of 8 bits or fewer (e4m3fn, e5m2, e2m1fn, int4, ...)")
      ->required();
  sub.add_flag("--csv", *csv, "Comma-separated values: code,bits,class,value");
  return [name, csv]() -> int {
    const ElementFormat* f = FindElementFormat(*name);
    if (f == nullptr) {
      if (auto t = FindDType(*name); t && GetDType(*t).is_block())
        return ReportError(MakeError(ErrorKind::kBadUsage, "table: {} is a block format; table lists "
                                     "the codes of element formats", *name));
      return ReportError(MakeError(ErrorKind::kBadUsage, "table: unknown format '{}' (see `bitsmith formats`)", *name));
    }
    if (f->bits > 8)
      return ReportError(MakeError(ErrorKind::kBadUsage,
                                   "table: {} has {} bits ({} codes); table lists formats of 8 bits or "
                                   "fewer (use `bitsmith explain` for single codes)",
                                   f->name, f->bits, f->code_count()));
    if (*csv) fmt::print("code,bits,class,value\n");
    else fmt::print("{} ({} codes)\n{:<6} {:<16} {:<10} {}\n", f->name, f->code_count(), "code", "bits", "class", "value");
    for (uint32_t code = 0; code < f->code_count(); ++code) {
      const CodeFields c = DescribeCode(*f, code);
      if (*csv) fmt::print("{},{},{},{}\n", c.hex, c.bits, ValueClassName(c.cls), c.value_text);
      else fmt::print("{:<6} {:<16} {:<10} {}\n", c.hex, c.bits, ValueClassName(c.cls), c.value_text);
    }
    return kExitOk;
  };
}

BITSMITH_COMMAND("table", "List every code of an element format of 8 bits or fewer", 45, Setup);

}  // namespace
}  // namespace bitsmith::cli
