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
  bool first = true;
  for (auto& part : parts_) {
    out.count += part.count;
    out.loss += part.loss;
    if (!part.values)
      continue;
    auto& xs = *part.values;
    if (first) {
      out.values.assign(xs.begin(), xs.end());
      first = false;
      continue;
    }
    // A plain loop: exact and alignment-independent (see apply_update).
    float* dst = out.values.data();
    const float* src = xs.data();
    for (size_t i = 0, n = std::min(out.values.size(), xs.size()); i < n; ++i)
      dst[i] += src[i];
  }
  if (first)
    out.values.clear();
  parts_.clear();
  have_.clear();
  ranks_.clear();
  stored_ = 0;
}

} // namespace dml
