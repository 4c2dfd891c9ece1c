#include "actors/actor_registry.hpp"

#include <fmt/format.h>

#include <caf/all.hpp>

#include "actors/aggregator.hpp"
#include "actors/evaluator.hpp"

namespace dml {

const char* to_string(actor_kind x) noexcept {
  switch (x) {
    case actor_kind::aggregator: return "aggregator";
    case actor_kind::evaluator: return "evaluator";
    case actor_kind::observer: return "observer";
  }
  return "?";
}

void actor_registry::add(actor_kind kind, std::string name, factory fn) {
  factories_[{kind, std::move(name)}] = std::move(fn);
}

error actor_registry::check(actor_kind kind, const std::string& name) const {
  if (contains(kind, name))
    return {};
  std::string list;
  for (auto& n : names(kind))
    list += (list.empty() ? "" : ", ") + n;
  return make_error(errc::unknown_name,
                    fmt::format("unknown {} '{}' (known: {})", to_string(kind),
                                name, list.empty() ? "none" : list));
}

expected<caf::actor>
actor_registry::spawn(actor_kind kind, const std::string& name,
                      caf::actor_system& sys, const actor_context& ctx) const {
  if (auto err = check(kind, name))
    return err;
  return factories_.at({kind, name})(sys, ctx);
}

bool actor_registry::contains(actor_kind kind, const std::string& name) const {
  return factories_.count({kind, name}) > 0;
}

std::vector<std::string> actor_registry::names(actor_kind kind) const {
  std::vector<std::string> result;
  for (auto& kv : factories_)
    if (kv.first.first == kind)
      result.push_back(kv.first.second);
  return result;
}

void register_builtin_actors(actor_registry& registry) {
  registry.add(actor_kind::aggregator, "aggregator",
               [](caf::actor_system& sys,
                  const actor_context& ctx) -> expected<caf::actor> {
                 return sys.spawn(aggregator, ctx.step_timeout);
               });
  registry.add(
    actor_kind::evaluator, "evaluator",
    [](caf::actor_system& sys,
       const actor_context& ctx) -> expected<caf::actor> {
      if (!ctx.test || !ctx.instance)
        return make_error(errc::bad_config, "evaluator: needs a test set");
      return sys.spawn<caf::detached>(evaluator, ctx.test, ctx.instance);
    });
}

} // namespace dml
