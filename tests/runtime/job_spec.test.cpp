#include "runtime/job_spec.hpp"

#include <boost/test/unit_test.hpp>

using namespace dml;

BOOST_AUTO_TEST_SUITE(job_spec_json)

BOOST_AUTO_TEST_CASE(round_trip_is_exact) {
  job_spec s;
  s.train_path = "a.csv";
  s.model = "mlp";
  s.hidden = {128, 64};
  s.act = activation::tanh;
  s.l2 = 1e-4f;
  s.opt.kind = optimizer_kind::adam;
  s.opt.lr = 0.001f;
  s.opt.schedule = schedule_kind::cosine;
  s.batch_size = 256;
  s.seed = 42;
  s.workers = 4;
  s.aggregators = 2;
  auto text = to_json(s);
  auto back = job_spec_from_json(text);
  BOOST_REQUIRE(back);
  BOOST_TEST(to_json(*back) == text);
  BOOST_TEST(back->opt.lr == 0.001f);
  BOOST_TEST(back->l2 == 1e-4f);
  BOOST_TEST(back->hidden == s.hidden);
}

BOOST_AUTO_TEST_CASE(bad_json_is_rejected) {
  BOOST_TEST(!job_spec_from_json("{"));
  auto unknown = job_spec_from_json(R"({"modle":"mlp"})");
  BOOST_REQUIRE(!unknown);
  BOOST_TEST(unknown.err().message() == "job spec: unknown key 'modle'");
  BOOST_TEST(!job_spec_from_json(R"({"epochs":"ten"})"));
  BOOST_TEST(!job_spec_from_json(R"({"optimizer":"adagrad"})"));
}

BOOST_AUTO_TEST_CASE(validation_names_the_flag) {
  job_spec s;
  s.train_path = "x";
  BOOST_TEST(!validate(s));
  auto t = s;
  t.batch_size = 0;
  BOOST_TEST(validate(t).message() == "--batch-size: must be at least 1");
  t = s;
  t.workers = 2;
  t.aggregators = 3;
  BOOST_TEST(validate(t).message().rfind("--aggregators: ", 0) == 0u);
  t = s;
  t.opt.lr = -1;
  BOOST_TEST(validate(t).message().rfind("--lr: ", 0) == 0u);
  t = s;
  t.train_path.clear();
  BOOST_TEST(validate(t).message() == "--train: no training data given");
  t = s;
  t.workers = 4;
  t.shards = 3;
  BOOST_TEST(validate(t).message().rfind("--shards: ", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(task_resolution) {
  job_spec s;
  s.model = "linear";
  BOOST_TEST(resolved_task(s) == "regression");
  s.model = "softmax";
  BOOST_TEST(resolved_task(s) == "classification");
  s.task = "regression";
  BOOST_TEST(resolved_task(s) == "regression");
}

BOOST_AUTO_TEST_SUITE_END()
