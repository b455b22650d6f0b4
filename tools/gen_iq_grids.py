#!/usr/bin/env python3
"""Generate formats/iq_grids/*.h: ggml's i-quant grid and lattice tables, one file each.

The tables are data from ggml (MIT License, Copyright (c) 2023-2024 The ggml authors):
the dequantization grids and sign table from src/ggml-common.h, and the quantizer's
lattice tables from src/ggml-quants.c (static arrays inside iq2xs_init_impl and
iq3xs_init_impl), as they stand at ggml-org/ggml d99724f2. They have not changed
since; every copy of ggml carries them (llama.cpp, whisper.cpp and its bindings), with
the GGML_ macro prefix sometimes renamed (WSP_GGML_, LM_GGML_), which this script
accepts.

Usage:
  tools/gen_iq_grids.py --common path/to/ggml-common.h --quants path/to/ggml-quants.c \
      [--out formats/iq_grids]

The script parses the table bodies (numbers only), checks every table's length and
value range, checks that each dequantization grid is the image of its lattice table
(the relation tests/codecs/iquant_grid_test.cc checks again in C++), and writes one
header per table. Re-running it on any faithful copy gives byte-identical headers.
"""
import argparse
import os
import re
import sys

PROVENANCE_COMMON = "src/ggml-common.h"
PROVENANCE_QUANTS = "src/ggml-quants.c"
GGML_COMMIT = "d99724f2"

# (ggml name, C++ name, element type, count, source, description)
COMMON_TABLES = [
    ("ksigns_iq2xs", "kKSignsIQ2XS", "uint8_t", 128,
     "Sign masks of IQ2_XXS, IQ2_XS and IQ3_XXS: entry k = k | parity(k) << 7, so 7 stored\n"
     "// sign bits expand to 8 with an even number of minus signs."),
    ("iq2xxs_grid", "kIQ2XXSGrid", "uint64_t", 256,
     "IQ2_XXS dequantization grid: byte j (little-endian) is the magnitude of element j\n"
     "// of a group of 8, one of 8, 25, 43 (lattice levels 1, 3, 5 scaled by 8 and rounded)."),
    ("iq2xs_grid", "kIQ2XSGrid", "uint64_t", 512,
     "IQ2_XS dequantization grid: byte j is the magnitude of element j of a group of 8\n"
     "// (8, 25 or 43)."),
    ("iq2s_grid", "kIQ2SGrid", "uint64_t", 1024,
     "IQ2_S dequantization grid: byte j is the magnitude of element j of a group of 8\n"
     "// (8, 25 or 43)."),
    ("iq3xxs_grid", "kIQ3XXSGrid", "uint32_t", 256,
     "IQ3_XXS dequantization grid: byte j is the magnitude of element j of a group of 4\n"
     "// (4, 12, ..., 52, 62: lattice levels 1..15 times 4, except 15 -> 62)."),
    ("iq3s_grid", "kIQ3SGrid", "uint32_t", 512,
     "IQ3_S dequantization grid: byte j is the magnitude of element j of a group of 4\n"
     "// (1, 3, ..., 15: the lattice levels themselves)."),
    ("iq1s_grid", "kIQ1SGrid", "uint64_t", 2048,
     "IQ1_S / IQ1_M grid: byte j is element j of a group of 8 as int8 -1, 0 or +1\n"
     "// (ggml's CPU table; GPU builds use the nibble-packed iq1s_grid_gpu instead)."),
    ("kvalues_fp4", "kKValuesMXFP4", "int8_t", 16,
     "MXFP4 element values (kvalues_mxfp4 = kvalues_fp4): E2M1 code -> 2 x its value,\n"
     "// so nibble q decodes to kKValuesMXFP4[q] * 2^(e-128)."),
]

QUANTS_TABLES = [
    ("kgrid_2bit_256", "kKGrid2Bit256", "uint16_t", 256,
     "IQ2_XXS quantizer lattice: 8 coordinates of 2 bits, level l in 0..2 means 2l+1.\n"
     "// Row i is the lattice point of kIQ2XXSGrid row i."),
    ("kgrid_2bit_512", "kKGrid2Bit512", "uint16_t", 512,
     "IQ2_XS quantizer lattice: 8 coordinates of 2 bits (levels 0..2 mean 1, 3, 5).\n"
     "// Row i is the lattice point of kIQ2XSGrid row i."),
    ("kgrid_2bit_1024", "kKGrid2Bit1024", "uint16_t", 1024,
     "IQ2_S quantizer lattice: 8 coordinates of 2 bits (levels 0..2 mean 1, 3, 5).\n"
     "// Row i is the lattice point of kIQ2SGrid row i."),
    ("kgrid_1bit_2048", "kKGrid1Bit2048", "uint16_t", 2048,
     "IQ1_S / IQ1_M quantizer lattice: 8 coordinates of 2 bits, level l in 0..2 is the\n"
     "// ternary value l-1. Row i is the lattice point of kIQ1SGrid row i."),
    ("kgrid_256", "kKGrid3Bit256", "uint16_t", 256,
     "IQ3_XXS quantizer lattice (ggml's kgrid_256): 4 coordinates of 3 bits, level l in\n"
     "// 0..7 means 2l+1. Row i is the lattice point of kIQ3XXSGrid row i."),
    ("kgrid_512", "kKGrid3Bit512", "uint16_t", 512,
     "IQ3_S quantizer lattice (ggml's kgrid_512): 4 coordinates of 3 bits, level l in\n"
     "// 0..7 means 2l+1. Row i is the lattice point of kIQ3SGrid row i."),
]

FILE_NAMES = {
    "ksigns_iq2xs": "ksigns_iq2xs.h",
    "iq2xxs_grid": "iq2xxs_grid.h",
    "iq2xs_grid": "iq2xs_grid.h",
    "iq2s_grid": "iq2s_grid.h",
    "iq3xxs_grid": "iq3xxs_grid.h",
    "iq3s_grid": "iq3s_grid.h",
    "iq1s_grid": "iq1s_grid.h",
    "kvalues_fp4": "kvalues_mxfp4.h",
    "kgrid_2bit_256": "kgrid_2bit_256.h",
    "kgrid_2bit_512": "kgrid_2bit_512.h",
    "kgrid_2bit_1024": "kgrid_2bit_1024.h",
    "kgrid_1bit_2048": "kgrid_1bit_2048.h",
    "kgrid_256": "kgrid_3bit_256.h",
    "kgrid_512": "kgrid_3bit_512.h",
}

NUM = re.compile(r"-?0x[0-9a-fA-F]+|-?\d+")


def numbers(body):
    body = re.sub(r"//[^\n]*", "", body)
    return [int(t, 0) for t in NUM.findall(body)]


def common_table(text, name):
    # [PREFIX_]GGML_TABLE_BEGIN(type, name, size) ... [PREFIX_]GGML_TABLE_END()
    m = re.search(r"\w*GGML_TABLE_BEGIN\(\s*\w+\s*,\s*" + re.escape(name) + r"\s*,\s*[\w]+\s*\)"
                  r"(.*?)\w*GGML_TABLE_END\(\)", text, re.S)
    if not m:
        sys.exit(f"gen_iq_grids: table {name} not found in ggml-common.h")
    return numbers(m.group(1)), text[:m.start()].count("\n") + 1


def quants_table(text, name):
    m = re.search(r"static\s+const\s+uint16_t\s+" + re.escape(name) + r"\s*\[[^\]]*\]\s*=\s*\{(.*?)\};",
                  text, re.S)
    if not m:
        sys.exit(f"gen_iq_grids: table {name} not found in ggml-quants.c")
    return numbers(m.group(1)), text[:m.start()].count("\n") + 1


def fmt_values(ctype, vals):
    if ctype == "uint64_t":
        items, per = [f"0x{v:016x}" for v in vals], 4
    elif ctype == "uint32_t":
        items, per = [f"0x{v:08x}" for v in vals], 8
    else:
        width = max(len(str(v)) for v in vals)
        items, per = [str(v).rjust(width) for v in vals], 16
    lines = []
    for i in range(0, len(items), per):
        lines.append("    " + ", ".join(items[i:i + per]) + ",")
    return "\n".join(lines)


def check_ranges(name, ctype, vals):
    bits = {"uint8_t": 8, "uint16_t": 16, "uint32_t": 32, "uint64_t": 64}
    if ctype == "int8_t":
        ok = all(-128 <= v <= 127 for v in vals)
    else:
        ok = all(0 <= v < (1 << bits[ctype]) for v in vals)
    if not ok:
        sys.exit(f"gen_iq_grids: {name}: value out of range for {ctype}")


def lattice_image(kgrid, ncoord, bits, levels):
    out = []
    for g in kgrid:
        v = 0
        for k in range(ncoord):
            l = (g >> (bits * k)) & ((1 << bits) - 1)
            v |= (levels[l] & 0xFF) << (8 * k)
        out.append(v)
    return out


def cross_check(t):
    """Each dequantization grid row is its lattice row mapped level by level."""
    pairs = [
        ("iq2xxs_grid", "kgrid_2bit_256", 8, 2, [8, 25, 43]),
        ("iq2xs_grid", "kgrid_2bit_512", 8, 2, [8, 25, 43]),
        ("iq2s_grid", "kgrid_2bit_1024", 8, 2, [8, 25, 43]),
        ("iq1s_grid", "kgrid_1bit_2048", 8, 2, [-1, 0, 1]),
        ("iq3xxs_grid", "kgrid_256", 4, 3, [4, 12, 20, 28, 36, 44, 52, 62]),
        ("iq3s_grid", "kgrid_512", 4, 3, [1, 3, 5, 7, 9, 11, 13, 15]),
    ]
    for grid, lattice, ncoord, bits, levels in pairs:
        if any(((g >> (bits * k)) & ((1 << bits) - 1)) >= len(levels)
               for g in t[lattice] for k in range(ncoord)):
            sys.exit(f"gen_iq_grids: {lattice} has a level outside 0..{len(levels) - 1}")
        if lattice_image(t[lattice], ncoord, bits, levels) != t[grid]:
            sys.exit(f"gen_iq_grids: {grid} is not the image of {lattice}")
    for k in range(128):
        if t["ksigns_iq2xs"][k] != k | ((bin(k).count("1") & 1) << 7):
            sys.exit("gen_iq_grids: ksigns_iq2xs[%d] is not k | parity(k) << 7" % k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--common", required=True)
    ap.add_argument("--quants", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "formats", "iq_grids"))
    a = ap.parse_args()
    common = open(a.common, encoding="utf-8").read()
    quants = open(a.quants, encoding="utf-8").read()

    tables, lines = {}, {}
    for name, _, ctype, count, _ in COMMON_TABLES:
        tables[name], lines[name] = common_table(common, name)
    for name, _, ctype, count, _ in QUANTS_TABLES:
        tables[name], lines[name] = quants_table(quants, name)
    for name, _, ctype, count, _ in COMMON_TABLES + QUANTS_TABLES:
        if len(tables[name]) != count:
            sys.exit(f"gen_iq_grids: {name} has {len(tables[name])} entries, expected {count}")
        check_ranges(name, ctype, tables[name])
    cross_check(tables)

    os.makedirs(a.out, exist_ok=True)
    for (name, cname, ctype, count, desc), src in (
            [(t, PROVENANCE_COMMON) for t in COMMON_TABLES] + [(t, PROVENANCE_QUANTS) for t in QUANTS_TABLES]):
        text = (
            f"// {name}: {desc}\n"
            f"//\n"
            f"// Data from ggml (https://github.com/ggml-org/ggml, MIT License, Copyright (c)\n"
            f"// 2023-2024 The ggml authors): `{name}` in {src} (line {lines[name]}) at commit\n"
            f"// {GGML_COMMIT}. Generated by tools/gen_iq_grids.py; do not edit by hand.\n"
            f"#pragma once\n\n"
            f"#include <cstdint>\n\n"
            f"namespace bitsmith::iq_grids {{\n\n"
            f"inline constexpr {ctype} {cname}[{count}] = {{\n"
            f"{fmt_values(ctype, tables[name])}\n"
            f"}};\n\n"
            f"}}  // namespace bitsmith::iq_grids\n")
        with open(os.path.join(a.out, FILE_NAMES[name]), "w", encoding="utf-8") as f:
            f.write(text)
    print(f"gen_iq_grids: wrote {len(FILE_NAMES)} headers to {os.path.normpath(a.out)}")


if __name__ == "__main__":
    main()
