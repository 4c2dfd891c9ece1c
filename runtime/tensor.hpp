#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace dml {

/// Floats held by reference: where they are, how many, and whatever keeps
/// them alive (a buffer of the pool, or the shared memory segment of a
/// tensor link). Immutable once handed on; copies share the floats. (No
/// `end()`: CAF would take it for a container and inspect it element-wise.)
class tensor {
public:
  tensor() = default;

  explicit tensor(std::vector<float> xs)
    : tensor(std::make_shared<const std::vector<float>>(std::move(xs))) {
    // nop
  }

  explicit tensor(std::shared_ptr<const std::vector<float>> xs)
    : ptr_(xs ? xs->data() : nullptr), size_(xs ? xs->size() : 0) {
    owner_ = std::move(xs);
  }

  /// Refers to `size` floats at `ptr`, kept alive by `owner`.
  tensor(std::shared_ptr<const void> owner, const float* ptr, size_t size)
    : owner_(std::move(owner)), ptr_(ptr), size_(size) {
    // nop
  }

  /// Returns whether it refers to any buffer at all (an empty one counts).
  explicit operator bool() const noexcept {
    return owner_ != nullptr;
  }

  size_t size() const noexcept {
    return size_;
  }

  const float* begin() const noexcept {
    return ptr_;
  }

  /// Returns what keeps the floats alive.
  const std::shared_ptr<const void>& owner() const noexcept {
    return owner_;
  }

private:
  std::shared_ptr<const void> owner_;
  const float* ptr_ = nullptr;
  size_t size_ = 0;
};

/// Returns a copy of the floats of `x`.
inline std::vector<float> to_vector(const tensor& x) {
  return {x.begin(), x.begin() + x.size()};
}

} // namespace dml
