#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dml {

/// A SHA-256 digest.
using digest = std::array<uint8_t, 32>;

/// Incremental SHA-256 (OpenSSL EVP underneath).
class sha256 {
public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;

  /// Feeds `n` bytes at `data`.
  sha256& update(const void* data, size_t n);

  /// Returns the digest; the object must not be updated afterwards.
  digest finish();

private:
  void* ctx_;
};

/// Returns the SHA-256 of `n` bytes at `data`.
digest sha256_of(const void* data, size_t n);

/// Returns `d` as 64 lowercase hex digits.
std::string to_hex(const digest& d);

/// Returns the SHA-256 of the bytes of `params`, as hex digits: the
/// `params_sha256` of the metrics, which equal runs share bit for bit.
std::string params_sha256(const std::vector<float>& params);

} // namespace dml
