#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "runtime/error.hpp"

namespace dml {

/// Network settings of a node (see docs/operations.md).
struct transport_options {
  /// Interval of the heartbeats every node sends (0: none).
  std::chrono::milliseconds heartbeat{500};
  /// A connection with no data for this long is dropped (0: never). Must
  /// exceed the serialization time of the largest message.
  std::chrono::milliseconds peer_timeout{10000};
  /// How long a member keeps trying to reach its master.
  std::chrono::milliseconds connect_timeout{30000};
  /// The middleman app identifier; empty means `app_identifier()`. Only
  /// tests of version mismatches set it.
  std::string app_id;
};

/// Returns the middleman app identifier of this build: nodes of builds with
/// another protocol version refuse each other at the handshake.
std::string app_identifier();

/// Loads the middleman and sets heartbeats, the connection timeout and the
/// app identifier on `cfg`.
void configure_transport(caf::actor_system_config& cfg,
                         const transport_options& opts);

/// Splits `HOST:PORT`; `flag` names the option in the error.
expected<std::pair<std::string, uint16_t>>
parse_endpoint(const std::string& text, const std::string& flag);

/// Connects to the actor published at `host:port`, asynchronously with a
/// timeout per attempt (a silent peer would block CAF's `remote_actor`
/// forever) and retrying with backoff until `opts.connect_timeout`. A peer
/// of another protocol version fails at once.
expected<caf::actor> connect_with_retry(caf::actor_system& sys,
                                        const std::string& host, uint16_t port,
                                        const transport_options& opts);

} // namespace dml
