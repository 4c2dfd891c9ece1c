#include "runtime/sha256.hpp"

#include <openssl/evp.h>

namespace dml {

sha256::sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}

sha256::~sha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

sha256& sha256::update(const void* data, size_t n) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
  return *this;
}

digest sha256::finish() {
  digest d{};
  unsigned len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.data(), &len);
  return d;
}

digest sha256_of(const void* data, size_t n) {
  sha256 h;
  h.update(data, n);
  return h.finish();
}

std::string params_sha256(const std::vector<float>& params) {
  return to_hex(sha256_of(params.data(), params.size() * sizeof(float)));
}

std::string to_hex(const digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string result;
  result.reserve(64);
  for (auto b : d) {
    result += digits[b >> 4];
    result += digits[b & 0x0f];
  }
  return result;
}

} // namespace dml
