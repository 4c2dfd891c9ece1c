// Fault tolerance under CAF's deterministic scheduler: each injected fault
// replays exactly, and every row is still used exactly once per epoch.

#include <filesystem>
#include <fstream>

#include "tests/actors/graph_fixture.hpp"
#include <unistd.h>

#include "runtime/checkpoints.hpp"
#include "runtime/fault.hpp"

using namespace dml;
using json = nlohmann::json;
using dml::test::graph_fixture;
using dml::test::run_options;

namespace {

std::vector<fault> faults(const std::string& text) {
  auto f = parse_faults(text);
  if (!f)
    BOOST_FAIL(f.err().message());
  return *f;
}

/// A fresh folder under the temp dir, removed at the end.
struct temp_dir {
  std::string path;
  temp_dir() {
    path = (std::filesystem::temp_directory_path()
            / ("dml-faults-" + std::to_string(::getpid()) + "-"
               + std::to_string(counter()++)))
             .string();
    std::filesystem::remove_all(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

/// Checks the exact accounting of a job that ended despite faults.
void check_complete(const json& rec, const std::string& failure,
                    uint64_t faults_seen, uint32_t workers_left) {
  BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
  BOOST_REQUIRE(!rec.is_null());
  BOOST_TEST(rec["samples"].get<uint64_t>() == 3u * 203u);
  BOOST_TEST(rec["epochs"].get<uint32_t>() == 3u);
  BOOST_TEST(rec["faults"].get<uint64_t>() == faults_seen);
  BOOST_TEST(rec["workers"].get<uint32_t>() == workers_left);
  BOOST_TEST(rec["recovery_s"].size() >= (faults_seen > 0 ? 1u : 0u));
}

} // namespace

BOOST_AUTO_TEST_SUITE(faults_injected)

BOOST_AUTO_TEST_CASE(fault_lists_parse_or_name_the_problem) {
  auto ok = parse_faults("kill:rank=2,step=40; hang:rank=1,step=10,ms=3000 "
                         "delay:rank=1,ms=20;drop-gradient:rank=0,step=7");
  BOOST_REQUIRE(static_cast<bool>(ok));
  BOOST_REQUIRE(ok->size() == 4u);
  BOOST_TEST((*ok)[1].ms == 3000u);
  BOOST_TEST(std::string{to_string((*ok)[2].kind)} == "delay");
  auto check = [](const std::string& text, const std::string& msg) {
    auto f = parse_faults(text);
    BOOST_REQUIRE(!f);
    BOOST_TEST(f.err().message() == msg);
  };
  check("explode:rank=1,step=2",
        "--inject 'explode:rank=1,step=2': unknown fault 'explode' (known: "
        "kill, hang, delay, drop-gradient, kill-aggregator)");
  check("kill:rank=x,step=2",
        "--inject 'kill:rank=x,step=2': rank 'x' is not a non-negative "
        "integer");
  check("kill:rank=1", "--inject 'kill:rank=1': step is required");
  check("hang:rank=1,step=3", "--inject 'hang:rank=1,step=3': ms is required");
  check("kill:rank=1,step=2,when=3",
        "--inject 'kill:rank=1,step=2,when=3': unknown key 'when' (known: "
        "rank, step, ms)");
}

BOOST_FIXTURE_TEST_CASE(a_killed_worker_costs_one_redone_step, graph_fixture) {
  auto s = spec(3, 0, 7);
  run_options o;
  o.recovery.faults = faults("kill:rank=1,step=5");
  auto rec = run(s, o);
  check_complete(rec, failure, 1, 2);
  BOOST_TEST(rec["steps_redone"].get<uint64_t>() == 1u);
  // The injected fault replays exactly: same parameters again.
  auto again = run(s, o);
  BOOST_TEST(again["params_sha256"] == rec["params_sha256"]);
  auto clean = run(s);
  BOOST_TEST(clean["faults"].get<uint64_t>() == 0u);
  BOOST_TEST(clean["steps_redone"].get<uint64_t>() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_killed_worker_behind_an_aggregator, graph_fixture) {
  auto s = spec(4, 2, 16);
  run_options o;
  o.recovery.faults = faults("kill:rank=2,step=9");
  check_complete(run(s, o), failure, 1, 3);
}

BOOST_FIXTURE_TEST_CASE(a_hung_worker_is_dropped_and_its_late_reply_ignored,
                        graph_fixture) {
  auto s = spec(3, 0, 7);
  run_options o;
  o.recovery.faults = faults("hang:rank=1,step=10,ms=3000");
  auto rec = run(s, o);
  check_complete(rec, failure, 1, 2);
  BOOST_TEST(rec["steps_redone"].get<uint64_t>() == 1u);
  // Behind an aggregator too.
  auto s2 = spec(4, 2, 16);
  check_complete(run(s2, o), failure, 1, 3);
}

BOOST_FIXTURE_TEST_CASE(a_lost_gradient_redoes_the_step, graph_fixture) {
  auto s = spec(2, 0, 4);
  run_options o;
  o.recovery.faults = faults("drop-gradient:rank=0,step=7");
  auto rec = run(s, o);
  check_complete(rec, failure, 1, 1);
}

BOOST_FIXTURE_TEST_CASE(a_slow_worker_under_the_deadline_changes_nothing,
                        graph_fixture) {
  auto s = spec(3, 1, 7);
  run_options o;
  o.recovery.faults = faults("delay:rank=1,ms=20");
  auto slow = run(s, o);
  check_complete(slow, failure, 0, 3);
  auto clean = run(s);
  BOOST_TEST(slow["params_sha256"] == clean["params_sha256"]);
}

BOOST_FIXTURE_TEST_CASE(a_lost_aggregator_reroutes_its_workers, graph_fixture) {
  auto s = spec(4, 2, 16);
  run_options o;
  o.recovery.faults = faults("kill-aggregator:rank=0,step=6");
  auto rec = run(s, o);
  check_complete(rec, failure, 1, 4);
  BOOST_TEST(rec["steps_redone"].get<uint64_t>() == 1u);
}

BOOST_FIXTURE_TEST_CASE(too_few_workers_stop_with_an_error_and_a_checkpoint,
                        graph_fixture) {
  temp_dir dir;
  auto s = spec(2, 0, 4);
  run_options o;
  o.recovery.faults = faults("kill:rank=1,step=5");
  o.recovery.min_workers = 2;
  o.recovery.checkpoint_dir = dir.path;
  o.recovery.checkpoint_every = 1000;
  auto rec = run(s, o);
  BOOST_TEST(rec.is_null());
  BOOST_TEST(failure
             == "only 1 live workers, --min-workers is 2, and none joined "
                "within 5 s; checkpoint of step 5 in "
               + dir.path);
  auto found = newest_checkpoint(dir.path);
  BOOST_REQUIRE(static_cast<bool>(found));
  BOOST_TEST(found->data.step == 5u);
  BOOST_TEST(found->data.samples == 5u * 16u);
}

BOOST_FIXTURE_TEST_CASE(a_joiner_takes_shards_at_a_step_boundary,
                        graph_fixture) {
  auto s = spec(2, 0, 8);
  run_options o;
  o.late_joiners = 1;
  o.join_after_events = 40;
  auto rec = run(s, o);
  check_complete(rec, failure, 0, 3);
}

BOOST_FIXTURE_TEST_CASE(joiners_beyond_the_batch_size_still_get_rows,
                        graph_fixture) {
  // Three ranks and a global batch of 2: the batch is split over the ranks
  // that still have rows, so the joiner's shards are used too.
  auto s = spec(2, 0, 8);
  s.batch_size = 2;
  run_options o;
  o.late_joiners = 1;
  o.join_after_events = 40;
  check_complete(run(s, o), failure, 0, 3);
}

BOOST_FIXTURE_TEST_CASE(a_joiner_replaces_a_lost_worker_below_the_minimum,
                        graph_fixture) {
  auto s = spec(2, 0, 4);
  run_options o;
  o.recovery.faults = faults("kill:rank=1,step=1");
  o.recovery.min_workers = 2;
  o.late_joiners = 1;
  o.join_after_events = 200;
  auto rec = run(s, o);
  check_complete(rec, failure, 1, 2);
}

BOOST_FIXTURE_TEST_CASE(resuming_from_a_checkpoint_is_bit_identical,
                        graph_fixture) {
  temp_dir dir;
  auto s = spec(3, 1, 7);
  run_options o;
  o.recovery.checkpoint_dir = dir.path;
  o.recovery.checkpoint_every = 10;
  o.recovery.checkpoint_keep = 100;
  auto whole = run(s, o);
  BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
  // Steps 10, 20, 30: mid-epoch (an epoch has 13 steps).
  for (uint64_t step : {10u, 20u, 30u}) {
    auto c = load_checkpoint(dir.path + "/" + checkpoint_name(step));
    BOOST_REQUIRE(static_cast<bool>(c));
    BOOST_TEST(c->step == step);
    run_options r;
    r.recovery.resume = std::make_shared<const checkpoint>(*c);
    auto resumed = run(s, r);
    BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
    BOOST_TEST(resumed["params_sha256"] == whole["params_sha256"]);
    BOOST_TEST(resumed["samples"] == whole["samples"]);
    BOOST_TEST(resumed["steps"] == whole["steps"]);
    BOOST_TEST(resumed["train_loss"] == whole["train_loss"]);
  }
}

BOOST_FIXTURE_TEST_CASE(a_checkpoint_of_another_shape_is_refused,
                        graph_fixture) {
  temp_dir dir;
  auto s = spec(2, 0, 4);
  run_options o;
  o.recovery.checkpoint_dir = dir.path;
  o.recovery.checkpoint_every = 10;
  run(s, o);
  BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
  auto c = load_checkpoint(dir.path + "/" + checkpoint_name(20));
  BOOST_REQUIRE(static_cast<bool>(c));
  auto bad = *c;
  bad.opt.m.resize(3);
  run_options r;
  r.recovery.resume = std::make_shared<const checkpoint>(bad);
  BOOST_TEST(run(s, r).is_null());
  BOOST_TEST(failure
             == "checkpoint: optimizer state of 3+0 values, the job's "
                "optimizer keeps 18+0");
  bad = *c;
  bad.cursors.pop_back();
  r.recovery.resume = std::make_shared<const checkpoint>(bad);
  BOOST_TEST(run(s, r).is_null());
  BOOST_TEST(failure == "checkpoint: 3 shards, the job has 4");
}

BOOST_FIXTURE_TEST_CASE(a_damaged_checkpoint_is_skipped_with_a_warning,
                        graph_fixture) {
  temp_dir dir;
  auto s = spec(2, 0, 4);
  run_options o;
  o.recovery.checkpoint_dir = dir.path;
  o.recovery.checkpoint_every = 10;
  o.recovery.checkpoint_keep = 2;
  run(s, o);
  BOOST_REQUIRE_MESSAGE(failure.empty(), failure);
  // 39 steps: checkpoints 10, 20, 30; only the newest two are kept.
  std::vector<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(dir.path))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  BOOST_TEST(
    names
    == (std::vector<std::string>{checkpoint_name(20), checkpoint_name(30)}));
  {
    std::fstream f(dir.path + "/" + checkpoint_name(30),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto found = newest_checkpoint(dir.path);
  BOOST_REQUIRE(static_cast<bool>(found));
  BOOST_TEST(found->data.step == 20u);
  BOOST_REQUIRE(found->skipped.size() == 1u);
  BOOST_TEST(found->skipped[0].find(checkpoint_name(30)) != std::string::npos);
  auto empty = newest_checkpoint(dir.path + "/nothing-here");
  BOOST_REQUIRE(!empty);
  BOOST_TEST(empty.err().message()
             == "--resume " + dir.path + "/nothing-here: no such folder");
}

BOOST_AUTO_TEST_SUITE_END()
