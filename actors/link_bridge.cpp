#include "actors/link_bridge.hpp"

#include <utility>

#include <fmt/format.h>

#include <caf/all.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

namespace dml {

namespace {

template <class T>
std::vector<char> encode(T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  if (auto err = sink(x))
    return {}; // cannot happen: plain fields only
  return buf;
}

/// Decodes `bytes` into `x`; returns false unless they hold exactly one,
/// with no tensor values (those travel as the frame's floats).
template <class T>
bool decode(const std::vector<char>& bytes, T& x) {
  try {
    caf::binary_deserializer source{nullptr, bytes};
    return !source(x) && source.remaining() == 0;
  } catch (const std::exception&) {
    return false;
  }
}

/// Runs, on the calling thread, the actor that a delivery found idle.
///
/// A frame handed to an actor from a link's reader thread would otherwise
/// wake a scheduler thread to run the actor while the reader goes back to
/// sleep. On a virtual machine whose idle cores halt, that wake-up takes
/// tens of microseconds, once per step on each side. The reader has nothing
/// else to do until its actor answers, so it runs the actor itself. CAF
/// still runs an actor on one thread at a time: `exec_later` is called here
/// only by the delivery that found the actor idle (its mailbox's blocked
/// reader), and any other actor that a message makes ready meanwhile goes
/// to the scheduler as usual.
class inline_unit : public caf::execution_unit {
public:
  explicit inline_unit(caf::actor_system& sys) : caf::execution_unit(&sys) {
    // nop
  }

  void exec_later(caf::resumable* job) override {
    if (first_) {
      first_ = false;
      job_ = job; // the actor this unit delivered to: runs in `run`
      return;
    }
    system().scheduler().enqueue(job);
  }

  /// Runs the actor for one message if the delivery found it idle; the
  /// scheduler takes over any others.
  void run() {
    first_ = false;
    auto* job = std::exchange(job_, nullptr);
    if (job == nullptr)
      return;
    switch (job->resume(this, 1)) {
      case caf::resumable::resume_later:
        system().scheduler().enqueue(job); // takes over the reference
        break;
      case caf::resumable::done:
      case caf::resumable::awaiting_message:
      case caf::resumable::shutdown_execution_unit:
        intrusive_ptr_release(job);
        break;
    }
  }

private:
  bool first_ = true;
  caf::resumable* job_ = nullptr;
};

/// A handle that does not keep its actor alive: the actor owns the link,
/// so the link's reader thread must not own the actor.
class weak_handle {
public:
  explicit weak_handle(const caf::actor& x)
    : ptr_(caf::actor_cast<caf::weak_actor_ptr>(x)) {
    // nop
  }

  /// Sends `xs...` if the actor is still alive.
  template <class... Ts>
  void send(Ts&&... xs) const {
    if (auto strong = caf::actor_cast<caf::actor>(ptr_.lock()))
      caf::anon_send(strong, std::forward<Ts>(xs)...);
  }

  /// Sends `xs...` if the actor is still alive, and runs the actor on this
  /// thread for this message if it was idle (see `inline_unit`). Only this
  /// message: a frame never ends its actor, while a `stop` or a `down`
  /// might, and an actor must not end on a reader thread, which the actor
  /// system does not wait for when it shuts down.
  template <class... Ts>
  void deliver(Ts&&... xs) const {
    auto strong = ptr_.lock();
    if (!strong)
      return;
    inline_unit unit{*strong->home_system};
    strong->get()->enqueue(nullptr, caf::make_message_id(),
                           caf::make_message(std::forward<Ts>(xs)...), &unit);
    unit.run();
  }

private:
  caf::weak_actor_ptr ptr_;
};

} // namespace

void send_step(tensor_link& link, const step_plan& plan, const tensor& params) {
  auto meta = plan;
  link.send(frame_kind::params, encode(meta), params);
}

void send_gradient(tensor_link& link, grad_msg reply) {
  auto values = std::move(reply.values);
  reply.values = tensor{};
  link.send(frame_kind::gradient, encode(reply), std::move(values));
}

void start_master_side(tensor_link& link, caf::actor master, int32_t rank,
                       uint64_t token, size_t floats) {
  auto peer = link.peer();
  weak_handle to_master{master};
  link.start(
    floats,
    [=](link_frame&& f) {
      grad_msg msg;
      if (f.kind != frame_kind::gradient || !decode(f.meta, msg)
          || msg.values.size() != 0) {
        to_master.send(link_atom_v, rank, token,
                       fmt::format("tensor link to {}: a malformed gradient "
                                   "frame",
                                   peer));
        return;
      }
      msg.values = std::move(f.values);
      to_master.deliver(link_atom_v, rank, std::move(msg));
    },
    [=](const error& why) {
      to_master.send(link_atom_v, rank, token, why.message());
    });
}

void start_worker_side(tensor_link& link, caf::actor worker, caf::actor node,
                       size_t floats) {
  auto peer = link.peer();
  weak_handle to_worker{worker};
  weak_handle to_node{node};
  link.start(
    floats,
    [=](link_frame&& f) {
      step_plan plan;
      if (f.kind != frame_kind::params || !decode(f.meta, plan)) {
        to_node.send(link_atom_v,
                     fmt::format("tensor link to {}: a malformed step "
                                 "frame",
                                 peer));
        return;
      }
      plan.linked = true;
      to_worker.deliver(step_atom_v, std::move(plan), std::move(f.values));
    },
    [=](const error& why) { to_node.send(link_atom_v, why.message()); });
}

} // namespace dml
