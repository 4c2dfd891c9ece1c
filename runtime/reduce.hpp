#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/tensor.hpp"
#include "runtime/training.hpp"

namespace dml {

/// One rank's part of a step: a gradient sum over `count` rows, held by
/// reference (in one process it is the very buffer the worker sent).
struct gradient_part {
  uint64_t count = 0;
  double loss = 0;
  tensor values;
};

/// Collects the gradient sums of a known set of ranks for one step and adds
/// them up in rank order, whatever order they arrive in. Both the master and
/// the aggregators reduce with it, so a result never depends on timing.
class ordered_reduction {
public:
  /// Starts collecting for `ranks` (any order; they are sorted).
  void reset(std::vector<int32_t> ranks);

  /// Stores `x` for `rank`. Returns false, storing nothing, for a rank not
  /// expected or already stored.
  bool add(int32_t rank, gradient_part x);

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

  /// Writes the sum of all stored parts, added in rank order, to `out`
  /// (reusing its buffer) and drops the parts. Requires `complete()`.
  void take(gradient_sum& out);

  /// Returns the stored parts in rank order (valid until `clear`), for a
  /// consumer that adds them itself (`apply_step_fused`). Requires
  /// `complete()`.
  const std::vector<gradient_part>& parts() const noexcept {
    return parts_;
  }

  /// Drops the parts.
  void clear();

private:
  std::vector<int32_t> ranks_;
  std::vector<gradient_part> parts_;
  std::vector<bool> have_;
  size_t stored_ = 0;
};

} // namespace dml
