#pragma once

// An example of a model added to dml from outside the runtime: a multiclass
// linear support vector machine, registered as "svm". It uses nothing but the
// public `dml::model` interface, the `dml::detail` kernels of
// runtime/linear_models.hpp and `dml::model_registry::add`.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "runtime/dataset.hpp"
#include "runtime/linear_models.hpp"
#include "runtime/model.hpp"
#include "runtime/model_registry.hpp"

namespace dml::examples {

/// Returns the one-vs-rest squared hinge loss summed over `rows` rows of
/// scores `s` (column-major `rows x classes`, as `detail::affine_forward`
/// writes them) with one class-index target per row:
///
///     loss = sum_r sum_k max(0, 1 - t_rk * s_rk)^2,
///     t_rk = +1 if k is the target of row r, -1 otherwise.
///
/// With `grad`, overwrites `s` with the gradient of that sum with respect to
/// the scores, `-2 * t_rk * max(0, 1 - t_rk * s_rk)`. A target outside
/// `[0, classes)` makes the loss NaN (as the built-in heads do). Pure: reads
/// and writes nothing else, allocates nothing.
double squared_hinge(float* s, size_t rows, size_t classes,
                     const float* targets, bool grad);

/// A multiclass linear SVM: `classes` linear scores `s = W x + b`, trained
/// one-vs-rest with the squared hinge loss (LIBLINEAR's L2-loss SVC, the
/// default of `LinearSVC`), see `squared_hinge`. Squared rather than plain
/// hinge, because its gradient is continuous: SGD steps stay small near the
/// margin and the gradient can be checked by finite differences. Add
/// `--l2` for the usual SVM margin term `0.5 * l2 * |W|^2`.
///
/// Parameter layout (as `linear_model`): `W` as `classes x inputs` row-major
/// floats, then the `classes` biases; `num_params() == classes * (inputs +
/// 1)`. `predict` writes the softmax of the scores: it keeps their order, so
/// `predicted_class` picks the top score, and gives values in `[0, 1]` that
/// sum to 1, like the other classifiers (not calibrated probabilities).
class hinge_model final : public model {
public:
  /// Builds the model. `cfg` must have `inputs >= 1` and `outputs >= 2`
  /// (`register_example_models` checks it).
  explicit hinge_model(model_config cfg);

  const std::string& name() const override;

  const model_config& config() const override;

  task_kind task() const override;

  size_t num_params() const override;

  size_t num_outputs() const override;

  /// Returns weights drawn from `N(0, 1/inputs)` and zero biases.
  std::vector<float> init(uint64_t seed) const override;

  double loss_and_gradient(const float* params, const batch_view& batch,
                           float* grad) override;

  double loss(const float* params, const batch_view& batch) override;

  void predict(const float* params, const batch_view& batch,
               float* out) override;

  double add_l2(const float* params, float l2, float* grad) const override;

private:
  /// Computes the scores of `batch` into `scores_` and returns them.
  float* forward(const float* params, const batch_view& batch);

  model_config cfg_;
  size_t inputs_;
  size_t classes_;
  Eigen::VectorXf scores_;
  Eigen::VectorXf tmp_;
  detail::workspace ws_;
};

/// Registers "svm" (a `hinge_model`). Its factory rejects a configuration
/// without inputs, with fewer than 2 classes (e.g. `--task regression`) or
/// with hidden layers, with `errc::bad_config`.
void register_example_models(model_registry& registry);

} // namespace dml::examples
