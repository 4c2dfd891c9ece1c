#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "runtime/dataset.hpp"
#include "runtime/model.hpp"
#include "runtime/random.hpp"

namespace dml {

/// The loss on top of the last affine layer of a model.
enum class loss_head : uint8_t {
  /// Half squared error `0.5 * (z - y)^2` on one output; predicts `z`.
  squared_error = 0,
  /// Binary cross-entropy on one logit `z` with targets 0 or 1; predicts
  /// `P(class 1) = sigmoid(z)`.
  logistic = 1,
  /// Cross-entropy over the softmax of `outputs` logits with class-index
  /// targets; predicts the class probabilities.
  softmax = 2,
};

/// Returns the task a model with loss `head` solves.
task_kind task_of(loss_head head) noexcept;

/// Building blocks shared by `linear_model` and `mlp`.
///
/// Conventions: a weight matrix of a layer with `in` inputs and `out` outputs
/// is `out x in` and row-major (`w[o * in + i]` connects input `i` to output
/// `o`); its bias (`out` floats) follows it. The activations of a minibatch of
/// `n` rows (logits, hidden values and their gradients) are `n x out` and
/// column-major (`z[o * n + r]`), so that each output is one contiguous run.
/// All kernels read and write whole minibatches and allocate only when a
/// scratch buffer must grow. Their results depend only on the values, not on
/// where the caller's buffers sit: whatever Eigen would compute differently
/// on an unaligned head (exp, log, tanh, sums) runs on the scratch, which is
/// always aligned.
namespace detail {

/// A dense `rows x cols` matrix of floats without padding: row-major (stride
/// `cols`) or column-major (stride `rows`).
struct dense_ref {
  const float* data = nullptr;
  size_t rows = 0;
  size_t cols = 0;
  bool row_major = false;

  /// Returns the transposed matrix: the same data read the other way.
  dense_ref t() const noexcept {
    return {data, cols, rows, !row_major};
  }
};

/// Scratch of the kernels below, kept across calls so that they allocate
/// nothing once it is large enough.
struct workspace {
  /// Packing buffers of the matrix-product kernel.
  Eigen::VectorXf pack_lhs;
  Eigen::VectorXf pack_rhs;
  /// Transposed weights or weight gradients (sparse inputs).
  Eigen::VectorXf transposed;
  /// The activations of one row (sparse inputs).
  Eigen::VectorXf row;
};

/// Returns a pointer to at least `n` floats of `buf`, growing it (and losing
/// its content) only when it is smaller. `buf` never shrinks.
float* scratch(Eigen::VectorXf& buf, size_t n);

/// Computes `c += a * b`, where `c` is column-major `a.rows x b.cols`. Unlike
/// an Eigen product expression it keeps the kernel's packing buffers in `ws`:
/// Eigen allocates them per product once they exceed 128 KB, and glibc then
/// maps and unmaps fresh pages on every product (10x slower here).
void gemm(dense_ref a, dense_ref b, float* c, workspace& ws);

/// Writes `x W^T + 1 b^T` (`x.rows x outputs`, column-major) to `out`, where
/// `w` is row-major `outputs x x.cols` and `b` has `outputs` entries. `x` is a
/// dense (row-major) or sparse minibatch.
void affine_forward(const float* w, const float* b, size_t outputs,
                    const batch_view& x, float* out, workspace& ws);

/// Writes `x W^T + 1 b^T` (column-major) to `out` for a dense input `x`.
void affine_forward(const float* w, const float* b, size_t outputs, dense_ref x,
                    float* out, workspace& ws);

/// Writes the gradients of a layer `z = x W^T + 1 b^T` given `dz` (column-major
/// `x.rows x outputs`): `gw = dz^T x` (row-major `outputs x x.cols`) and
/// `gb = dz^T 1`. Both are overwritten.
void affine_backward(const float* dz, size_t outputs, const batch_view& x,
                     float* gw, float* gb, workspace& ws);

/// Writes the gradients of a layer for a dense input `x` (see above).
void affine_backward(const float* dz, size_t outputs, dense_ref x, float* gw,
                     float* gb, workspace& ws);

/// Returns the loss of `head` summed over `rows` rows of logits `z` (column-
/// major `rows x outputs`) with one target per row. With `grad`, overwrites
/// `z` with the gradient of that sum with respect to `z`, else leaves garbage
/// there. A class target outside `[0, outputs)` makes the loss NaN. Uses
/// `tmp` as scratch.
double head_loss(loss_head head, float* z, size_t rows, size_t outputs,
                 const float* targets, bool grad, Eigen::VectorXf& tmp);

/// Overwrites logits `z` (column-major `rows x outputs`) with the predictions
/// of `head` and writes them row-major (`outputs` values per row) to `out`.
/// For `logistic` and `squared_error`, `outputs` must be 1.
void head_predict(loss_head head, float* z, size_t rows, size_t outputs,
                  float* out, Eigen::VectorXf& tmp);

/// Fills `out[0 .. n)` with `scale` times standard normal samples of `gen`.
void fill_normal(rng& gen, float* out, size_t n, double scale);

/// Adds `l2 * w` to `grad[0 .. n)` and returns `0.5 * l2 * |w|^2`, where `w`
/// is `params[0 .. n)`.
double add_l2_block(const float* params, float l2, float* grad, size_t n);

} // namespace detail

/// A (generalized) linear model `z = W x + b` with the loss `head`: linear
/// regression (`squared_error`, 1 output), binary logistic regression
/// (`logistic`, 1 output) or softmax regression (`softmax`, `outputs >= 2`
/// classes).
///
/// Parameter layout: `W` as `outputs x inputs` row-major floats (the weights
/// of output `o` are `params[o * inputs .. (o + 1) * inputs)`), then the
/// `outputs` biases; `num_params() == outputs * (inputs + 1)`.
class linear_model final : public model {
public:
  /// Builds the model. `cfg` must be valid for `head` (see
  /// `register_builtin_models`, whose factories check it).
  linear_model(model_config cfg, loss_head head);

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

  /// Returns the loss head.
  loss_head head() const noexcept {
    return head_;
  }

private:
  /// Computes the logits of `batch` into `logits_` and returns them.
  float* forward(const float* params, const batch_view& batch);

  model_config cfg_;
  loss_head head_;
  size_t inputs_;
  size_t outputs_;
  Eigen::VectorXf logits_;
  Eigen::VectorXf tmp_;
  detail::workspace ws_;
};

} // namespace dml
