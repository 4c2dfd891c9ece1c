#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/fault.hpp"
#include "runtime/model.hpp"
#include "runtime/shard.hpp"
#include "runtime/tensor_link.hpp"
#include "runtime/training.hpp"

namespace dml {

/// What a shard-worker needs to compute gradients: its rows, a model
/// instance of its own, and the shard geometry of the job.
struct worker_setup {
  /// The training rows (the whole set in one process; the shipped or loaded
  /// rows on a cluster).
  std::shared_ptr<const dataset> data;
  /// A model instance used by this worker only.
  std::shared_ptr<model> instance;
  /// Seed of the shuffles (the job's seed).
  uint64_t seed = 1;
  /// Training rows and shards of the job, to rebuild the shard geometry.
  uint64_t rows = 0;
  uint32_t shards = 1;
  /// For a worker holding only some shards: `(shard, first row in data)`.
  /// Empty: `data` holds every training row.
  std::vector<std::pair<uint32_t, uint64_t>> placement;
  /// Whether `data` holds only the placed shards (even if none is placed).
  bool partial = false;
  /// Injected faults (`--inject`); those of other ranks are ignored.
  std::vector<fault> faults;
  /// On an injected kill, kill the whole process (a worker process) rather
  /// than only this actor (one process).
  bool kill_process = false;
  /// The tensor link to the master (worker processes whose master offers
  /// one): steps that came on it are answered on it.
  std::shared_ptr<tensor_link> link;
};

/// A step's answer on its way: to the requester, or on the tensor link.
struct held_reply {
  caf::response_promise rp;
  grad_msg reply;
  bool linked = false;
};

/// State of a shard-worker.
struct shard_worker_state {
  worker_setup setup;
  std::unique_ptr<shard_computer> computer;
  shard_plan geometry;
  gradient_sum scratch;
  tensor_pool pool;
  /// Shards being adopted from lost workers (shipped mode): the rows
  /// received so far.
  std::map<uint32_t, dataset> arriving;
  /// Replies held back by an injected hang, delay or lost gradient.
  std::map<uint64_t, held_reply> held;
  uint64_t next_held = 0;
  static inline const char* name = "dml.shard_worker";
};

/// Computes loss and gradient sums for the rows the master names.
///
/// Interface:
/// - `(step_atom, step_plan, tensor params) -> grad_msg`: the sum over the
///   rows of every assignment in the plan (normally one: this worker's).
///   Parameters of the wrong size or rows this worker does not hold are
///   refused with an error, never computed. A plan that came on the tensor
///   link (`linked`) is answered on it, a refusal in `grad_msg::refused`.
/// - `(data_atom, data_chunk) -> bool`: rows of a shard this worker adopts
///   from a lost worker (shipped data only), in order; the shard is computed
///   here once its last row arrived.
/// - `(stop_atom)`: quit.
///
/// Injected faults of its rank fire on the first attempt of their step:
/// `kill` quits (or kills the process), `hang` answers `ms` late, `delay`
/// answers every step `ms` late, `drop-gradient` never answers.
///
/// It runs on the scheduler: with one thread per core, a gradient occupies
/// one thread at most and control messages find another (see
/// docs/architecture.md, Threads).
caf::behavior shard_worker(caf::stateful_actor<shard_worker_state>* self,
                           worker_setup setup);

} // namespace dml
