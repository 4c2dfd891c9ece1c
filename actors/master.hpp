#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/fault.hpp"
#include "runtime/job_spec.hpp"
#include "runtime/model.hpp"
#include "runtime/model_file.hpp"
#include "runtime/optimizer.hpp"
#include "runtime/reduce.hpp"
#include "runtime/report.hpp"
#include "runtime/shard.hpp"
#include "runtime/tensor_link.hpp"

namespace dml {

/// How the master handles faults (docs/operations.md).
struct recovery_options {
  /// Adapt the step deadline: after the first step, 20 times the mean step
  /// time, but at least `min_step_timeout`.
  bool adaptive_timeout = false;
  std::chrono::milliseconds min_step_timeout{1000};
  /// Fewest live workers to go on with; below, wait up to `join_timeout`
  /// for joiners, then stop with an error (and a checkpoint).
  uint32_t min_workers = 1;
  std::chrono::milliseconds join_timeout{60000};
  /// Checkpoints: every `checkpoint_every` steps (0: never) into
  /// `checkpoint_dir`, keeping the newest `checkpoint_keep`.
  std::string checkpoint_dir;
  uint64_t checkpoint_every = 0;
  size_t checkpoint_keep = 3;
  /// Write periodic checkpoints on a thread of their own (the step loop only
  /// copies the state); a checkpoint due while the last is still being
  /// written is taken when that one is done (of the state then). Off:
  /// written in the step loop (tests).
  bool checkpoint_in_background = true;
  /// Where to start from instead of step 0 (`--resume`).
  std::shared_ptr<const checkpoint> resume;
  /// Injected faults (`--inject`): the master carries out
  /// `kill-aggregator`, the shard-workers the others.
  std::vector<fault> faults;
};

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
  /// Deadline of one step (every request carries one). With
  /// `recovery.adaptive_timeout`, this is the deadline of the steps before
  /// one has completed.
  std::chrono::milliseconds step_timeout{60000};
  recovery_options recovery;
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
  /// Where worker processes open their tensor links (null: no links, the
  /// tensors travel in the CAF messages).
  std::shared_ptr<link_listener> links;
  /// Whether tensor links of workers on this host use shared memory.
  bool shared_memory = true;
};

/// State of the master.
struct master_state {
  master_setup setup;
  std::unique_ptr<reporter> out;
  caf::actor evaluator;
  /// Shard-workers by rank (null until ready, and once lost).
  std::vector<caf::actor> workers;
  /// Worker processes' node actors by rank (null for local workers).
  std::vector<caf::actor> nodes;
  /// Ranks given out (joined, maybe not ready yet).
  std::vector<bool> reserved;
  /// Whether a rank holds only the rows shipped to it (so adopted shards
  /// must be shipped too).
  std::vector<bool> partial;
  /// Aggregators by index (null once lost).
  std::vector<caf::actor> aggregators;
  std::vector<caf::actor> observers;
  /// Aggregator of each rank, or -1 (the master collects it directly).
  std::vector<int32_t> route;
  /// Shards whose rows each rank holding only shipped rows has, or has on
  /// the way (so a shard moving back is not shipped twice).
  std::map<int32_t, std::set<uint32_t>> holds;
  /// Data shippers in flight to ranks that adopt shards, and the count per
  /// rank; steps wait until it drops to zero.
  /// Data shippers in flight, by the rank they ship to (before the start:
  /// a worker's own rows; later: adopted shards).
  std::map<caf::actor_addr, int32_t> shippers;
  std::map<int32_t, uint32_t> awaiting;
  std::map<int32_t, std::chrono::steady_clock::time_point> ship_start;
  /// Tensor links of worker processes by rank, and the tokens handed out
  /// for the links not yet open.
  std::map<int32_t, std::shared_ptr<tensor_link>> links;
  std::map<int32_t, uint64_t> link_tokens;
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
  bool in_flight = false;
  std::vector<assignment> work;
  ordered_reduction reduction;
  /// The step's summed gradient (its buffer is reused).
  gradient_sum grad;
  /// Parameter buffers (copy-on-write while workers still hold one).
  tensor_pool param_pool;
  /// Applies half of each update on another core (null: all on the
  /// master's thread).
  std::unique_ptr<half_runner> helper;
  std::chrono::steady_clock::time_point t_step;
  /// Mean seconds of a step (for the adaptive deadline); 0 before any.
  double mean_step_s = 0;
  /// The step's deadline, and each slot's aggregator (-1: a worker sent to
  /// directly), for the watchdog.
  std::chrono::milliseconds deadline{0};
  std::map<int32_t, int32_t> slot_via;
  /// The slots in the order their gradients came in, this step.
  std::vector<int32_t> arrivals;
  /// When the step was sent, on the actor system's clock (which tests
  /// drive by hand).
  caf::actor_clock::time_point t_sent;

  // Faults.
  uint64_t faults = 0;
  uint64_t steps_redone = 0;
  std::vector<double> recoveries;
  /// Set while recovering: when the first unrecovered fault happened.
  bool recovering = false;
  std::chrono::steady_clock::time_point t_fault;
  /// Waiting for joiners (too few workers); `wait_id` names the deadline.
  bool waiting = false;
  uint64_t wait_id = 0;
  /// Set from resuming until the first step completed.
  bool resuming = false;
  /// The background checkpoint writer in flight, if any, and whether
  /// another checkpoint fell due meanwhile.
  caf::actor_addr ckpt_writer;
  bool ckpt_due = false;

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
/// - `(watchdog_atom)`: its own timer, four times a second: a step past its
///   deadline loses the workers (or asks the aggregators for the workers)
///   that have not answered. Requests to members in this process carry no
///   timeout of their own, since CAF 0.17 starts a timer on its clock thread
///   for every request with one (measured: one worker at 0.78x of the loop
///   with them, 1.0x without); requests to other processes keep theirs.
///
/// Faults: a worker that goes down or misses a step's deadline is lost: its
/// contribution to the step is dropped, its shards move (at their committed
/// cursors) to the live workers, and the step is redone with a new attempt
/// number, so late replies are ignored. A lost aggregator's workers report
/// to the master directly. Workers that join after the start get shards at
/// the next step. See docs/operations.md.
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
