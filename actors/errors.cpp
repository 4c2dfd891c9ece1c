#include "actors/errors.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace dml {

namespace {

constexpr auto category = caf::atom("dml");

} // namespace

caf::error make_caf_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), category,
                    caf::make_message(std::move(message))};
}

caf::error to_caf(const error& x) {
  return make_caf_error(x.code(), x.message());
}

std::string describe(const caf::error& x) {
  if (!x)
    return "normal exit";
  if (x.category() == category && x.context().match_elements<std::string>())
    return x.context().get_as<std::string>(0);
  if (x.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(x.code()));
  return caf::to_string(x);
}

bool is_peer_loss(const caf::error& x) {
  if (!x || x.category() != caf::atom("system"))
    return false;
  switch (static_cast<caf::sec>(x.code())) {
    case caf::sec::request_timeout:
    case caf::sec::request_receiver_down:
    case caf::sec::no_route_to_receiving_node:
    case caf::sec::cannot_connect_to_node: return true;
    default: return false;
  }
}

void add_error_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(
    category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      std::string result = "dml::";
      result += to_string(static_cast<errc>(code));
      if (ctx.match_elements<std::string>()) {
        result += ": ";
        result += ctx.get_as<std::string>(0);
      }
      return result;
    });
}

} // namespace dml
