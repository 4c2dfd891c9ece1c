#include "runtime/preprocess.hpp"

#include <cmath>

#include <fmt/format.h>

namespace dml {

standardizer fit_standardizer(const dataset& data) {
  standardizer s;
  std::vector<double> sum(data.cols, 0.0);
  std::vector<double> sum2(data.cols, 0.0);
  if (data.sparse) {
    for (size_t i = 0; i < data.csr.indices.size(); ++i) {
      double x = data.csr.values[i];
      sum2[data.csr.indices[i]] += x * x;
    }
  } else {
    for (size_t r = 0; r < data.rows; ++r) {
      const float* row = data.dense.data() + r * data.cols;
      for (size_t c = 0; c < data.cols; ++c) {
        sum[c] += row[c];
        sum2[c] += double{row[c]} * row[c];
      }
    }
  }
  auto n = static_cast<double>(data.rows == 0 ? 1 : data.rows);
  s.mean.resize(data.cols);
  s.scale.resize(data.cols);
  for (size_t c = 0; c < data.cols; ++c) {
    double mean = data.sparse ? 0.0 : sum[c] / n;
    double var = sum2[c] / n - mean * mean;
    double sd = var > 1e-12 ? std::sqrt(var) : 1.0;
    s.mean[c] = static_cast<float>(mean);
    s.scale[c] = static_cast<float>(sd);
  }
  return s;
}

error apply_standardizer(const standardizer& s, dataset& data) {
  if (s.empty())
    return {};
  if (s.mean.size() != data.cols)
    return make_error(errc::shape_mismatch,
                      fmt::format("{}: has {} features, the standardizer {}",
                                  data.source, data.cols, s.mean.size()));
  if (data.sparse) {
    for (size_t i = 0; i < data.csr.indices.size(); ++i)
      data.csr.values[i] /= s.scale[data.csr.indices[i]];
    return {};
  }
  for (size_t r = 0; r < data.rows; ++r) {
    float* row = data.dense.data() + r * data.cols;
    for (size_t c = 0; c < data.cols; ++c)
      row[c] = (row[c] - s.mean[c]) / s.scale[c];
  }
  return {};
}

error check_labels(const dataset& data, size_t classes) {
  for (size_t r = 0; r < data.rows; ++r) {
    auto y = data.targets[r];
    if (!(y >= 0) || y != std::floor(y) || y >= static_cast<float>(classes))
      return make_error(errc::bad_value,
                        fmt::format("{}: row {}: label {} is outside the "
                                    "model's {} classes",
                                    data.source, r + 1, y, classes));
  }
  return {};
}

} // namespace dml
