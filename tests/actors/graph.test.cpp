// The actor graph under CAF's deterministic scheduler: the step protocol,
// epoch accounting and determinism, without threads or timing.

#include "tests/actors/graph_fixture.hpp"
#include <sys/resource.h>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "runtime/sha256.hpp"

using namespace dml;
using json = nlohmann::json;
using dml::test::graph_fixture;

BOOST_AUTO_TEST_SUITE(graph)

BOOST_FIXTURE_TEST_CASE(every_row_once_per_epoch_in_any_layout, graph_fixture) {
  struct layout {
    uint32_t workers, aggregators, shards;
  };
  for (auto l : {layout{1, 0, 1}, layout{2, 0, 2}, layout{3, 0, 7},
                 layout{4, 2, 16}, layout{3, 1, 5}, layout{4, 3, 9}}) {
    auto s = spec(l.workers, l.aggregators, l.shards);
    auto rec = run(s);
    BOOST_TEST_INFO("workers " << l.workers << " aggregators " << l.aggregators
                               << " shards " << l.shards);
    BOOST_REQUIRE(!rec.is_null());
    BOOST_TEST(rec["event"] == "final");
    BOOST_TEST(rec["samples"].get<uint64_t>() == 3u * 203u);
    BOOST_TEST(rec["epochs"].get<uint32_t>() == 3u);
    // Each step uses at most batch_size rows, so at least ceil(203/16).
    BOOST_TEST(rec["steps"].get<uint64_t>() >= 3u * 13u);
  }
}

// With one worker and no aggregator the graph computes exactly what the
// single-threaded reference loop computes.
BOOST_FIXTURE_TEST_CASE(one_worker_equals_the_reference_loop, graph_fixture) {
  auto s = spec(1, 0, 4);
  auto rec = run(s);
  auto ref = train_single_threaded(s, data, models);
  BOOST_REQUIRE(ref);
  BOOST_TEST(rec["params_sha256"].get<std::string>()
             == params_sha256(ref->model.params));
  BOOST_TEST(rec["steps"].get<uint64_t>() == ref->steps);
}

BOOST_FIXTURE_TEST_CASE(same_flags_give_identical_parameters, graph_fixture) {
  auto s = spec(4, 2, 16);
  auto a = run(s);
  auto b = run(s);
  BOOST_TEST(a["params_sha256"] == b["params_sha256"]);
  s.seed = 7;
  auto c = run(s);
  BOOST_TEST(a["params_sha256"] != c["params_sha256"]);
}

BOOST_FIXTURE_TEST_CASE(worker_rejects_nothing_and_sums_its_rows,
                        graph_fixture) {
  // A worker's reply is the sum over exactly the rows it was named.
  auto s = spec(1, 0, 2);
  auto inst = instance();
  auto params = inst->init(1);
  auto w = spawn_worker(s, 2, {});
  caf::scoped_actor self{sys};
  step_plan plan{0, 0, 0, {assignment{0, {row_span{1, 3, 5}}}}};
  self->send(w, step_atom_v, plan, tensor{params});
  sched.run();
  // The reply went to the scoped actor as a plain message.
  grad_msg got;
  self->receive([&](grad_msg& g) { got = std::move(g); },
                caf::after(std::chrono::seconds(0)) >>
                  [] { BOOST_FAIL("no reply"); });
  BOOST_TEST(got.count == 5u);
  BOOST_TEST(got.ranks == std::vector<int32_t>{0});
  // Recompute by hand.
  shard_plan geo{data.train->rows, 2};
  auto order = shard_order(s.seed, 0, 1, geo.shards()[1].size());
  std::vector<uint32_t> rows;
  span_rows(row_span{1, 3, 5}, geo.shards()[1].begin, order, rows);
  batch_buffer buf;
  auto batch = buf.gather(*data.train, rows.data(), rows.size());
  std::vector<float> grad(params.size());
  auto loss = inst->loss_and_gradient(params.data(), batch, grad.data());
  BOOST_TEST(got.loss == loss);
  BOOST_TEST(to_vector(got.values) == grad);
  self->send(w, stop_atom_v);
  sched.run();
}

// A tensor whose announced size exceeds the bytes that follow is refused
// before anything is allocated (a peer could announce any size).
BOOST_AUTO_TEST_CASE(tensor_with_a_false_size_is_refused) {
  std::vector<char> bytes;
  caf::binary_serializer sink{nullptr, bytes};
  size_t huge = size_t{1} << 28; // 1 GiB of floats
  BOOST_REQUIRE(!sink.begin_sequence(huge));
  float some[2] = {1, 2};
  BOOST_REQUIRE(!sink.apply_raw(sizeof(some), some));
  tensor t;
  auto peak = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss; // KiB
  };
  auto before = peak();
  caf::binary_deserializer source{nullptr, bytes};
  BOOST_TEST(static_cast<bool>(source(t)));
  // Nothing near the announced 1 GiB was allocated (and zeroed).
  BOOST_TEST(peak() - before < 100 * 1024);
  // The honest encoding of the same two floats reads back bit for bit.
  std::vector<char> good;
  caf::binary_serializer out{nullptr, good};
  tensor two{std::vector<float>{1, 2}};
  BOOST_REQUIRE(!out(two));
  caf::binary_deserializer in{nullptr, good};
  BOOST_REQUIRE(!in(t));
  BOOST_TEST(to_vector(t) == std::vector<float>({1, 2}));
}

BOOST_AUTO_TEST_SUITE_END()
