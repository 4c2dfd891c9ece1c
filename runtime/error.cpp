#include "runtime/error.hpp"

namespace dml {

const char* to_string(errc x) noexcept {
  switch (x) {
    case errc::none: return "none";
    case errc::io_error: return "io_error";
    case errc::bad_format: return "bad_format";
    case errc::bad_value: return "bad_value";
    case errc::shape_mismatch: return "shape_mismatch";
    case errc::unknown_model: return "unknown_model";
    case errc::unknown_name: return "unknown_name";
    case errc::checksum_mismatch: return "checksum_mismatch";
    case errc::version_mismatch: return "version_mismatch";
    case errc::bad_config: return "bad_config";
    case errc::protocol_violation: return "protocol_violation";
    case errc::timeout: return "timeout";
    case errc::peer_lost: return "peer_lost";
  }
  return "unknown";
}

std::string error::to_string() const {
  if (!*this)
    return "none";
  return message_;
}

} // namespace dml
