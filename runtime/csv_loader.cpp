#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "runtime/line_reader.hpp"
#include "runtime/loaders.hpp"

namespace dml {

namespace {

using detail::is_space;
using detail::line_reader;
using detail::trim;

bool is_blank(std::string_view line) {
  return trim(line).empty();
}

/// Splits `line` at commas into trimmed cells.
std::vector<std::string_view> split_cells(std::string_view line) {
  std::vector<std::string_view> cells;
  for (;;) {
    auto comma = line.find(',');
    cells.push_back(trim(line.substr(0, comma)));
    if (comma == std::string_view::npos)
      return cells;
    line.remove_prefix(comma + 1);
  }
}

/// Returns the header name `name` without a surrounding pair of quotes.
std::string unquote(std::string_view name) {
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"')
    name = name.substr(1, name.size() - 2);
  return std::string{name};
}

/// Returns how messages name column `index` called `name`.
std::string column_label(const std::string& name, size_t index) {
  if (name.empty())
    return fmt::format("column {}", index + 1);
  return fmt::format("column '{}'", name);
}

/// Returns a comma-separated list of `names`, shortened when long.
std::string list_names(const std::vector<std::string>& names) {
  constexpr size_t max_listed = 20;
  std::string result;
  for (size_t i = 0; i < names.size() && i < max_listed; ++i) {
    if (i > 0)
      result += ", ";
    result += names[i];
  }
  if (names.size() > max_listed)
    result += fmt::format(", ... ({} more)", names.size() - max_listed);
  return result;
}

/// Parses CSV `text` read from `path`.
expected<dataset> parse_csv(const std::string& path, std::string_view text,
                            const load_options& opts) {
  // A UTF-8 byte order mark, as spreadsheets write, is not part of the header.
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  if (text.substr(0, bom.size()) == bom)
    text.remove_prefix(bom.size());
  line_reader lines{text};
  std::string_view line;
  if (!lines.next(line) || is_blank(line)) {
    return make_error(errc::bad_format,
                      fmt::format("{}:1: expected a header row, found {}", path,
                                  text.empty() ? "an empty file"
                                               : "a blank line"));
  }
  // Header.
  std::vector<std::string> names;
  for (auto cell : split_cells(line))
    names.push_back(unquote(cell));
  auto n = names.size();
  if (n < 2) {
    return make_error(errc::bad_format,
                      fmt::format("{}:1: expected at least 2 columns "
                                  "(features and target), found {}",
                                  path, n));
  }
  auto target = n - 1;
  if (!opts.label_column.empty()) {
    auto i = std::find(names.begin(), names.end(), opts.label_column);
    if (i == names.end()) {
      return make_error(errc::bad_value,
                        fmt::format("{}:1: no column named '{}' (columns: {})",
                                    path, opts.label_column,
                                    list_names(names)));
    }
    if (std::find(i + 1, names.end(), opts.label_column) != names.end()) {
      return make_error(errc::bad_value,
                        fmt::format("{}:1: more than one column named '{}'",
                                    path, opts.label_column));
    }
    target = static_cast<size_t>(i - names.begin());
  }
  // Rows.
  dataset result;
  result.cols = n - 1;
  result.source = path;
  auto estimate = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')
                                      + 1);
  result.dense.reserve(estimate * result.cols);
  result.targets.reserve(estimate);
  size_t blank_line = 0; // first blank line of a run, 0 if none
  while (lines.next(line)) {
    if (is_blank(line)) {
      if (blank_line == 0)
        blank_line = lines.number();
      continue;
    }
    if (blank_line != 0) {
      return make_error(errc::bad_format,
                        fmt::format("{}:{}: blank line inside the data", path,
                                    blank_line));
    }
    auto found = static_cast<size_t>(std::count(line.begin(), line.end(), ',')
                                     + 1);
    if (found != n) {
      return make_error(errc::bad_format,
                        fmt::format("{}:{}: expected {} cells, found {}", path,
                                    lines.number(), n, found));
    }
    auto rest = line;
    for (size_t j = 0; j < n; ++j) {
      auto comma = rest.find(',');
      auto cell = trim(rest.substr(0, comma));
      rest.remove_prefix(comma == std::string_view::npos ? rest.size()
                                                         : comma + 1);
      if (cell.empty()) {
        return make_error(errc::bad_format,
                          fmt::format("{}:{}: {}: empty cell", path,
                                      lines.number(),
                                      column_label(names[j], j)));
      }
      // The cell starts with a non-blank and ends before a comma, a blank or
      // the end of `text` (a std::string, hence NUL-terminated): strtod reads
      // no further than the cell.
      char* end = nullptr;
      auto value = std::strtod(cell.data(), &end);
      if (end != cell.data() + cell.size()) {
        return make_error(errc::bad_format,
                          fmt::format("{}:{}: {}: '{}' is not a number", path,
                                      lines.number(), column_label(names[j], j),
                                      cell));
      }
      if (!std::isfinite(value) || std::fabs(value) > FLT_MAX) {
        return make_error(errc::bad_value,
                          fmt::format("{}:{}: {}: '{}' is not a finite float",
                                      path, lines.number(),
                                      column_label(names[j], j), cell));
      }
      if (j != target) {
        result.dense.push_back(static_cast<float>(value));
        continue;
      }
      if (opts.classification
          && (value < 0 || value != std::floor(value) || value >= 0x1p24)) {
        return make_error(errc::bad_value,
                          fmt::format("{}:{}: {}: label '{}' is not a class "
                                      "index (an integer in [0, 2^24))",
                                      path, lines.number(),
                                      column_label(names[j], j), cell));
      }
      // Adding 0 turns a label -0 into 0.
      result.targets.push_back(static_cast<float>(value + 0.0));
    }
    ++result.rows;
  }
  if (result.rows == 0) {
    return make_error(errc::bad_format,
                      fmt::format("{}:2: no data rows after the header", path));
  }
  return result;
}

} // namespace

expected<dataset> load_csv(const std::string& path, const load_options& opts) {
  auto text = read_file(path);
  if (!text)
    return text.err();
  return parse_csv(path, *text, opts);
}

} // namespace dml
