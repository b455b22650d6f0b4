// Fuzz target: the SIMD element codecs give the same bytes as the scalar oracle,
// and the scalar oracle's encode and decode are consistent.
//
// Input layout: byte 0 picks a length offset (misaligned starts), bytes 1..4 an
// f32 scale for the scaled kernels; the rest is read as f32 values (encoders)
// and as raw codes (decoders). Every format, both overflow modes, every kernel
// family of codecs/element.h. Any difference aborts, printing the kernel, the
// format and the index.
// decode∘encode properties (scalar oracle, formats of <= 16 bits):
//  * every non-NaN code c: Encode(Decode(c)) == c (each value has exactly one
//    code, -0 included), in both overflow modes for finite values;
//  * every input float x: c = Encode(x); if Decode(c) is not NaN,
//    Encode(Decode(c)) == c (encoding is idempotent: a decoded value is exact).
#include <cmath>    // std::isfinite
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

void Check(bool ok, const char* kernel, const ElementFormat& f, size_t i) {
  if (ok) return;
  std::fprintf(stderr, "element_fuzz: SIMD != scalar in %s, format %s, index %zu\n", kernel,
               std::string(f.name).c_str(), i);
  std::abort();
}

template <typename T>
void Compare(const std::vector<T>& a, const std::vector<T>& b, const char* kernel, const ElementFormat& f) {
  for (size_t i = 0; i < a.size(); ++i) Check(std::memcmp(&a[i], &b[i], sizeof(T)) == 0, kernel, f, i);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const size_t skip = data[0] % 4;
  float scale;
  std::memcpy(&scale, data + 1, 4);
  if (!std::isfinite(scale) || scale == 0.0f) scale = 1.0f;  // precondition of the scaled kernels
  const uint8_t* body = data + 5;
  const size_t body_size = size - 5;
  const size_t n = body_size >= skip * 4 ? (body_size - skip * 4) / 4 : 0;
  std::vector<float> x(n);
  std::memcpy(x.data(), body + 4 * skip, 4 * n);
  const uint8_t* codes = body;
  const size_t nc = body_size;
  std::vector<uint16_t> codes16(nc / 2);
  std::memcpy(codes16.data(), body, 2 * codes16.size());

  for (const ElementFormat& f : bitsmith::kElementFormats) {
    const size_t eb = bitsmith::ElementBytes(f.id);
    // Encode, both overflow modes.
    for (Overflow ov : {Overflow::kNonSaturating, Overflow::kSaturate}) {
      std::vector<uint8_t> ref(n * eb), simd(n * eb);
      bitsmith::EncodeF32(f.id, x.data(), ref.data(), n, ov, Impl::kReference);
      bitsmith::EncodeF32(f.id, x.data(), simd.data(), n, ov, Impl::kSimd);
      Compare(ref, simd, "EncodeF32", f);
      if (eb == 1) {
        bitsmith::EncodeDividedF32(f.id, x.data(), scale, ref.data(), n, ov, Impl::kReference);
        bitsmith::EncodeDividedF32(f.id, x.data(), scale, simd.data(), n, ov, Impl::kSimd);
        Compare(ref, simd, "EncodeDividedF32", f);
      }
    }
    // Decode of raw codes (random bytes, or random uint16 for f16/bf16).
    const void* src = eb == 1 ? static_cast<const void*>(codes) : static_cast<const void*>(codes16.data());
    const size_t m = eb == 1 ? nc : eb == 2 ? codes16.size() : n;
    if (eb == 4) src = x.data();
    std::vector<float> fr(m), fs(m);
    bitsmith::DecodeToF32(f.id, src, fr.data(), m, Impl::kReference);
    bitsmith::DecodeToF32(f.id, src, fs.data(), m, Impl::kSimd);
    Compare(fr, fs, "DecodeToF32", f);
    std::vector<uint16_t> br(m), bs(m);
    bitsmith::DecodeToBF16(f.id, src, br.data(), m, Impl::kReference);
    bitsmith::DecodeToBF16(f.id, src, bs.data(), m, Impl::kSimd);
    Compare(br, bs, "DecodeToBF16", f);
    if (eb == 1) {
      bitsmith::DecodeScaledToBF16(f.id, codes, scale, br.data(), m, Impl::kReference);
      bitsmith::DecodeScaledToBF16(f.id, codes, scale, bs.data(), m, Impl::kSimd);
      Compare(br, bs, "DecodeScaledToBF16", f);
      bitsmith::DecodeScaledToF16(f.id, codes, scale, br.data(), m, Impl::kReference);
      bitsmith::DecodeScaledToF16(f.id, codes, scale, bs.data(), m, Impl::kSimd);
      Compare(br, bs, "DecodeScaledToF16", f);
      bitsmith::DecodeScaledToF32(f.id, codes, scale, fr.data(), m, Impl::kReference);
      bitsmith::DecodeScaledToF32(f.id, codes, scale, fs.data(), m, Impl::kSimd);
      Compare(fr, fs, "DecodeScaledToF32", f);
    }
  }
  // decode∘encode on the oracle (at most 512 codes and values per input).
  for (const ElementFormat& f : bitsmith::kElementFormats) {
    if (f.bits > 16) continue;
    for (size_t i = 0; i + 1 < nc && i < 1024; i += 2) {
      const uint32_t c = (static_cast<uint32_t>(codes[i]) | static_cast<uint32_t>(codes[i + 1]) << 8) & f.code_mask();
      const float v = bitsmith::DecodeToF32Ref(f.id, c);
      if (std::isnan(v)) continue;
      for (Overflow ov : {Overflow::kNonSaturating, Overflow::kSaturate})
        if (ov == Overflow::kNonSaturating || std::isfinite(v))  // SAT maps +-inf to +-max
          Check(bitsmith::EncodeF32Ref(f.id, v, ov) == c, "Encode(Decode(code)) == code", f, c);
    }
    for (size_t i = 0; i < n && i < 512; ++i)
      for (Overflow ov : {Overflow::kNonSaturating, Overflow::kSaturate}) {
        const uint32_t c = bitsmith::EncodeF32Ref(f.id, x[i], ov);
        const float v = bitsmith::DecodeToF32Ref(f.id, c);
        if (!std::isnan(v)) Check(bitsmith::EncodeF32Ref(f.id, v, ov) == c, "Encode idempotent", f, i);
      }
  }
  const float a = bitsmith::MaxAbs(x.data(), n, Impl::kReference);
  const float b = bitsmith::MaxAbs(x.data(), n, Impl::kSimd);
  Check(std::memcmp(&a, &b, 4) == 0, "MaxAbs", bitsmith::GetElementFormat(ElementFormatId::kF32), 0);
  return 0;
}
