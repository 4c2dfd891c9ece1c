#pragma once

// Runs half jobs (runtime/half_job.hpp) as tasks of CAF's scheduler: in one
// process the scheduler's other threads spin between messages, so one picks
// a task up within a microsecond, which a thread of its own, woken from
// sleep, would not.

#include <memory>

#include <caf/fwd.hpp>

#include "runtime/half_job.hpp"

namespace dml {

class scheduler_runner : public half_runner {
public:
  explicit scheduler_runner(caf::actor_system& sys) : sys_(sys) {
    // nop
  }

  void start(std::shared_ptr<half_job> job) override;

private:
  caf::actor_system& sys_;
};

} // namespace dml
