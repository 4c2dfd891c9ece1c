// Local mode end to end: the whole graph in one process with real threads.

#include "actors/local.hpp"

#include <filesystem>
#include <fstream>

#include "tests/actors/fixture.hpp"
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "runtime/loaders.hpp"
#include "runtime/model_file.hpp"
#include "runtime/sha256.hpp"

using namespace dml;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string fashion = DML_FASHION_MNIST_DIR;

struct local_fixture : test::threaded_fixture {
  model_registry models;
  actor_registry actors;
  fs::path dir;

  local_fixture() {
    register_builtin_models(models);
    register_builtin_actors(actors);
    dir = fs::temp_directory_path()
      / ("dml-local-" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }

  ~local_fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  json run(const local_options& opts, const prepared_data& data) {
    auto rec = run_local(sys, opts, data, models, actors);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(rec),
                          (rec ? std::string{} : rec.err().message()));
    return json::parse(*rec);
  }

  static local_options fashion_opts() {
    local_options o;
    o.spec.train_path = fashion + "/train-images-idx3-ubyte.gz";
    o.spec.test_path = fashion + "/t10k-images-idx3-ubyte.gz";
    o.spec.batch_size = 128;
    o.spec.epochs = 10;
    o.spec.workers = 4;
    o.spec.aggregators = 2;
    o.report.quiet = true;
    return o;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(local_mode)

BOOST_FIXTURE_TEST_CASE(softmax_on_fashion_mnist, local_fixture) {
  auto o = fashion_opts();
  o.spec.model = "softmax";
  o.spec.opt.lr = 0.1f;
  o.model_out = (dir / "softmax.dml").string();
  o.report.metrics_path = (dir / "m.jsonl").string();
  auto data = prepare_data(o.spec);
  BOOST_REQUIRE(data);
  auto rec = run(o, *data);
  BOOST_TEST_MESSAGE("softmax 4 workers 2 aggregators: " << rec.dump());
  BOOST_TEST(rec["test_accuracy"].get<double>() >= 0.83);
  BOOST_TEST(rec["samples"].get<uint64_t>() == 10u * 60000u);
  BOOST_TEST(rec["epochs"].get<uint32_t>() == 10u);
  // The saved model holds the parameters the record hashes.
  auto file = load_model_file(o.model_out);
  BOOST_REQUIRE(file);
  BOOST_TEST(params_sha256(file->params)
             == rec["params_sha256"].get<std::string>());
  // One JSON line per epoch, then the final one.
  std::ifstream in{o.report.metrics_path};
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    auto r = json::parse(line);
    ++lines;
    if (lines <= 10)
      BOOST_TEST(r["epoch"].get<int>() == lines);
  }
  BOOST_TEST(lines == 11);
}

BOOST_FIXTURE_TEST_CASE(mlp_on_fashion_mnist, local_fixture) {
  auto o = fashion_opts();
  o.spec.model = "mlp";
  o.spec.hidden = {128};
  o.spec.opt.kind = optimizer_kind::adam;
  o.spec.opt.lr = 0.001f;
  auto data = prepare_data(o.spec);
  BOOST_REQUIRE(data);
  auto rec = run(o, *data);
  BOOST_TEST_MESSAGE("mlp 784-128-10 4 workers 2 aggregators: " << rec.dump());
  BOOST_TEST(rec["test_accuracy"].get<double>() >= 0.865);
  BOOST_TEST(rec["samples"].get<uint64_t>() == 10u * 60000u);
}

BOOST_FIXTURE_TEST_CASE(regression_and_repeatability, local_fixture) {
  synthetic_options so;
  so.rows = 3001;
  so.cols = 8;
  so.noise = 0.1f;
  prepared_data data;
  data.train = std::make_shared<dataset>(make_regression(so));
  data.test = data.train;
  data.task = task_kind::regression;
  local_options o;
  o.spec.train_path = "synthetic";
  o.spec.model = "linear";
  o.spec.epochs = 5;
  o.spec.batch_size = 64;
  o.spec.opt.lr = 0.05f;
  o.spec.workers = 3;
  o.spec.aggregators = 2;
  o.report.quiet = true;
  o.report.task = task_kind::regression;
  data.config = make_model_config(o.spec, 8, 0);
  auto a = run(o, data);
  auto b = run(o, data);
  BOOST_TEST(a["test_r2"].get<double>() > 0.95);
  BOOST_TEST(a["samples"].get<uint64_t>() == 5u * 3001u);
  BOOST_TEST(a["params_sha256"] == b["params_sha256"]);
}

BOOST_FIXTURE_TEST_CASE(unknown_actor_type_is_an_error, local_fixture) {
  synthetic_options so;
  so.rows = 50;
  prepared_data data;
  data.train = std::make_shared<dataset>(make_classification(so));
  local_options o;
  o.spec.train_path = "synthetic";
  o.spec.workers = 2;
  o.spec.aggregators = 1;
  o.aggregator_type = "fancy";
  o.report.quiet = true;
  data.config = make_model_config(o.spec, so.cols, 2);
  auto rec = run_local(sys, o, data, models, actors);
  BOOST_REQUIRE(!rec);
  BOOST_TEST(rec.err().message()
             == "unknown aggregator 'fancy' (known: aggregator)");
}

BOOST_AUTO_TEST_SUITE_END()
