#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.hpp"

namespace dml {

/// What an injected fault does.
enum class fault_kind {
  /// The worker dies at the step (its process with SIGKILL on a cluster).
  kill,
  /// The worker stops answering at the step for `ms`, then answers late.
  hang,
  /// The worker answers every step `ms` late (a slow peer, not a fault).
  delay,
  /// The worker computes the step but its gradient is lost.
  drop_gradient,
  /// The aggregator `rank` (its index) dies at the step.
  kill_aggregator,
};

/// One injected fault: `kind:rank=R,step=S,ms=M` (see `parse_faults`).
struct fault {
  fault_kind kind = fault_kind::kill;
  /// Worker rank (aggregator index for `kill-aggregator`).
  int32_t rank = 0;
  /// Global step (0-based) at which it fires, on the first attempt only.
  uint64_t step = 0;
  /// Milliseconds for `hang` and `delay`.
  uint32_t ms = 0;
};

/// Parses `--inject` text: faults separated by ';' or blanks, each
/// `kind:key=value,...` with kind `kill`, `hang`, `delay`, `drop-gradient`
/// or `kill-aggregator` and keys `rank`, `step`, `ms`. `rank` is required;
/// `step` is required except for `delay`; `ms` is required for `hang` and
/// `delay`. Errors name the item and the problem.
expected<std::vector<fault>> parse_faults(const std::string& text);

/// Returns the fault of `kind` for `rank` that fires at `step`, or null.
const fault* find_fault(const std::vector<fault>& faults, fault_kind kind,
                        int32_t rank, uint64_t step);

/// Returns `kind`'s name as written in `--inject`.
const char* to_string(fault_kind kind) noexcept;

} // namespace dml
