#include "runtime/fault.hpp"

#include <charconv>

#include <fmt/format.h>

namespace dml {

namespace {

constexpr fault_kind all_kinds[] = {fault_kind::kill, fault_kind::hang,
                                    fault_kind::delay,
                                    fault_kind::drop_gradient,
                                    fault_kind::kill_aggregator};

error bad(const std::string& item, const std::string& what) {
  return make_error(errc::bad_config,
                    fmt::format("--inject '{}': {}", item, what));
}

expected<fault> parse_one(const std::string& item) {
  auto colon = item.find(':');
  auto name = item.substr(0, colon);
  fault f;
  bool known = false;
  for (auto k : all_kinds)
    if (name == to_string(k)) {
      f.kind = k;
      known = true;
    }
  if (!known)
    return bad(item,
               "unknown fault '" + name
                 + "' (known: kill, hang, delay, drop-gradient, "
                   "kill-aggregator)");
  if (colon == std::string::npos)
    return bad(item, "expected kind:rank=R,...");
  bool has_rank = false;
  bool has_step = false;
  bool has_ms = false;
  auto rest = item.substr(colon + 1);
  for (size_t pos = 0; pos <= rest.size();) {
    auto end = rest.find(',', pos);
    if (end == std::string::npos)
      end = rest.size();
    auto kv = rest.substr(pos, end - pos);
    pos = end + 1;
    auto eq = kv.find('=');
    if (eq == std::string::npos)
      return bad(item, "expected key=value, got '" + kv + "'");
    auto key = kv.substr(0, eq);
    auto val = kv.substr(eq + 1);
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), n);
    if (ec != std::errc{} || p != val.data() + val.size() || val.empty())
      return bad(
        item, fmt::format("{} '{}' is not a non-negative integer", key, val));
    if (key == "rank") {
      if (n > INT32_MAX)
        return bad(item, "rank out of range");
      f.rank = static_cast<int32_t>(n);
      has_rank = true;
    } else if (key == "step") {
      f.step = n;
      has_step = true;
    } else if (key == "ms") {
      if (n > 3600000)
        return bad(item, "ms is over an hour");
      f.ms = static_cast<uint32_t>(n);
      has_ms = true;
    } else {
      return bad(item, "unknown key '" + key + "' (known: rank, step, ms)");
    }
  }
  if (!has_rank)
    return bad(item, "rank is required");
  if (!has_step && f.kind != fault_kind::delay)
    return bad(item, "step is required");
  if (!has_ms && (f.kind == fault_kind::hang || f.kind == fault_kind::delay))
    return bad(item, "ms is required");
  return f;
}

} // namespace

expected<std::vector<fault>> parse_faults(const std::string& text) {
  std::vector<fault> result;
  std::string item;
  auto flush = [&]() -> error {
    if (item.empty())
      return {};
    auto f = parse_one(item);
    item.clear();
    if (!f)
      return f.err();
    result.push_back(*f);
    return {};
  };
  for (char c : text) {
    if (c == ';' || c == ' ' || c == '\t' || c == '\n') {
      if (auto err = flush())
        return err;
    } else {
      item += c;
    }
  }
  if (auto err = flush())
    return err;
  return result;
}

const fault* find_fault(const std::vector<fault>& faults, fault_kind kind,
                        int32_t rank, uint64_t step) {
  for (auto& f : faults)
    if (f.kind == kind && f.rank == rank
        && (f.kind == fault_kind::delay || f.step == step))
      return &f;
  return nullptr;
}

const char* to_string(fault_kind kind) noexcept {
  switch (kind) {
    case fault_kind::kill: return "kill";
    case fault_kind::hang: return "hang";
    case fault_kind::delay: return "delay";
    case fault_kind::drop_gradient: return "drop-gradient";
    case fault_kind::kill_aggregator: return "kill-aggregator";
  }
  return "?";
}

} // namespace dml
