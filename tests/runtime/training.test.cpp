#include "runtime/training.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/test/unit_test.hpp>
#include <unistd.h>

#include "runtime/loaders.hpp"

using namespace dml;

namespace {

const std::string fashion = DML_FASHION_MNIST_DIR;

job_spec fashion_softmax() {
  job_spec s;
  s.train_path = fashion + "/train-images-idx3-ubyte.gz";
  s.test_path = fashion + "/t10k-images-idx3-ubyte.gz";
  s.model = "softmax";
  s.opt.lr = 0.1f;
  s.batch_size = 128;
  s.epochs = 10;
  s.seed = 1;
  return s;
}

/// Returns `d` in CSR form (every other column dropped, to be sparse).
dataset to_sparse(const dataset& d) {
  dataset s;
  s.rows = d.rows;
  s.cols = d.cols;
  s.sparse = true;
  s.targets = d.targets;
  s.csr.indptr.push_back(0);
  for (size_t r = 0; r < d.rows; ++r) {
    for (size_t c = r % 2; c < d.cols; c += 2) {
      s.csr.indices.push_back(static_cast<int32_t>(c));
      s.csr.values.push_back(d.dense[r * d.cols + c]);
    }
    s.csr.indptr.push_back(static_cast<int64_t>(s.csr.indices.size()));
  }
  return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(training)

// The reference loop reaches the accuracy the runtime is held to.
BOOST_AUTO_TEST_CASE(softmax_fashion_mnist_reaches_083) {
  auto spec = fashion_softmax();
  auto data = prepare_data(spec);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(data),
                        (data ? std::string{} : data.err().message()));
  BOOST_TEST(data->config.outputs == 10u);
  BOOST_TEST(data->config.inputs == 784u);
  model_registry reg;
  register_builtin_models(reg);
  auto out = train_single_threaded(spec, *data, reg);
  BOOST_REQUIRE(out);
  BOOST_TEST(out->samples == 10u * 60000u);
  BOOST_TEST(out->epochs.size() == 10u);
  auto acc = out->epochs.back().test.accuracy;
  BOOST_TEST_MESSAGE("softmax test accuracy " << acc);
  BOOST_TEST(acc >= 0.83);
  BOOST_TEST(out->epochs.back().test.class_rows.size() == 10u);
}

BOOST_AUTO_TEST_CASE(runs_are_bit_identical) {
  synthetic_options o;
  o.rows = 500;
  o.cols = 6;
  o.classes = 3;
  o.noise = 1.0f;
  auto d = std::make_shared<dataset>(make_classification(o));
  prepared_data data;
  data.train = d;
  job_spec spec;
  spec.train_path = "synthetic";
  spec.model = "softmax";
  spec.epochs = 3;
  spec.batch_size = 32;
  spec.opt.kind = optimizer_kind::adam;
  spec.opt.lr = 0.01f;
  data.config = make_model_config(spec, 6, 3);
  model_registry reg;
  register_builtin_models(reg);
  auto a = train_single_threaded(spec, data, reg);
  BOOST_REQUIRE(a);
  // Buffers land at other addresses (alignments) in every run: the bits
  // must not care.
  std::vector<std::vector<char>> junk;
  for (int i = 1; i <= 6; ++i) {
    junk.emplace_back(static_cast<size_t>(i * 24 + 8));
    auto b = train_single_threaded(spec, data, reg);
    BOOST_REQUIRE(b);
    BOOST_TEST(a->model.params == b->model.params);
  }
  BOOST_TEST(a->samples == 1500u);
  spec.seed = 2;
  auto c = train_single_threaded(spec, data, reg);
  BOOST_TEST(a->model.params != c->model.params);
}

BOOST_AUTO_TEST_CASE(regression_fits_synthetic_data) {
  synthetic_options o;
  o.rows = 2000;
  o.cols = 5;
  o.noise = 0.1f;
  prepared_data data;
  data.train = std::make_shared<dataset>(make_regression(o));
  o.seed = 1; // same weights, fresh rows are not needed: evaluate on train
  data.test = data.train;
  data.task = task_kind::regression;
  job_spec spec;
  spec.train_path = "synthetic";
  spec.model = "linear";
  spec.epochs = 20;
  spec.batch_size = 32;
  spec.opt.lr = 0.05f;
  data.config = make_model_config(spec, 5, 0);
  model_registry reg;
  register_builtin_models(reg);
  auto out = train_single_threaded(spec, data, reg);
  BOOST_REQUIRE(out);
  auto& t = out->epochs.back().test;
  BOOST_TEST_MESSAGE("linear r2 " << t.r2 << " mse " << t.mse);
  BOOST_TEST(t.r2 > 0.95);
  BOOST_TEST(t.mse < 0.05);
}

BOOST_AUTO_TEST_CASE(test_label_outside_classes_is_an_error) {
  // Training labels 0..1, a test label 2: the model cannot predict it.
  auto dir = std::filesystem::temp_directory_path()
    / ("dml-training-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream train{dir / "train.csv"};
    train << "a,b,label\n1,2,0\n3,4,1\n5,6,0\n";
    std::ofstream test{dir / "test.csv"};
    test << "a,b,label\n1,2,0\n3,4,2\n";
  }
  job_spec spec;
  spec.train_path = (dir / "train.csv").string();
  spec.test_path = (dir / "test.csv").string();
  auto data = prepare_data(spec);
  std::filesystem::remove_all(dir);
  BOOST_REQUIRE(!data);
  BOOST_TEST((data.err().code() == errc::bad_value));
  BOOST_TEST(data.err().message()
             == spec.test_path
               + ": row 2: label 2 is outside the model's 2 "
                 "classes");
}

namespace {

/// Softmax on 90 synthetic rows of 6 columns (3 classes) in 3 shards, and
/// the spans of one step of one worker.
struct shard_case {
  model_registry models;
  std::shared_ptr<const dataset> full;
  std::unique_ptr<model> m;
  std::vector<float> params;
  shard_plan geo;
  std::vector<row_span> spans{{0, 2, 7}, {2, 0, 11}};

  explicit shard_case(bool sparse) {
    register_builtin_models(models);
    synthetic_options o;
    o.rows = 90;
    o.cols = 6;
    o.classes = 3;
    auto dense = make_classification(o);
    full = std::make_shared<const dataset>(sparse ? to_sparse(dense) : dense);
    job_spec spec;
    spec.model = "softmax";
    auto made = models.make(make_model_config(spec, o.cols, 3));
    BOOST_REQUIRE(static_cast<bool>(made));
    m = std::move(*made);
    params = m->init(5);
    geo = shard_plan{full->rows, 3};
  }

  /// Computes `spans` (or `xs`) of `epoch` with `c` into `out`.
  error compute(shard_computer& c, gradient_sum& out, uint64_t epoch = 1) {
    return compute(c, out, spans, epoch);
  }

  error compute(shard_computer& c, gradient_sum& out,
                const std::vector<row_span>& xs, uint64_t epoch = 1) {
    return c.compute(*m, params.data(), epoch, xs, geo.shards(), out);
  }

  /// Returns the gradient of `spans` in epoch 1 by a computer of its own
  /// over the whole set (seed 9), the reference of the tests below.
  gradient_sum reference() {
    gradient_sum want;
    shard_computer plain{full, 9};
    BOOST_REQUIRE(!compute(plain, want));
    return want;
  }

  /// Returns rows `[s.begin, s.end)` of shard `id` as a dataset of their own.
  std::shared_ptr<const dataset> shard_rows(uint32_t id) const {
    auto& s = geo.shards()[id];
    return std::make_shared<const dataset>(copy_rows(*full, s.begin, s.size()));
  }
};

} // namespace

// A worker computes the same gradient whether it holds the whole set, only
// its shards at their places, or a shard adopted later as rows of its own
// (dense and sparse).
BOOST_AUTO_TEST_CASE(shard_placement_and_adoption_give_the_same_gradient) {
  for (bool sparse : {false, true}) {
    shard_case t{sparse};
    auto want = t.reference();
    // Shard 0 placed at row 0 of a partial copy, shard 2 adopted.
    shard_computer some{t.shard_rows(0), 9};
    some.hold_none(3);
    some.place(0, 0);
    BOOST_TEST(!some.holds(2));
    gradient_sum got;
    auto refused = t.compute(some, got);
    BOOST_TEST(refused.message() == "shard 2 is not held here");
    some.adopt(2, t.shard_rows(2));
    BOOST_TEST(some.holds(2));
    BOOST_REQUIRE(!t.compute(some, got));
    BOOST_TEST(got.count == 18u);
    BOOST_TEST(got.loss == want.loss);
    BOOST_TEST(got.values == want.values);
  }
}

namespace {

/// Runs half jobs on a thread of its own (started per job), right away
/// (before the owner's half), or never (the owner runs them).
class test_runner : public half_runner {
public:
  enum mode { thread, at_once, never };

  explicit test_runner(mode m) : mode_(m) {
    // nop
  }

  ~test_runner() override {
    for (auto& t : threads_)
      t.join();
  }

  void start(std::shared_ptr<half_job> job) override {
    if (mode_ == thread)
      threads_.emplace_back([job] { job->try_run(); });
    else if (mode_ == at_once)
      BOOST_TEST(job->try_run());
  }

private:
  mode mode_;
  std::vector<std::thread> threads_;
};

} // namespace

// An update split in halves, the upper one run by another thread, before
// the lower one or by the owner, gives the bits of the update in one piece.
BOOST_AUTO_TEST_CASE(split_update_is_bit_identical) {
  const size_t n = 40003; // above the size at which it splits; odd
  std::vector<float> a(n), b(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = std::sin(0.37f * static_cast<float>(i));
    b[i] = std::cos(0.11f * static_cast<float>(i));
  }
  const float* parts[] = {a.data(), b.data()};
  for (auto kind : {"sgd", "momentum", "adam"}) {
    job_spec spec;
    spec.opt.kind = *parse_optimizer(kind);
    spec.opt.lr = 0.01f;
    auto run = [&](half_runner* runner) {
      std::vector<float> params(n, 0.25f);
      auto opt = make_optimizer_state(spec.opt, n);
      for (int step = 0; step < 3; ++step)
        apply_step_fused(spec, parts, 2, 64, 1.0, 0.1 * step, params.data(),
                         params.data(), n, opt, runner);
      BOOST_TEST(opt.updates == 3u);
      return std::make_pair(params, opt.m);
    };
    auto want = run(nullptr);
    for (auto m :
         {test_runner::thread, test_runner::at_once, test_runner::never}) {
      test_runner runner{m};
      auto got = run(&runner);
      BOOST_TEST_INFO(kind << ", runner mode " << static_cast<int>(m));
      BOOST_TEST((got == want));
    }
  }
}

// Computing into memory of the caller's (a tensor link's shared segment)
// gives the bits of the buffered path, overwrites what was there, and leaves
// the sum's own buffer alone; so does an empty step.
BOOST_AUTO_TEST_CASE(gradient_computed_in_place_is_bit_identical) {
  shard_case t{false};
  auto& shards = t.geo.shards();
  auto want = t.reference();
  shard_computer direct{t.full, 9};
  gradient_sum got;
  got.values = {42.0f};
  std::vector<float> region(t.m->num_params(), -7.0f);
  BOOST_REQUIRE(!direct.compute_to(*t.m, t.params.data(), 1, t.spans, shards,
                                   got, region.data()));
  BOOST_TEST(got.count == want.count);
  BOOST_TEST(got.loss == want.loss);
  BOOST_TEST(region == want.values);
  BOOST_TEST(got.values == std::vector<float>{42.0f});
  BOOST_REQUIRE(!direct.compute_to(*t.m, t.params.data(), 1, {}, shards, got,
                                   region.data()));
  BOOST_TEST(got.count == 0u);
  BOOST_TEST(region == std::vector<float>(t.m->num_params(), 0.0f));
}

// Rows gathered ahead of time give the same bits as rows gathered on
// demand, are used only for exactly the spans and epoch they were gathered
// for, and are dropped when the rows held change.
BOOST_AUTO_TEST_CASE(prepared_rows_give_the_same_gradient) {
  shard_case t{false};
  auto& shards = t.geo.shards();
  gradient_sum want;
  shard_computer plain{t.full, 9};
  BOOST_REQUIRE(!t.compute(plain, want));
  BOOST_TEST(!plain.used_prepared());
  shard_computer ahead{t.full, 9};
  gradient_sum got;
  ahead.prepare(1, t.spans, shards);
  BOOST_REQUIRE(!t.compute(ahead, got));
  BOOST_TEST(ahead.used_prepared());
  BOOST_TEST(got.loss == want.loss);
  BOOST_TEST(got.values == want.values);
  // Another epoch (another shuffle) or other spans: gathered again.
  ahead.prepare(2, t.spans, shards);
  BOOST_REQUIRE(!t.compute(ahead, got));
  BOOST_TEST(!ahead.used_prepared());
  BOOST_TEST(got.values == want.values);
  ahead.prepare(1, next_spans(t.spans, shards), shards);
  BOOST_REQUIRE(!t.compute(ahead, got));
  BOOST_TEST(!ahead.used_prepared());
  BOOST_TEST(got.values == want.values);
  // Prepared once: used once.
  ahead.prepare(1, t.spans, shards);
  BOOST_REQUIRE(!t.compute(ahead, got));
  BOOST_REQUIRE(!t.compute(ahead, got));
  BOOST_TEST(!ahead.used_prepared());
  // Rows held change (a shard adopted): what was prepared is dropped.
  ahead.prepare(1, t.spans, shards);
  ahead.adopt(2, t.shard_rows(2));
  BOOST_REQUIRE(!t.compute(ahead, got));
  BOOST_TEST(!ahead.used_prepared());
  BOOST_TEST(got.values == want.values);
  // Spans that would be refused are not gathered, and still refused.
  std::vector<row_span> outside{{1, 25, 10}};
  ahead.prepare(1, outside, shards);
  auto refused = t.compute(ahead, got, outside);
  BOOST_TEST(refused.message() == "rows 25+10 outside shard 1 of 30 rows");
}

BOOST_AUTO_TEST_CASE(next_spans_moves_each_span_past_itself) {
  shard_plan geo{100, 2}; // shards of 50 rows
  std::vector<row_span> spans{{0, 10, 20}, {1, 40, 5}};
  BOOST_TEST((next_spans(spans, geo.shards())
              == std::vector<row_span>{{0, 30, 20}, {1, 45, 5}}));
  // Cut at the shard's end, dropped at it.
  std::vector<row_span> late{{0, 40, 8}, {1, 30, 20}};
  BOOST_TEST(
    (next_spans(late, geo.shards()) == std::vector<row_span>{{0, 48, 2}}));
  BOOST_TEST(next_spans({}, geo.shards()).empty());
}

BOOST_AUTO_TEST_SUITE_END()
