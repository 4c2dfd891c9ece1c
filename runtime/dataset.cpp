#include "runtime/dataset.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

namespace dml {

batch_view batch_buffer::gather(const dataset& data, const uint32_t* row_ids,
                                size_t n) {
  batch_view v;
  v.rows = n;
  v.cols = data.cols;
  targets_.resize(n);
  for (size_t i = 0; i < n; ++i)
    targets_[i] = data.targets[row_ids[i]];
  v.targets = targets_.data();
  if (!data.sparse) {
    dense_.resize(n * data.cols);
    for (size_t i = 0; i < n; ++i)
      std::memcpy(dense_.data() + i * data.cols,
                  data.dense.data() + size_t{row_ids[i]} * data.cols,
                  data.cols * sizeof(float));
    v.dense = dense_.data();
    return v;
  }
  indptr_.resize(n + 1);
  indptr_[0] = 0;
  for (size_t i = 0; i < n; ++i) {
    auto r = row_ids[i];
    indptr_[i + 1] = indptr_[i] + (data.csr.indptr[r + 1] - data.csr.indptr[r]);
  }
  auto nnz = static_cast<size_t>(indptr_[n]);
  indices_.resize(nnz);
  values_.resize(nnz);
  for (size_t i = 0; i < n; ++i) {
    auto r = row_ids[i];
    auto first = static_cast<size_t>(data.csr.indptr[r]);
    auto len = static_cast<size_t>(data.csr.indptr[r + 1]) - first;
    std::copy_n(data.csr.indices.data() + first, len,
                indices_.data() + indptr_[i]);
    std::copy_n(data.csr.values.data() + first, len,
                values_.data() + indptr_[i]);
  }
  v.indptr = indptr_.data();
  v.indices = indices_.data();
  v.values = values_.data();
  return v;
}

batch_view batch_buffer::slice(const dataset& data, size_t first, size_t n) {
  batch_view v;
  v.rows = n;
  v.cols = data.cols;
  v.targets = data.targets.data() + first;
  if (!data.sparse) {
    v.dense = data.dense.data() + first * data.cols;
    return v;
  }
  v.indptr = data.csr.indptr.data() + first;
  v.indices = data.csr.indices.data();
  v.values = data.csr.values.data();
  return v;
}

batch_view whole(const dataset& data) {
  return batch_buffer::slice(data, 0, data.rows);
}

dataset copy_rows(const dataset& data, size_t first, size_t n) {
  dataset out;
  out.rows = n;
  out.cols = data.cols;
  out.sparse = data.sparse;
  out.source = data.source;
  out.targets.assign(data.targets.begin() + first,
                     data.targets.begin() + first + n);
  if (!data.sparse) {
    out.dense.assign(data.dense.begin() + first * data.cols,
                     data.dense.begin() + (first + n) * data.cols);
    return out;
  }
  auto lo = data.csr.indptr[first];
  auto hi = data.csr.indptr[first + n];
  out.csr.indptr.resize(n + 1);
  for (size_t i = 0; i <= n; ++i)
    out.csr.indptr[i] = data.csr.indptr[first + i] - lo;
  out.csr.indices.assign(data.csr.indices.begin() + lo,
                         data.csr.indices.begin() + hi);
  out.csr.values.assign(data.csr.values.begin() + lo,
                        data.csr.values.begin() + hi);
  return out;
}

namespace {

/// Asks the kernel to back the 2 MB-aligned part of a large buffer with
/// huge pages: filling it then takes one page fault per 2 MB instead of
/// one per 4 KB (page faults are the cost of filling fresh memory).
void advise_huge_pages(const void* p, size_t bytes) {
  constexpr uintptr_t huge = 2u << 20;
  auto first = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
  auto last = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(huge - 1);
  if (last > first)
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

} // namespace

void reserve_rows(dataset& d, size_t rows) {
  d.targets.reserve(rows);
  if (d.sparse) {
    d.csr.indptr.reserve(rows + 1);
  } else {
    d.dense.reserve(rows * d.cols);
    advise_huge_pages(d.dense.data(), d.dense.capacity() * sizeof(float));
  }
}

bool append_rows(dataset& dst, const dataset& src) {
  if (dst.rows == 0 && dst.targets.empty()) {
    dst.cols = src.cols;
    dst.sparse = src.sparse;
  } else if (dst.cols != src.cols || dst.sparse != src.sparse) {
    return false;
  }
  if (!src.sparse && src.dense.size() != src.rows * src.cols)
    return false;
  if (src.targets.size() != src.rows)
    return false;
  if (src.sparse
      && (src.csr.indptr.size() != src.rows + 1
          || src.csr.indices.size() != src.csr.values.size()
          || static_cast<size_t>(src.csr.indptr.back())
            != src.csr.indices.size()))
    return false;
  if (src.sparse)
    for (auto i : src.csr.indices)
      if (i < 0 || static_cast<size_t>(i) >= src.cols)
        return false;
  dst.targets.insert(dst.targets.end(), src.targets.begin(), src.targets.end());
  if (!src.sparse) {
    dst.dense.insert(dst.dense.end(), src.dense.begin(), src.dense.end());
  } else {
    auto base = dst.csr.indptr.back();
    for (size_t i = 1; i < src.csr.indptr.size(); ++i)
      dst.csr.indptr.push_back(base + src.csr.indptr[i]);
    dst.csr.indices.insert(dst.csr.indices.end(), src.csr.indices.begin(),
                           src.csr.indices.end());
    dst.csr.values.insert(dst.csr.values.end(), src.csr.values.begin(),
                          src.csr.values.end());
  }
  dst.rows += src.rows;
  return true;
}

size_t count_classes(const std::vector<float>& targets) {
  float hi = -1;
  for (auto t : targets)
    hi = std::max(hi, t);
  return static_cast<size_t>(hi + 1);
}

} // namespace dml
