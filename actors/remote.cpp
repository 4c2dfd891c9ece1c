#include "actors/remote.hpp"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"

namespace dml {

std::string app_identifier() {
  return fmt::format("dml-protocol-{}", protocol_version);
}

void configure_transport(caf::actor_system_config& cfg,
                         const transport_options& opts) {
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.app-identifiers",
          std::vector<std::string>{opts.app_id.empty() ? app_identifier()
                                                       : opts.app_id});
  cfg.set("middleman.heartbeat-interval", caf::timespan{opts.heartbeat});
  cfg.set("middleman.connection-timeout", caf::timespan{opts.peer_timeout});
}

expected<std::pair<std::string, uint16_t>>
parse_endpoint(const std::string& text, const std::string& flag) {
  auto colon = text.rfind(':');
  auto bad = [&] {
    return make_error(errc::bad_value,
                      fmt::format("{}: '{}' is not HOST:PORT", flag, text));
  };
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return bad();
  // A host name or IPv4 address: no spaces, and no colon (an IPv6 address
  // is written in brackets, [::1]).
  auto host = text.substr(0, colon);
  bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (host.find_first_of(" \t") != std::string::npos
      || (!bracketed && host.find(':') != std::string::npos))
    return bad();
  auto port_text = text.substr(colon + 1);
  if (port_text.size() > 5
      || port_text.find_first_not_of("0123456789") != std::string::npos)
    return bad();
  auto port = std::strtoul(port_text.c_str(), nullptr, 10);
  if (port > 65535)
    return bad();
  return std::make_pair(text.substr(0, colon), static_cast<uint16_t>(port));
}

expected<caf::actor> connect_with_retry(caf::actor_system& sys,
                                        const std::string& host, uint16_t port,
                                        const transport_options& opts) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + opts.connect_timeout;
  auto backoff = std::chrono::milliseconds(100);
  std::string last = "no attempt";
  caf::scoped_actor self{sys};
  for (;;) {
    caf::actor result;
    bool final_error = false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock::now());
    auto attempt = std::min(std::chrono::milliseconds(2000),
                            std::max(left, std::chrono::milliseconds(100)));
    self
      ->request(sys.middleman().actor_handle(), attempt,
                caf::connect_atom::value, host, port)
      .receive(
        [&](const caf::node_id&, caf::strong_actor_ptr& ptr,
            const std::set<std::string>&) {
          result = caf::actor_cast<caf::actor>(ptr);
          if (!result)
            last = "nothing is published on that port";
        },
        [&](caf::error& err) {
          last = describe(err);
          if (err == caf::sec::incompatible_application_ids) {
            last = fmt::format("the peer runs another dml protocol version "
                               "(this build speaks {})",
                               app_identifier());
            final_error = true;
          }
        });
    if (result)
      return result;
    if (final_error)
      return make_error(errc::version_mismatch,
                        fmt::format("--master {}:{}: {}", host, port, last));
    if (clock::now() + backoff >= deadline)
      return make_error(errc::timeout,
                        fmt::format("--master {}:{}: no master answered "
                                    "within {} ms (last error: {})",
                                    host, port, opts.connect_timeout.count(),
                                    last));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

} // namespace dml
