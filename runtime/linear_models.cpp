#include "runtime/linear_models.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <utility>

namespace dml {

namespace {

using Eigen::Index;

using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                 Eigen::RowMajor>;

Index idx(size_t x) {
  return static_cast<Index>(x);
}

#if EIGEN_VERSION_AT_LEAST(3, 4, 0)

/// Blocking of Eigen's GEMM kernel whose packing buffers live in a
/// `workspace` instead of being allocated per product.
class kept_blocking : public Eigen::internal::level3_blocking<float, float> {
public:
  kept_blocking(Index m, Index n, Index k, detail::workspace& ws) {
    m_mc = m;
    m_nc = n;
    m_kc = k;
    Eigen::internal::computeProductBlockingSizes<float, float, 1, Index>(
      m_kc, m_mc, m_nc, 1);
    m_blockA = detail::scratch(ws.pack_lhs, static_cast<size_t>(m_mc * m_kc));
    m_blockB = detail::scratch(ws.pack_rhs, static_cast<size_t>(m_kc * m_nc));
  }
};

/// Runs `c += a * b` (column-major `c`) on Eigen's GEMM kernel.
template <int LhsOrder, int RhsOrder>
void gemm_kernel(Index m, Index n, Index k, const float* a, const float* b,
                 float* c, detail::workspace& ws) {
  using product = Eigen::internal::general_matrix_matrix_product<
    Index, float, LhsOrder, false, float, RhsOrder, false, Eigen::ColMajor, 1>;
  kept_blocking blocking{m, n, k, ws};
  auto lda = LhsOrder == Eigen::RowMajor ? k : m;
  auto ldb = RhsOrder == Eigen::RowMajor ? n : k;
  product::run(m, n, k, a, lda, b, ldb, c, 1, m, 1.0f, blocking, nullptr);
}

#else

/// Runs `c += a * b` (column-major `c`) as an Eigen product expression.
template <int LhsOrder, int RhsOrder>
void gemm_kernel(Index m, Index n, Index k, const float* a, const float* b,
                 float* c, detail::workspace&) {
  using lhs_type = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                 LhsOrder>;
  using rhs_type = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                 RhsOrder>;
  Eigen::Map<Eigen::MatrixXf> cm{c, m, n};
  cm.noalias() += Eigen::Map<const lhs_type>{a, m, k}
    * Eigen::Map<const rhs_type>{b, k, n};
}

#endif

/// Returns the class index of target `y`, or `outputs` if it is no class.
size_t class_of(float y, size_t outputs) {
  if (!(y >= 0.0f) || !(y < static_cast<float>(outputs)))
    return outputs;
  return static_cast<size_t>(y);
}

/// Replaces logits `z` (column-major `rows x outputs`) by the exponentials of
/// `z` minus the row maxima and writes the row sums of those to `sums`. With
/// `picked`, first stores the shifted logit of each row's target class there
/// (NaN for a target that is no class).
void shifted_exp(Eigen::Map<Eigen::ArrayXXf>& z,
                 Eigen::Map<Eigen::ArrayXf>& sums,
                 Eigen::Map<Eigen::ArrayXf>* picked, const float* targets) {
  auto rows = static_cast<size_t>(z.rows());
  auto outputs = static_cast<size_t>(z.cols());
  // Row maxima, one vectorized pass per column.
  sums = z.col(0);
  for (Index k = 1; k < z.cols(); ++k)
    sums = sums.max(z.col(k));
  z.colwise() -= sums;
  if (picked != nullptr) {
    for (size_t r = 0; r < rows; ++r) {
      auto c = class_of(targets[r], outputs);
      (*picked)[idx(r)] = c < outputs ? z(idx(r), idx(c))
                                      : std::numeric_limits<float>::quiet_NaN();
    }
  }
  z = z.exp();
  sums = z.col(0);
  for (Index k = 1; k < z.cols(); ++k)
    sums += z.col(k);
}

/// Divides each row of `z` by its entry in `sums`, overwriting `sums`.
void normalize_rows(Eigen::Map<Eigen::ArrayXXf>& z,
                    Eigen::Map<Eigen::ArrayXf>& sums) {
  // In place: broadcasting `sums.inverse()` would evaluate it into a
  // temporary on the heap.
  sums = sums.inverse();
  z.colwise() *= sums;
}

/// Returns whether the sparse kernels should work on a transposed copy of the
/// weights for a layer with `outputs` outputs and sparse input `x`: vectorized
/// over the outputs and one pass over the entries, but an extra pass over all
/// weights. That pays when there are several outputs and at least as many
/// entries as inputs.
bool use_transposed(size_t outputs, const batch_view& x) {
  if (x.rows == 0) // An empty dense batch may look sparse, without indptr.
    return false;
  auto entries = static_cast<size_t>(x.indptr[x.rows] - x.indptr[0]);
  return outputs >= 4 && entries >= x.cols;
}

} // namespace

task_kind task_of(loss_head head) noexcept {
  return head == loss_head::squared_error ? task_kind::regression
                                          : task_kind::classification;
}

namespace detail {

float* scratch(Eigen::VectorXf& buf, size_t n) {
  if (static_cast<size_t>(buf.size()) < n)
    buf.resize(idx(n));
  return buf.data();
}

void gemm(dense_ref a, dense_ref b, float* c, workspace& ws) {
  assert(a.cols == b.rows);
  auto m = idx(a.rows);
  auto n = idx(b.cols);
  auto k = idx(a.cols);
  if (m == 0 || n == 0 || k == 0)
    return;
  // Matrix-vector products: a vector operand is contiguous either way, and
  // Eigen's GEMV needs no buffers for contiguous operands.
  if (n == 1) {
    Eigen::Map<Eigen::VectorXf> cv{c, m};
    Eigen::Map<const Eigen::VectorXf> bv{b.data, k};
    if (a.row_major)
      cv.noalias() += Eigen::Map<const row_matrix>{a.data, m, k} * bv;
    else
      cv.noalias() += Eigen::Map<const Eigen::MatrixXf>{a.data, m, k} * bv;
    return;
  }
  if (m == 1) {
    Eigen::Map<Eigen::RowVectorXf> cv{c, n};
    Eigen::Map<const Eigen::RowVectorXf> av{a.data, k};
    if (b.row_major)
      cv.noalias() += av * Eigen::Map<const row_matrix>{b.data, k, n};
    else
      cv.noalias() += av * Eigen::Map<const Eigen::MatrixXf>{b.data, k, n};
    return;
  }
  constexpr int rm = Eigen::RowMajor;
  constexpr int cm = Eigen::ColMajor;
  if (a.row_major) {
    if (b.row_major)
      gemm_kernel<rm, rm>(m, n, k, a.data, b.data, c, ws);
    else
      gemm_kernel<rm, cm>(m, n, k, a.data, b.data, c, ws);
  } else {
    if (b.row_major)
      gemm_kernel<cm, rm>(m, n, k, a.data, b.data, c, ws);
    else
      gemm_kernel<cm, cm>(m, n, k, a.data, b.data, c, ws);
  }
}

void affine_forward(const float* w, const float* b, size_t outputs,
                    const batch_view& x, float* out, workspace& ws) {
  if (!x.sparse()) {
    affine_forward(w, b, outputs, dense_ref{x.dense, x.rows, x.cols, true}, out,
                   ws);
    return;
  }
  auto rows = x.rows;
  auto inputs = x.cols;
  if (use_transposed(outputs, x)) {
    // One pass over the rows; each entry adds a scaled, contiguous column of
    // W^T (the `outputs` weights of its input) to the row's logits.
    float* wt = scratch(ws.transposed, outputs * inputs);
    Eigen::Map<const row_matrix> wm{w, idx(outputs), idx(inputs)};
    Eigen::Map<Eigen::MatrixXf>{wt, idx(outputs), idx(inputs)} = wm;
    float* acc = scratch(ws.row, outputs);
    for (size_t r = 0; r < rows; ++r) {
      std::copy(b, b + outputs, acc);
      for (auto j = x.indptr[r]; j < x.indptr[r + 1]; ++j) {
        const float* col = wt + static_cast<size_t>(x.indices[j]) * outputs;
        auto v = x.values[j];
        for (size_t o = 0; o < outputs; ++o)
          acc[o] += v * col[o];
      }
      for (size_t o = 0; o < outputs; ++o)
        out[o * rows + r] = acc[o];
    }
    return;
  }
  // One CSR matrix-vector product per output: reads the contiguous weights of
  // that output and writes one contiguous column of `out`.
  for (size_t o = 0; o < outputs; ++o) {
    const float* wo = w + o * inputs;
    float* zo = out + o * rows;
    for (size_t r = 0; r < rows; ++r) {
      float acc = 0.0f;
      for (auto j = x.indptr[r]; j < x.indptr[r + 1]; ++j)
        acc += x.values[j] * wo[x.indices[j]];
      zo[r] = b[o] + acc;
    }
  }
}

void affine_forward(const float* w, const float* b, size_t outputs, dense_ref x,
                    float* out, workspace& ws) {
  Eigen::Map<Eigen::MatrixXf> z{out, idx(x.rows), idx(outputs)};
  z.rowwise() = Eigen::Map<const Eigen::RowVectorXf>{b, idx(outputs)};
  // W^T is column-major `inputs x outputs` over the same data.
  gemm(x, dense_ref{w, outputs, x.cols, true}.t(), out, ws);
}

void affine_backward(const float* dz, size_t outputs, const batch_view& x,
                     float* gw, float* gb, workspace& ws) {
  if (!x.sparse()) {
    affine_backward(dz, outputs, dense_ref{x.dense, x.rows, x.cols, true}, gw,
                    gb, ws);
    return;
  }
  auto rows = x.rows;
  auto inputs = x.cols;
  Eigen::Map<const Eigen::MatrixXf> d{dz, idx(rows), idx(outputs)};
  Eigen::Map<Eigen::RowVectorXf>{gb, idx(outputs)} = d.colwise().sum();
  if (use_transposed(outputs, x)) {
    // gw^T (column-major `outputs x inputs`): each entry adds the scaled
    // gradient row to the contiguous column of its input.
    float* gt = scratch(ws.transposed, outputs * inputs);
    std::fill(gt, gt + outputs * inputs, 0.0f);
    float* acc = scratch(ws.row, outputs);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t o = 0; o < outputs; ++o)
        acc[o] = dz[o * rows + r];
      for (auto j = x.indptr[r]; j < x.indptr[r + 1]; ++j) {
        float* col = gt + static_cast<size_t>(x.indices[j]) * outputs;
        auto v = x.values[j];
        for (size_t o = 0; o < outputs; ++o)
          col[o] += v * acc[o];
      }
    }
    Eigen::Map<const Eigen::MatrixXf> gm{gt, idx(outputs), idx(inputs)};
    Eigen::Map<row_matrix>{gw, idx(outputs), idx(inputs)} = gm;
    return;
  }
  Eigen::Map<Eigen::VectorXf>{gw, idx(outputs * inputs)}.setZero();
  for (size_t o = 0; o < outputs; ++o) {
    float* go = gw + o * inputs;
    const float* dzo = dz + o * rows;
    for (size_t r = 0; r < rows; ++r) {
      auto g = dzo[r];
      if (g == 0.0f)
        continue;
      for (auto j = x.indptr[r]; j < x.indptr[r + 1]; ++j)
        go[x.indices[j]] += g * x.values[j];
    }
  }
}

void affine_backward(const float* dz, size_t outputs, dense_ref x, float* gw,
                     float* gb, workspace& ws) {
  Eigen::Map<const Eigen::MatrixXf> d{dz, idx(x.rows), idx(outputs)};
  Eigen::Map<Eigen::RowVectorXf>{gb, idx(outputs)} = d.colwise().sum();
  Eigen::Map<Eigen::VectorXf>{gw, idx(outputs * x.cols)}.setZero();
  // gw^T (column-major `inputs x outputs`) = x^T dz.
  gemm(x.t(), dense_ref{dz, x.rows, outputs, false}, gw, ws);
}

double head_loss(loss_head head, float* z, size_t rows, size_t outputs,
                 const float* targets, bool grad, Eigen::VectorXf& tmp) {
  Eigen::Map<const Eigen::ArrayXf> y{targets, idx(rows)};
  switch (head) {
    case loss_head::squared_error: {
      assert(outputs == 1);
      Eigen::Map<Eigen::ArrayXf> r{z, idx(rows)};
      r -= y;
      return 0.5 * r.square().cast<double>().sum();
    }
    case loss_head::logistic: {
      assert(outputs == 1);
      // loss = max(z, 0) - z y + log(1 + exp(-|z|)), which neither overflows
      // nor loses the small probabilities.
      Eigen::Map<Eigen::ArrayXf> lz{z, idx(rows)};
      Eigen::Map<Eigen::ArrayXf> e{scratch(tmp, rows), idx(rows)};
      e = (-lz.abs()).exp();
      auto result = (lz.max(0.0f) - lz * y + e.log1p()).cast<double>().sum();
      if (grad)
        lz = (lz >= 0.0f).select((1.0f + e).inverse(), e / (1.0f + e)) - y;
      return result;
    }
    case loss_head::softmax: {
      Eigen::Map<Eigen::ArrayXXf> lz{z, idx(rows), idx(outputs)};
      float* buf = scratch(tmp, 2 * rows);
      Eigen::Map<Eigen::ArrayXf> sums{buf, idx(rows)};
      Eigen::Map<Eigen::ArrayXf> picked{buf + rows, idx(rows)};
      shifted_exp(lz, sums, &picked, targets);
      // -log p_y = log(sum_k exp(z_k - max)) - (z_y - max).
      auto result = (sums.log() - picked).cast<double>().sum();
      if (grad) {
        normalize_rows(lz, sums);
        for (size_t r = 0; r < rows; ++r) {
          auto c = class_of(targets[r], outputs);
          if (c < outputs)
            lz(idx(r), idx(c)) -= 1.0f;
        }
      }
      return result;
    }
  }
  return std::numeric_limits<double>::quiet_NaN();
}

void head_predict(loss_head head, float* z, size_t rows, size_t outputs,
                  float* out, Eigen::VectorXf& tmp) {
  switch (head) {
    case loss_head::squared_error: {
      assert(outputs == 1);
      Eigen::Map<const Eigen::ArrayXf> lz{z, idx(rows)};
      Eigen::Map<Eigen::ArrayXf>{out, idx(rows)} = lz;
      return;
    }
    case loss_head::logistic: {
      assert(outputs == 1);
      Eigen::Map<const Eigen::ArrayXf> lz{z, idx(rows)};
      Eigen::Map<Eigen::ArrayXf> e{scratch(tmp, rows), idx(rows)};
      e = (-lz.abs()).exp();
      Eigen::Map<Eigen::ArrayXf> p{out, idx(rows)};
      p = (lz >= 0.0f).select((1.0f + e).inverse(), e / (1.0f + e));
      return;
    }
    case loss_head::softmax: {
      Eigen::Map<Eigen::ArrayXXf> lz{z, idx(rows), idx(outputs)};
      Eigen::Map<Eigen::ArrayXf> sums{scratch(tmp, rows), idx(rows)};
      shifted_exp(lz, sums, nullptr, nullptr);
      normalize_rows(lz, sums);
      Eigen::Map<row_matrix>{out, idx(rows), idx(outputs)} = lz.matrix();
      return;
    }
  }
}

void fill_normal(rng& gen, float* out, size_t n, double scale) {
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(scale * gen.normal());
}

double add_l2_block(const float* params, float l2, float* grad, size_t n) {
  if (l2 == 0.0f)
    return 0.0;
  // Plain loops: unlike Eigen's, whose scalar head depends on the alignment of
  // `grad`, they give the same bits wherever the vectors live.
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    grad[i] += l2 * params[i];
    sum += static_cast<double>(params[i]) * params[i];
  }
  return 0.5 * static_cast<double>(l2) * sum;
}

} // namespace detail

linear_model::linear_model(model_config cfg, loss_head head)
  : cfg_(std::move(cfg)), head_(head), inputs_(cfg_.inputs),
    outputs_(cfg_.outputs) {
  // nop
}

const std::string& linear_model::name() const {
  return cfg_.name;
}

const model_config& linear_model::config() const {
  return cfg_;
}

task_kind linear_model::task() const {
  return task_of(head_);
}

size_t linear_model::num_params() const {
  return outputs_ * (inputs_ + 1);
}

size_t linear_model::num_outputs() const {
  return outputs_;
}

std::vector<float> linear_model::init(uint64_t seed) const {
  std::vector<float> result(num_params(), 0.0f);
  rng gen{seed};
  detail::fill_normal(gen, result.data(), outputs_ * inputs_,
                      std::sqrt(1.0 / static_cast<double>(inputs_)));
  return result;
}

float* linear_model::forward(const float* params, const batch_view& batch) {
  assert(batch.sparse() ? batch.cols <= inputs_ : batch.cols == inputs_);
  auto batch_inputs = batch;
  batch_inputs.cols = inputs_;
  float* z = detail::scratch(logits_, batch.rows * outputs_);
  detail::affine_forward(params, params + outputs_ * inputs_, outputs_,
                         batch_inputs, z, ws_);
  return z;
}

double linear_model::loss_and_gradient(const float* params,
                                       const batch_view& batch, float* grad) {
  float* z = forward(params, batch);
  auto result = detail::head_loss(head_, z, batch.rows, outputs_, batch.targets,
                                  true, tmp_);
  auto batch_inputs = batch;
  batch_inputs.cols = inputs_;
  detail::affine_backward(z, outputs_, batch_inputs, grad,
                          grad + outputs_ * inputs_, ws_);
  return result;
}

double linear_model::loss(const float* params, const batch_view& batch) {
  float* z = forward(params, batch);
  return detail::head_loss(head_, z, batch.rows, outputs_, batch.targets, false,
                           tmp_);
}

void linear_model::predict(const float* params, const batch_view& batch,
                           float* out) {
  float* z = forward(params, batch);
  detail::head_predict(head_, z, batch.rows, outputs_, out, tmp_);
}

double linear_model::add_l2(const float* params, float l2, float* grad) const {
  return detail::add_l2_block(params, l2, grad, outputs_ * inputs_);
}

} // namespace dml
