// ParallelFor: split [0, n) into contiguous ranges on up to `threads` threads.
//
// Ranges are multiples of `grain` (except the last), so a kernel whose unit is a
// block or a row gets whole units. Every element is computed by exactly one
// call, independently of the others, so results never depend on the thread
// count. threads <= 0 means all hardware threads. Spawns threads per call
// (tens of microseconds): call it on large ranges (a row chunk, a tensor), not
// per block.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace bitsmith {

inline int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

template <typename Fn>
void ParallelFor(size_t n, size_t grain, int threads, Fn&& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t units = (n + grain - 1) / grain;
  const size_t t = std::min<size_t>(static_cast<size_t>(ResolveThreads(threads)), units);
  if (t <= 1) {
    fn(size_t{0}, n);
    return;
  }
  const size_t per = (units + t - 1) / t;  // units per thread
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(t);
  pool.reserve(t - 1);
  auto work = [&](size_t i) {
    const size_t begin = std::min(n, i * per * grain);
    const size_t end = std::min(n, (i + 1) * per * grain);
    if (begin >= end) return;
    try {
      fn(begin, end);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  for (size_t i = 1; i < t; ++i) pool.emplace_back(work, i);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace bitsmith
