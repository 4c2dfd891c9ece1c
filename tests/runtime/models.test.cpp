#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "tests/model_testing.hpp"
#include <boost/test/unit_test.hpp>

#include "runtime/linear_models.hpp"
#include "runtime/mlp.hpp"
#include "runtime/model.hpp"
#include "runtime/model_registry.hpp"
#include "runtime/random.hpp"

using namespace dml;

namespace {

using test::problem;

/// Returns `rows x cols` random features (about a third of them zero) with
/// targets for a model with `outputs` outputs and loss `head`.
problem make_problem(size_t rows, size_t cols, size_t outputs, loss_head head,
                     uint64_t seed) {
  rng gen{seed};
  problem p;
  p.rows = rows;
  p.cols = cols;
  p.dense.resize(rows * cols);
  for (auto& x : p.dense)
    x = gen.uniform() < 0.35 ? 0.0f : static_cast<float>(gen.normal());
  for (size_t r = 0; r < rows; ++r) {
    switch (head) {
      case loss_head::squared_error:
        p.targets.push_back(static_cast<float>(gen.normal()));
        break;
      case loss_head::logistic:
        p.targets.push_back(static_cast<float>(r % 2));
        break;
      case loss_head::softmax:
        p.targets.push_back(static_cast<float>(r % outputs));
        break;
    }
  }
  p.build_csr(3);
  return p;
}

/// Returns the loss head a built-in model configuration uses.
loss_head head_of(const model_config& cfg) {
  if (cfg.name == "linear")
    return loss_head::squared_error;
  if (cfg.name == "logistic")
    return loss_head::logistic;
  if (cfg.name == "mlp" && cfg.outputs == 1)
    return loss_head::squared_error;
  return loss_head::softmax;
}

model_config make_config(std::string name, size_t inputs, size_t outputs,
                         std::vector<size_t> hidden = {},
                         activation act = activation::relu) {
  model_config cfg;
  cfg.name = std::move(name);
  cfg.inputs = inputs;
  cfg.outputs = outputs;
  cfg.hidden = std::move(hidden);
  cfg.act = act;
  return cfg;
}

std::unique_ptr<model> make_model(const model_config& cfg) {
  model_registry reg;
  register_builtin_models(reg);
  auto m = reg.make(cfg);
  BOOST_REQUIRE_MESSAGE(m, (m ? std::string{} : m.err().message()));
  return std::move(*m);
}

/// The forward pass of a model, written naively in double from the
/// documented parameter layout: the reference the models must match.
struct reference {
  model_config cfg;

  /// Returns the logits of row `x` and the hidden pre-activations seen on
  /// the way (appended to `pre`).
  std::vector<double> logits(const std::vector<float>& params, const float* x,
                             std::vector<double>* pre = nullptr) const {
    std::vector<size_t> widths{cfg.inputs};
    widths.insert(widths.end(), cfg.hidden.begin(), cfg.hidden.end());
    widths.push_back(cfg.outputs);
    std::vector<double> a(x, x + cfg.inputs);
    size_t off = 0;
    for (size_t l = 0; l + 1 < widths.size(); ++l) {
      auto in = widths[l];
      auto out = widths[l + 1];
      std::vector<double> z(out);
      for (size_t o = 0; o < out; ++o) {
        double acc = params[off + out * in + o];
        for (size_t i = 0; i < in; ++i)
          acc += static_cast<double>(params[off + o * in + i]) * a[i];
        z[o] = acc;
      }
      off += out * (in + 1);
      if (l + 2 < widths.size()) {
        for (auto& v : z) {
          if (pre != nullptr)
            pre->push_back(v);
          v = cfg.act == activation::relu ? std::max(v, 0.0) : std::tanh(v);
        }
      }
      a = std::move(z);
    }
    return a;
  }

  /// Returns the loss of one row.
  double row_loss(const std::vector<float>& params, const float* x,
                  float target) const {
    auto z = logits(params, x);
    switch (head_of(cfg)) {
      case loss_head::squared_error:
        return 0.5 * (z[0] - target) * (z[0] - target);
      case loss_head::logistic: {
        // -[y log p + (1 - y) log(1 - p)] with p = sigmoid(z).
        double p = 1.0 / (1.0 + std::exp(-z[0]));
        return target == 1.0f ? -std::log(p) : -std::log(1.0 - p);
      }
      case loss_head::softmax: {
        double mx = *std::max_element(z.begin(), z.end());
        double s = 0.0;
        for (auto v : z)
          s += std::exp(v - mx);
        return mx + std::log(s) - z[static_cast<size_t>(target)];
      }
    }
    return 0.0;
  }

  double loss(const std::vector<float>& params, const problem& p) const {
    double result = 0.0;
    for (size_t r = 0; r < p.rows; ++r)
      result += row_loss(params, p.dense.data() + r * p.cols, p.targets[r]);
    return result;
  }
};

using test::check_gradient;

/// Returns parameters from `init` with small random biases added, so that
/// bias gradients are exercised away from zero.
std::vector<float> test_params(const model& m, uint64_t seed) {
  auto params = m.init(seed);
  rng gen{seed + 17};
  for (auto& x : params)
    if (x == 0.0f)
      x = static_cast<float>(0.3 * gen.normal());
  return params;
}

/// Runs every gradient and consistency check on model `cfg`.
void check_model(const model_config& cfg, uint64_t seed, float h = 1e-2f) {
  auto m = make_model(cfg);
  auto head = head_of(cfg);
  auto p = make_problem(6, cfg.inputs, cfg.outputs, head, seed);
  reference ref{cfg};
  // Keep every ReLU input further from its kink (0) than a finite-difference
  // step can move it (at most about 10 h here): try parameters until so.
  auto relu_margin = [&](const std::vector<float>& params) {
    std::vector<double> pre;
    for (size_t r = 0; r < p.rows; ++r)
      ref.logits(params, p.dense.data() + r * p.cols, &pre);
    auto result = std::numeric_limits<double>::max();
    for (auto v : pre)
      result = std::min(result, std::abs(v));
    return result;
  };
  auto params = test_params(*m, seed);
  if (cfg.act == activation::relu) {
    for (int i = 1; i < 20 && relu_margin(params) < 20 * h; ++i)
      params = test_params(*m, seed + 1000 * static_cast<uint64_t>(i));
    BOOST_REQUIRE(relu_margin(params) >= 20 * h);
  }
  // The loss matches the naive reference, dense and sparse.
  auto expected = ref.loss(params, p);
  BOOST_TEST(m->loss(params.data(), p.dense_view()) == expected,
             boost::test_tools::tolerance(1e-5));
  BOOST_TEST(m->loss(params.data(), p.sparse_view()) == expected,
             boost::test_tools::tolerance(1e-5));
  // The batch loss is the sum of the row losses.
  double sum = 0.0;
  for (size_t r = 0; r < p.rows; ++r)
    sum += m->loss(params.data(), p.row_view(r, r % 2 == 0));
  BOOST_TEST(sum == expected, boost::test_tools::tolerance(1e-5));
  // Gradients against finite differences.
  BOOST_TEST_CONTEXT("dense") {
    check_gradient(*m, params, p.dense_view(), 0.1f, h, 2e-2);
  }
  BOOST_TEST_CONTEXT("sparse") {
    check_gradient(*m, params, p.sparse_view(), 0.1f, h, 2e-2);
  }
  // Dense and sparse agree.
  std::vector<float> gd(m->num_params());
  std::vector<float> gs(m->num_params());
  auto ld = m->loss_and_gradient(params.data(), p.dense_view(), gd.data());
  auto ls = m->loss_and_gradient(params.data(), p.sparse_view(), gs.data());
  BOOST_TEST(ld == ls, boost::test_tools::tolerance(1e-5));
  for (size_t i = 0; i < gd.size(); ++i)
    BOOST_TEST(std::abs(gd[i] - gs[i]) <= 1e-5f * (1.0f + std::abs(gd[i])));
}

/// Returns the largest absolute difference of two vectors.
float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float result = 0.0f;
  for (size_t i = 0; i < a.size(); ++i)
    result = std::max(result, std::abs(a[i] - b[i]));
  return result;
}

float max_abs(const std::vector<float>& a) {
  float result = 0.0f;
  for (auto x : a)
    result = std::max(result, std::abs(x));
  return result;
}

/// Runs `steps` of plain gradient descent and returns the first and last
/// loss.
std::pair<double, double> descend(model& m, std::vector<float>& params,
                                  const batch_view& b, float lr, int steps) {
  std::vector<float> grad(m.num_params());
  auto first = m.loss(params.data(), b);
  for (int i = 0; i < steps; ++i) {
    m.loss_and_gradient(params.data(), b, grad.data());
    for (size_t j = 0; j < params.size(); ++j)
      params[j] -= lr / static_cast<float>(b.rows) * grad[j];
  }
  return {first, m.loss(params.data(), b)};
}

/// Returns `rows` points around `classes` well separated centers in `cols`
/// dimensions, labeled by center.
problem make_blobs(size_t rows, size_t cols, size_t classes, uint64_t seed) {
  rng gen{seed};
  problem p;
  p.rows = rows;
  p.cols = cols;
  for (size_t r = 0; r < rows; ++r) {
    auto c = r % classes;
    for (size_t j = 0; j < cols; ++j) {
      auto center = j % classes == c ? 3.0 : 0.0;
      p.dense.push_back(static_cast<float>(center + 0.5 * gen.normal()));
    }
    p.targets.push_back(static_cast<float>(c));
  }
  p.build_csr(0);
  return p;
}

} // namespace

BOOST_AUTO_TEST_SUITE(models)

BOOST_AUTO_TEST_CASE(linear_gradient) {
  check_model(make_config("linear", 5, 1), 1);
}

BOOST_AUTO_TEST_CASE(logistic_gradient) {
  check_model(make_config("logistic", 5, 1), 2);
}

BOOST_AUTO_TEST_CASE(softmax_gradient) {
  check_model(make_config("softmax", 5, 3), 3);
}

BOOST_AUTO_TEST_CASE(mlp_relu_gradient) {
  check_model(make_config("mlp", 5, 3, {4}, activation::relu), 4, 1e-3f);
}

BOOST_AUTO_TEST_CASE(mlp_relu_two_hidden_gradient) {
  check_model(make_config("mlp", 5, 3, {6, 4}, activation::relu), 12, 1e-3f);
}

BOOST_AUTO_TEST_CASE(mlp_tanh_two_hidden_gradient) {
  check_model(make_config("mlp", 5, 3, {4, 3}, activation::tanh), 5);
}

BOOST_AUTO_TEST_CASE(mlp_regression_gradient) {
  auto cfg = make_config("mlp", 5, 1, {4}, activation::tanh);
  check_model(cfg, 6);
  BOOST_TEST((make_model(cfg)->task() == task_kind::regression));
}

// Batches large enough for the blocked matrix-product kernel (several blocks
// along every dimension) agree with the hand-written sparse loops, and
// reusing scratch across batch sizes changes nothing.
BOOST_AUTO_TEST_CASE(large_batches_dense_sparse_and_reuse_agree) {
  for (auto cfg :
       {make_config("softmax", 300, 10), make_config("logistic", 300, 1),
        make_config("mlp", 300, 10, {70, 20}, activation::tanh)}) {
    BOOST_TEST_CONTEXT(cfg.name) {
      auto p = make_problem(520, cfg.inputs, cfg.outputs, head_of(cfg), 7);
      auto small = make_problem(130, cfg.inputs, cfg.outputs, head_of(cfg), 8);
      auto m = make_model(cfg);
      auto params = test_params(*m, 9);
      std::vector<float> gd(m->num_params());
      std::vector<float> gs(m->num_params());
      auto ld = m->loss_and_gradient(params.data(), p.dense_view(), gd.data());
      auto ls = m->loss_and_gradient(params.data(), p.sparse_view(), gs.data());
      BOOST_TEST(ld == ls, boost::test_tools::tolerance(1e-5));
      BOOST_TEST(max_diff(gd, gs) <= 1e-4f * (1.0f + max_abs(gd)));
      BOOST_TEST(m->loss(params.data(), p.dense_view())
                   == reference{cfg}.loss(params, p),
                 boost::test_tools::tolerance(1e-5));
      // A smaller batch in between, then the large one again.
      std::vector<float> g2(m->num_params());
      m->loss_and_gradient(params.data(), small.dense_view(), g2.data());
      auto l2 = m->loss_and_gradient(params.data(), p.dense_view(), g2.data());
      BOOST_TEST(l2 == ld);
      BOOST_TEST(g2 == gd, boost::test_tools::per_element());
    }
  }
}

// Few entries over many inputs take the other sparse kernels (one pass per
// output), which must agree with the dense ones too.
BOOST_AUTO_TEST_CASE(wide_sparse_batches_agree_with_dense) {
  for (auto cfg : {make_config("softmax", 3000, 10),
                   make_config("mlp", 3000, 5, {8}, activation::relu),
                   make_config("linear", 3000, 1)}) {
    BOOST_TEST_CONTEXT(cfg.name) {
      rng gen{11};
      problem p;
      p.rows = 50;
      p.cols = cfg.inputs;
      p.dense.assign(p.rows * p.cols, 0.0f);
      for (size_t r = 0; r < p.rows; ++r) {
        for (int j = 0; j < 5; ++j)
          p.dense[r * p.cols + gen.below(p.cols)] = static_cast<float>(
            gen.normal());
        p.targets.push_back(static_cast<float>(r % cfg.outputs));
      }
      p.build_csr(4);
      auto m = make_model(cfg);
      auto params = test_params(*m, 12);
      std::vector<float> gd(m->num_params());
      std::vector<float> gs(m->num_params());
      auto ld = m->loss_and_gradient(params.data(), p.dense_view(), gd.data());
      auto ls = m->loss_and_gradient(params.data(), p.sparse_view(), gs.data());
      BOOST_TEST(ld == ls, boost::test_tools::tolerance(1e-5));
      BOOST_TEST(max_diff(gd, gs) <= 1e-5f * (1.0f + max_abs(gd)));
      BOOST_TEST(ld == reference{cfg}.loss(params, p),
                 boost::test_tools::tolerance(1e-5));
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_batch_has_zero_loss_and_gradient) {
  auto m = make_model(make_config("mlp", 5, 3, {4}));
  auto p = make_problem(0, 5, 3, loss_head::softmax, 1);
  auto params = m->init(1);
  std::vector<float> grad(m->num_params(), 1.0f);
  BOOST_TEST(m->loss_and_gradient(params.data(), p.dense_view(), grad.data())
             == 0.0);
  BOOST_TEST(max_abs(grad) == 0.0f);
  grad.assign(grad.size(), 1.0f);
  BOOST_TEST(m->loss_and_gradient(params.data(), p.sparse_view(), grad.data())
             == 0.0);
  BOOST_TEST(max_abs(grad) == 0.0f);
}

BOOST_AUTO_TEST_CASE(large_logits_stay_finite) {
  // One input of value 1 and weight +-1000: logits of +-1000.
  auto p = make_problem(2, 1, 1, loss_head::logistic, 1);
  p.dense = {1.0f, 1.0f};
  p.targets = {0.0f, 1.0f};
  p.build_csr(1);
  auto lm = make_model(make_config("logistic", 1, 1));
  std::vector<float> params{1000.0f, 0.0f};
  std::vector<float> grad(2);
  // Row 0 (y = 0) costs 1000, row 1 (y = 1) costs log(1 + e^-1000).
  auto loss = lm->loss_and_gradient(params.data(), p.dense_view(), grad.data());
  BOOST_TEST(loss == 1000.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(grad[0] == 1.0f, boost::test_tools::tolerance(1e-6f));
  params[0] = -1000.0f;
  loss = lm->loss_and_gradient(params.data(), p.dense_view(), grad.data());
  BOOST_TEST(loss == 1000.0, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(grad[0] == -1.0f, boost::test_tools::tolerance(1e-6f));
  // Softmax over logits (1000, -1000) with classes 0 and 1.
  auto sm = make_model(make_config("softmax", 1, 2));
  std::vector<float> sp{1000.0f, -1000.0f, 0.0f, 0.0f};
  std::vector<float> sg(4);
  loss = sm->loss_and_gradient(sp.data(), p.sparse_view(), sg.data());
  BOOST_TEST(loss == 2000.0, boost::test_tools::tolerance(1e-6));
  for (auto g : sg)
    BOOST_TEST(std::isfinite(g));
}

BOOST_AUTO_TEST_CASE(bad_class_target_gives_nan_loss) {
  auto m = make_model(make_config("softmax", 5, 3));
  auto p = make_problem(4, 5, 3, loss_head::softmax, 1);
  p.targets[2] = 3.0f;
  auto params = m->init(1);
  BOOST_TEST(std::isnan(m->loss(params.data(), p.dense_view())));
  p.targets[2] = -1.0f;
  BOOST_TEST(std::isnan(m->loss(params.data(), p.sparse_view())));
}

BOOST_AUTO_TEST_CASE(softmax_predict_rows_sum_to_one) {
  for (auto cfg : {make_config("softmax", 5, 4),
                   make_config("mlp", 5, 4, {6}, activation::tanh)}) {
    auto m = make_model(cfg);
    BOOST_TEST(m->num_outputs() == 4u);
    BOOST_TEST((m->task() == task_kind::classification));
    auto p = make_problem(7, 5, 4, loss_head::softmax, 3);
    auto params = test_params(*m, 3);
    std::vector<float> dense_out(7 * 4);
    std::vector<float> sparse_out(7 * 4);
    m->predict(params.data(), p.dense_view(), dense_out.data());
    m->predict(params.data(), p.sparse_view(), sparse_out.data());
    BOOST_TEST(max_diff(dense_out, sparse_out) <= 1e-6f);
    reference ref{cfg};
    for (size_t r = 0; r < 7; ++r) {
      double sum = 0.0;
      auto z = ref.logits(params, p.dense.data() + r * 5);
      double zsum = 0.0;
      for (auto v : z)
        zsum += std::exp(v);
      for (size_t k = 0; k < 4; ++k) {
        auto pk = dense_out[r * 4 + k];
        BOOST_TEST(pk > 0.0f);
        BOOST_TEST(pk == std::exp(z[k]) / zsum,
                   boost::test_tools::tolerance(1e-5));
        sum += pk;
      }
      BOOST_TEST(sum == 1.0, boost::test_tools::tolerance(1e-5));
    }
  }
}

BOOST_AUTO_TEST_CASE(logistic_predict_is_sigmoid) {
  auto m = make_model(make_config("logistic", 5, 1));
  BOOST_TEST(m->num_outputs() == 1u);
  BOOST_TEST((m->task() == task_kind::classification));
  auto p = make_problem(9, 5, 1, loss_head::logistic, 4);
  auto params = test_params(*m, 4);
  for (auto& x : params)
    x *= 3.0f;
  std::vector<float> out(9);
  m->predict(params.data(), p.sparse_view(), out.data());
  reference ref{m->config()};
  for (size_t r = 0; r < 9; ++r) {
    BOOST_TEST(out[r] > 0.0f);
    BOOST_TEST(out[r] < 1.0f);
    auto z = ref.logits(params, p.dense.data() + r * 5)[0];
    BOOST_TEST(out[r] == 1.0 / (1.0 + std::exp(-z)),
               boost::test_tools::tolerance(1e-5));
  }
}

BOOST_AUTO_TEST_CASE(linear_predict_is_affine) {
  auto m = make_model(make_config("linear", 3, 1));
  BOOST_TEST((m->task() == task_kind::regression));
  BOOST_TEST(m->num_params() == 4u);
  // Weights (1, -2, 0.5), bias 4.
  std::vector<float> params{1.0f, -2.0f, 0.5f, 4.0f};
  problem p;
  p.rows = 2;
  p.cols = 3;
  p.dense = {1.0f, 1.0f, 2.0f, 0.0f, -3.0f, 0.0f};
  p.targets = {0.0f, 0.0f};
  p.build_csr(5);
  for (bool sparse : {false, true}) {
    std::vector<float> out(2);
    m->predict(params.data(), sparse ? p.sparse_view() : p.dense_view(),
               out.data());
    BOOST_TEST(out[0] == 1.0f - 2.0f + 1.0f + 4.0f);
    BOOST_TEST(out[1] == 6.0f + 4.0f);
  }
  // Loss = 0.5 * (4^2 + 10^2).
  BOOST_TEST(m->loss(params.data(), p.dense_view()) == 58.0);
}

BOOST_AUTO_TEST_CASE(add_l2_skips_biases) {
  auto m = make_model(make_config("mlp", 2, 2, {2}));
  // Layer 0: 2x2 weights then 2 biases; layer 1 likewise.
  std::vector<float> params{1, 2, 3, 4, 10, 20, 5, 6, 7, 8, 30, 40};
  std::vector<float> grad(12, 1.0f);
  auto penalty = m->add_l2(params.data(), 0.5f, grad.data());
  BOOST_TEST(penalty == 0.25 * (1 + 4 + 9 + 16 + 25 + 36 + 49 + 64));
  std::vector<float> expected{1.5f, 2.0f, 2.5f, 3.0f, 1.0f, 1.0f,
                              3.5f, 4.0f, 4.5f, 5.0f, 1.0f, 1.0f};
  BOOST_TEST(grad == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(init_is_deterministic_and_scaled) {
  for (auto cfg :
       {make_config("linear", 1000, 1), make_config("logistic", 1000, 1),
        make_config("softmax", 50, 10),
        make_config("mlp", 200, 10, {100, 50}, activation::relu),
        make_config("mlp", 200, 10, {100}, activation::tanh)}) {
    BOOST_TEST_CONTEXT(cfg.name) {
      auto m = make_model(cfg);
      auto a = m->init(42);
      auto b = m->init(42);
      auto c = m->init(43);
      BOOST_TEST(a.size() == m->num_params());
      BOOST_TEST(a == b, boost::test_tools::per_element());
      BOOST_TEST(max_diff(a, c) > 0.0f);
      // Weights have the documented spread, biases are zero.
      std::vector<size_t> widths{cfg.inputs};
      widths.insert(widths.end(), cfg.hidden.begin(), cfg.hidden.end());
      widths.push_back(cfg.outputs);
      size_t off = 0;
      for (size_t l = 0; l + 1 < widths.size(); ++l) {
        auto in = widths[l];
        auto out = widths[l + 1];
        double ss = 0.0;
        for (size_t i = 0; i < in * out; ++i)
          ss += static_cast<double>(a[off + i]) * a[off + i];
        bool he = cfg.act == activation::relu && l + 2 < widths.size();
        auto var = (he ? 2.0 : 1.0) / static_cast<double>(in);
        BOOST_TEST(ss / static_cast<double>(in * out) / var == 1.0,
                   boost::test_tools::tolerance(0.25));
        for (size_t o = 0; o < out; ++o)
          BOOST_TEST(a[off + in * out + o] == 0.0f);
        off += out * (in + 1);
      }
      BOOST_TEST(off == a.size());
    }
  }
}

BOOST_AUTO_TEST_CASE(registry_knows_builtin_models) {
  model_registry reg;
  register_builtin_models(reg);
  std::vector<std::string> names{"linear", "logistic", "mlp", "softmax"};
  BOOST_TEST(reg.names() == names, boost::test_tools::per_element());
  auto m = reg.make(make_config("nope", 5, 1));
  BOOST_REQUIRE(!m);
  BOOST_TEST((m.err().code() == errc::unknown_model));
  BOOST_TEST(m.err().message().find("linear, logistic, mlp, softmax")
             != std::string::npos);
  struct good_case {
    model_config cfg;
    size_t params;
  };
  for (auto& [cfg, params] :
       {good_case{make_config("linear", 7, 1), 8},
        good_case{make_config("logistic", 7, 1), 8},
        good_case{make_config("softmax", 7, 2), 16},
        good_case{make_config("mlp", 7, 3, {5, 4}), 5 * 8 + 4 * 6 + 3 * 5},
        good_case{make_config("mlp", 7, 1, {5}), 5 * 8 + 6}}) {
    auto made = reg.make(cfg);
    BOOST_TEST_CONTEXT(cfg.name << " with " << cfg.outputs << " outputs") {
      BOOST_REQUIRE(made);
      BOOST_TEST((*made)->name() == cfg.name);
      BOOST_TEST((*made)->num_params() == params);
      BOOST_TEST((*made)->config().inputs == cfg.inputs);
    }
  }
}

BOOST_AUTO_TEST_CASE(registry_rejects_bad_configs) {
  model_registry reg;
  register_builtin_models(reg);
  struct bad_case {
    model_config cfg;
    std::string says;
  };
  auto huge = std::numeric_limits<size_t>::max() / 2;
  for (auto& [cfg, says] :
       {bad_case{make_config("linear", 0, 1), "inputs"},
        bad_case{make_config("linear", 5, 2), "outputs = 2"},
        bad_case{make_config("linear", 5, 1, {3}), "hidden"},
        bad_case{make_config("logistic", 5, 2), "outputs = 2"},
        bad_case{make_config("logistic", 0, 1), "inputs"},
        bad_case{make_config("softmax", 5, 1), "at least 2 classes"},
        bad_case{make_config("softmax", 5, 0), "outputs"},
        bad_case{make_config("softmax", huge, 4), "too many parameters"},
        bad_case{make_config("mlp", 5, 3), "hidden"},
        bad_case{make_config("mlp", 5, 3, {4, 0}), "hidden layer 1"},
        bad_case{make_config("mlp", 0, 3, {4}), "inputs"},
        bad_case{make_config("mlp", 5, 0, {4}), "outputs"},
        bad_case{make_config("mlp", 5, 3, {huge, 4}), "too many parameters"},
        // Addressable, but more than memory holds: refused before any
        // allocation could fail inside an actor.
        bad_case{make_config("mlp", 784, 10, {2000000000}),
                 "1590000000010 parameters (5923.2 GiB) are more than fit in "
                 "this machine's memory"},
        bad_case{make_config("logistic", size_t{1} << 40, 1),
                 "1099511627777 parameters"}}) {
    auto made = reg.make(cfg);
    BOOST_TEST_CONTEXT(cfg.name << ": " << says) {
      BOOST_REQUIRE(!made);
      BOOST_TEST((made.err().code() == errc::bad_config));
      BOOST_TEST(made.err().message().find(says) != std::string::npos,
                 made.err().message());
      BOOST_TEST(made.err().message().find("'" + cfg.name + "'")
                 != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(gradient_descent_fits_separable_data) {
  // Three well separated blobs: softmax and MLP classify them.
  auto blobs = make_blobs(90, 6, 3, 5);
  for (auto cfg : {make_config("softmax", 6, 3),
                   make_config("mlp", 6, 3, {16}, activation::relu),
                   make_config("mlp", 6, 3, {8, 8}, activation::tanh)}) {
    BOOST_TEST_CONTEXT(cfg.name) {
      auto m = make_model(cfg);
      auto params = m->init(1);
      auto [first, last] = descend(*m, params, blobs.sparse_view(), 0.2f, 200);
      BOOST_TEST_MESSAGE(cfg.name << ": loss " << first << " -> " << last);
      BOOST_TEST(last < 0.05 * first);
    }
  }
  // Two of the blobs for logistic regression.
  auto two = make_blobs(60, 6, 2, 6);
  auto lm = make_model(make_config("logistic", 6, 1));
  auto params = lm->init(1);
  auto [first, last] = descend(*lm, params, two.dense_view(), 0.2f, 200);
  BOOST_TEST(last < 0.05 * first);
  // A noiseless linear target for linear regression.
  auto reg_data = make_problem(40, 4, 1, loss_head::squared_error, 7);
  for (size_t r = 0; r < reg_data.rows; ++r) {
    const float* x = reg_data.dense.data() + r * 4;
    reg_data.targets[r] = 2.0f * x[0] - x[1] + 0.5f * x[3] + 1.0f;
  }
  auto linear = make_model(make_config("linear", 4, 1));
  auto w = linear->init(1);
  auto [lfirst, llast] = descend(*linear, w, reg_data.dense_view(), 0.3f, 300);
  BOOST_TEST(llast < 1e-3 * lfirst);
}

// An MLP learns XOR, which no linear model can.
BOOST_AUTO_TEST_CASE(mlp_learns_xor) {
  problem p;
  p.rows = 80;
  p.cols = 2;
  rng gen{3};
  for (size_t r = 0; r < p.rows; ++r) {
    auto a = r % 2;
    auto b = (r / 2) % 2;
    p.dense.push_back(static_cast<float>(2.0 * a - 1.0 + 0.2 * gen.normal()));
    p.dense.push_back(static_cast<float>(2.0 * b - 1.0 + 0.2 * gen.normal()));
    p.targets.push_back(static_cast<float>(a ^ b));
  }
  p.build_csr(2);
  auto m = make_model(make_config("mlp", 2, 2, {16}, activation::tanh));
  auto params = m->init(2);
  auto [first, last] = descend(*m, params, p.dense_view(), 0.5f, 1000);
  BOOST_TEST_MESSAGE("xor: loss " << first << " -> " << last);
  BOOST_TEST(last < 0.1 * first);
  std::vector<float> out(p.rows * 2);
  m->predict(params.data(), p.sparse_view(), out.data());
  size_t right = 0;
  for (size_t r = 0; r < p.rows; ++r)
    right += (out[r * 2 + 1] > 0.5f) == (p.targets[r] == 1.0f) ? 1 : 0;
  BOOST_TEST(right == p.rows);
}

BOOST_AUTO_TEST_SUITE_END()
