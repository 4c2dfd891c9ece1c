#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/job_spec.hpp"
#include "runtime/model.hpp"
#include "runtime/model_file.hpp"
#include "runtime/optimizer.hpp"
#include "runtime/reduce.hpp"
#include "runtime/report.hpp"
#include "runtime/shard.hpp"

namespace dml {

/// What the master needs to run a job.
struct master_setup {
  job_spec spec;
  /// Model shape, task and preprocessing (saved with the parameters).
  model_file meta;
  /// A model instance of the master's own (for sizes and the L2 term).
  std::shared_ptr<model> instance;
  /// Training rows, and the shard count of the plan.
  uint64_t rows = 0;
  uint32_t shards = 1;
  /// Deadline of one step (every request carries one).
  std::chrono::milliseconds step_timeout{60000};
  /// Where to save the model at the end (empty: nowhere).
  std::string model_out;
  report_options report;
  /// The (preprocessed) training set, to ship rows to worker processes that
  /// hold no copy of their own; null in one process.
  std::shared_ptr<const dataset> train;
  /// Fingerprint of the training set as loaded, to check workers' copies.
  std::string fingerprint;
  /// Shipping: bytes per chunk and chunks in flight per worker.
  uint64_t chunk_bytes = 2 << 20;
  uint32_t ship_window = 4;
};

/// State of the master.
struct master_state {
  master_setup setup;
  std::unique_ptr<reporter> out;
  caf::actor evaluator;
  /// Shard-workers by rank (null until ready).
  std::vector<caf::actor> workers;
  /// Worker processes' node actors by rank (null for local workers).
  std::vector<caf::actor> nodes;
  /// Ranks given out (joined, maybe not ready yet).
  std::vector<bool> reserved;
  std::vector<caf::actor> aggregators;
  std::vector<caf::actor> observers;
  /// Ranks of each aggregator's group.
  std::vector<std::vector<int32_t>> groups;
  bool started = false;
  /// Set by the first `stop_atom`: waiting for members to go down.
  bool stopping = false;
  /// Monitored members (worker processes, aggregators) still up.
  std::set<caf::actor_addr> watched;
  caf::response_promise done;

  std::shared_ptr<std::vector<float>> params;
  optimizer_state opt;
  shard_plan plan;

  // The step in flight.
  uint64_t step = 0;
  uint32_t attempt = 0;
  uint32_t epoch = 0;
  std::vector<assignment> work;
  ordered_reduction reduction;
  /// The step's summed gradient (its buffer is reused).
  gradient_sum grad;
  /// Parameter buffers (copy-on-write while workers still hold one).
  tensor_pool param_pool;

  // Counters.
  uint64_t samples = 0;
  uint64_t epoch_samples = 0;
  double epoch_loss = 0;
  double last_train_loss = 0;
  std::chrono::steady_clock::time_point t_start;
  std::chrono::steady_clock::time_point t_epoch;
  double train_s = 0;
  uint32_t evals_pending = 0;
  bool training_done = false;
  eval_metrics last_test;
  bool has_last_test = false;

  static inline const char* name = "dml.master";
};

/// Owns the parameters, the optimizer and the shard plan, and drives BSP
/// steps over the workers (directly or through aggregators).
///
/// Interface:
/// - `(join_atom, member_info, caf::actor) -> int32_t`: a local
///   shard-worker, an aggregator or an observer joins; the reply is its rank
///   (index).
/// - `(register_atom, member_info{"remote-worker"}, caf::actor node) ->
///   job_setup`: a worker process joins; then `(data_atom, int32_t rank)`
///   asks for its rows, and `(ready_atom, int32_t rank, std::string
///   fingerprint, caf::actor shard_worker) -> bool` completes the join (a
///   fingerprint that differs from the master's is refused).
/// - `(cancel_atom)`: stop the job now (signal): members are told to exit,
///   the model is saved if asked, the run request fails.
/// - `(join_atom, caf::actor evaluator)`: sets the evaluator.
///
/// The master sends `(record_atom, std::string json)` to every observer for
/// each metrics record (epochs, then the final one).
/// - `(run_atom) -> std::string`: runs the job once every member has joined;
///   the reply is the final metrics record (JSON) or an error.
/// - `(stop_atom)`: tell every member to exit, wait (at most 3 s) until
///   they are down, then quit; a second `stop_atom` quits at once.
caf::behavior master(caf::stateful_actor<master_state>* self,
                     master_setup setup);

} // namespace dml
