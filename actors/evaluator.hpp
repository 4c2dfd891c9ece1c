#pragma once

#include <memory>

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/dataset.hpp"
#include "runtime/model.hpp"

namespace dml {

/// State of an evaluator: the test set and a model instance of its own.
struct evaluator_state {
  std::shared_ptr<const dataset> test;
  std::shared_ptr<model> instance;
  static inline const char* name = "dml.evaluator";
};

/// Evaluates parameters on the test set, off the step loop.
///
/// Interface:
/// - `(eval_atom, uint32_t epoch, tensor params) -> eval_metrics`.
/// - `(stop_atom)`: quit.
///
/// Spawn it detached: evaluation is CPU work.
caf::behavior evaluator(caf::stateful_actor<evaluator_state>* self,
                        std::shared_ptr<const dataset> test,
                        std::shared_ptr<model> instance);

} // namespace dml
