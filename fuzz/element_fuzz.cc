// Fuzz target: the SIMD element codecs give the same bytes as the scalar oracle,
// and the scalar oracle's encode and decode are consistent.
//
// One input exercises ONE element format on at most kMaxElems values and codes,
// on one Highway target (the first version ran every format on every input, up
// to 16k values each: ~1 exec/s under ASan; docs/RELIABILITY.md has the figures).
// Input layout (every choice is taken modulo its range: every input is valid):
//   byte 0     the format (index into kElementFormats)
//   byte 1     bits 0-1: start offset (0..3 elements) of every array, so SIMD
//              kernels see misaligned starts; bits 4-7: which compiled Highway
//              target runs the SIMD path (hwy::SupportedAndGeneratedTargets)
//   bytes 2-5  an f32 scale for the scaled kernels (0 or non-finite -> 1, their
//              precondition)
//   rest       the payload, read as f32 values (encoders) and as raw codes
//              (decoders: one byte each, or little-endian u16 for f16/bf16, the
//              f32 values for f32); at most kMaxElems of each.
// Checks (any difference aborts, printing the kernel, the format, the index and
// the input value or code):
//  * SIMD == scalar: EncodeF32 (both overflow modes), EncodeDividedF32 (1-byte
//    formats, both modes), DecodeToF32, DecodeToBF16, DecodeScaledTo{BF16,F16,F32}
//    (1-byte formats), the typed kernels of the format (EncodeF32ToE4M3FN, ...),
//    MaxAbs;
//  * decode∘encode on the oracle, formats of <= 16 bits:
//    - every non-NaN code c of the payload: Encode(Decode(c)) == c (each value has
//      exactly one code, -0 included), in both overflow modes for finite values;
//    - every input float x: c = Encode(x); if Decode(c) is not NaN,
//      Encode(Decode(c)) == c (encoding is idempotent: a decoded value is exact).
// Seeds: fuzz/corpus/element/<payload>_<format>.bin, the 6 hand-made payloads of
// the first version (codes, grid, specials, ties, weights, wide) once per format,
// header re-laid as above (the old byte 0 gave the offset, bytes 1-4 the scale).
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <algorithm>  // std::min
#include <cmath>      // std::isfinite, std::isnan
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "codecs/element.h"
#include "formats/element_format.h"

namespace {

using bitsmith::ElementFormat;
using bitsmith::ElementFormatId;
using bitsmith::Impl;
using bitsmith::Overflow;

// Elements per input: every SIMD tail and many full vectors of the widest target
// (AVX-512: 16 f32 lanes, 64 one-byte codes), small enough to stay cheap (per
// CPU second under ASan+UBSan, same seeds: 4096 -> 110 execs, 1024 -> 190,
// 256 -> 540, with entropic off).
constexpr size_t kMaxElems = 1024;

[[noreturn]] void Fail(const char* kernel, const ElementFormat& f, size_t i, const std::string& detail) {
  std::fprintf(stderr, "element_fuzz: %s, format %s, index %zu: %s\n", kernel, std::string(f.name).c_str(), i,
               detail.c_str());
  std::abort();
}

std::string Bits(const void* p, size_t bytes) {
  uint32_t u = 0;
  std::memcpy(&u, p, bytes);
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%0*x", static_cast<int>(2 * bytes), u);
  return buf;
}

// Element-wise comparison of n values of `bytes` bytes (scalar first, SIMD second);
// `in` / `in_bytes` is the input array, printed for the first difference.
void Compare(const void* a, const void* b, size_t n, size_t bytes, const void* in, size_t in_bytes,
             const char* kernel, const ElementFormat& f) {
  if (std::memcmp(a, b, n * bytes) == 0) return;
  const auto* pa = static_cast<const uint8_t*>(a);
  const auto* pb = static_cast<const uint8_t*>(b);
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(pa + i * bytes, pb + i * bytes, bytes) != 0)
      Fail(kernel, f, i,
           "input " + Bits(static_cast<const uint8_t*>(in) + i * in_bytes, in_bytes) + ", scalar " +
               Bits(pa + i * bytes, bytes) + ", SIMD " + Bits(pb + i * bytes, bytes));
}

// A buffer whose usable part starts `off` elements in (misaligned starts); one
// spare element so that p() is never null (memcpy of 0 bytes from/to null is UB).
template <typename T>
struct Buf {
  std::vector<T> v;
  size_t off;
  Buf(size_t n, size_t o, T fill) : v(n + o + 1, fill), off(o) {}
  T* p() { return v.data() + off; }
};

}  // namespace

// libFuzzer's default "entropic" schedule keeps per-feature frequencies for every
// input; with the ~130k features of the element codecs (every format x kernel x
// Highway target instantiated) that bookkeeping took 86% of the CPU (perf,
// InputCorpus::UpdateFeatureFrequency): 19 execs per CPU second instead of 110.
// So this target turns it off unless the command line sets -entropic itself
// (libFuzzer parses argv after LLVMFuzzerInitialize).
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  for (int i = 1; i < *argc; ++i)
    if (std::strncmp((*argv)[i], "-entropic=", 10) == 0) return 0;
  static std::vector<char*> args;
  static char entropic_off[] = "-entropic=0";
  args.assign(*argv, *argv + *argc);
  args.push_back(entropic_off);
  args.push_back(nullptr);
  *argv = args.data();
  *argc += 1;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 6) return 0;
  const ElementFormat& f = bitsmith::kElementFormats[data[0] % bitsmith::kElementFormats.size()];
  const size_t off = data[1] & 3;
  static const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  const int64_t target = targets[(data[1] >> 4) % targets.size()];
  float scale;
  std::memcpy(&scale, data + 2, 4);
  if (!std::isfinite(scale) || scale == 0.0f) scale = 1.0f;  // precondition of the scaled kernels
  const uint8_t* body = data + 6;
  const size_t body_size = size - 6;
  const size_t eb = bitsmith::ElementBytes(f.id);

  // 1. Inputs: n f32 values, m codes of the format's storage size.
  const size_t n = std::min(body_size / 4, kMaxElems);
  Buf<float> x(n, off, 0.f);
  std::memcpy(x.p(), body, 4 * n);
  const size_t m = std::min(body_size / eb, kMaxElems);
  Buf<uint8_t> codes(m * eb, off * eb, 0);
  std::memcpy(codes.p(), body, m * eb);

  hwy::SetSupportedTargetsForTest(target);
  // 2. Encoders, both overflow modes.
  for (Overflow ov : {Overflow::kNonSaturating, Overflow::kSaturate}) {
    Buf<uint8_t> ref(n * eb, off * eb, 0xA5), simd(n * eb, off * eb, 0x5A);
    bitsmith::EncodeF32(f.id, x.p(), ref.p(), n, ov, Impl::kReference);
    bitsmith::EncodeF32(f.id, x.p(), simd.p(), n, ov, Impl::kSimd);
    Compare(ref.p(), simd.p(), n, eb, x.p(), 4, "EncodeF32", f);
    // The typed kernels of this format (SIMD path) against the oracle's bytes.
    if (f.id == ElementFormatId::kE4M3FN || f.id == ElementFormatId::kE5M2 || f.id == ElementFormatId::kBF16 ||
        f.id == ElementFormatId::kF16) {
      Buf<uint8_t> typed(n * eb, off * eb, 0x3C);
      if (f.id == ElementFormatId::kE4M3FN) bitsmith::EncodeF32ToE4M3FN(x.p(), typed.p(), n, ov);
      if (f.id == ElementFormatId::kE5M2) bitsmith::EncodeF32ToE5M2(x.p(), typed.p(), n, ov);
      if (eb == 2) {
        Buf<uint16_t> t16(n, off, 0x3C3C);
        if (f.id == ElementFormatId::kBF16) bitsmith::EncodeF32ToBF16(x.p(), t16.p(), n, ov);
        if (f.id == ElementFormatId::kF16) bitsmith::EncodeF32ToF16(x.p(), t16.p(), n, ov);
        std::memcpy(typed.p(), t16.p(), 2 * n);
      }
      Compare(ref.p(), typed.p(), n, eb, x.p(), 4, "typed encoder", f);
    }
    if (eb == 1) {
      bitsmith::EncodeDividedF32(f.id, x.p(), scale, ref.p(), n, ov, Impl::kReference);
      bitsmith::EncodeDividedF32(f.id, x.p(), scale, simd.p(), n, ov, Impl::kSimd);
      Compare(ref.p(), simd.p(), n, 1, x.p(), 4, "EncodeDividedF32", f);
    }
  }

  // 3. Decoders of raw codes.
  {
    Buf<float> fr(m, off, 1.f), fs(m, off, 2.f);
    bitsmith::DecodeToF32(f.id, codes.p(), fr.p(), m, Impl::kReference);
    bitsmith::DecodeToF32(f.id, codes.p(), fs.p(), m, Impl::kSimd);
    Compare(fr.p(), fs.p(), m, 4, codes.p(), eb, "DecodeToF32", f);
    Buf<uint16_t> br(m, off, 1), bs(m, off, 2);
    bitsmith::DecodeToBF16(f.id, codes.p(), br.p(), m, Impl::kReference);
    bitsmith::DecodeToBF16(f.id, codes.p(), bs.p(), m, Impl::kSimd);
    Compare(br.p(), bs.p(), m, 2, codes.p(), eb, "DecodeToBF16", f);
    if (eb == 1) {
      bitsmith::DecodeScaledToBF16(f.id, codes.p(), scale, br.p(), m, Impl::kReference);
      bitsmith::DecodeScaledToBF16(f.id, codes.p(), scale, bs.p(), m, Impl::kSimd);
      Compare(br.p(), bs.p(), m, 2, codes.p(), 1, "DecodeScaledToBF16", f);
      bitsmith::DecodeScaledToF16(f.id, codes.p(), scale, br.p(), m, Impl::kReference);
      bitsmith::DecodeScaledToF16(f.id, codes.p(), scale, bs.p(), m, Impl::kSimd);
      Compare(br.p(), bs.p(), m, 2, codes.p(), 1, "DecodeScaledToF16", f);
      bitsmith::DecodeScaledToF32(f.id, codes.p(), scale, fr.p(), m, Impl::kReference);
      bitsmith::DecodeScaledToF32(f.id, codes.p(), scale, fs.p(), m, Impl::kSimd);
      Compare(fr.p(), fs.p(), m, 4, codes.p(), 1, "DecodeScaledToF32", f);
    }
    // The typed decoders (SIMD path) against the oracle's values.
    const uint8_t* c8 = codes.p();
    const auto* c16 = reinterpret_cast<const uint16_t*>(codes.p());
    if (f.id == ElementFormatId::kE4M3FN) {
      bitsmith::DecodeE4M3FNToF32(c8, fs.p(), m);
      bitsmith::DecodeE4M3FNToBF16(c8, bs.p(), m);
    } else if (f.id == ElementFormatId::kE5M2) {
      bitsmith::DecodeE5M2ToF32(c8, fs.p(), m);
      bitsmith::DecodeE5M2ToBF16(c8, bs.p(), m);
    } else if (f.id == ElementFormatId::kBF16) {
      bitsmith::DecodeBF16ToF32(c16, fs.p(), m);
    } else if (f.id == ElementFormatId::kF16) {
      bitsmith::DecodeF16ToF32(c16, fs.p(), m);
    }
    if (f.id == ElementFormatId::kE4M3FN || f.id == ElementFormatId::kE5M2 || f.id == ElementFormatId::kBF16 ||
        f.id == ElementFormatId::kF16) {
      bitsmith::DecodeToF32(f.id, codes.p(), fr.p(), m, Impl::kReference);
      Compare(fr.p(), fs.p(), m, 4, codes.p(), eb, "typed decoder to f32", f);
      if (eb == 1) {
        bitsmith::DecodeToBF16(f.id, codes.p(), br.p(), m, Impl::kReference);
        Compare(br.p(), bs.p(), m, 2, codes.p(), eb, "typed decoder to bf16", f);
      }
    }
  }

  // 4. MaxAbs (format-independent; on the same values).
  const float a = bitsmith::MaxAbs(x.p(), n, Impl::kReference);
  const float b = bitsmith::MaxAbs(x.p(), n, Impl::kSimd);
  if (std::memcmp(&a, &b, 4) != 0) Fail("MaxAbs", f, 0, "scalar " + Bits(&a, 4) + ", SIMD " + Bits(&b, 4));
  hwy::SetSupportedTargetsForTest(0);

  // 5. decode∘encode on the oracle (formats of <= 16 bits).
  if (f.bits > 16) return 0;
  for (size_t i = 0; i < m; ++i) {
    uint32_t c = 0;
    std::memcpy(&c, codes.p() + i * eb, eb);
    c &= f.code_mask();
    const float v = bitsmith::DecodeToF32Ref(f.id, c);
    if (std::isnan(v)) continue;
    for (Overflow ov : {Overflow::kNonSaturating, Overflow::kSaturate})
      if (ov == Overflow::kNonSaturating || std::isfinite(v))  // SAT maps +-inf to +-max
        if (bitsmith::EncodeF32Ref(f.id, v, ov) != c) Fail("Encode(Decode(code)) == code", f, i, Bits(&c, 4));
  }
  for (size_t i = 0; i < n; ++i)
    for (Overflow ov : {Overflow::kNonSaturating, Overflow::kSaturate}) {
      const uint32_t c = bitsmith::EncodeF32Ref(f.id, x.p()[i], ov);
      const float v = bitsmith::DecodeToF32Ref(f.id, c);
      if (!std::isnan(v) && bitsmith::EncodeF32Ref(f.id, v, ov) != c)
        Fail("Encode idempotent", f, i, "input " + Bits(x.p() + i, 4) + ", code " + Bits(&c, 4));
    }
  return 0;
}
