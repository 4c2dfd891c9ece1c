#pragma once

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"

namespace dml::test {

/// An actor system driven by CAF's deterministic scheduler: nothing runs
/// until the test calls `sched.run()`.
struct deterministic_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    c.add_message_types<caf::id_block::dml>();
    add_error_category(c);
    c.set("scheduler.policy", caf::atom("testing"));
    return c;
  }

  deterministic_fixture()
    : sys(init(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // nop
  }
};

/// An actor system with the default (threaded) scheduler.
struct threaded_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    c.add_message_types<caf::id_block::dml>();
    add_error_category(c);
    c.set("scheduler.max-threads", size_t{2});
    return c;
  }

  threaded_fixture() : sys(init(cfg)) {
    // nop
  }
};

} // namespace dml::test
