#pragma once

#include <chrono>
#include <cstdint>
#include <map>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/reduce.hpp"

namespace dml {

/// State of an aggregator: its group of workers by rank.
struct aggregator_state {
  std::map<int32_t, caf::actor> workers;
  std::chrono::milliseconds timeout{60000};
  gradient_sum sum;
  tensor_pool pool;
  static inline const char* name = "dml.aggregator";
};

/// Sums its group's gradients in worker-rank order and forwards one
/// aggregate; relays the parameters down.
///
/// Interface:
/// - `(join_atom, int32_t rank, caf::actor worker)`: adds a worker to the
///   group (from the master).
/// - `(step_atom, step_plan, tensor params) -> grad_msg`: sends each worker
///   its assignment, waits for all, replies with their sum in rank order.
///   Workers that do not answer within the plan's deadline (or are down) are
///   named in the reply's `lost` instead; an error reply of a worker is
///   passed on.
/// - `(stop_atom)`: quit.
caf::behavior aggregator(caf::stateful_actor<aggregator_state>* self,
                         std::chrono::milliseconds timeout);

} // namespace dml
