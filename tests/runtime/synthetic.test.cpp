#include <cmath>
#include <cstddef>
#include <vector>

#include <Eigen/Dense>
#include <boost/test/unit_test.hpp>

#include "runtime/loaders.hpp"

using namespace dml;

namespace {

using matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;

/// Returns the features of `data` as a matrix.
matrix features(const dataset& data) {
  matrix x(data.rows, data.cols);
  for (size_t i = 0; i < data.rows; ++i)
    for (size_t j = 0; j < data.cols; ++j)
      x(i, j) = data.dense[i * data.cols + j];
  return x;
}

/// Returns the root mean square residual of the least-squares fit of the
/// targets of `data` to its features plus an intercept.
double fit_residual(const dataset& data) {
  matrix x(data.rows, data.cols + 1);
  x << features(data), matrix::Ones(data.rows, 1);
  Eigen::VectorXd y(data.rows);
  for (size_t i = 0; i < data.rows; ++i)
    y(i) = data.targets[i];
  Eigen::VectorXd w = x.colPivHouseholderQr().solve(y);
  return std::sqrt((x * w - y).squaredNorm() / static_cast<double>(data.rows));
}

/// Returns the mean feature vector of each class (one row per class).
matrix class_means(const dataset& data, size_t classes) {
  matrix means = matrix::Zero(classes, data.cols);
  std::vector<double> counts(classes, 0);
  auto x = features(data);
  for (size_t i = 0; i < data.rows; ++i) {
    auto c = static_cast<size_t>(data.targets[i]);
    means.row(c) += x.row(i);
    counts[c] += 1;
  }
  for (size_t c = 0; c < classes; ++c)
    means.row(c) /= counts[c];
  return means;
}

/// Returns the share of rows of `data` whose nearest class mean is that of
/// their own class.
double nearest_mean_accuracy(const dataset& data, const matrix& means) {
  auto x = features(data);
  size_t hits = 0;
  for (size_t i = 0; i < data.rows; ++i) {
    Eigen::Index best = 0;
    (means.rowwise() - x.row(i)).rowwise().squaredNorm().minCoeff(&best);
    if (static_cast<float>(best) == data.targets[i])
      ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(data.rows);
}

bool same(const dataset& a, const dataset& b) {
  return a.rows == b.rows && a.cols == b.cols && a.dense == b.dense
    && a.targets == b.targets;
}

} // namespace

BOOST_AUTO_TEST_SUITE(synthetic)

BOOST_AUTO_TEST_CASE(regression_shape_and_source) {
  synthetic_options opts;
  opts.rows = 123;
  opts.cols = 7;
  auto d = make_regression(opts);
  BOOST_TEST(d.rows == 123u);
  BOOST_TEST(d.cols == 7u);
  BOOST_TEST(!d.sparse);
  BOOST_TEST(d.dense.size() == 123u * 7u);
  BOOST_TEST(d.targets.size() == 123u);
  BOOST_TEST(d.source == "synthetic:regression");
}

BOOST_AUTO_TEST_CASE(regression_is_deterministic) {
  synthetic_options opts;
  opts.seed = 42;
  auto a = make_regression(opts);
  auto b = make_regression(opts);
  BOOST_TEST(same(a, b));
  opts.seed = 43;
  auto c = make_regression(opts);
  BOOST_TEST(!same(a, c));
  BOOST_TEST((a.targets != c.targets));
}

BOOST_AUTO_TEST_CASE(regression_features_are_standard_normal) {
  synthetic_options opts;
  opts.rows = 20000;
  opts.cols = 5;
  auto d = make_regression(opts);
  double sum = 0;
  double sum2 = 0;
  for (auto v : d.dense) {
    sum += v;
    sum2 += double{v} * v;
  }
  auto n = static_cast<double>(d.dense.size());
  BOOST_TEST(std::fabs(sum / n) < 0.02);
  BOOST_TEST(std::fabs(sum2 / n - 1.0) < 0.03);
}

BOOST_AUTO_TEST_CASE(regression_fit_recovers_noise_level) {
  synthetic_options opts;
  opts.rows = 4000;
  opts.cols = 8;
  opts.noise = 0.1f;
  opts.seed = 7;
  auto d = make_regression(opts);
  // A linear fit leaves only the noise: its RMS is close to `noise`.
  auto rms = fit_residual(d);
  BOOST_TEST_MESSAGE("residual RMS " << rms);
  BOOST_TEST(rms > 0.09);
  BOOST_TEST(rms < 0.11);
  // Without noise the fit is exact up to float rounding of the targets.
  opts.noise = 0.0f;
  BOOST_TEST(fit_residual(make_regression(opts)) < 1e-5);
  // The targets depend on the features: they vary far more than the noise.
  double mean = 0;
  for (auto t : d.targets)
    mean += t;
  mean /= static_cast<double>(d.rows);
  double var = 0;
  for (auto t : d.targets)
    var += (t - mean) * (t - mean);
  var /= static_cast<double>(d.rows);
  BOOST_TEST(var > 0.5);
}

BOOST_AUTO_TEST_CASE(classification_shape_and_labels) {
  synthetic_options opts;
  opts.rows = 500;
  opts.cols = 4;
  opts.classes = 6; // more classes than columns: grid centers
  auto d = make_classification(opts);
  BOOST_TEST(d.rows == 500u);
  BOOST_TEST(d.cols == 4u);
  BOOST_TEST(d.dense.size() == 2000u);
  BOOST_TEST(d.source == "synthetic:classification");
  std::vector<size_t> counts(6, 0);
  for (auto t : d.targets) {
    BOOST_REQUIRE(t >= 0.0f);
    BOOST_REQUIRE(t < 6.0f);
    BOOST_REQUIRE(t == std::floor(t));
    ++counts[static_cast<size_t>(t)];
  }
  for (auto n : counts)
    BOOST_TEST(n > 40u); // uniform labels: about 83 each
  BOOST_TEST(count_classes(d.targets) == 6u);
}

BOOST_AUTO_TEST_CASE(classification_is_deterministic) {
  synthetic_options opts;
  opts.classes = 3;
  opts.seed = 5;
  auto a = make_classification(opts);
  auto b = make_classification(opts);
  BOOST_TEST(same(a, b));
  opts.seed = 6;
  auto c = make_classification(opts);
  BOOST_TEST(!same(a, c));
}

BOOST_AUTO_TEST_CASE(classification_small_noise_is_separable) {
  for (size_t cols : {1u, 2u, 10u}) {
    for (size_t classes : {2u, 3u, 7u}) {
      BOOST_TEST_CONTEXT("cols " << cols << ", classes " << classes) {
        synthetic_options opts;
        opts.rows = 3000;
        opts.cols = cols;
        opts.classes = classes;
        opts.noise = 0.1f;
        opts.seed = cols * 100 + classes;
        auto d = make_classification(opts);
        auto means = class_means(d, classes);
        BOOST_TEST(nearest_mean_accuracy(d, means) == 1.0);
        // Neighboring centers are 4 apart (the simplex: all pairs).
        double nearest = 1e300;
        for (size_t i = 0; i < classes; ++i) {
          for (size_t j = i + 1; j < classes; ++j) {
            auto dist = (means.row(i) - means.row(j)).norm();
            nearest = std::min(nearest, dist);
            if (classes <= cols)
              BOOST_TEST(std::fabs(dist - 4.0) < 0.05);
          }
        }
        BOOST_TEST(std::fabs(nearest - 4.0) < 0.05);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(classification_large_noise_overlaps) {
  synthetic_options opts;
  opts.rows = 3000;
  opts.cols = 10;
  opts.classes = 3;
  opts.noise = 4.0f;
  auto d = make_classification(opts);
  auto accuracy = nearest_mean_accuracy(d, class_means(d, 3));
  BOOST_TEST_MESSAGE("accuracy with noise 4: " << accuracy);
  BOOST_TEST(accuracy < 0.8);
  BOOST_TEST(accuracy > 0.4); // still better than chance (1/3)
}

BOOST_AUTO_TEST_SUITE_END()
