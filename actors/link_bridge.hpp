#pragma once

// Between tensor links and actors: the step plan and the gradient header
// travel in a frame's metadata (CAF's binary encoding of the message types),
// the tensors as its floats. A link's reader thread turns each frame into
// the message the actor would have received from CAF.

#include <cstdint>
#include <vector>

#include <caf/actor.hpp>

#include "actors/messages.hpp"
#include "runtime/tensor_link.hpp"

namespace dml {

/// Sends step `plan` with `params` on `link` (master to worker process).
void send_step(tensor_link& link, const step_plan& plan, const tensor& params);

/// Sends `reply` on `link` (worker process to master); its values travel as
/// the frame's floats.
void send_gradient(tensor_link& link, grad_msg reply);

/// Starts the master's side of rank `rank`'s link: each gradient frame
/// reaches `master` as `(link_atom, int32_t rank, grad_msg)`; a broken link
/// or malformed frame (one of more than `floats` floats, the model's size,
/// included) as `(link_atom, int32_t rank, uint64_t token, std::string
/// why)`.
void start_master_side(tensor_link& link, caf::actor master, int32_t rank,
                       uint64_t token, size_t floats);

/// Starts a worker process's side: each step frame reaches `worker` as
/// `(step_atom, step_plan, tensor)`; a broken link or malformed frame (of
/// more than `floats` floats included) reaches `node` as `(link_atom,
/// std::string why)`.
void start_worker_side(tensor_link& link, caf::actor worker, caf::actor node,
                       size_t floats);

} // namespace dml
