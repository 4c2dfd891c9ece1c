#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/model.hpp"
#include "runtime/optimizer.hpp"
#include "runtime/preprocess.hpp"

namespace dml {

/// A trained model as saved to disk: what to build, how to preprocess, and
/// the parameters.
struct model_file {
  model_config config;
  task_kind task = task_kind::classification;
  standardizer stdz;
  std::vector<float> params;
};

/// Everything needed to resume training exactly where it stopped.
struct checkpoint {
  model_file model;
  optimizer_state opt;
  /// Steps applied and the epoch in progress (0-based).
  uint64_t step = 0;
  uint64_t epoch = 0;
  /// Training rows used so far over the whole job.
  uint64_t samples = 0;
  /// Each shard's committed cursor in the current epoch.
  std::vector<uint64_t> cursors;
  /// Random generator state of the master.
  uint64_t rng_state = 0;
  /// Loss summed over the current epoch's rows so far, and seconds of
  /// training so far (for the metrics of the resumed run).
  double epoch_loss = 0;
  double train_s = 0;
  /// The job spec as JSON (`to_json(job_spec)`).
  std::string spec_json;
};

/// The on-disk format version this build writes and the newest it reads.
constexpr uint32_t model_file_version = 1;

/// Returns the bytes of `m` in the versioned, checksummed format:
/// `magic(8) version(u32) length(u64) payload sha256(32)`, little endian.
/// Equal content gives equal bytes (nothing time- or host-dependent inside).
std::string encode(const model_file& m);

/// Returns the bytes of `c` (same framing as `encode(model_file)`, another
/// magic).
std::string encode(const checkpoint& c);

/// Decodes a model file; `name` is used in error messages.
expected<model_file> decode_model_file(const std::string& bytes,
                                       const std::string& name);

/// Decodes a checkpoint; `name` is used in error messages.
expected<checkpoint> decode_checkpoint(const std::string& bytes,
                                       const std::string& name);

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync,
/// rename, fsync of the folder. A reader sees the old or the new file, never
/// a partial one.
error write_file_atomic(const std::string& path, const std::string& bytes);

/// Returns an error if `write_file_atomic(path, ...)` could not work: the
/// folder is missing or not writable, or `path` is something other than a
/// regular file (a device, a folder). `flag` names where the path came from.
error check_output_path(const std::string& path, const std::string& flag);

/// Creates the folder `dir` (and its parents) if needed; an error if that
/// fails or the folder is not writable.
error make_output_folder(const std::string& dir, const std::string& flag);

/// Reads and decodes the model file at `path`.
expected<model_file> load_model_file(const std::string& path);

/// Reads and decodes the checkpoint at `path`.
expected<checkpoint> load_checkpoint(const std::string& path);

} // namespace dml
