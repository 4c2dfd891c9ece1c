// Test problems and finite-difference gradient checks shared by the model
// test suites.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "runtime/model.hpp"

namespace dml::test {

/// A small minibatch stored both dense and as CSR. The CSR arrays start with
/// `pad` junk entries (index 0, a huge value) that no row refers to, so the
/// row offsets do not start at 0.
struct problem {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> dense;
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  std::vector<float> values;
  std::vector<float> targets;

  batch_view dense_view() const {
    batch_view v;
    v.rows = rows;
    v.cols = cols;
    v.dense = dense.data();
    v.targets = targets.data();
    return v;
  }

  batch_view sparse_view() const {
    batch_view v;
    v.rows = rows;
    v.cols = cols;
    v.indptr = indptr.data();
    v.indices = indices.data();
    v.values = values.data();
    v.targets = targets.data();
    return v;
  }

  /// Returns a view of the single row `r`.
  batch_view row_view(size_t r, bool sparse) const {
    auto v = sparse ? sparse_view() : dense_view();
    v.rows = 1;
    v.targets += r;
    if (sparse)
      v.indptr += r;
    else
      v.dense += r * cols;
    return v;
  }

  /// Fills the CSR arrays from the dense values, after `pad` junk entries.
  void build_csr(size_t pad) {
    indices.assign(pad, 0);
    values.assign(pad, 1e6f);
    indptr.assign(1, static_cast<int64_t>(pad));
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) {
        auto x = dense[r * cols + c];
        if (x != 0.0f) {
          indices.push_back(static_cast<int32_t>(c));
          values.push_back(x);
        }
      }
      indptr.push_back(static_cast<int64_t>(indices.size()));
    }
  }
};

/// Returns `loss(params) + 0.5 * l2 * |w|^2` as the model computes it.
inline double objective(model& m, const std::vector<float>& params,
                        const batch_view& b, float l2) {
  std::vector<float> scratch(m.num_params(), 0.0f);
  return m.loss(params.data(), b) + m.add_l2(params.data(), l2, scratch.data());
}

/// Checks the gradient of `m` plus an L2 term against central finite
/// differences with step `h` at `params`: each component must agree within
/// `1e-3 + rel * max(|analytic|, |finite difference|)`.
inline void check_gradient(model& m, const std::vector<float>& params,
                           const batch_view& b, float l2, float h, double rel) {
  auto n = m.num_params();
  std::vector<float> grad(n, std::numeric_limits<float>::quiet_NaN());
  auto loss = m.loss_and_gradient(params.data(), b, grad.data());
  BOOST_TEST(loss == m.loss(params.data(), b),
             boost::test_tools::tolerance(1e-6));
  auto penalty = m.add_l2(params.data(), l2, grad.data());
  BOOST_TEST(penalty > 0.0);
  auto worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    auto plus = params;
    auto minus = params;
    plus[i] += h;
    minus[i] -= h;
    auto step = static_cast<double>(plus[i]) - static_cast<double>(minus[i]);
    auto fd = (objective(m, plus, b, l2) - objective(m, minus, b, l2)) / step;
    auto g = static_cast<double>(grad[i]);
    auto err = std::abs(g - fd)
      / (1e-3 + rel * std::max(std::abs(g), std::abs(fd)));
    worst = std::max(worst, err);
    BOOST_TEST_CONTEXT("param " << i << " of " << n) {
      BOOST_TEST(std::isfinite(g));
      BOOST_TEST(err <= 1.0,
                 "analytic " << g << " vs finite difference " << fd);
    }
  }
  BOOST_TEST_MESSAGE(m.name()
                     << ": worst gradient error " << worst << " of tolerance");
}

} // namespace dml::test
