// Small helpers the codec tests use to print what failed: bytes as hex, floats as
// hex-floats (exact, so a failing input can be pasted back), float bit patterns.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace bitsmith::test {

// "0a1bff...": two lower-case hex digits per byte.
inline std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
  return s;
}

// "0x1.8p+0,-0x0p+0,nan": every value exactly, comma-separated.
inline std::string Floats(const float* x, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += fmt::format("{}{:a}", i ? "," : "", x[i]);
  return s;
}

constexpr uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }
constexpr float FromBits(uint32_t u) { return std::bit_cast<float>(u); }

}  // namespace bitsmith::test
