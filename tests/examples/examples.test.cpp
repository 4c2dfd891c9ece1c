#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/model_testing.hpp"
#include <boost/test/unit_test.hpp>
#include <unistd.h>

#include <caf/all.hpp>

#include "actors/actor_registry.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "apps/examples/csv_logger.hpp"
#include "apps/examples/hinge_model.hpp"
#include "runtime/dataset.hpp"
#include "runtime/loaders.hpp"
#include "runtime/metrics.hpp"
#include "runtime/model.hpp"
#include "runtime/model_registry.hpp"
#include "runtime/random.hpp"

using namespace dml;

namespace {

using test::problem;

/// Returns `rows x cols` random features (about a third zero) with class
/// targets `r % classes`.
problem make_problem(size_t rows, size_t cols, size_t classes, uint64_t seed) {
  rng gen{seed};
  problem p;
  p.rows = rows;
  p.cols = cols;
  p.dense.resize(rows * cols);
  for (auto& x : p.dense)
    x = gen.uniform() < 0.35 ? 0.0f : static_cast<float>(gen.normal());
  for (size_t r = 0; r < rows; ++r)
    p.targets.push_back(static_cast<float>(r % classes));
  p.build_csr(3);
  return p;
}

/// Returns `data` (dense) as a problem, dense and CSR.
problem problem_of(const dataset& data) {
  problem p;
  p.rows = data.rows;
  p.cols = data.cols;
  p.dense = data.dense;
  p.targets = data.targets;
  p.build_csr(0);
  return p;
}

model_config svm_config(size_t inputs, size_t classes) {
  model_config cfg;
  cfg.name = "svm";
  cfg.inputs = inputs;
  cfg.outputs = classes;
  return cfg;
}

model_registry make_models() {
  model_registry result;
  register_builtin_models(result);
  dml::examples::register_example_models(result);
  return result;
}

std::unique_ptr<model> make_svm(size_t inputs, size_t classes) {
  auto made = make_models().make(svm_config(inputs, classes));
  BOOST_REQUIRE_MESSAGE(made, (made ? std::string{} : made.err().message()));
  return std::move(*made);
}

/// Returns the scores of one row, naively in double from the documented
/// parameter layout.
std::vector<double> scores(const model_config& cfg,
                           const std::vector<float>& params, const float* x) {
  std::vector<double> s(cfg.outputs);
  for (size_t k = 0; k < cfg.outputs; ++k) {
    double acc = params[cfg.outputs * cfg.inputs + k];
    for (size_t i = 0; i < cfg.inputs; ++i)
      acc += static_cast<double>(params[k * cfg.inputs + i]) * x[i];
    s[k] = acc;
  }
  return s;
}

/// Returns the smallest distance of a margin `t * s` of `p` from the kink
/// of the squared hinge (1), where its second derivative jumps.
double kink_distance(const model_config& cfg, const std::vector<float>& params,
                     const problem& p) {
  auto result = std::numeric_limits<double>::max();
  for (size_t r = 0; r < p.rows; ++r) {
    auto s = scores(cfg, params, p.dense.data() + r * p.cols);
    for (size_t k = 0; k < s.size(); ++k) {
      double t = static_cast<size_t>(p.targets[r]) == k ? 1.0 : -1.0;
      result = std::min(result, std::abs(1.0 - t * s[k]));
    }
  }
  return result;
}

/// Returns the summed squared hinge loss of `p`, naively in double.
double reference_loss(const model_config& cfg, const std::vector<float>& params,
                      const problem& p) {
  double result = 0.0;
  for (size_t r = 0; r < p.rows; ++r) {
    auto s = scores(cfg, params, p.dense.data() + r * p.cols);
    for (size_t k = 0; k < s.size(); ++k) {
      double t = static_cast<size_t>(p.targets[r]) == k ? 1.0 : -1.0;
      auto m = std::max(0.0, 1.0 - t * s[k]);
      result += m * m;
    }
  }
  return result;
}

using test::check_gradient;

/// A fresh directory under the system's temporary directory, removed with
/// everything in it when the object goes.
struct temp_dir {
  std::filesystem::path path;

  temp_dir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path()
      / ("dml-examples-" + std::to_string(::getpid()) + "-"
         + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }

  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }

  std::string file(const std::string& name) const {
    return (path / name).string();
  }
};

/// Returns the lines of the file at `path`.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in{path};
  std::vector<std::string> result;
  for (std::string line; std::getline(in, line);)
    result.push_back(line);
  return result;
}

/// An actor system with dml's message types and error category.
struct system_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    c.add_message_types<caf::id_block::dml>();
    add_error_category(c);
    c.set("logger.file-verbosity", caf::atom("quiet"));
    c.set("logger.console-verbosity", caf::atom("quiet"));
    return c;
  }

  system_fixture() : sys(init(cfg)) {
    // nop
  }
};

actor_registry make_actors() {
  actor_registry result;
  register_builtin_actors(result);
  dml::examples::register_example_actors(result);
  return result;
}

/// Spawns the observer "csv-logger" writing to `path`, as dml-node does.
expected<caf::actor> spawn_logger(caf::actor_system& sys,
                                  const std::string& path) {
  auto actors = make_actors();
  actor_context ctx;
  ctx.arg = path;
  return actors.spawn(actor_kind::observer, "csv-logger", sys, ctx);
}

const std::string header
  = "epoch,steps,samples,train_loss,test_loss,test_accuracy,test_mse,wall_s";

} // namespace

BOOST_AUTO_TEST_SUITE(examples)

// The squared hinge loss matches a naive reference, and its gradient (with
// an L2 term) matches central finite differences, dense and sparse.
BOOST_AUTO_TEST_CASE(svm_gradient_matches_finite_differences) {
  for (size_t classes : {2u, 3u, 5u}) {
    BOOST_TEST_CONTEXT(classes << " classes") {
      auto cfg = svm_config(7, classes);
      auto m = make_svm(cfg.inputs, classes);
      BOOST_TEST(m->name() == "svm");
      BOOST_TEST(m->num_params() == classes * 8);
      BOOST_TEST(m->num_outputs() == classes);
      BOOST_TEST((m->task() == task_kind::classification));
      auto p = make_problem(9, cfg.inputs, classes, 11 + classes);
      // Keep every margin further from the kink than a finite-difference
      // step can move it (about 10 h here): try parameters until so.
      const float h = 1e-2f;
      std::vector<float> params;
      for (uint64_t seed = 1; seed < 50; ++seed) {
        params = m->init(seed);
        rng gen{seed + 100};
        for (size_t i = classes * cfg.inputs; i < params.size(); ++i)
          params[i] = static_cast<float>(0.3 * gen.normal());
        if (kink_distance(cfg, params, p) >= 20 * h)
          break;
      }
      BOOST_REQUIRE(kink_distance(cfg, params, p) >= 20 * h);
      auto expected = reference_loss(cfg, params, p);
      BOOST_TEST(expected > 0.0);
      BOOST_TEST(m->loss(params.data(), p.dense_view()) == expected,
                 boost::test_tools::tolerance(1e-5));
      BOOST_TEST(m->loss(params.data(), p.sparse_view()) == expected,
                 boost::test_tools::tolerance(1e-5));
      BOOST_TEST_CONTEXT("dense") {
        check_gradient(*m, params, p.dense_view(), 0.1f, h, 1e-2);
      }
      BOOST_TEST_CONTEXT("sparse") {
        check_gradient(*m, params, p.sparse_view(), 0.1f, h, 1e-2);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(svm_loss_is_pure_function_of_scores) {
  // Two rows, three classes; column-major scores.
  //   row 0 (class 0): s = (2, -2, 0.5)  -> 0 + 0 + 1.5^2
  //   row 1 (class 2): s = (0, -1, 0.25) -> 1 + 0 + 0.75^2
  std::vector<float> s{2.0f, 0.0f, -2.0f, -1.0f, 0.5f, 0.25f};
  std::vector<float> y{0.0f, 2.0f};
  auto l = dml::examples::squared_hinge(s.data(), 2, 3, y.data(), true);
  BOOST_TEST(l == 2.25 + 1.0 + 0.5625, boost::test_tools::tolerance(1e-9));
  std::vector<float> g{0.0f, 2.0f, 0.0f, 0.0f, 3.0f, -1.5f};
  for (size_t i = 0; i < s.size(); ++i)
    BOOST_TEST(s[i] == g[i]);
  // A target that is no class makes the loss NaN.
  std::vector<float> bad{0.0f, 3.0f};
  BOOST_TEST(std::isnan(
    dml::examples::squared_hinge(s.data(), 2, 3, bad.data(), false)));
}

BOOST_AUTO_TEST_CASE(svm_predict_orders_like_scores) {
  auto cfg = svm_config(5, 4);
  auto m = make_svm(cfg.inputs, cfg.outputs);
  auto p = make_problem(12, cfg.inputs, cfg.outputs, 5);
  auto params = m->init(3);
  std::vector<float> out(p.rows * cfg.outputs);
  std::vector<float> out_sparse(out.size());
  m->predict(params.data(), p.dense_view(), out.data());
  m->predict(params.data(), p.sparse_view(), out_sparse.data());
  for (size_t r = 0; r < p.rows; ++r) {
    auto s = scores(cfg, params, p.dense.data() + r * p.cols);
    auto top = std::max_element(s.begin(), s.end()) - s.begin();
    const float* row = out.data() + r * cfg.outputs;
    BOOST_TEST(predicted_class(row, cfg.outputs) == static_cast<size_t>(top));
    double sum = 0.0;
    for (size_t k = 0; k < cfg.outputs; ++k) {
      sum += row[k];
      BOOST_TEST(std::abs(row[k] - out_sparse[r * cfg.outputs + k]) <= 1e-6f);
    }
    BOOST_TEST(sum == 1.0, boost::test_tools::tolerance(1e-5));
  }
}

BOOST_AUTO_TEST_CASE(svm_add_l2_skips_biases_and_init_is_deterministic) {
  auto m = make_svm(3, 2);
  std::vector<float> params(m->num_params(), 2.0f);
  std::vector<float> grad(m->num_params(), 1.0f);
  auto penalty = m->add_l2(params.data(), 0.5f, grad.data());
  BOOST_TEST(penalty == 0.5 * 0.5 * 4.0 * 6,
             boost::test_tools::tolerance(1e-9));
  for (size_t i = 0; i < grad.size(); ++i)
    BOOST_TEST(grad[i] == (i < 6 ? 2.0f : 1.0f));
  BOOST_TEST(m->init(7) == m->init(7));
  BOOST_TEST(m->init(7) != m->init(8));
  auto w = m->init(7);
  BOOST_TEST(
    std::all_of(w.begin() + 6, w.end(), [](float x) { return x == 0; }));
}

// Gradient descent on separable synthetic data reaches high accuracy, dense
// and sparse alike.
BOOST_AUTO_TEST_CASE(svm_learns_separable_data) {
  synthetic_options opts;
  opts.rows = 600;
  opts.cols = 8;
  opts.classes = 4;
  opts.noise = 0.5f;
  opts.seed = 3;
  auto data = make_classification(opts);
  auto p = problem_of(data);
  for (bool sparse : {false, true}) {
    BOOST_TEST_CONTEXT((sparse ? "sparse" : "dense")) {
      auto m = make_svm(opts.cols, opts.classes);
      auto params = m->init(1);
      auto before = evaluate(*m, params.data(), data);
      auto b = sparse ? p.sparse_view() : p.dense_view();
      std::vector<float> grad(m->num_params());
      auto n = static_cast<float>(p.rows);
      for (int it = 0; it < 150; ++it) {
        m->loss_and_gradient(params.data(), b, grad.data());
        for (auto& g : grad)
          g /= n;
        m->add_l2(params.data(), 1e-3f, grad.data());
        for (size_t i = 0; i < params.size(); ++i)
          params[i] -= 0.1f * grad[i];
      }
      auto after = evaluate(*m, params.data(), data);
      BOOST_TEST_MESSAGE("svm: accuracy "
                         << before.accuracy << " -> " << after.accuracy
                         << ", loss " << before.loss << " -> " << after.loss);
      BOOST_TEST(after.accuracy >= 0.98);
      BOOST_TEST(after.loss < 0.2 * before.loss);
    }
  }
}

BOOST_AUTO_TEST_CASE(svm_factory_checks_config) {
  auto models = make_models();
  BOOST_TEST(models.contains("svm"));
  BOOST_TEST(models.contains("softmax"));
  auto one = models.make(svm_config(4, 1));
  BOOST_REQUIRE(!one);
  BOOST_TEST((one.err().code() == errc::bad_config));
  BOOST_TEST(one.err().message().find("'svm'") != std::string::npos,
             one.err().message());
  BOOST_TEST(one.err().message().find("2 classes") != std::string::npos);
  auto cfg = svm_config(4, 3);
  cfg.hidden = {8};
  auto hidden = models.make(cfg);
  BOOST_REQUIRE(!hidden);
  BOOST_TEST(hidden.err().message().find("hidden") != std::string::npos);
  BOOST_TEST(!models.make(svm_config(0, 3)));
}

BOOST_AUTO_TEST_CASE(unknown_names_list_known_ones) {
  auto models = make_models();
  auto cfg = svm_config(4, 3);
  cfg.name = "svn";
  auto m = models.make(cfg);
  BOOST_REQUIRE(!m);
  BOOST_TEST((m.err().code() == errc::unknown_model));
  BOOST_TEST(m.err().message()
               == "unknown model 'svn' (known: linear, logistic, mlp, "
                  "softmax, svm)",
             m.err().message());
  system_fixture fx;
  auto actors = make_actors();
  BOOST_TEST(actors.contains(actor_kind::observer, "csv-logger"));
  actor_context ctx;
  auto ob = actors.spawn(actor_kind::observer, "csv-log", fx.sys, ctx);
  BOOST_REQUIRE(!ob);
  BOOST_TEST((ob.err().code() == errc::unknown_name));
  BOOST_TEST(ob.err().message()
               == "unknown observer 'csv-log' (known: csv-logger)",
             ob.err().message());
  auto agg = actors.spawn(actor_kind::aggregator, "csv-logger", fx.sys, ctx);
  BOOST_REQUIRE(!agg);
  BOOST_TEST(agg.err().message()
               == "unknown aggregator 'csv-logger' (known: aggregator)",
             agg.err().message());
}

BOOST_AUTO_TEST_CASE(csv_row_formats_epoch_records) {
  BOOST_TEST(dml::examples::csv_header() == header + "\n");
  auto row = dml::examples::csv_row(
    R"({"epoch":2,"steps":40,"samples":1000,"train_loss":0.5,)"
    R"("test_loss":0.25,"test_accuracy":0.875,"test_class_rows":[1,2],)"
    R"("wall_s":1.5,"samples_per_s":800.0})");
  BOOST_REQUIRE(row);
  BOOST_TEST(*row == "2,40,1000,0.5,0.25,0.875,,1.5\n");
  // Regression without a test set: only the training columns.
  auto reg = dml::examples::csv_row(
    R"({"epoch":1,"steps":4,"samples":10,"train_loss":3,"wall_s":0.125})");
  BOOST_REQUIRE(reg);
  BOOST_TEST(*reg == "1,4,10,3,,,,0.125\n");
  // The final record is no epoch.
  auto fin = dml::examples::csv_row(R"({"event":"final","epochs":2})");
  BOOST_REQUIRE(fin);
  BOOST_TEST(fin->empty());
  for (auto bad : {"not json", "[1,2]", R"({"epoch":"one"})"}) {
    auto r = dml::examples::csv_row(bad);
    BOOST_REQUIRE(!r);
    BOOST_TEST((r.err().code() == errc::bad_format));
  }
}

// The actor, spawned as dml-node does, writes the header and one row per
// epoch record, ignores the final record, and quits on stop_atom.
BOOST_AUTO_TEST_CASE(csv_logger_writes_epoch_rows) {
  temp_dir dir;
  auto path = dir.file("log.csv");
  {
    system_fixture fx;
    auto ob = spawn_logger(fx.sys, path);
    BOOST_REQUIRE_MESSAGE(ob, (ob ? std::string{} : ob.err().message()));
    // The factory already wrote the header.
    BOOST_TEST(read_lines(path) == std::vector<std::string>{header});
    caf::scoped_actor self{fx.sys};
    for (int e = 1; e <= 3; ++e)
      self->send(*ob, record_atom_v,
                 "{\"epoch\":" + std::to_string(e)
                   + ",\"steps\":" + std::to_string(10 * e)
                   + ",\"samples\":" + std::to_string(100 * e)
                   + ",\"train_loss\":0.5,\"test_loss\":0.75"
                     ",\"test_accuracy\":0.875,\"wall_s\":0.25}");
    self->send(*ob, record_atom_v,
               std::string{R"({"event":"final","epochs":3,"steps":30})"});
    self->send(*ob, stop_atom_v);
    self->wait_for(*ob);
  }
  auto lines = read_lines(path);
  BOOST_TEST(
    lines
    == (std::vector<std::string>{header, "1,10,100,0.5,0.75,0.875,,0.25",
                                 "2,20,200,0.5,0.75,0.875,,0.25",
                                 "3,30,300,0.5,0.75,0.875,,0.25"}));
}

// A bad record makes the actor report and quit, keeping the rows so far.
BOOST_AUTO_TEST_CASE(csv_logger_quits_on_bad_record) {
  temp_dir dir;
  auto path = dir.file("log.csv");
  system_fixture fx;
  auto ob = spawn_logger(fx.sys, path);
  BOOST_REQUIRE(ob);
  caf::scoped_actor self{fx.sys};
  self->send(*ob, record_atom_v, std::string{R"({"epoch":1,"steps":1})"});
  self->send(*ob, record_atom_v, std::string{"{oops"});
  self->wait_for(*ob);
  BOOST_TEST(read_lines(path)
             == (std::vector<std::string>{header, "1,1,,,,,,"}));
}

BOOST_AUTO_TEST_CASE(csv_logger_factory_reports_bad_paths) {
  system_fixture fx;
  auto actors = make_actors();
  actor_context ctx;
  temp_dir dir;
  ctx.arg = dir.file("no-such-dir/log.csv");
  auto ob = actors.spawn(actor_kind::observer, "csv-logger", fx.sys, ctx);
  BOOST_REQUIRE(!ob);
  BOOST_TEST((ob.err().code() == errc::io_error));
  BOOST_TEST(ob.err().message()
               == "--observer csv-logger: " + ctx.arg
                 + ": cannot create: No such file or directory",
             ob.err().message());
  ctx.arg.clear();
  auto none = actors.spawn(actor_kind::observer, "csv-logger", fx.sys, ctx);
  BOOST_REQUIRE(!none);
  BOOST_TEST((none.err().code() == errc::bad_config));
  BOOST_TEST(none.err().message().find("csv-logger:PATH") != std::string::npos,
             none.err().message());
}

BOOST_AUTO_TEST_SUITE_END()
