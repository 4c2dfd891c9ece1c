#pragma once

// A memory segment that a worker process and its master share when both
// run on one host: the master writes a step's parameters into it, the
// worker its gradient, and each posts its frames (kind, metadata, float
// count) in a mailbox of the segment and wakes the other with a futex. The
// link's socket then carries no bytes at all and only tells whether the peer
// lives. This spares the two kernel copies and the loopback path per tensor,
// and the network stack per message, that dominate a step on one machine.
//
// The worker creates the segment (an anonymous memfd, sealed against
// resizing so a peer cannot make the other fault) and offers it in its
// link greeting: its pid, the descriptor number and a random nonce. The
// master opens it through /proc/PID/fd/FD; that only works on the same host
// and for the same user, and the nonce written into the segment proves it
// is the offered one. Nothing is ever named in the file system, so nothing
// is left behind when a process dies.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/error.hpp"

namespace dml {

/// Where a worker's segment can be found.
struct segment_offer {
  uint32_t pid = 0;
  int32_t fd = -1;
  uint64_t nonce = 0;

  explicit operator bool() const noexcept {
    return pid != 0 && fd >= 0 && nonce != 0;
  }
};

/// One direction of a segment: a slot for one frame at a time, and two
/// regions for its floats.
///
/// The sender waits until `taken == posted` and until the region it wants
/// is not `busy`, writes the frame, marks the region busy, increments
/// `posted` and wakes the reader. The reader copies the frame's header and
/// metadata out, increments `taken` and wakes the sender; the floats stay in
/// the region, which the reader marks free once it no longer refers to it
/// (the last copy of the tensor pointing there is gone). So a region is
/// never written while the other side may read it, and with two regions the
/// next frame need not wait for the previous one to be released.
///
/// `posted`, `taken` and `busy` are futex words. Everything here is written
/// by the peer: a reader checks it like bytes from a socket.
struct mailbox {
  std::atomic<uint32_t> posted;
  std::atomic<uint32_t> taken;
  std::atomic<uint32_t> kind;
  std::atomic<uint32_t> meta;
  std::atomic<uint64_t> floats;
  /// The region (0 or 1) of the frame's floats.
  std::atomic<uint32_t> region;
  std::atomic<uint32_t> busy[2];
  /// How many threads sleep on `posted`, `taken` and `busy[i]`: a change
  /// that nobody sleeps on wakes nobody, without a system call. A peer
  /// that writes a wrong count costs a sleeper at most its timeout.
  std::atomic<uint32_t> posted_sleepers;
  std::atomic<uint32_t> taken_sleepers;
  std::atomic<uint32_t> busy_sleepers[2];
};

static_assert(std::atomic<uint32_t>::is_always_lock_free
                && sizeof(std::atomic<uint32_t>) == sizeof(uint32_t),
              "futex words must be plain 32-bit words");

/// Returns a random, non-zero 64-bit value (a link token, a segment nonce).
uint64_t random_token();

/// Wakes the threads (of any process) that wait for `word` to change.
void wake(std::atomic<uint32_t>& word);

/// Waits until `word` differs from `seen`, at most `timeout` (it may also
/// return early).
void wait(std::atomic<uint32_t>& word, uint32_t seen,
          std::chrono::microseconds timeout);

/// Wakes the threads that wait for `word` to change, if `sleepers` counts
/// any: call it after changing `word`. A system call costs a microsecond
/// or more, and most changes find the other side polling, not asleep.
void wake(std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleepers);

/// As `wait`, counted in `sleepers` while asleep, for the `wake` above.
void wait(std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleepers,
          uint32_t seen, std::chrono::microseconds timeout);

/// A mapped segment: per direction a mailbox and two regions of `floats()`
/// floats each.
class shared_segment {
public:
  /// The most metadata bytes a mailbox holds.
  static constexpr size_t max_meta = size_t{1} << 20;

  ~shared_segment();

  shared_segment(const shared_segment&) = delete;
  shared_segment& operator=(const shared_segment&) = delete;

  /// Creates a segment for tensors of up to `floats` floats, for the link
  /// that presents `token`.
  static expected<std::unique_ptr<shared_segment>> create(size_t floats,
                                                          uint64_t token);

  /// Opens the segment `offer` names (on this host), which must be sealed,
  /// belong to the link of `token` and hold exactly `floats` floats per
  /// region. Nothing but a regular file is ever opened for reading or
  /// writing.
  static expected<std::unique_ptr<shared_segment>>
  open(const segment_offer& offer, size_t floats, uint64_t token);

  /// Returns how to find this segment from another process.
  segment_offer offer() const noexcept;

  /// Returns region `i` (0 or 1) of `box`'s direction.
  float* region(const mailbox& box, uint32_t i) noexcept {
    return regions_[&box == up_ ? 2 + i : i];
  }

  /// Returns the mailbox of frames from the master to the worker.
  mailbox& down() noexcept {
    return *down_;
  }

  /// Returns the mailbox of frames from the worker to the master.
  mailbox& up() noexcept {
    return *up_;
  }

  /// Returns the `max_meta` bytes of `box`'s metadata.
  static char* meta_bytes(mailbox& box) noexcept;

  /// Returns the capacity of each region.
  size_t floats() const noexcept {
    return floats_;
  }

private:
  shared_segment(int fd, void* base, size_t bytes, size_t floats,
                 uint64_t nonce);

  int fd_;
  void* base_;
  size_t bytes_;
  size_t floats_;
  uint64_t nonce_;
  mailbox* down_;
  mailbox* up_;
  /// The down direction's two regions, then the up direction's.
  float* regions_[4];
};

} // namespace dml
