#include "runtime/metrics.hpp"

#include <cmath>

#include <boost/test/unit_test.hpp>

#include "runtime/model_registry.hpp"
#include "runtime/preprocess.hpp"
#include "runtime/sha256.hpp"

using namespace dml;

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(predicted_class_picks_the_top_output) {
  float three[] = {0.1f, 0.7f, 0.2f};
  BOOST_TEST(predicted_class(three, 3) == 1u);
  float one[] = {0.6f};
  BOOST_TEST(predicted_class(one, 1) == 1u);
  one[0] = 0.4f;
  BOOST_TEST(predicted_class(one, 1) == 0u);
}

BOOST_AUTO_TEST_CASE(regression_metrics) {
  // A linear model with w = (1, 0), b = 0 predicts the first feature.
  model_registry reg;
  register_builtin_models(reg);
  model_config cfg{"linear", 2, 1, {}, activation::relu};
  auto m = reg.make(cfg);
  BOOST_REQUIRE(m);
  auto params = (*m)->init(1);
  BOOST_REQUIRE(params.size() == 3u);
  params = {1.0f, 0.0f, 0.0f};
  dataset d;
  d.rows = 4;
  d.cols = 2;
  d.dense = {1, 9, 2, 9, 3, 9, 4, 9};
  d.targets = {1, 2, 3, 6}; // errors 0, 0, 0, -2
  auto r = evaluate(**m, params.data(), d, 3);
  BOOST_TEST(r.mse == 1.0, boost::test_tools::tolerance(1e-9));
  // var(y) = mean(y^2) - mean(y)^2 = 12.5 - 9 = 3.5
  BOOST_TEST(r.r2 == 1.0 - 1.0 / 3.5, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(r.loss == 0.5, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(standardizer_uses_training_statistics) {
  dataset d;
  d.rows = 3;
  d.cols = 2;
  d.dense = {1, 5, 2, 5, 3, 5};
  auto s = fit_standardizer(d);
  BOOST_TEST(s.mean[0] == 2.0f);
  BOOST_TEST(s.scale[1] == 1.0f); // constant column
  BOOST_REQUIRE(!apply_standardizer(s, d));
  BOOST_TEST(d.dense[0] == -1.0f / std::sqrt(2.0f / 3.0f),
             boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(d.dense[1] == 0.0f);
  dataset other;
  other.cols = 3;
  other.source = "t.csv";
  auto err = apply_standardizer(s, other);
  BOOST_TEST((err.code() == errc::shape_mismatch));
  BOOST_TEST(err.message() == "t.csv: has 3 features, the standardizer 2");
}

BOOST_AUTO_TEST_CASE(labels_are_checked) {
  dataset d;
  d.rows = 2;
  d.targets = {0, 1.5f};
  d.source = "x";
  BOOST_TEST(check_labels(d, 3).message()
             == "x: row 2: label 1.5 is outside the model's 3 classes");
  d.targets = {0, 2};
  BOOST_TEST(!check_labels(d, 3));
}

BOOST_AUTO_TEST_CASE(params_sha256_hashes_the_float_bytes) {
  // The bytes 00 00 00 00 00 00 80 3f (0.0f, 1.0f little endian), as
  // `sha256sum` hashes them.
  BOOST_TEST(
    params_sha256({0.0f, 1.0f})
    == "22b6f43bd8d27738d3213f29e96b62d01d9d6c0ab4f9732aaae803186f51eab7");
}

BOOST_AUTO_TEST_SUITE_END()
