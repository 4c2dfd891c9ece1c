#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/dataset.hpp"
#include "runtime/fault.hpp"
#include "runtime/model_registry.hpp"
#include "runtime/tensor_link.hpp"

namespace dml {

/// Options of a worker process.
struct worker_node_options {
  /// A local copy of the training data (empty: the master ships the rows).
  std::string data_path;
  /// The master's host as given to --master: its tensor link listens there.
  std::string master_host;
  /// Deadline of requests to the master.
  std::chrono::milliseconds timeout{30000};
  /// Makes the model instance (lives as long as the process).
  const model_registry* models = nullptr;
  /// Injected faults for this worker's shard-worker (`--inject`).
  std::vector<fault> faults;
};

/// State of a worker process's node actor.
struct worker_node_state {
  worker_node_options opts;
  caf::actor master;
  caf::actor worker;
  job_setup setup;
  dataset rows;
  uint64_t expected_rows = 0;
  std::string data_fingerprint;
  /// The tensor link to the master (null: none), and why it broke.
  std::shared_ptr<tensor_link> link;
  std::string link_failure;
  /// The error that ended this node, printed by the process (empty: none).
  std::string failure;
  /// Set when the node ended because its master went away after it had
  /// joined (the process may reconnect and join again).
  bool lost_master = false;
  static inline const char* name = "dml.worker_node";
};

/// The member a worker process contributes: joins the master, receives the
/// job, gets its rows (shipped by the master, or loaded from its own copy
/// and checked by fingerprint), then spawns a shard-worker and
/// reports ready.
///
///   join --> job_setup --+--> (data chunks ...) --+--> ready --> steps
///                        +--> load + fingerprint -+
///
/// Interface: `(data_atom, data_chunk) -> bool` (from the master's shipper);
/// `(stop_atom)`: stop the shard-worker and quit. Quits with an error when
/// the master refuses it or goes away; `state.failure` says why.
caf::behavior worker_node(caf::stateful_actor<worker_node_state>* self,
                          caf::actor master, worker_node_options opts);

} // namespace dml
