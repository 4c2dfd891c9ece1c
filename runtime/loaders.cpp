#include "runtime/loaders.hpp"

#include <cctype>
#include <string_view>

#include <fmt/format.h>

namespace dml {

namespace {

/// Returns `str` in lower case (ASCII).
std::string to_lower(std::string_view str) {
  std::string result{str};
  for (auto& c : result)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

bool ends_with(std::string_view str, std::string_view suffix) {
  return str.size() >= suffix.size()
    && str.compare(str.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Picks the format of `path` from its file name.
expected<data_format> format_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  auto name = to_lower(slash == std::string::npos ? path
                                                  : path.substr(slash + 1));
  if (ends_with(name, ".gz"))
    name.resize(name.size() - 3);
  if (ends_with(name, "-ubyte") && name.find("idx") != std::string::npos)
    return data_format::idx;
  if (ends_with(name, ".csv"))
    return data_format::csv;
  if (ends_with(name, ".svm") || ends_with(name, ".libsvm")
      || ends_with(name, ".txt"))
    return data_format::libsvm;
  return make_error(errc::bad_value,
                    fmt::format("{}: cannot tell the format from the file "
                                "name; accepted: *idx*-ubyte, *.csv, *.svm, "
                                "*.libsvm, *.txt (each also with .gz), or name "
                                "the format (idx, csv, libsvm)",
                                path));
}

} // namespace

expected<data_format> parse_data_format(const std::string& name) {
  if (name == "auto")
    return data_format::automatic;
  if (name == "idx")
    return data_format::idx;
  if (name == "csv")
    return data_format::csv;
  if (name == "libsvm")
    return data_format::libsvm;
  return make_error(errc::bad_value,
                    fmt::format("unknown data format '{}' (known: auto, idx, "
                                "csv, libsvm)",
                                name));
}

namespace {

/// The format of `path`: the one `opts` names, or the one its name tells.
expected<data_format> resolved_format(const std::string& path,
                                      const load_options& opts) {
  if (opts.format != data_format::automatic)
    return opts.format;
  return format_of(path);
}

} // namespace

error check_label_column(const std::string& path, const load_options& opts) {
  if (opts.label_column.empty())
    return {};
  auto found = resolved_format(path, opts);
  if (!found)
    return found.err();
  auto format = *found;
  if (format == data_format::csv)
    return {};
  return make_error(errc::bad_config,
                    fmt::format("--label-column: only for CSV data, and {} "
                                "is {}",
                                path,
                                format == data_format::idx ? "IDX" : "LIBSVM"));
}

expected<dataset> load_dataset(const std::string& path,
                               const load_options& opts) {
  auto format = resolved_format(path, opts);
  if (!format)
    return format.err();
  switch (*format) {
    case data_format::idx: return load_idx(path, opts);
    case data_format::csv: return load_csv(path, opts);
    case data_format::libsvm: return load_libsvm(path, opts);
    case data_format::automatic: break;
  }
  return make_error(errc::bad_value,
                    fmt::format("{}: no loader for data format {}", path,
                                static_cast<int>(*format)));
}

} // namespace dml
