#pragma once

// A memory segment that a worker process and its master share when both
// run on one host: the master writes a step's parameters into it, the
// worker its gradient, and the tensor link carries only the frames' headers.
// This spares the two kernel copies and the loopback path per tensor that
// dominate a step on one machine.
//
// The worker creates the segment (an anonymous memfd, sealed against
// resizing so a peer cannot make the other fault) and offers it in its
// link greeting: its pid, the descriptor number and a random nonce. The
// master opens it through /proc/PID/fd/FD; that only works on the same host
// and for the same user, and the nonce written into the segment proves it
// is the offered one. Nothing is ever named in the file system, so nothing
// is left behind when a process dies.

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

/// A mapped segment of two regions of `floats()` floats each.
class shared_segment {
public:
  ~shared_segment();

  shared_segment(const shared_segment&) = delete;
  shared_segment& operator=(const shared_segment&) = delete;

  /// Creates a segment for tensors of up to `floats` floats, for the link
  /// that presents `token`.
  static expected<std::unique_ptr<shared_segment>> create(size_t floats,
                                                          uint64_t token);

  /// Opens the segment `offer` names, which must be sealed, belong to the
  /// link of `token` and hold exactly `floats` floats per region.
  static expected<std::unique_ptr<shared_segment>>
  open(const segment_offer& offer, size_t floats, uint64_t token);

  /// Returns how to find this segment from another process.
  segment_offer offer() const noexcept;

  /// Returns the floats of the parameters (master to worker).
  float* params() noexcept {
    return params_;
  }

  /// Returns the floats of the gradient (worker to master).
  float* gradient() noexcept {
    return gradient_;
  }

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
  float* params_;
  float* gradient_;
};

} // namespace dml
