#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/actor_registry.hpp"
#include "actors/master.hpp"
#include "runtime/error.hpp"
#include "runtime/job_spec.hpp"
#include "runtime/model_registry.hpp"
#include "runtime/report.hpp"
#include "runtime/training.hpp"

namespace dml {

/// Options of a job run in one process.
struct local_options {
  job_spec spec;
  std::string model_out;
  report_options report;
  std::chrono::milliseconds step_timeout{60000};
  /// Fault handling; its injected faults also go to the shard-workers.
  recovery_options recovery;
  /// Registered names of the pluggable actors to spawn.
  std::string aggregator_type = "aggregator";
  std::string evaluator_type = "evaluator";
  /// Observers, each `name` or `name:arg`.
  std::vector<std::string> observers;
};

/// Returns the scheduler threads for a process running `workers`
/// shard-workers when the user did not say: one per core, but no more than
/// workers (with one worker, master and worker then share a thread and a
/// step never crosses cores).
size_t default_threads(uint32_t workers);

/// Makes idle scheduler threads look for work every few microseconds
/// instead of sleeping up to 10 ms (CAF's default): in a BSP step the
/// workers' messages are queued on the thread that sent them, and a sleeping
/// thread would leave the second core idle. Costs CPU while a thread idles.
void poll_eagerly(caf::actor_system_config& cfg);

/// Returns the master's setup for a job over `data` (in one process or as
/// the master of a cluster).
master_setup make_master_setup(const local_options& opts,
                               const prepared_data& data,
                               std::shared_ptr<model> instance);

/// Spawns the observers `specs` (each `name` or `name:arg`, made by
/// `actors` with `ctx` and the arg) and joins each to the master `boss`.
/// Returns them; on an error, stops the ones spawned so far.
expected<std::vector<caf::actor>>
join_observers(caf::actor_system& sys, const caf::actor& boss,
               const actor_registry& actors, actor_context ctx,
               const std::vector<std::string>& specs);

/// Spawns the whole graph (master, `spec.workers` shard-workers,
/// `spec.aggregators` aggregators, an evaluator when there is a test set,
/// the observers; the pluggable ones made by `actors`) in
/// `sys`, runs the job, stops every actor, and returns the final metrics
/// record (JSON text).
expected<std::string>
run_local(caf::actor_system& sys, const local_options& opts,
          const prepared_data& data, const model_registry& models,
          const actor_registry& actors);

} // namespace dml
