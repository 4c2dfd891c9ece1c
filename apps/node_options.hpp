#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/fault.hpp"
#include "runtime/job_spec.hpp"

namespace dml {

/// Everything `dml-node` reads from its command line (or config file).
struct node_options {
  /// master, worker, aggregator, local or eval.
  std::string role;

  /// Whether the role runs the job itself (local or master): it owns the
  /// job spec, the model and the outputs of training.
  bool trains() const noexcept {
    return role == "local" || role == "master";
  }

  job_spec spec;
  std::string model_out;
  std::string metrics_out;
  std::string model_in;
  std::string predictions_out;
  /// Scheduler threads (0: one per core).
  uint32_t threads = 0;
  bool quiet = false;
  /// Deadline of one step in milliseconds, when given (`--step-timeout`);
  /// otherwise it adapts: 60 s until a step completed, then 20 times the
  /// mean step time but at least 1 s.
  uint64_t step_timeout_ms = 60000;
  bool step_timeout_given = false;
  /// Fault tolerance: fewest live workers, and how long to wait for
  /// joiners below that (ms); checkpoints; resuming; a worker's reconnect
  /// window (ms); injected faults.
  uint32_t min_workers = 1;
  uint64_t join_timeout_ms = 60000;
  std::string checkpoint_dir;
  uint64_t checkpoint_every = 0;
  uint32_t checkpoint_keep = 3;
  std::string resume_dir;
  /// With --resume: the job flags given (e.g. "--epochs"), to compare with
  /// the checkpoint's job.
  std::vector<std::string> job_flags_given;
  uint64_t reconnect_timeout_ms = 30000;
  std::vector<fault> faults;
  /// Registered names of pluggable actors.
  std::string aggregator_type = "aggregator";
  std::string evaluator_type = "evaluator";
  std::vector<std::string> observers;
  /// Distributed roles: where the master listens / is reached, a worker's
  /// own copy of the data, a file to write the listening port to.
  std::string listen = "127.0.0.1:7400";
  std::string master;
  std::string data_path;
  std::string port_file;
  /// master: carry parameters and gradients of worker processes on tensor
  /// links (plain TCP beside CAF's connection), listening on `link_port`
  /// (0: a free port).
  bool tensor_link = true;
  /// Whether the links of workers on the master's host share memory.
  bool shared_memory = true;
  uint16_t link_port = 0;
  /// Milliseconds: connect retries, heartbeat interval, peer timeout.
  uint64_t connect_timeout_ms = 30000;
  uint64_t heartbeat_ms = 500;
  uint64_t peer_timeout_ms = 10000;
  /// Overrides the protocol tag peers compare (tests of mismatched builds).
  std::string app_id;
  /// Set when --help was printed: exit 0 without running.
  bool help_printed = false;
};

/// Parses `argv`. Both `--flag value` and `--flag=value` work; `--config
/// FILE` reads the same keys from a file. Errors are one line naming the flag
/// and the problem.
expected<node_options> parse_node_options(int argc, const char* const* argv);

/// Parses a list of layer sizes such as "128,64".
expected<std::vector<size_t>> parse_layers(const std::string& text);

} // namespace dml
