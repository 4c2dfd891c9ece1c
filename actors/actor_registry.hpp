#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "runtime/dataset.hpp"
#include "runtime/error.hpp"
#include "runtime/job_spec.hpp"
#include "runtime/model.hpp"

namespace dml {

/// The kinds of pluggable actors in a job's graph.
///
/// - `aggregator`: receives `(join_atom, int32_t rank, caf::actor worker)`
///   and `(step_atom, step_plan, tensor) -> grad_msg` (see aggregator.hpp).
/// - `evaluator`: `(eval_atom, uint32_t epoch, tensor) -> eval_metrics`.
/// - `observer`: receives `(record_atom, std::string json)` for every metrics
///   record the master writes (each epoch, then the final one).
///
/// Every kind also receives `(stop_atom)` when the job ends and must quit.
enum class actor_kind : uint8_t { aggregator, evaluator, observer };

const char* to_string(actor_kind x) noexcept;

/// What a factory may use to build its actor.
struct actor_context {
  job_spec spec;
  /// Deadline of one step (aggregators).
  std::chrono::milliseconds step_timeout{60000};
  /// The test set (evaluators) and a fresh model instance for it.
  std::shared_ptr<const dataset> test;
  std::shared_ptr<model> instance;
  /// Free-form argument from the command line (`--observer name:arg`).
  std::string arg;
};

/// Spawns actors by kind and name. No global instance: `main` and the tests
/// make one, call `register_builtin_actors` and add their own.
class actor_registry {
public:
  using factory = std::function<expected<caf::actor>(caf::actor_system&,
                                                     const actor_context&)>;

  /// Adds (or replaces) the factory for `name` of `kind`.
  void add(actor_kind kind, std::string name, factory fn);

  /// Spawns the actor `name` of `kind`. An unknown name gives
  /// `errc::unknown_name` listing the known ones.
  expected<caf::actor> spawn(actor_kind kind, const std::string& name,
                             caf::actor_system& sys,
                             const actor_context& ctx) const;

  /// Returns whether `name` of `kind` is registered.
  bool contains(actor_kind kind, const std::string& name) const;

  /// `errc::unknown_name` listing the known names of `kind` if `name` is
  /// not one of them (what `spawn` would return), else no error.
  error check(actor_kind kind, const std::string& name) const;

  /// Returns the names registered for `kind`, sorted.
  std::vector<std::string> names(actor_kind kind) const;

private:
  std::map<std::pair<actor_kind, std::string>, factory> factories_;
};

/// Registers the built-in "aggregator" and "evaluator".
void register_builtin_actors(actor_registry& registry);

} // namespace dml
