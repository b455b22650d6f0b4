#include "convert/name_index.h"

#include <functional>
#include <unordered_set>

namespace bitsmith {
namespace {

uint64_t NameHash(std::string_view s) { return std::hash<std::string_view>{}(s); }
constexpr uint64_t kIndexMask = 0xffffffffu;

// Fills `slots` with names 0..count-1 (name_at(i)) and returns the first
// position whose name an earlier one has, or -1. Counts of 2^32 - 1 and more
// leave `slots` empty (a hash set finds the repeat instead).
template <typename NameAt>
long BuildSlots(std::vector<uint64_t>& slots, size_t count, NameAt name_at) {
  slots.clear();
  if (count == 0 || count >= kIndexMask) {
    std::unordered_set<std::string_view> seen;
    for (size_t i = 0; i < count; ++i)
      if (!seen.insert(name_at(i)).second) return static_cast<long>(i);
    return -1;
  }
  // 1. A power of two at least twice the count: probe runs stay short.
  size_t n = 16;
  while (n < 2 * count) n *= 2;
  slots.assign(n, 0);
  const uint64_t mask = n - 1;
  // 2. Insert in list order; a repeated name keeps the earlier position.
  long dup = -1;
  for (size_t i = 0; i < count; ++i) {
    const std::string_view name = name_at(i);
    const uint64_t h = NameHash(name), tag = h >> 32;
    for (uint64_t k = h & mask;; k = (k + 1) & mask) {
      const uint64_t slot = slots[k];
      if (slot == 0) {
        slots[k] = (tag << 32) | (i + 1);
        break;
      }
      if ((slot >> 32) == tag && name_at((slot & kIndexMask) - 1) == name) {
        if (dup < 0) dup = static_cast<long>(i);
        break;
      }
    }
  }
  return dup;
}

}  // namespace

long NameIndex::Build(std::span<const TensorInfo> tensors) {
  return BuildSlots(slots_, tensors.size(), [&](size_t i) -> std::string_view { return tensors[i].name; });
}

long FirstRepeatedName(std::span<const std::string_view> names) {
  std::vector<uint64_t> slots;
  return BuildSlots(slots, names.size(), [&](size_t i) { return names[i]; });
}

long NameIndex::Find(std::span<const TensorInfo> tensors, std::string_view name) const {
  if (slots_.empty()) {
    for (size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name == name) return static_cast<long>(i);
    return -1;
  }
  const uint64_t h = NameHash(name), tag = h >> 32, mask = slots_.size() - 1;
  for (uint64_t k = h & mask;; k = (k + 1) & mask) {
    const uint64_t slot = slots_[k];
    if (slot == 0) return -1;
    const uint64_t i = (slot & kIndexMask) - 1;
    if ((slot >> 32) == tag && i < tensors.size() && tensors[i].name == name) return static_cast<long>(i);
  }
}

}  // namespace bitsmith
