#include "runtime/metrics.hpp"

#include <algorithm>

namespace dml {

uint32_t predicted_class(const float* out, size_t k) {
  if (k == 1)
    return out[0] > 0.5f ? 1u : 0u;
  return static_cast<uint32_t>(std::max_element(out, out + k) - out);
}

eval_metrics evaluate(model& m, const float* params, const dataset& data,
                      size_t batch_rows) {
  eval_metrics r;
  r.rows = data.rows;
  if (data.rows == 0)
    return r;
  auto k = m.num_outputs();
  bool cls = m.task() == task_kind::classification;
  size_t classes = cls ? std::max<size_t>(k, 2) : 0;
  r.class_rows.assign(classes, 0);
  r.class_correct.assign(classes, 0);
  std::vector<float> out;
  double loss = 0;
  double sq = 0;
  double sum_y = 0;
  double sum_y2 = 0;
  uint64_t correct = 0;
  for (size_t first = 0; first < data.rows; first += batch_rows) {
    auto n = std::min(batch_rows, data.rows - first);
    auto b = batch_buffer::slice(data, first, n);
    loss += m.loss(params, b);
    out.resize(n * k);
    m.predict(params, b, out.data());
    for (size_t i = 0; i < n; ++i) {
      auto y = b.targets[i];
      if (cls) {
        auto label = static_cast<uint32_t>(y);
        auto guess = predicted_class(out.data() + i * k, k);
        if (label < classes) {
          ++r.class_rows[label];
          if (guess == label) {
            ++r.class_correct[label];
            ++correct;
          }
        }
      } else {
        double d = double{out[i]} - y;
        sq += d * d;
        sum_y += y;
        sum_y2 += double{y} * y;
      }
    }
  }
  auto rows = static_cast<double>(data.rows);
  r.loss = loss / rows;
  if (cls) {
    r.accuracy = static_cast<double>(correct) / rows;
  } else {
    r.mse = sq / rows;
    double var = sum_y2 / rows - (sum_y / rows) * (sum_y / rows);
    r.r2 = var > 0 ? 1.0 - r.mse / var : 0.0;
  }
  return r;
}

void predict_all(model& m, const float* params, const dataset& data,
                 std::vector<float>& out, size_t batch_rows) {
  auto k = m.num_outputs();
  bool cls = m.task() == task_kind::classification;
  out.resize(data.rows);
  std::vector<float> buf;
  for (size_t first = 0; first < data.rows; first += batch_rows) {
    auto n = std::min(batch_rows, data.rows - first);
    auto b = batch_buffer::slice(data, first, n);
    buf.resize(n * k);
    m.predict(params, b, buf.data());
    for (size_t i = 0; i < n; ++i)
      out[first + i] = cls
        ? static_cast<float>(predicted_class(buf.data() + i * k, k))
        : buf[i * k];
  }
}

} // namespace dml
