// The manifest digest (convert/digest.h): scalar reference + Highway kernel.
// Layout after hwy/examples/skeleton.cc.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "convert/digest.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#ifndef BITSMITH_CONVERT_DIGEST_CONSTANTS_
#define BITSMITH_CONVERT_DIGEST_CONSTANTS_
namespace bitsmith::digest {
// Per-lane keys and initial values (XXH3's default secret words and primes;
// any fixed odd-looking constants would do).
alignas(64) inline constexpr uint64_t kKey[8] = {
    0xbe4ba423396cfeb8ull, 0x1cad21f72c81017cull, 0xdb979083e96dd4deull, 0x1f67b3b7a4a44072ull,
    0x78e5c0cc4ee679cbull, 0x2172ffcc7dd05a82ull, 0x8e2443f7744608b8ull, 0x4c263a81e69035e0ull};
alignas(64) inline constexpr uint64_t kInit[8] = {
    0xC2B2AE3Dull,          0x9E3779B185EBCA87ull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull,
    0x85EBCA77C2B2AE63ull, 0x85EBCA77ull,          0x27D4EB2F165667C5ull, 0x9E3779B1ull};
inline constexpr uint64_t kPrime32 = 0x9E3779B1ull;
inline constexpr size_t kStripe = 64;
inline constexpr size_t kStripesPerScramble = 16;
}  // namespace bitsmith::digest
#endif

HWY_BEFORE_NAMESPACE();
namespace bitsmith {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Accumulates `stripes` whole stripes into acc[8]; scrambles after every
// kStripesPerScramble-th stripe counted from `count` (stripes done before).
HWY_NOINLINE void DigestStripes(const uint8_t* HWY_RESTRICT p, size_t stripes, uint64_t* HWY_RESTRICT acc,
                                uint64_t count) {
  const hn::CappedTag<uint64_t, 8> d;
#if HWY_TARGET == HWY_SCALAR
  // One u64 lane; BitCast to a one-lane u32 keeps the low half, which is
  // what MulEven reads on the other targets.
  const hn::Rebind<uint32_t, decltype(d)> d32;
#else
  const hn::Repartition<uint32_t, decltype(d)> d32;
#endif
  const size_t N = hn::Lanes(d);
  const auto prime = hn::Set(d32, static_cast<uint32_t>(digest::kPrime32));
  for (size_t s = 0; s < stripes; ++s, p += digest::kStripe) {
    for (size_t l = 0; l < 8; l += N) {
      // 1. w little-endian: load the bytes (x86 is little-endian; Highway
      //    lanes are memory order).
      const auto w = hn::LoadU(d, reinterpret_cast<const uint64_t*>(p + 8 * l));
      const auto k = hn::Xor(w, hn::Load(d, digest::kKey + l));
      // 2. acc += w + lo32(k) * hi32(k).
      const auto prod = hn::MulEven(hn::BitCast(d32, k), hn::BitCast(d32, hn::ShiftRight<32>(k)));
      auto a = hn::Add(hn::LoadU(d, acc + l), hn::Add(w, prod));
      if ((count + s + 1) % digest::kStripesPerScramble == 0) {
        // 3. Scramble: (a ^ a >> 47 ^ key) * prime32 (mod 2^64) =
        //    lo32 * prime + (hi32 * prime) << 32.
        a = hn::Xor(hn::Xor(a, hn::ShiftRight<47>(a)), hn::Load(d, digest::kKey + l));
        const auto lo = hn::MulEven(hn::BitCast(d32, a), prime);
        const auto hi = hn::MulEven(hn::BitCast(d32, hn::ShiftRight<32>(a)), prime);
        a = hn::Add(lo, hn::ShiftLeft<32>(hi));
      }
      hn::StoreU(a, d, acc + l);
    }
  }
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace bitsmith
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "convert/digest.h"

namespace bitsmith {
namespace {

uint64_t Load64(const uint8_t* p) {
  uint64_t w = 0;
  for (int i = 7; i >= 0; --i) w = (w << 8) | p[i];  // little-endian whatever the host
  return w;
}

void StripesRef(const uint8_t* p, size_t stripes, uint64_t* acc, uint64_t count) {
  using namespace digest;
  for (size_t s = 0; s < stripes; ++s, p += kStripe) {
    for (int l = 0; l < 8; ++l) {
      const uint64_t w = Load64(p + 8 * l);
      const uint64_t k = w ^ kKey[l];
      acc[l] += w + (k & 0xFFFFFFFFu) * (k >> 32);
      if ((count + s + 1) % kStripesPerScramble == 0) acc[l] = (acc[l] ^ (acc[l] >> 47) ^ kKey[l]) * kPrime32;
    }
  }
}

uint64_t Finish(const uint64_t* acc, uint64_t len, uint64_t seed) {
  uint64_t h = seed ^ (len * 0x9E3779B185EBCA87ull);
  for (int l = 0; l < 8; ++l) {
    uint64_t a = acc[l];
    a ^= a >> 33;
    a *= 0xC2B2AE3D27D4EB4Full;
    h = ((h ^ a) << 27 | (h ^ a) >> 37) * 0x9E3779B185EBCA87ull + 0x165667B19E3779F9ull;
  }
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 31;
  return h;
}

template <typename Stripes>
uint64_t Digest(std::span<const uint8_t> bytes, uint64_t seed, Stripes&& stripes) {
  alignas(64) uint64_t acc[8];
  for (int l = 0; l < 8; ++l) acc[l] = seed ^ digest::kInit[l];
  const size_t full = bytes.size() / digest::kStripe;
  if (full) stripes(bytes.data(), full, acc, 0);
  const size_t rest = bytes.size() - full * digest::kStripe;
  if (rest) {
    alignas(64) uint8_t last[digest::kStripe] = {};
    std::memcpy(last, bytes.data() + full * digest::kStripe, rest);
    stripes(last, 1, acc, full);
  }
  return Finish(acc, bytes.size(), seed);
}

}  // namespace

HWY_EXPORT(DigestStripes);

uint64_t DigestBytesRef(std::span<const uint8_t> bytes, uint64_t seed) { return Digest(bytes, seed, StripesRef); }

uint64_t DigestBytes(std::span<const uint8_t> bytes, uint64_t seed) {
  return Digest(bytes, seed, [](const uint8_t* p, size_t n, uint64_t* acc, uint64_t count) {
    HWY_DYNAMIC_DISPATCH(DigestStripes)(p, n, acc, count);
  });
}

}  // namespace bitsmith
#endif  // HWY_ONCE
