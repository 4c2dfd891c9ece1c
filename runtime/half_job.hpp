#pragma once

// Half of a loop that another thread may take off its owner. The owner
// hands the job to a `half_runner` (another core), runs its own half, then
// `finish`es: if no thread has started the job by then, the owner runs it
// itself, so a busy or missing runner costs time, never progress. The
// master applies the optimizer's update this way on two cores while the
// workers wait for the next step.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

namespace dml {

/// Tells the core that the calling thread spins on a memory word.
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class half_job {
public:
  explicit half_job(std::function<void()> fn) : fn_(std::move(fn)) {
    // nop
  }

  /// Runs the job unless another thread started it; returns whether this
  /// call ran it.
  bool try_run() {
    int open = 0;
    if (!state_.compare_exchange_strong(open, 1, std::memory_order_acq_rel))
      return false;
    fn_();
    state_.store(2, std::memory_order_release);
    return true;
  }

  /// Returns once the job ran, running it here if nobody started it.
  void finish() {
    if (try_run())
      return;
    // The other thread is inside the job, as long as the owner's half; if
    // it lost its core meanwhile, give the core away now and then.
    for (uint32_t spins = 1; state_.load(std::memory_order_acquire) != 2;
         ++spins) {
      if (spins % 256 == 0)
        std::this_thread::yield();
      else
        spin_pause();
    }
  }

private:
  std::function<void()> fn_;
  std::atomic<int> state_{0}; // 0: open, 1: running, 2: done
};

/// Runs half jobs on another thread, e.g. a core of the actor system's
/// scheduler.
class half_runner {
public:
  virtual ~half_runner() = default;

  /// Starts `job` elsewhere, soon; returns at once.
  virtual void start(std::shared_ptr<half_job> job) = 0;
};

} // namespace dml
