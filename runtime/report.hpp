#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/metrics.hpp"
#include "runtime/model.hpp"

namespace dml {

/// Where and how a job reports.
struct report_options {
  /// Print nothing but errors.
  bool quiet = false;
  /// Whether stderr is a terminal: then a progress line updates in place;
  /// otherwise only one plain line per epoch is printed.
  bool terminal = false;
  /// JSON Lines file for metrics (empty: none).
  std::string metrics_path;
  /// Task of the model, to pick the metric names.
  task_kind task = task_kind::classification;
  uint32_t epochs = 0;
  /// Training rows per epoch, for the ETA.
  uint64_t rows = 0;
  /// Set when a metrics record could not be written, so that the program
  /// that started the job can end non-zero (the reporter may live in an
  /// actor). May be null.
  std::shared_ptr<std::atomic<bool>> metrics_failed;
};

/// One epoch's record.
struct epoch_record {
  uint32_t epoch = 0;
  uint64_t steps = 0;
  uint64_t samples = 0;
  double train_loss = 0;
  bool has_test = false;
  eval_metrics test;
  double wall_s = 0;
  double train_s = 0;
};

/// The last record of a job.
struct final_record {
  /// Set by `--role eval`: no training happened.
  bool evaluation_only = false;
  uint32_t epochs = 0;
  uint64_t steps = 0;
  uint64_t samples = 0;
  double train_loss = 0;
  bool has_test = false;
  eval_metrics test;
  double wall_s = 0;
  double train_s = 0;
  std::string params_sha256;
  /// Training only: shard-workers at the end, faults seen (lost workers and
  /// aggregators), steps redone, and seconds from each fault to the next
  /// completed step.
  uint32_t workers = 0;
  uint64_t faults = 0;
  uint64_t steps_redone = 0;
  std::vector<double> recovery_s;
};

/// Prints progress and writes JSON Lines metrics, flushed as written.
class reporter {
public:
  explicit reporter(report_options opts);
  ~reporter();
  reporter(const reporter&) = delete;
  reporter& operator=(const reporter&) = delete;

  /// Opens the metrics file (truncating it). Fails with the path in the
  /// message when it cannot be created.
  error open();

  /// Updates the progress line (terminal only, at most ten times a second).
  void progress(uint32_t epoch, uint64_t epoch_samples, double loss,
                double samples_per_s, uint64_t faults = 0);

  /// Prints one line of news (a fault, a recovery, a resume) on its own
  /// line, unless quiet.
  void note(const std::string& line);

  /// Prints an epoch's summary and writes its JSON record.
  void epoch(const epoch_record& rec);

  /// Prints the final summary and writes the final JSON record. Returns the
  /// JSON text of that record.
  std::string final(const final_record& rec);

  /// Returns the JSON text of an epoch record.
  std::string to_json(const epoch_record& rec) const;

  /// Returns the JSON text of a final record.
  std::string to_json(const final_record& rec) const;

private:
  void clear_line();

  /// Writes one JSON line to the metrics file; the first failure (a full
  /// disk, say) is reported on stderr, even with --quiet.
  void write_metrics(const std::string& line);

  report_options opts_;
  FILE* metrics_ = nullptr;
  bool metrics_failed_ = false;
  bool line_shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

/// Returns whether `fd` is a terminal.
bool is_terminal(int fd);

} // namespace dml
