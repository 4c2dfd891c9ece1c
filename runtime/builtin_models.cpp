#include <algorithm>
#include <cstddef>
#include <limits>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "runtime/error.hpp"
#include "runtime/linear_models.hpp"
#include "runtime/mlp.hpp"
#include "runtime/model.hpp"
#include "runtime/model_registry.hpp"
#include "runtime/training.hpp"

namespace dml {

namespace {

using model_ptr = std::unique_ptr<model>;

error bad_config(const model_config& cfg, const std::string& what) {
  return make_error(errc::bad_config,
                    fmt::format("model '{}': {}", cfg.name, what));
}

/// Returns whether `out * (in + 1)` overflows or exceeds what an Eigen index
/// can address, and otherwise adds it to `total`.
bool add_layer_params(size_t in, size_t out, size_t& total) {
  constexpr auto limit = static_cast<size_t>(
    std::numeric_limits<std::ptrdiff_t>::max());
  if (in >= limit || out > limit / (in + 1))
    return true;
  auto n = out * (in + 1);
  if (n > limit - total)
    return true;
  total += n;
  return false;
}

/// The most parameters a built-in model may have here: a process keeps
/// several vectors of that size (parameters, gradients, optimizer state,
/// copies in flight), so an eighth of the physical memory's floats, and
/// never more than 2^31.
size_t max_params() {
  constexpr size_t cap = size_t{1} << 31;
  auto bytes = physical_memory_bytes();
  if (bytes <= 0)
    return cap;
  return std::min(cap, static_cast<size_t>(bytes / sizeof(float) / 8));
}

/// An error if `total` parameters are more than this machine can hold.
error check_size(const model_config& cfg, size_t total) {
  auto most = max_params();
  if (total <= most)
    return {};
  return bad_config(
    cfg,
    fmt::format("{} parameters ({:.1f} GiB) are more "
                "than fit in this machine's memory "
                "(at most {})",
                total,
                static_cast<double>(total) * 4.0 / (1024.0 * 1024.0 * 1024.0),
                most));
}

/// Checks what every built-in model needs and returns an error if not.
error check_common(const model_config& cfg) {
  if (cfg.inputs == 0)
    return bad_config(cfg, "inputs must be at least 1 (got 0)");
  if (cfg.outputs == 0)
    return bad_config(cfg, "outputs must be at least 1 (got 0)");
  return {};
}

expected<model_ptr> make_linear_model(const model_config& cfg, loss_head head) {
  if (auto err = check_common(cfg))
    return err;
  if (!cfg.hidden.empty())
    return bad_config(cfg,
                      fmt::format("a linear model has no hidden layers "
                                  "(got {}); use 'mlp'",
                                  cfg.hidden.size()));
  switch (head) {
    case loss_head::squared_error:
      if (cfg.outputs != 1)
        return bad_config(cfg,
                          fmt::format("linear regression has 1 output "
                                      "(got outputs = {})",
                                      cfg.outputs));
      break;
    case loss_head::logistic:
      if (cfg.outputs != 1)
        return bad_config(cfg,
                          fmt::format("binary logistic regression has 1 "
                                      "output, P(class 1) (got outputs = {}); "
                                      "use 'softmax' for more classes",
                                      cfg.outputs));
      break;
    case loss_head::softmax:
      if (cfg.outputs < 2)
        return bad_config(cfg,
                          fmt::format("softmax regression needs at least "
                                      "2 classes (got outputs = {})",
                                      cfg.outputs));
      break;
  }
  size_t total = 0;
  if (add_layer_params(cfg.inputs, cfg.outputs, total))
    return bad_config(cfg, "too many parameters");
  if (auto err = check_size(cfg, total))
    return err;
  return model_ptr{std::make_unique<linear_model>(cfg, head)};
}

expected<model_ptr> make_mlp(const model_config& cfg) {
  if (auto err = check_common(cfg))
    return err;
  if (cfg.hidden.empty())
    return bad_config(cfg,
                      "an MLP needs at least one hidden layer (hidden "
                      "is empty)");
  size_t total = 0;
  auto in = cfg.inputs;
  for (size_t l = 0; l < cfg.hidden.size(); ++l) {
    if (cfg.hidden[l] == 0)
      return bad_config(cfg, fmt::format("hidden layer {} has size 0", l));
    if (add_layer_params(in, cfg.hidden[l], total))
      return bad_config(cfg, "too many parameters");
    in = cfg.hidden[l];
  }
  if (add_layer_params(in, cfg.outputs, total))
    return bad_config(cfg, "too many parameters");
  if (cfg.act != activation::relu && cfg.act != activation::tanh)
    return bad_config(cfg, "unknown activation");
  if (auto err = check_size(cfg, total))
    return err;
  return model_ptr{std::make_unique<mlp>(cfg)};
}

} // namespace

void register_builtin_models(model_registry& registry) {
  registry.add("linear", [](const model_config& cfg) {
    return make_linear_model(cfg, loss_head::squared_error);
  });
  registry.add("logistic", [](const model_config& cfg) {
    return make_linear_model(cfg, loss_head::logistic);
  });
  registry.add("softmax", [](const model_config& cfg) {
    return make_linear_model(cfg, loss_head::softmax);
  });
  registry.add("mlp", make_mlp);
}

} // namespace dml
