#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dml {

/// Compressed sparse rows: row `r` holds `indices[indptr[r] .. indptr[r+1])`
/// (0-based, strictly increasing) with the matching `values`.
struct csr_matrix {
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  std::vector<float> values;
};

/// A table of examples: features (dense row-major or sparse CSR) plus one
/// target per row. For classification the target is the class index stored as
/// a float (exact below 2^24); for regression it is the value.
struct dataset {
  /// Number of rows (examples).
  size_t rows = 0;

  /// Number of feature columns.
  size_t cols = 0;

  /// Whether the features live in `csr` (true) or in `dense` (false).
  bool sparse = false;

  /// Row-major features, `rows * cols` values, when `!sparse`.
  std::vector<float> dense;

  /// Sparse features when `sparse`.
  csr_matrix csr;

  /// One target per row.
  std::vector<float> targets;

  /// Where the data came from, for messages (a path or "synthetic:...").
  std::string source;
};

/// A minibatch as the models read it. Dense batches set `dense` (row-major,
/// `rows * cols`). Sparse ones set `indptr` (`rows + 1` offsets), `indices`
/// and `values`: row `r` holds entries `indptr[r] .. indptr[r+1]` of
/// `indices` and `values` (offsets need not start at 0).
struct batch_view {
  size_t rows = 0;
  size_t cols = 0;
  const float* dense = nullptr;
  const int64_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* values = nullptr;
  const float* targets = nullptr;

  bool sparse() const noexcept {
    return dense == nullptr;
  }
};

/// Reusable storage for minibatches gathered from a dataset. Keeps its
/// capacity, so gathering batches of a bounded size allocates nothing after
/// the first one.
class batch_buffer {
public:
  /// Copies rows `row_ids[0 .. n)` of `data` into this buffer and returns a
  /// view of them, in that order.
  batch_view gather(const dataset& data, const uint32_t* row_ids, size_t n);

  /// Like `gather`, but row `i` comes from `*sources[i]`; every source has
  /// the same columns and kind (dense or sparse).
  batch_view gather(const dataset* const* sources, const uint32_t* row_ids,
                    size_t n);

  /// Returns a view of the contiguous rows `[first, first + n)` of `data`
  /// without copying anything.
  static batch_view slice(const dataset& data, size_t first, size_t n);

private:
  std::vector<float> dense_;
  std::vector<int64_t> indptr_;
  std::vector<int32_t> indices_;
  std::vector<float> values_;
  std::vector<float> targets_;
};

/// Returns a view of all rows of `data` (dense: no copy; sparse: no copy,
/// since the CSR row pointers start at 0).
batch_view whole(const dataset& data);

/// Returns rows `[first, first + n)` of `data` as a dataset of their own
/// (sparse row pointers rebased to 0).
dataset copy_rows(const dataset& data, size_t first, size_t n);

/// Reserves room for `rows` rows in total in `d` (dense: of `d.cols`
/// columns), so that appending them chunk by chunk copies nothing twice.
void reserve_rows(dataset& d, size_t rows);

/// Appends every row of `src` to `dst`. An empty `dst` takes `src`'s columns
/// and kind; otherwise they must agree.
bool append_rows(dataset& dst, const dataset& src);

/// Returns the number of classes of a classification target vector: the
/// largest label plus one.
size_t count_classes(const std::vector<float>& targets);

} // namespace dml
