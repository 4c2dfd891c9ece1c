#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/dataset.hpp"
#include "runtime/model.hpp"

namespace dml {

/// Metrics of a model on a dataset.
struct eval_metrics {
  /// Rows evaluated.
  uint64_t rows = 0;
  /// Mean loss (cross-entropy or half squared error), without regularization.
  double loss = 0;
  /// Classification: fraction of rows whose top class is the label.
  double accuracy = 0;
  /// Classification: rows per true class, and correct rows per class.
  std::vector<uint64_t> class_rows;
  std::vector<uint64_t> class_correct;
  /// Regression: mean squared error and coefficient of determination.
  double mse = 0;
  double r2 = 0;
};

/// Returns the class with the highest output in `out` (`k` values; for a
/// single output, 1 if it exceeds 0.5).
uint32_t predicted_class(const float* out, size_t k);

/// Evaluates `m` with `params` on `data` in batches of `batch_rows` rows.
/// Classification labels must be below the model's class count (check with
/// `check_labels` first).
eval_metrics evaluate(model& m, const float* params, const dataset& data,
                      size_t batch_rows = 1024);

/// Writes one prediction per row of `data` to `out`: the class index for
/// classification, the value for regression.
void predict_all(model& m, const float* params, const dataset& data,
                 std::vector<float>& out, size_t batch_rows = 1024);

} // namespace dml
