#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/model.hpp"
#include "runtime/shard.hpp"
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
};

/// State of a shard-worker.
struct shard_worker_state {
  worker_setup setup;
  std::unique_ptr<shard_computer> computer;
  shard_plan geometry;
  gradient_sum scratch;
  tensor_pool pool;
  static inline const char* name = "dml.shard_worker";
};

/// Computes loss and gradient sums for the rows the master names.
///
/// Interface:
/// - `(step_atom, step_plan, tensor params) -> grad_msg`: the sum over the
///   rows of every assignment in the plan (normally one: this worker's).
///   Parameters of the wrong size or rows this worker does not hold are
///   refused with an error, never computed.
/// - `(stop_atom)`: quit.
///
/// It runs on the scheduler: with one thread per core, a gradient occupies
/// one thread at most and control messages find another (see
/// docs/architecture.md, Threads).
caf::behavior shard_worker(caf::stateful_actor<shard_worker_state>* self,
                           worker_setup setup);

} // namespace dml
