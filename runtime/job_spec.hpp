#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/model.hpp"
#include "runtime/optimizer.hpp"

namespace dml {

/// Everything that defines a training job: data, model, optimizer, layout.
/// The master sends it to every member; checkpoints keep it. Its JSON form is
/// deterministic (sorted keys), so equal specs give equal bytes.
struct job_spec {
  /// Training and test data, as `load_dataset` reads them.
  std::string train_path;
  std::string test_path;
  /// "auto", "idx", "csv" or "libsvm".
  std::string format = "auto";
  /// CSV: the target column's header name (empty: the last column).
  std::string label_column;
  /// Standardize features with training statistics.
  bool standardize = false;
  /// Task: "classification" or "regression" ("auto" is resolved to one of
  /// these from the model name before the job starts).
  std::string task = "auto";

  /// Registered model name and MLP shape.
  std::string model = "softmax";
  std::vector<size_t> hidden;
  activation act = activation::relu;
  /// L2 penalty on weights (not biases).
  float l2 = 0.0f;

  optimizer_config opt;

  /// Global minibatch rows per step, split over the workers.
  uint64_t batch_size = 128;
  uint32_t epochs = 10;
  /// Shards of the training set; 0 means 4 per worker.
  uint32_t shards = 0;
  uint64_t seed = 1;

  /// Layout: shard-workers and aggregators.
  uint32_t workers = 1;
  uint32_t aggregators = 0;
};

/// Returns the spec as canonical JSON text.
std::string to_json(const job_spec& spec);

/// `to_json(spec)` with the training data's fingerprint (SHA-256 of its
/// rows) under "data_fingerprint", as a checkpoint keeps it; none if empty.
std::string to_json(const job_spec& spec, const std::string& fingerprint);

/// The "data_fingerprint" of a spec written by `to_json(spec, fingerprint)`;
/// empty if it has none.
std::string data_fingerprint_of(const std::string& spec_json);

/// Parses `text` as produced by `to_json`. Unknown or mistyped keys are
/// errors.
expected<job_spec> job_spec_from_json(const std::string& text);

/// Returns `spec.task` resolved: "regression" for the model "linear",
/// "classification" otherwise, unless set explicitly.
std::string resolved_task(const job_spec& spec);

/// Checks the spec for impossible values (zero batch, negative rates, more
/// aggregators than workers, ...) and names the first offending flag.
error validate(const job_spec& spec);

/// Returns the activation named `name` ("relu", "tanh").
expected<activation> parse_activation(const std::string& name);

const char* to_string(activation x) noexcept;

} // namespace dml
