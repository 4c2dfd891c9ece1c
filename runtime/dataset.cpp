#include "runtime/dataset.hpp"

#include <algorithm>
#include <cstring>

#include <sys/mman.h>

namespace dml {

namespace {

/// Asks for the cache lines of `bytes` bytes at `p`, to be read soon.
void prefetch(const void* p, size_t bytes) {
  auto* at = static_cast<const char*>(p);
  for (size_t b = 0; b < bytes; b += 64)
    __builtin_prefetch(at + b);
}

/// Copies the rows `row_ids[i]` of `source(i)` into a batch.
template <class Source>
batch_view
gather_rows(Source source, size_t cols, bool sparse, const uint32_t* row_ids,
            size_t n, std::vector<float>& dense, std::vector<int64_t>& indptr,
            std::vector<int32_t>& indices, std::vector<float>& values,
            std::vector<float>& targets) {
  batch_view v;
  v.rows = n;
  v.cols = cols;
  targets.resize(n);
  for (size_t i = 0; i < n; ++i)
    targets[i] = source(i).targets[row_ids[i]];
  v.targets = targets.data();
  if (!sparse) {
    dense.resize(n * cols);
    auto row = [&](size_t i) {
      return source(i).dense.data() + size_t{row_ids[i]} * cols;
    };
    for (size_t i = 0; i < n; ++i) {
      // Rows lie anywhere in the data: while one is copied, the next one's
      // cache lines are already on their way (a batch's gathering is on
      // the step's path; 1-4% more samples/s, bench/RESULTS.md).
      if (i + 1 < n)
        prefetch(row(i + 1), cols * sizeof(float));
      std::memcpy(dense.data() + i * cols, row(i), cols * sizeof(float));
    }
    v.dense = dense.data();
    return v;
  }
  indptr.resize(n + 1);
  indptr[0] = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& d = source(i);
    auto r = row_ids[i];
    indptr[i + 1] = indptr[i] + (d.csr.indptr[r + 1] - d.csr.indptr[r]);
  }
  auto nnz = static_cast<size_t>(indptr[n]);
  indices.resize(nnz);
  values.resize(nnz);
  for (size_t i = 0; i < n; ++i) {
    auto& d = source(i);
    auto r = row_ids[i];
    auto first = static_cast<size_t>(d.csr.indptr[r]);
    auto len = static_cast<size_t>(d.csr.indptr[r + 1]) - first;
    std::copy_n(d.csr.indices.data() + first, len, indices.data() + indptr[i]);
    std::copy_n(d.csr.values.data() + first, len, values.data() + indptr[i]);
  }
  v.indptr = indptr.data();
  v.indices = indices.data();
  v.values = values.data();
  return v;
}

} // namespace

batch_view batch_buffer::gather(const dataset& data, const uint32_t* row_ids,
                                size_t n) {
  return gather_rows([&](size_t) -> const dataset& { return data; }, data.cols,
                     data.sparse, row_ids, n, dense_, indptr_, indices_,
                     values_, targets_);
}

batch_view batch_buffer::gather(const dataset* const* sources,
                                const uint32_t* row_ids, size_t n) {
  if (n == 0)
    return batch_view{};
  return gather_rows([&](size_t i) -> const dataset& { return *sources[i]; },
                     sources[0]->cols, sources[0]->sparse, row_ids, n, dense_,
                     indptr_, indices_, values_, targets_);
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
