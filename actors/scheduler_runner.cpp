#include "actors/scheduler_runner.hpp"

#include <caf/actor_system.hpp>
#include <caf/ref_counted.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

namespace dml {

namespace {

/// A one-shot task; the scheduler releases it once done.
class half_task : public caf::ref_counted, public caf::resumable {
public:
  explicit half_task(std::shared_ptr<half_job> job) : job_(std::move(job)) {
    // nop
  }

  subtype_t subtype() const override {
    return function_object;
  }

  resume_result resume(caf::execution_unit*, size_t) override {
    job_->try_run(); // the owner may have run it already
    return done;
  }

  void intrusive_ptr_add_ref_impl() override {
    ref();
  }

  void intrusive_ptr_release_impl() override {
    deref();
  }

private:
  std::shared_ptr<half_job> job_;
};

} // namespace

void scheduler_runner::start(std::shared_ptr<half_job> job) {
  // Created with one reference, which the scheduler takes over.
  sys_.scheduler().enqueue(new half_task(std::move(job)));
}

} // namespace dml
