#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/reduce.hpp"

namespace dml {

/// State of an aggregator: its group of workers by rank.
/// The replies of one step in a group (see aggregator.cpp).
struct step_collect;

struct aggregator_state {
  std::map<int32_t, caf::actor> workers;
  /// The step being collected (for the master's watchdog query).
  std::shared_ptr<step_collect> current;
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
///   passed on. Requests to workers in this process carry no timeout of
///   their own (CAF would start a timer per request): the master's watchdog
///   asks instead.
/// - `(watchdog_atom, uint64_t step, uint32_t attempt) -> grad_msg`: the
///   master asks which workers of the current step have not answered; the
///   reply names them in `lost` (empty for another step or attempt).
/// - `(stop_atom)`: quit.
caf::behavior aggregator(caf::stateful_actor<aggregator_state>* self,
                         std::chrono::milliseconds timeout);

} // namespace dml
