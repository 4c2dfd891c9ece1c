#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace dml {

/// A small, fast, portable pseudo-random generator (SplitMix64). Its output is
/// a pure function of the seed on every platform and standard library, which
/// `std::normal_distribution` does not promise: initializations, shuffles and
/// synthetic data depend only on the seeds a job spec holds.
class rng {
public:
  explicit rng(uint64_t seed) noexcept : state_(seed) {
    // nop
  }

  /// Returns the next 64 random bits.
  uint64_t next() noexcept {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// Returns a uniform double in [0, 1).
  double uniform() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
  }

  /// Returns a uniform integer in [0, n) (n > 0), without modulo bias worth
  /// noting for n far below 2^64.
  uint64_t below(uint64_t n) noexcept {
    return static_cast<uint64_t>(uniform() * static_cast<double>(n));
  }

  /// Returns a standard normal sample (Box-Muller, one value per call).
  double normal() noexcept {
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300)
      u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  /// Returns the internal state, so it can be saved in a checkpoint.
  uint64_t state() const noexcept {
    return state_;
  }

private:
  uint64_t state_;
};

/// Mixes several 64-bit values into one seed (e.g. seed, epoch, shard).
inline uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0) noexcept {
  rng r{a ^ 0x6a09e667f3bcc909ULL};
  uint64_t x = r.next() ^ b;
  rng r2{x};
  uint64_t y = r2.next() ^ c;
  rng r3{y};
  return r3.next();
}

} // namespace dml
