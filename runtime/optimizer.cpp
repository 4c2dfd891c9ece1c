#include "runtime/optimizer.hpp"

#include <algorithm>
#include <cmath>

#include <Eigen/Core>

namespace dml {

namespace {

using vec_map = Eigen::Map<Eigen::ArrayXf>;
using cvec_map = Eigen::Map<const Eigen::ArrayXf>;

} // namespace

expected<optimizer_kind> parse_optimizer(const std::string& name) {
  if (name == "sgd")
    return optimizer_kind::sgd;
  if (name == "momentum")
    return optimizer_kind::momentum;
  if (name == "adam")
    return optimizer_kind::adam;
  return make_error(errc::bad_value,
                    "unknown optimizer '" + name
                      + "' (known: sgd, momentum, adam)");
}

expected<schedule_kind> parse_schedule(const std::string& name) {
  if (name == "constant")
    return schedule_kind::constant;
  if (name == "step")
    return schedule_kind::step;
  if (name == "cosine")
    return schedule_kind::cosine;
  return make_error(errc::bad_value,
                    "unknown schedule '" + name
                      + "' (known: constant, step, cosine)");
}

const char* to_string(optimizer_kind x) noexcept {
  switch (x) {
    case optimizer_kind::sgd: return "sgd";
    case optimizer_kind::momentum: return "momentum";
    case optimizer_kind::adam: return "adam";
  }
  return "?";
}

const char* to_string(schedule_kind x) noexcept {
  switch (x) {
    case schedule_kind::constant: return "constant";
    case schedule_kind::step: return "step";
    case schedule_kind::cosine: return "cosine";
  }
  return "?";
}

float learning_rate(const optimizer_config& cfg, double progress,
                    uint32_t total_epochs) {
  switch (cfg.schedule) {
    case schedule_kind::constant: return cfg.lr;
    case schedule_kind::step: {
      auto every = cfg.decay_epochs == 0 ? 1u : cfg.decay_epochs;
      auto k = std::floor(progress / every);
      return static_cast<float>(cfg.lr * std::pow(double{cfg.decay}, k));
    }
    case schedule_kind::cosine: {
      double t = total_epochs == 0 ? 1.0 : progress / total_epochs;
      t = std::min(1.0, std::max(0.0, t));
      double c = 0.5 * (1.0 + std::cos(3.141592653589793 * t));
      return static_cast<float>(cfg.min_lr + (cfg.lr - cfg.min_lr) * c);
    }
  }
  return cfg.lr;
}

optimizer_state make_optimizer_state(const optimizer_config& cfg, size_t n) {
  optimizer_state st;
  if (cfg.kind != optimizer_kind::sgd)
    st.m.assign(n, 0.0f);
  if (cfg.kind == optimizer_kind::adam)
    st.v.assign(n, 0.0f);
  return st;
}

void apply_update(const optimizer_config& cfg, float lr, optimizer_state& st,
                  float* params, const float* grad, size_t n) {
  auto n_ = static_cast<Eigen::Index>(n);
  vec_map w{params, n_};
  cvec_map g{grad, n_};
  ++st.updates;
  switch (cfg.kind) {
    case optimizer_kind::sgd: w -= lr * g; break;
    case optimizer_kind::momentum: {
      vec_map m{st.m.data(), n_};
      m = cfg.momentum * m + g;
      if (cfg.nesterov)
        w -= lr * (g + cfg.momentum * m);
      else
        w -= lr * m;
      break;
    }
    case optimizer_kind::adam: {
      vec_map m{st.m.data(), n_};
      vec_map v{st.v.data(), n_};
      m = cfg.beta1 * m + (1.0f - cfg.beta1) * g;
      v = cfg.beta2 * v + (1.0f - cfg.beta2) * g.square();
      auto t = static_cast<double>(st.updates);
      auto c1 = static_cast<float>(1.0 - std::pow(double{cfg.beta1}, t));
      auto c2 = static_cast<float>(1.0 - std::pow(double{cfg.beta2}, t));
      auto step = lr / c1;
      auto sc2 = std::sqrt(c2);
      w -= step * m / (v.sqrt() / sc2 + cfg.epsilon);
      break;
    }
  }
}

} // namespace dml
