#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/dataset.hpp"

namespace dml {

/// Rows `[begin, end)` of the training set, owned by one worker, with the
/// number of its rows already used in the current epoch.
struct shard {
  uint32_t id = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
  /// Rows of this shard whose gradients were applied this epoch (committed).
  uint64_t cursor = 0;
  /// Rank of the owning worker, or -1.
  int32_t owner = -1;

  uint64_t size() const noexcept {
    return end - begin;
  }

  uint64_t left() const noexcept {
    return size() - cursor;
  }
};

/// Positions `[offset, offset + count)` of a shard's shuffled order in the
/// current epoch: the rows a worker uses in one step.
struct row_span {
  uint32_t shard = 0;
  uint64_t offset = 0;
  uint64_t count = 0;

  friend bool operator==(const row_span& x, const row_span& y) noexcept {
    return x.shard == y.shard && x.offset == y.offset && x.count == y.count;
  }
};

/// Returns the spans a worker that just computed `spans` most likely gets
/// next: each moved past itself, cut at its shard's end, those at the end
/// dropped. A guess, for gathering rows ahead of time.
std::vector<row_span> next_spans(const std::vector<row_span>& spans,
                                 const std::vector<shard>& shards);

/// Returns the rows of `rank`'s share of a global batch of `batch` rows split
/// over `workers` workers: `batch / workers`, plus one for the first
/// `batch % workers` ranks.
uint64_t step_quota(uint64_t batch, uint32_t workers, uint32_t rank);

/// The shard plan: which worker holds which shard, and how far each shard is
/// consumed. Every row is used exactly once per epoch: a step takes rows only
/// at committed cursors, and cursors advance only when a step's gradient is
/// applied, so a step that is dropped and redone replays the same rows.
class shard_plan {
public:
  shard_plan() = default;

  /// Cuts `rows` rows into `shards` contiguous shards whose sizes differ by at
  /// most one. Requires `0 < shards <= rows`.
  shard_plan(uint64_t rows, uint32_t shards);

  /// Gives shard `i` to `ranks[i % ranks.size()]`.
  void assign_round_robin(const std::vector<int32_t>& ranks);

  /// Gives every shard whose owner is not in `live` to the live rank with
  /// the fewest shards, then evens the counts out (a shard at a time from the
  /// rank with the most, its highest shard id first, to the rank with the
  /// fewest) until they differ by at most one. Ties go to the lowest rank.
  /// Shards keep their cursors. Returns the moves as (shard id, new owner),
  /// in the order made; none if `live` is empty.
  std::vector<std::pair<uint32_t, int32_t>>
  balance(const std::vector<int32_t>& live);

  /// Returns up to `quota` rows for `rank`, starting at the committed cursor
  /// of its first unfinished shard and continuing in the next ones.
  std::vector<row_span> take(int32_t rank, uint64_t quota) const;

  /// Advances cursors over `spans`, which must start at the cursors.
  /// Returns false (and changes nothing) if they do not.
  bool commit(const std::vector<row_span>& spans);

  /// Returns whether every shard is consumed.
  bool epoch_done() const noexcept;

  /// Rewinds every cursor for the next epoch.
  void start_epoch() noexcept;

  /// Returns the rows of `rank`'s shards not yet consumed this epoch.
  uint64_t left(int32_t rank) const noexcept;

  /// Returns the rows consumed this epoch.
  uint64_t consumed() const noexcept;

  /// Returns the number of rows the plan covers.
  uint64_t rows() const noexcept {
    return rows_;
  }

  const std::vector<shard>& shards() const noexcept {
    return shards_;
  }

  std::vector<shard>& shards() noexcept {
    return shards_;
  }

private:
  uint64_t rows_ = 0;
  std::vector<shard> shards_;
};

/// Returns the shuffled order of a shard of `size` rows in `epoch`: a
/// permutation of `[0, size)` that depends only on `(seed, epoch, shard)`, so
/// whichever worker holds the shard replays the same rows.
std::vector<uint32_t> shard_order(uint64_t seed, uint64_t epoch, uint32_t shard,
                                  uint64_t size);

/// Appends to `out` the dataset row ids of `span` (`first_row` is the
/// shard's first row, `order` its shuffled order).
void span_rows(const row_span& span, uint64_t first_row,
               const std::vector<uint32_t>& order, std::vector<uint32_t>& out);

/// Returns a hex SHA-256 of a dataset's shape, features and targets, so that
/// nodes can check that they hold the same data.
std::string fingerprint(const dataset& data);

} // namespace dml
