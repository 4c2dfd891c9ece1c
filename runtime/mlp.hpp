#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "runtime/dataset.hpp"
#include "runtime/linear_models.hpp"
#include "runtime/model.hpp"

namespace dml {

/// A multi-layer perceptron: `cfg.hidden.size()` fully connected hidden
/// layers with activation `cfg.act` (ReLU or tanh), then a fully connected
/// output layer. With `cfg.outputs >= 2` the output is a softmax over that
/// many classes with cross-entropy loss (classification); with
/// `cfg.outputs == 1` it is one real value with half squared error loss
/// (regression).
///
/// Parameter layout, layer by layer from the input: the weights as
/// `out x in` row-major floats (`w[o * in + i]` connects input `i` to output
/// `o`), then the `out` biases. Layer `l` has `in = l == 0 ? cfg.inputs :
/// cfg.hidden[l - 1]` and `out = l < cfg.hidden.size() ? cfg.hidden[l] :
/// cfg.outputs`.
class mlp final : public model {
public:
  /// Builds the model. `cfg` must be valid (see `register_builtin_models`,
  /// whose factory checks it): `inputs > 0`, `outputs > 0` and at least one
  /// hidden layer, none of size 0.
  explicit mlp(model_config cfg);

  const std::string& name() const override;

  const model_config& config() const override;

  task_kind task() const override;

  size_t num_params() const override;

  size_t num_outputs() const override;

  /// Returns weights drawn from `N(0, 2/in)` (ReLU hidden layers, He) or
  /// `N(0, 1/in)` (tanh hidden layers and the output layer), and zero biases.
  std::vector<float> init(uint64_t seed) const override;

  double loss_and_gradient(const float* params, const batch_view& batch,
                           float* grad) override;

  double loss(const float* params, const batch_view& batch) override;

  void predict(const float* params, const batch_view& batch,
               float* out) override;

  double add_l2(const float* params, float l2, float* grad) const override;

private:
  /// One fully connected layer and where its parameters start.
  struct layer {
    size_t in;
    size_t out;
    size_t weights;
    size_t bias;
  };

  /// Runs the forward pass: leaves the activations of hidden layer `l` in
  /// `acts_[l]` and returns the logits (column-major `rows x outputs`).
  float* forward(const float* params, const batch_view& batch);

  model_config cfg_;
  loss_head head_;
  std::vector<layer> layers_;
  size_t num_params_ = 0;
  std::vector<Eigen::VectorXf> acts_;
  Eigen::VectorXf logits_;
  Eigen::VectorXf deltas_[2];
  Eigen::VectorXf tmp_;
  detail::workspace ws_;
};

} // namespace dml
