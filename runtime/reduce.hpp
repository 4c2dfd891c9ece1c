#pragma once

#include <cstdint>
#include <vector>

#include "runtime/training.hpp"

namespace dml {

/// Collects the gradient sums of a known set of ranks for one step and adds
/// them up in rank order, whatever order they arrive in. Both the master and
/// the aggregators reduce with it, so a result never depends on timing.
class ordered_reduction {
public:
  /// Starts collecting for `ranks` (any order; they are sorted).
  void reset(std::vector<int32_t> ranks);

  /// Stores `x` for `rank`. Returns false, storing nothing, for a rank not
  /// expected or already stored.
  bool add(int32_t rank, gradient_sum x);

  /// Returns whether every expected rank has been stored.
  bool complete() const noexcept {
    return stored_ == ranks_.size();
  }

  /// Returns the expected ranks, sorted.
  const std::vector<int32_t>& ranks() const noexcept {
    return ranks_;
  }

  /// Returns the ranks not stored yet.
  std::vector<int32_t> missing() const;

  /// Returns the sum of all stored parts in rank order. Requires
  /// `complete()`.
  gradient_sum take();

private:
  std::vector<int32_t> ranks_;
  std::vector<gradient_sum> parts_;
  std::vector<bool> have_;
  size_t stored_ = 0;
};

} // namespace dml
