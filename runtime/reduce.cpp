#include "runtime/reduce.hpp"

#include <algorithm>

namespace dml {

void ordered_reduction::reset(std::vector<int32_t> ranks) {
  std::sort(ranks.begin(), ranks.end());
  ranks_ = std::move(ranks);
  parts_.clear();
  parts_.resize(ranks_.size());
  have_.assign(ranks_.size(), false);
  stored_ = 0;
}

bool ordered_reduction::add(int32_t rank, gradient_part x) {
  auto i = std::lower_bound(ranks_.begin(), ranks_.end(), rank);
  if (i == ranks_.end() || *i != rank)
    return false;
  auto pos = static_cast<size_t>(i - ranks_.begin());
  if (have_[pos])
    return false;
  parts_[pos] = std::move(x);
  have_[pos] = true;
  ++stored_;
  return true;
}

std::vector<int32_t> ordered_reduction::missing() const {
  std::vector<int32_t> result;
  for (size_t i = 0; i < ranks_.size(); ++i)
    if (!have_[i])
      result.push_back(ranks_[i]);
  return result;
}

void ordered_reduction::take(gradient_sum& out) {
  out.count = 0;
  out.loss = 0;
  std::vector<const tensor*> xs;
  for (auto& part : parts_) {
    out.count += part.count;
    out.loss += part.loss;
    if (part.values)
      xs.push_back(&part.values);
  }
  // Plain loops (exact and alignment-independent, see apply_update), in rank
  // order: out = x0 + x1 in one pass, then + x2, ...
  if (xs.empty()) {
    out.values.clear();
  } else if (xs.size() == 1) {
    out.values = to_vector(*xs[0]);
  } else {
    auto n = std::min(xs[0]->size(), xs[1]->size());
    out.values.resize(n);
    float* dst = out.values.data();
    const float* a = xs[0]->begin();
    const float* b = xs[1]->begin();
    for (size_t i = 0; i < n; ++i)
      dst[i] = a[i] + b[i];
    for (size_t k = 2; k < xs.size(); ++k) {
      const float* src = xs[k]->begin();
      for (size_t i = 0, m = std::min(n, xs[k]->size()); i < m; ++i)
        dst[i] += src[i];
    }
  }
  clear();
}

void ordered_reduction::clear() {
  parts_.clear();
  have_.clear();
  ranks_.clear();
  stored_ = 0;
}

} // namespace dml
