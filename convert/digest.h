// The digest of converted bytes that a directory conversion's manifest records
// (convert/manifest.h): fast enough to run on every byte written (~20 GB/s with
// AVX-512 here, against ~6 GB/s for the scalar HashBytes it replaces).
//
// Definition (DigestBytesRef is the reference; the SIMD path equals it on
// every target): the input is read as 64-byte stripes of eight little-endian
// u64 words w[0..7], the last stripe zero-padded. Eight accumulators start at
// acc[l] = seed ^ kInit[l]; per stripe, for each lane l,
//     k = w[l] ^ kKey[l];  acc[l] += w[l] + lo32(k) * hi32(k)   (mod 2^64)
// -- the 32x32->64 multiply-accumulate of XXH3 (github.com/Cyan4973/xxHash,
// XXH3_accumulate_512), which SIMD units do natively -- and after every 16th
// full stripe each accumulator is scrambled:
//     acc[l] = (acc[l] ^ (acc[l] >> 47) ^ kKey[l]) * 0x9E3779B1.
// The result folds the accumulators and the byte length through a
// splitmix64-style finaliser. Not cryptographic: it tells a shard written by
// this conversion from a different or damaged one.
#pragma once

#include <cstdint>
#include <span>

namespace bitsmith {

uint64_t DigestBytes(std::span<const uint8_t> bytes, uint64_t seed);
// The scalar reference (tests compare every SIMD target with it).
uint64_t DigestBytesRef(std::span<const uint8_t> bytes, uint64_t seed);

}  // namespace bitsmith
