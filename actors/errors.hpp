#pragma once

#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>

#include "runtime/error.hpp"

namespace dml {

/// Returns `x` as a CAF error of the category `dml`, carrying its message.
caf::error to_caf(const error& x);

/// Returns a CAF error of the category `dml` with `code` and `message`.
caf::error make_caf_error(errc code, std::string message);

/// Returns the message of a CAF error: the carried text for `dml` errors,
/// CAF's rendering for the others.
std::string describe(const caf::error& x);

/// Returns whether `x` says a peer is gone or silent (a request timed out,
/// its receiver is down or unreachable) rather than that it refused.
bool is_peer_loss(const caf::error& x);

/// Registers the `dml` error category, so CAF renders our errors readably.
void add_error_category(caf::actor_system_config& cfg);

} // namespace dml
