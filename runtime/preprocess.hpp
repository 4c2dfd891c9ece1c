#pragma once

#include <string>
#include <vector>

#include "runtime/dataset.hpp"
#include "runtime/error.hpp"

namespace dml {

/// Per-feature standardization with training statistics: `x' = (x - mean) /
/// scale`. Kept in the model file, so evaluation applies the same transform.
/// For sparse data `mean` is all zero (centering would destroy sparsity) and
/// only the scale applies.
struct standardizer {
  std::vector<float> mean;
  std::vector<float> scale;

  /// Returns whether this transform does anything.
  bool empty() const noexcept {
    return mean.empty();
  }
};

/// Returns the statistics of `data`'s features. Constant features get scale 1.
standardizer fit_standardizer(const dataset& data);

/// Applies `s` to `data` in place. A column-count mismatch is an error.
error apply_standardizer(const standardizer& s, dataset& data);

/// Checks that every target of `data` is a class index below `classes` and
/// returns an error naming the first offending row otherwise.
error check_labels(const dataset& data, size_t classes);

} // namespace dml
