#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/dataset.hpp"

namespace dml {

/// What a model predicts.
enum class task_kind : uint8_t {
  /// One real value per row; loss is (half) squared error.
  regression = 0,
  /// One class index per row; loss is cross-entropy.
  classification = 1,
};

/// Hidden-layer activation of the MLP.
enum class activation : uint8_t { relu = 0, tanh = 1 };

/// Describes a model to build: its registered name and shape.
struct model_config {
  /// Registered name, e.g. "softmax" or "mlp".
  std::string name;

  /// Number of input features.
  size_t inputs = 0;

  /// Number of classes (classification) or 1 (regression, binary logistic).
  size_t outputs = 1;

  /// Hidden layer sizes (MLP only), e.g. {128, 64}.
  std::vector<size_t> hidden;

  /// Hidden activation (MLP only).
  activation act = activation::relu;
};

/// A model over one flat float parameter vector. The maths is pure: parameters
/// and batches come in, loss, gradient and predictions go out. An instance may
/// keep scratch buffers, so one instance serves one thread at a time; the
/// scratch keeps its capacity, so repeated calls with batches of bounded size
/// allocate nothing.
class model {
public:
  virtual ~model();

  model() = default;
  model(const model&) = delete;
  model& operator=(const model&) = delete;

  /// Returns the registered name.
  virtual const std::string& name() const = 0;

  /// Returns the configuration this model was built from.
  virtual const model_config& config() const = 0;

  /// Returns what the model predicts.
  virtual task_kind task() const = 0;

  /// Returns the length of the parameter vector.
  virtual size_t num_params() const = 0;

  /// Returns the values per row that `predict` writes: the class count for
  /// classification (probabilities), 1 otherwise.
  virtual size_t num_outputs() const = 0;

  /// Returns freshly initialized parameters, a pure function of `seed`.
  virtual std::vector<float> init(uint64_t seed) const = 0;

  /// Computes the loss summed over the rows of `batch` and writes the
  /// gradient of that sum to `grad` (`num_params()` floats, overwritten).
  /// Regularization is not included: see `add_l2`.
  virtual double
  loss_and_gradient(const float* params, const batch_view& batch, float* grad)
    = 0;

  /// Returns the loss summed over the rows of `batch`.
  virtual double loss(const float* params, const batch_view& batch) = 0;

  /// Writes `num_outputs()` values per row of `batch` to `out`: class
  /// probabilities for classification (for binary logistic: P(class 1)),
  /// the predicted value for regression.
  virtual void predict(const float* params, const batch_view& batch, float* out)
    = 0;

  /// Adds the gradient of `0.5 * l2 * |w|^2` to `grad` and returns that
  /// penalty, where `w` are the weights (biases are not penalized).
  virtual double add_l2(const float* params, float l2, float* grad) const = 0;
};

} // namespace dml
