#include "convert/name_index.h"

#include <functional>
#include <unordered_set>

namespace bitsmith {
namespace {

uint64_t NameHash(std::string_view s) { return std::hash<std::string_view>{}(s); }
constexpr uint64_t kIndexMask = 0xffffffffu;

}  // namespace

long NameIndex::Build(std::span<const TensorInfo> tensors) {
  slots_.clear();
  if (tensors.empty() || tensors.size() >= kIndexMask) {
    // Nothing to index, or more tensors than 32-bit slots hold (Find then
    // scans); the first repeated name all the same.
    std::unordered_set<std::string_view> seen;
    for (size_t i = 0; i < tensors.size(); ++i)
      if (!seen.insert(tensors[i].name).second) return static_cast<long>(i);
    return -1;
  }
  // 1. A power of two at least twice the count: probe runs stay short.
  size_t n = 16;
  while (n < 2 * tensors.size()) n *= 2;
  slots_.assign(n, 0);
  const uint64_t mask = n - 1;
  // 2. Insert in list order; a repeated name keeps the earlier tensor.
  long dup = -1;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t h = NameHash(tensors[i].name), tag = h >> 32;
    for (uint64_t k = h & mask;; k = (k + 1) & mask) {
      const uint64_t slot = slots_[k];
      if (slot == 0) {
        slots_[k] = (tag << 32) | (i + 1);
        break;
      }
      if ((slot >> 32) == tag && tensors[(slot & kIndexMask) - 1].name == tensors[i].name) {
        if (dup < 0) dup = static_cast<long>(i);
        break;
      }
    }
  }
  return dup;
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
