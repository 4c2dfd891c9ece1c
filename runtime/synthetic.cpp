#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/loaders.hpp"
#include "runtime/random.hpp"

namespace dml {

namespace {

/// Distance between neighboring class centers of `make_classification`.
constexpr double center_distance = 4.0;

/// Returns `n` random orthonormal vectors of dimension `dim` (n <= dim), one
/// after the other (modified Gram-Schmidt on normal samples).
std::vector<double> random_orthonormal(rng& gen, size_t n, size_t dim) {
  std::vector<double> basis(n * dim);
  for (size_t i = 0; i < n; ++i) {
    auto v = basis.data() + i * dim;
    for (;;) {
      for (size_t k = 0; k < dim; ++k)
        v[k] = gen.normal();
      for (size_t j = 0; j < i; ++j) {
        auto u = basis.data() + j * dim;
        double dot = 0;
        for (size_t k = 0; k < dim; ++k)
          dot += u[k] * v[k];
        for (size_t k = 0; k < dim; ++k)
          v[k] -= dot * u[k];
      }
      double norm = 0;
      for (size_t k = 0; k < dim; ++k)
        norm += v[k] * v[k];
      norm = std::sqrt(norm);
      if (norm > 1e-6) { // else: (almost) dependent, draw again
        for (size_t k = 0; k < dim; ++k)
          v[k] /= norm;
        break;
      }
    }
  }
  return basis;
}

/// Returns `base^exp`, or a value above `limit` once it exceeds `limit`.
size_t saturated_pow(size_t base, size_t exp, size_t limit) {
  size_t result = 1;
  for (size_t i = 0; i < exp && result <= limit; ++i)
    result *= base;
  return result;
}

/// Returns `classes` centers in `cols` dimensions (row-major), with mean 0.
/// With `classes <= cols` they form a regular simplex with edge
/// `center_distance`; otherwise they sit on a square grid with that spacing.
/// A random orthonormal frame from `gen` orients either.
std::vector<double> class_centers(rng& gen, size_t classes, size_t cols) {
  std::vector<double> centers(classes * cols, 0.0);
  if (cols == 0)
    return centers;
  // Coordinates in a frame of `dims` axes.
  size_t dims = 0;
  std::vector<double> coords;
  if (classes <= cols) {
    dims = classes;
    coords.assign(classes * dims, 0.0);
    for (size_t c = 0; c < classes; ++c)
      coords[c * dims + c] = center_distance / std::sqrt(2.0);
  } else {
    size_t side = 2;
    while (saturated_pow(side, cols, classes) < classes)
      ++side;
    dims = 1;
    while (saturated_pow(side, dims, classes) < classes)
      ++dims;
    coords.assign(classes * dims, 0.0);
    for (size_t c = 0; c < classes; ++c) {
      auto digits = c;
      for (size_t d = 0; d < dims; ++d) {
        coords[c * dims + d] = center_distance
          * static_cast<double>(digits % side);
        digits /= side;
      }
    }
  }
  for (size_t d = 0; d < dims; ++d) {
    double mean = 0;
    for (size_t c = 0; c < classes; ++c)
      mean += coords[c * dims + d];
    mean /= static_cast<double>(classes);
    for (size_t c = 0; c < classes; ++c)
      coords[c * dims + d] -= mean;
  }
  auto frame = random_orthonormal(gen, dims, cols);
  for (size_t c = 0; c < classes; ++c)
    for (size_t d = 0; d < dims; ++d)
      for (size_t k = 0; k < cols; ++k)
        centers[c * cols + k] += coords[c * dims + d] * frame[d * cols + k];
  return centers;
}

} // namespace

dataset make_regression(const synthetic_options& opts) {
  rng gen{opts.seed};
  std::vector<double> weights(opts.cols);
  for (auto& w : weights)
    w = gen.normal();
  auto bias = gen.normal();
  dataset result;
  result.rows = opts.rows;
  result.cols = opts.cols;
  result.source = "synthetic:regression";
  result.dense.resize(opts.rows * opts.cols);
  result.targets.resize(opts.rows);
  for (size_t i = 0; i < opts.rows; ++i) {
    auto row = result.dense.data() + i * opts.cols;
    auto y = bias;
    for (size_t j = 0; j < opts.cols; ++j) {
      row[j] = static_cast<float>(gen.normal());
      y += weights[j] * row[j];
    }
    y += opts.noise * gen.normal();
    result.targets[i] = static_cast<float>(y);
  }
  return result;
}

dataset make_classification(const synthetic_options& opts) {
  auto classes = std::max(opts.classes, size_t{1});
  rng gen{opts.seed};
  auto centers = class_centers(gen, classes, opts.cols);
  dataset result;
  result.rows = opts.rows;
  result.cols = opts.cols;
  result.source = "synthetic:classification";
  result.dense.resize(opts.rows * opts.cols);
  result.targets.resize(opts.rows);
  for (size_t i = 0; i < opts.rows; ++i) {
    auto label = static_cast<size_t>(gen.below(classes));
    auto center = centers.data() + label * opts.cols;
    auto row = result.dense.data() + i * opts.cols;
    for (size_t j = 0; j < opts.cols; ++j)
      row[j] = static_cast<float>(center[j] + opts.noise * gen.normal());
    result.targets[i] = static_cast<float>(label);
  }
  return result;
}

} // namespace dml
