#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace dml {

/// Reuses float buffers that nobody references any more, so a step
/// allocates (and page-faults) nothing once the pool is warm. Buffers may be
/// released on other threads; the pool itself belongs to one.
class tensor_pool {
public:
  /// Keeps at most `capacity` buffers for reuse.
  explicit tensor_pool(size_t capacity = 8) : capacity_(capacity) {
    // nop
  }

  /// Returns a buffer of `n` floats (contents unspecified) that nobody else
  /// references.
  std::shared_ptr<std::vector<float>> acquire(size_t n) {
    for (auto& b : bufs_) {
      if (b.use_count() == 1) {
        // Pairs with the release of the last other owner's reference.
        std::atomic_thread_fence(std::memory_order_acquire);
        b->resize(n);
        return b;
      }
    }
    auto b = std::make_shared<std::vector<float>>(n);
    if (bufs_.size() < capacity_)
      bufs_.push_back(b);
    return b;
  }

private:
  size_t capacity_;
  std::vector<std::shared_ptr<std::vector<float>>> bufs_;
};

} // namespace dml
