#include "apps/examples/hinge_model.hpp"

#include <cassert>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <utility>

#include <fmt/format.h>

#include "runtime/error.hpp"
#include "runtime/random.hpp"

namespace dml::examples {

namespace {

/// Returns the class index of target `y`, or `classes` if it is no class.
size_t class_of(float y, size_t classes) {
  if (!(y >= 0.0f) || !(y < static_cast<float>(classes)))
    return classes;
  return static_cast<size_t>(y);
}

error bad_config(const model_config& cfg, const std::string& what) {
  return make_error(errc::bad_config,
                    fmt::format("model '{}': {}", cfg.name, what));
}

expected<std::unique_ptr<model>> make_hinge_model(const model_config& cfg) {
  if (cfg.inputs == 0)
    return bad_config(cfg, "inputs must be at least 1 (got 0)");
  if (cfg.outputs < 2)
    return bad_config(cfg,
                      fmt::format("a multiclass SVM needs at least 2 "
                                  "classes (got outputs = {}); it "
                                  "solves classification tasks only",
                                  cfg.outputs));
  if (!cfg.hidden.empty())
    return bad_config(cfg,
                      fmt::format("a linear SVM has no hidden layers "
                                  "(got {})",
                                  cfg.hidden.size()));
  constexpr auto limit = static_cast<size_t>(
    std::numeric_limits<std::ptrdiff_t>::max());
  if (cfg.inputs >= limit || cfg.outputs > limit / (cfg.inputs + 1))
    return bad_config(cfg, "too many parameters");
  return std::unique_ptr<model>{std::make_unique<hinge_model>(cfg)};
}

} // namespace

double squared_hinge(float* s, size_t rows, size_t classes,
                     const float* targets, bool grad) {
  // Plain loops over one contiguous column (class) at a time: the same bits
  // wherever the buffers live, and vectorizable by the compiler.
  double result = 0.0;
  for (size_t r = 0; r < rows; ++r)
    if (class_of(targets[r], classes) == classes)
      result = std::numeric_limits<double>::quiet_NaN();
  for (size_t k = 0; k < classes; ++k) {
    float* sk = s + k * rows;
    for (size_t r = 0; r < rows; ++r) {
      float t = class_of(targets[r], classes) == k ? 1.0f : -1.0f;
      float m = 1.0f - t * sk[r];
      if (m > 0.0f) {
        result += static_cast<double>(m) * m;
        if (grad)
          sk[r] = -2.0f * t * m;
      } else if (grad) {
        sk[r] = 0.0f;
      }
    }
  }
  return result;
}

hinge_model::hinge_model(model_config cfg)
  : cfg_(std::move(cfg)), inputs_(cfg_.inputs), classes_(cfg_.outputs) {
  // nop
}

const std::string& hinge_model::name() const {
  return cfg_.name;
}

const model_config& hinge_model::config() const {
  return cfg_;
}

task_kind hinge_model::task() const {
  return task_kind::classification;
}

size_t hinge_model::num_params() const {
  return classes_ * (inputs_ + 1);
}

size_t hinge_model::num_outputs() const {
  return classes_;
}

std::vector<float> hinge_model::init(uint64_t seed) const {
  std::vector<float> result(num_params(), 0.0f);
  rng gen{seed};
  detail::fill_normal(gen, result.data(), classes_ * inputs_,
                      std::sqrt(1.0 / static_cast<double>(inputs_)));
  return result;
}

float* hinge_model::forward(const float* params, const batch_view& batch) {
  // A sparse batch may have fewer columns than the model has inputs (a test
  // file without the last features); the kernels need the model's width.
  assert(batch.sparse() ? batch.cols <= inputs_ : batch.cols == inputs_);
  auto x = batch;
  x.cols = inputs_;
  // Grows only when a batch is larger than every one before it.
  float* s = detail::scratch(scores_, batch.rows * classes_);
  detail::affine_forward(params, params + classes_ * inputs_, classes_, x, s,
                         ws_);
  return s;
}

double hinge_model::loss_and_gradient(const float* params,
                                      const batch_view& batch, float* grad) {
  float* s = forward(params, batch);
  auto result = squared_hinge(s, batch.rows, classes_, batch.targets, true);
  auto x = batch;
  x.cols = inputs_;
  // `s` now holds d loss / d scores: back through the affine layer.
  detail::affine_backward(s, classes_, x, grad, grad + classes_ * inputs_, ws_);
  return result;
}

double hinge_model::loss(const float* params, const batch_view& batch) {
  float* s = forward(params, batch);
  return squared_hinge(s, batch.rows, classes_, batch.targets, false);
}

void hinge_model::predict(const float* params, const batch_view& batch,
                          float* out) {
  float* s = forward(params, batch);
  detail::head_predict(loss_head::softmax, s, batch.rows, classes_, out, tmp_);
}

double hinge_model::add_l2(const float* params, float l2, float* grad) const {
  // The weights come first; the biases after them are not penalized.
  return detail::add_l2_block(params, l2, grad, classes_ * inputs_);
}

void register_example_models(model_registry& registry) {
  registry.add("svm", make_hinge_model);
}

} // namespace dml::examples
