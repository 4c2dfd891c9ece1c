#pragma once

// A whole job under CAF's deterministic scheduler: the master, shard-workers
// and aggregators of a small synthetic classification, with options for
// injected faults, late joiners, checkpoints and resuming.

#include <functional>

#include "tests/actors/fixture.hpp"
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "actors/aggregator.hpp"
#include "actors/master.hpp"
#include "actors/shard_worker.hpp"
#include "runtime/loaders.hpp"
#include "runtime/model_registry.hpp"
#include "runtime/training.hpp"

namespace dml::test {

inline recovery_options test_recovery() {
  recovery_options r;
  r.adaptive_timeout = true;
  r.min_step_timeout = std::chrono::milliseconds(1000);
  r.join_timeout = std::chrono::milliseconds(5000);
  r.checkpoint_in_background = false;
  return r;
}

/// How `graph_fixture::run` sets up and disturbs a job.
struct run_options {
  /// The master's fault handling; `run` makes the deadline adaptive and
  /// writes checkpoints in the step loop (files complete when the job ends).
  recovery_options recovery = test_recovery();
  /// Workers that join after the start: after this many scheduler events
  /// (0: none).
  size_t late_joiners = 0;
  size_t join_after_events = 0;
};

struct graph_fixture : deterministic_fixture {
  model_registry models;
  prepared_data data;
  /// The error of the last run that failed (empty: none).
  std::string failure;

  graph_fixture() {
    register_builtin_models(models);
    synthetic_options o;
    o.rows = 203; // not a multiple of anything below: uneven shards
    o.cols = 5;
    o.classes = 3;
    o.noise = 1.0f;
    data.train = std::make_shared<dataset>(make_classification(o));
  }

  job_spec spec(uint32_t workers, uint32_t aggregators, uint32_t shards) {
    job_spec s;
    s.train_path = "synthetic";
    s.model = "softmax";
    s.epochs = 3;
    s.batch_size = 16;
    s.opt.kind = optimizer_kind::momentum;
    s.opt.lr = 0.05f;
    s.workers = workers;
    s.aggregators = aggregators;
    s.shards = shards;
    data.config = make_model_config(s, 5, 3);
    return s;
  }

  std::shared_ptr<model> instance() {
    return std::shared_ptr<model>{std::move(*models.make(data.config))};
  }

  caf::actor spawn_worker(const job_spec& s, uint32_t shards,
                          const std::vector<fault>& faults) {
    worker_setup ws;
    ws.data = data.train;
    ws.instance = instance();
    ws.seed = s.seed;
    ws.rows = data.train->rows;
    ws.shards = shards;
    ws.faults = faults;
    return sys.spawn(shard_worker, ws);
  }

  /// Runs a whole job in the deterministic scheduler, firing timeouts (in
  /// time order) whenever nothing else is left to run; returns the final
  /// record, or null with `failure` set.
  nlohmann::json run(const job_spec& s, const run_options& o = {}) {
    failure.clear();
    master_setup ms;
    ms.spec = s;
    ms.meta.config = data.config;
    ms.instance = instance();
    ms.rows = data.train->rows;
    ms.shards = shard_count(s, ms.rows);
    ms.report.quiet = true;
    ms.report.epochs = s.epochs;
    ms.report.rows = ms.rows;
    ms.step_timeout = std::chrono::milliseconds(60000);
    ms.recovery = o.recovery;
    auto boss = sys.spawn(master, ms);
    caf::scoped_actor self{sys};
    std::vector<caf::actor> members;
    for (uint32_t r = 0; r < s.workers; ++r) {
      auto w = spawn_worker(s, ms.shards, o.recovery.faults);
      members.push_back(w);
      self->send(boss, join_atom_v, member_info{"worker", protocol_version, {}},
                 w);
      sched.run();
    }
    for (uint32_t g = 0; g < s.aggregators; ++g) {
      auto a = sys.spawn(aggregator, std::chrono::milliseconds(1000));
      members.push_back(a);
      self->send(boss, join_atom_v,
                 member_info{"aggregator", protocol_version, {}}, a);
      sched.run();
    }
    self->send(boss, run_atom_v);
    if (o.late_joiners > 0) {
      sched.run(o.join_after_events);
      for (size_t i = 0; i < o.late_joiners; ++i) {
        auto w = spawn_worker(s, ms.shards, {});
        members.push_back(w);
        self->send(boss, join_atom_v,
                   member_info{"worker", protocol_version, {}}, w);
      }
    }
    nlohmann::json result;
    bool ended = false;
    for (int round = 0; round < 100000 && !ended; ++round) {
      sched.run();
      // Skip join replies (ranks) until the final record or an error.
      for (bool more = true; more && !ended;)
        self->receive([&](int32_t) {},
                      [&](std::string& rec) {
                        result = nlohmann::json::parse(rec);
                        ended = true;
                      },
                      [&](caf::error& err) {
                        failure = describe(err);
                        ended = true;
                      },
                      caf::after(std::chrono::seconds(0)) >>
                        [&] { more = false; });
      if (!ended && !sched.trigger_timeout())
        break;
    }
    if (!ended)
      failure = "the job neither ended nor failed";
    for (auto& m : members)
      self->send(m, stop_atom_v);
    self->send(boss, stop_atom_v);
    sched.run();
    return result;
  }
};

} // namespace dml::test
