// NameIndex: name -> position in a list of TensorInfos, for lists of ~10^5
// tensors (DeepSeek-V3: 92 k) looked up by name many times.
//
// Open addressing with linear probing over a power-of-two table kept at most
// half full. Each 64-bit slot holds (32-bit hash tag << 32) | (index + 1), 0
// when empty; a lookup compares tags, then the name in the list. Compared with
// std::unordered_map<std::string_view, size_t> it allocates once (no node per
// name), a lookup reads one cache line of slots instead of a node chain, and
// it stores indices rather than views, so it stays valid when the list is
// copied or moved -- not when the list changes (build it again).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "convert/tensor_info.h"

namespace bitsmith {

class NameIndex {
 public:
  // Indexes `tensors`. Returns the position of the first tensor whose name an
  // earlier tensor already has (the index keeps the earlier one), or -1.
  long Build(std::span<const TensorInfo> tensors);
  // Position of the tensor named `name` in the list given to Build, or -1.
  // `tensors` must be that list (or a copy of it).
  long Find(std::span<const TensorInfo> tensors, std::string_view name) const;
  void clear() { slots_.clear(); }

 private:
  std::vector<uint64_t> slots_;  // empty: not built, or too many tensors (Find scans)
};

// Position of the first name that an earlier name repeats, or -1 (the same
// table, built once and dropped: no sort, no node per name).
long FirstRepeatedName(std::span<const std::string_view> names);

}  // namespace bitsmith
