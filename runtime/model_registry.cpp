#include "runtime/model_registry.hpp"

#include <fmt/format.h>

namespace dml {

model::~model() {
  // nop
}

void model_registry::add(std::string name, factory fn) {
  factories_[std::move(name)] = std::move(fn);
}

expected<std::unique_ptr<model>>
model_registry::make(const model_config& cfg) const {
  auto i = factories_.find(cfg.name);
  if (i == factories_.end()) {
    std::string known;
    for (auto& kv : factories_)
      known += (known.empty() ? "" : ", ") + kv.first;
    return make_error(errc::unknown_model,
                      fmt::format("unknown model '{}' (known: {})", cfg.name,
                                  known));
  }
  return i->second(cfg);
}

bool model_registry::contains(const std::string& name) const {
  return factories_.count(name) > 0;
}

std::vector<std::string> model_registry::names() const {
  std::vector<std::string> result;
  for (auto& kv : factories_)
    result.push_back(kv.first);
  return result;
}

} // namespace dml
