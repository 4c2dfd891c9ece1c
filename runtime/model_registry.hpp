#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/model.hpp"

namespace dml {

/// Makes models by name. There is no global instance: `main` and the tests
/// create one, call `register_builtin_models` and add their own.
class model_registry {
public:
  using factory = std::function<expected<std::unique_ptr<model>>(
    const model_config&)>;

  /// Adds (or replaces) the factory for `name`.
  void add(std::string name, factory fn);

  /// Makes the model `cfg.name`. An unknown name gives `errc::unknown_model`
  /// with a message that lists every known name.
  expected<std::unique_ptr<model>> make(const model_config& cfg) const;

  /// Returns whether `name` is registered.
  bool contains(const std::string& name) const;

  /// Returns the registered names in alphabetical order.
  std::vector<std::string> names() const;

private:
  std::map<std::string, factory> factories_;
};

/// Registers "linear", "logistic", "softmax" and "mlp".
void register_builtin_models(model_registry& registry);

} // namespace dml
