#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/dataset.hpp"
#include "runtime/error.hpp"
#include "runtime/half_job.hpp"
#include "runtime/job_spec.hpp"
#include "runtime/metrics.hpp"
#include "runtime/model.hpp"
#include "runtime/model_file.hpp"
#include "runtime/model_registry.hpp"
#include "runtime/optimizer.hpp"
#include "runtime/preprocess.hpp"
#include "runtime/shard.hpp"

namespace dml {

/// The data of a job, loaded, checked and preprocessed, and the model shape
/// it implies.
struct prepared_data {
  std::shared_ptr<const dataset> train;
  /// `fingerprint` of the training set as loaded, before standardization
  /// (only when asked for).
  std::string fingerprint;
  /// Null when the job has no test set.
  std::shared_ptr<const dataset> test;
  standardizer stdz;
  model_config config;
  task_kind task = task_kind::classification;
};

/// Loads the training (and test) data of `spec`, derives the class count from
/// the training labels, checks the test labels against it, fits and applies
/// standardization when asked, and fills in the model configuration.
expected<prepared_data> prepare_data(const job_spec& spec,
                                     bool with_fingerprint = false);

/// Loads the training set of `spec` the way `prepare_data` does (format,
/// label column, task), without the test set or standardization.
expected<dataset> load_training_set(const job_spec& spec);

/// Returns the model configuration for `spec` on data with `inputs` features
/// and `classes` classes (0 for regression).
model_config make_model_config(const job_spec& spec, size_t inputs,
                               size_t classes);

/// Returns the shard count of `spec` (4 per worker by default), clamped to
/// the number of rows.
uint32_t shard_count(const job_spec& spec, uint64_t rows);

/// This machine's physical memory in bytes (0 if unknown).
double physical_memory_bytes();

/// One worker's contribution to a step: summed loss and gradient over
/// `count` rows.
struct gradient_sum {
  uint64_t count = 0;
  double loss = 0;
  std::vector<float> values;
};

/// Turns a summed gradient into a parameter update: divides by the row
/// count, adds the L2 term, and applies the optimizer with the learning rate
/// for `progress` epochs. Returns the mean loss of the step, regularization
/// included. `scratch` keeps its capacity between calls.
double apply_step(const model& m, const job_spec& spec, gradient_sum& sum,
                  double progress, std::vector<float>& params,
                  optimizer_state& opt);

/// Like `apply_step`, but reads the parameters from `in` and writes the
/// updated ones to `out` (`sum.values.size()` floats; `out` may equal `in`).
double apply_step(const model& m, const job_spec& spec, gradient_sum& sum,
                  double progress, const float* in, float* out,
                  optimizer_state& opt);

/// Applies a step whose gradient sum is `parts[0] (+ parts[1])` over
/// `count` rows (`nparts` is 1 or 2; `n` floats each), fused into the
/// optimizer's pass, reading the parameters from `in` and writing `out`.
/// Requires `spec.l2 == 0` (the L2 term needs the summed gradient: sum into
/// a buffer and use `apply_step`). Same bits as `apply_step` on the sum.
/// Returns the mean loss. With a `runner`, a large update runs half there
/// and half on the calling thread (the same bits).
double apply_step_fused(const job_spec& spec, const float* const* parts,
                        size_t nparts, uint64_t count, double loss,
                        double progress, const float* in, float* out, size_t n,
                        optimizer_state& opt, half_runner* runner = nullptr);

/// Computes one worker's gradient over spans of the shard plan. By default
/// the data holds every training row (shard `s` starts at row `s.begin`); a
/// worker that holds only some shards says where each one starts with
/// `place`.
class shard_computer {
public:
  shard_computer(std::shared_ptr<const dataset> data, uint64_t seed);

  /// Says that the rows of shard `id` start at row `first` of the data. Once
  /// any shard is placed, spans of unplaced shards are refused.
  void place(uint32_t id, uint64_t first);

  /// Says that no shard is held until placed (a worker holding only the
  /// rows shipped to it, maybe none yet).
  void hold_none(uint32_t shards) {
    base_.assign(shards, -1);
  }

  /// Returns whether spans of shard `id` can be computed here.
  bool holds(uint32_t id) const noexcept;

  /// Holds shard `id` from now on: its rows are all of `rows` (a shard
  /// adopted from a lost worker, shipped on its own).
  void adopt(uint32_t id, std::shared_ptr<const dataset> rows);

  const dataset& data() const noexcept {
    return *data_;
  }

  /// Computes the loss and gradient summed over the rows of `spans` in
  /// `epoch` for `params` with `m`, into `out` (reusing its buffer). Spans
  /// outside the shards or the data held are refused with an error.
  error compute(model& m, const float* params, uint64_t epoch,
                const std::vector<row_span>& spans,
                const std::vector<shard>& shards, gradient_sum& out);

  /// Like `compute`, but writes the gradient to `grad` (`m.num_params()`
  /// floats, e.g. a region of shared memory) instead of `out.values`, which
  /// stays as it is.
  error compute_to(model& m, const float* params, uint64_t epoch,
                   const std::vector<row_span>& spans,
                   const std::vector<shard>& shards, gradient_sum& out,
                   float* grad);

  /// Gathers the rows of `spans` in `epoch` ahead of time, so that a
  /// `compute` of exactly these spans (before any other `prepare` or change
  /// of the rows held) copies nothing. A worker calls it with the spans it
  /// expects next while the master applies the step. Spans that `compute`
  /// would refuse are not gathered.
  void prepare(uint64_t epoch, const std::vector<row_span>& spans,
               const std::vector<shard>& shards);

  /// Returns whether the last `compute` used rows gathered by `prepare`.
  bool used_prepared() const noexcept {
    return used_prepared_;
  }

private:
  const std::vector<uint32_t>& order(uint64_t epoch, const shard& s);

  /// Gathers the rows of `spans` into `batch_`.
  error gather(uint64_t epoch, const std::vector<row_span>& spans,
               const std::vector<shard>& shards);

  std::shared_ptr<const dataset> data_;
  uint64_t seed_;
  std::vector<int64_t> base_;
  /// Adopted shards by id (null: not adopted), and the source of each row
  /// of a step that uses one.
  std::vector<std::shared_ptr<const dataset>> adopted_;
  std::vector<const dataset*> sources_;
  uint64_t cached_epoch_ = UINT64_MAX;
  std::vector<std::vector<uint32_t>> orders_;
  std::vector<uint32_t> rows_;
  batch_buffer buf_;
  /// The rows gathered last, and for which epoch and spans.
  batch_view batch_;
  bool prepared_ = false;
  uint64_t prepared_epoch_ = 0;
  std::vector<row_span> prepared_spans_;
  bool used_prepared_ = false;
};

/// What the single-threaded loop reports after each epoch.
struct epoch_report {
  uint32_t epoch = 0;
  uint64_t steps = 0;
  uint64_t samples = 0;
  double train_loss = 0;
  double train_seconds = 0;
  bool has_test = false;
  eval_metrics test;
};

/// The result of a training run.
struct train_outcome {
  model_file model;
  std::vector<epoch_report> epochs;
  uint64_t steps = 0;
  uint64_t samples = 0;
  double train_seconds = 0;
};

/// Trains `spec` in this thread with the shard plan of one worker: the
/// reference the actor runtime is held against. Calls `on_epoch` after each
/// epoch (if set).
expected<train_outcome> train_single_threaded(
  const job_spec& spec, const prepared_data& data,
  const model_registry& registry,
  const std::function<void(const epoch_report&)>& on_epoch = {});

} // namespace dml
