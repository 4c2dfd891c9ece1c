#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/model_file.hpp"

namespace dml {

/// Returns the file name of the checkpoint after `step` steps:
/// `ckpt-<step, 12 digits>.dmlc`, so names sort by step.
std::string checkpoint_name(uint64_t step);

/// Writes `c` atomically into `dir` (created if missing) and deletes all but
/// the newest `keep` checkpoints there.
error save_checkpoint(const std::string& dir, const checkpoint& c, size_t keep);

/// The newest valid checkpoint of a folder.
struct found_checkpoint {
  checkpoint data;
  std::string path;
  /// One line per newer checkpoint that was skipped, and why.
  std::vector<std::string> skipped;
};

/// Returns the newest checkpoint in `dir` that decodes and verifies; damaged
/// ones are skipped and named in `skipped`. Fails if the folder cannot be
/// read or holds no valid checkpoint.
expected<found_checkpoint> newest_checkpoint(const std::string& dir);

} // namespace dml
