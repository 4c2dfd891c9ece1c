#include "runtime/mlp.hpp"

#include <cassert>
#include <cmath>
#include <utility>

#include "runtime/random.hpp"

namespace dml {

namespace {

using Eigen::Index;

Index idx(size_t x) {
  return static_cast<Index>(x);
}

} // namespace

mlp::mlp(model_config cfg)
  : cfg_(std::move(cfg)),
    head_(cfg_.outputs == 1 ? loss_head::squared_error : loss_head::softmax) {
  auto in = cfg_.inputs;
  for (size_t l = 0; l <= cfg_.hidden.size(); ++l) {
    auto out = l < cfg_.hidden.size() ? cfg_.hidden[l] : cfg_.outputs;
    layers_.push_back(layer{in, out, num_params_, num_params_ + out * in});
    num_params_ += out * (in + 1);
    in = out;
  }
  acts_.resize(cfg_.hidden.size());
}

const std::string& mlp::name() const {
  return cfg_.name;
}

const model_config& mlp::config() const {
  return cfg_;
}

task_kind mlp::task() const {
  return task_of(head_);
}

size_t mlp::num_params() const {
  return num_params_;
}

size_t mlp::num_outputs() const {
  return cfg_.outputs;
}

std::vector<float> mlp::init(uint64_t seed) const {
  std::vector<float> result(num_params_, 0.0f);
  rng gen{seed};
  for (size_t l = 0; l < layers_.size(); ++l) {
    auto& ly = layers_[l];
    bool he = l + 1 < layers_.size() && cfg_.act == activation::relu;
    auto scale = std::sqrt((he ? 2.0 : 1.0) / static_cast<double>(ly.in));
    detail::fill_normal(gen, result.data() + ly.weights, ly.out * ly.in, scale);
  }
  return result;
}

float* mlp::forward(const float* params, const batch_view& batch) {
  assert(batch.sparse() ? batch.cols <= cfg_.inputs
                        : batch.cols == cfg_.inputs);
  auto rows = batch.rows;
  auto last = layers_.size() - 1;
  float* out = nullptr;
  for (size_t l = 0; l <= last; ++l) {
    auto& ly = layers_[l];
    const float* w = params + ly.weights;
    const float* b = params + ly.bias;
    out = detail::scratch(l < last ? acts_[l] : logits_, rows * ly.out);
    if (l == 0) {
      auto x = batch;
      x.cols = ly.in;
      detail::affine_forward(w, b, ly.out, x, out, ws_);
    } else {
      detail::dense_ref x{acts_[l - 1].data(), rows, ly.in, false};
      detail::affine_forward(w, b, ly.out, x, out, ws_);
    }
    if (l < last) {
      Eigen::Map<Eigen::ArrayXf> a{out, idx(rows * ly.out)};
      if (cfg_.act == activation::relu)
        a = a.max(0.0f);
      else
        a = a.tanh();
    }
  }
  return out;
}

double mlp::loss_and_gradient(const float* params, const batch_view& batch,
                              float* grad) {
  auto rows = batch.rows;
  float* delta = forward(params, batch);
  auto result = detail::head_loss(head_, delta, rows, cfg_.outputs,
                                  batch.targets, true, tmp_);
  for (size_t l = layers_.size(); l-- > 0;) {
    auto& ly = layers_[l];
    if (l == 0) {
      auto x = batch;
      x.cols = ly.in;
      detail::affine_backward(delta, ly.out, x, grad + ly.weights,
                              grad + ly.bias, ws_);
      break;
    }
    const float* h = acts_[l - 1].data();
    detail::dense_ref x{h, rows, ly.in, false};
    detail::affine_backward(delta, ly.out, x, grad + ly.weights, grad + ly.bias,
                            ws_);
    // Gradient with respect to the activations below: delta W, then through
    // the activation, whose derivative follows from its output h.
    float* next = detail::scratch(deltas_[l % 2], rows * ly.in);
    Eigen::Map<Eigen::ArrayXf> dh{next, idx(rows * ly.in)};
    dh.setZero();
    detail::gemm(detail::dense_ref{delta, rows, ly.out, false},
                 detail::dense_ref{params + ly.weights, ly.out, ly.in, true},
                 next, ws_);
    Eigen::Map<const Eigen::ArrayXf> ha{h, idx(rows * ly.in)};
    if (cfg_.act == activation::relu)
      dh = (ha > 0.0f).select(dh, 0.0f);
    else
      dh *= 1.0f - ha.square();
    delta = next;
  }
  return result;
}

double mlp::loss(const float* params, const batch_view& batch) {
  float* z = forward(params, batch);
  return detail::head_loss(head_, z, batch.rows, cfg_.outputs, batch.targets,
                           false, tmp_);
}

void mlp::predict(const float* params, const batch_view& batch, float* out) {
  float* z = forward(params, batch);
  detail::head_predict(head_, z, batch.rows, cfg_.outputs, out, tmp_);
}

double mlp::add_l2(const float* params, float l2, float* grad) const {
  double result = 0.0;
  for (auto& ly : layers_)
    result += detail::add_l2_block(params + ly.weights, l2, grad + ly.weights,
                                   ly.out * ly.in);
  return result;
}

} // namespace dml
