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

bool ordered_reduction::add(int32_t rank, gradient_sum x) {
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

gradient_sum ordered_reduction::take() {
  gradient_sum acc;
  if (parts_.empty())
    return acc;
  acc = std::move(parts_[0]);
  for (size_t i = 1; i < parts_.size(); ++i)
    accumulate(acc, parts_[i]);
  parts_.clear();
  have_.clear();
  ranks_.clear();
  stored_ = 0;
  return acc;
}

} // namespace dml
