#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "runtime/line_reader.hpp"
#include "runtime/loaders.hpp"

namespace dml {

namespace {

using detail::is_space;
using detail::line_reader;

/// Removes and returns the next blank-separated token of `line`, or an empty
/// view when none is left.
std::string_view next_token(std::string_view& line) {
  size_t i = 0;
  while (i < line.size() && is_space(line[i]))
    ++i;
  size_t j = i;
  while (j < line.size() && !is_space(line[j]))
    ++j;
  auto token = line.substr(i, j - i);
  line.remove_prefix(j);
  return token;
}

/// Parses all of `str` as a number. `str` starts with a non-blank and is
/// followed by a blank, a line end or NUL, so strtod reads no further.
bool parse_number(std::string_view str, double& value) {
  if (str.empty() || is_space(str.front()))
    return false;
  char* end = nullptr;
  value = std::strtod(str.data(), &end);
  return end == str.data() + str.size();
}

bool is_finite_float(double value) {
  return std::isfinite(value) && std::fabs(value) <= FLT_MAX;
}

/// Parses all of `str` as a decimal index in [0, INT32_MAX].
bool parse_index(std::string_view str, uint64_t& index, bool& overflow) {
  if (str.empty())
    return false;
  index = 0;
  overflow = false;
  for (auto c : str) {
    if (c < '0' || c > '9')
      return false;
    index = index * 10 + static_cast<uint64_t>(c - '0');
    if (index > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      overflow = true;
      index = std::numeric_limits<int32_t>::max();
    }
  }
  return true;
}

/// Parses LIBSVM `text` read from `path`.
expected<dataset> parse_libsvm(const std::string& path, std::string_view text,
                               const load_options& opts) {
  auto fail = [&](errc code, size_t line_number, const std::string& what) {
    return make_error(code, fmt::format("{}:{}: {}", path, line_number, what));
  };
  dataset result;
  result.sparse = true;
  result.source = path;
  auto rows = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')
                                  + 1);
  auto nnz = static_cast<size_t>(std::count(text.begin(), text.end(), ':'));
  result.csr.indptr.reserve(rows + 1);
  result.csr.indices.reserve(nnz);
  result.csr.values.reserve(nnz);
  result.targets.reserve(rows);
  uint64_t max_index = 0;
  size_t minus_one_line = 0; // first line with label -1, 0 if none
  size_t other_line = 0; // first line with a label not in {-1, 1}
  std::string_view other_label;
  size_t blank_line = 0; // first blank line of a run, 0 if none
  line_reader lines{text};
  std::string_view line;
  while (lines.next(line)) {
    auto number = lines.number();
    auto label_str = next_token(line);
    if (label_str.empty()) {
      if (blank_line == 0)
        blank_line = number;
      continue;
    }
    if (blank_line != 0)
      return fail(errc::bad_format, blank_line, "blank line inside the data");
    // Label.
    double label = 0;
    if (!parse_number(label_str, label)) {
      return fail(errc::bad_format, number,
                  fmt::format("label '{}' is not a number", label_str));
    }
    if (!is_finite_float(label)) {
      return fail(errc::bad_value, number,
                  fmt::format("label '{}' is not a finite float", label_str));
    }
    if (opts.classification) {
      if (label != std::floor(label) || label < -1 || label >= 0x1p24) {
        return fail(errc::bad_value, number,
                    fmt::format("label '{}' is not a class index (an integer "
                                "in [0, 2^24), or -1/+1)",
                                label_str));
      }
      if (label == -1 && minus_one_line == 0)
        minus_one_line = number;
      if (label != -1 && label != 1 && other_line == 0) {
        other_line = number;
        other_label = label_str;
      }
      if (minus_one_line != 0 && other_line != 0) {
        return fail(errc::bad_value, minus_one_line,
                    fmt::format("label -1 is only accepted in binary -1/+1 "
                                "files, but line {} has label '{}'",
                                other_line, other_label));
      }
    }
    // Adding 0 turns a label -0 into 0.
    result.targets.push_back(static_cast<float>(label + 0.0));
    // Features.
    uint64_t previous = 0;
    for (auto token = next_token(line); !token.empty();
         token = next_token(line)) {
      auto colon = token.find(':');
      if (colon == std::string_view::npos) {
        return fail(errc::bad_format, number,
                    fmt::format("bad feature '{}', expected index:value",
                                token));
      }
      uint64_t index = 0;
      bool overflow = false;
      if (!parse_index(token.substr(0, colon), index, overflow)) {
        return fail(errc::bad_format, number,
                    fmt::format("feature '{}': index is not a positive "
                                "integer",
                                token));
      }
      if (overflow) {
        return fail(errc::bad_value, number,
                    fmt::format("feature '{}': index is larger than {}", token,
                                std::numeric_limits<int32_t>::max()));
      }
      if (index == 0) {
        return fail(errc::bad_format, number,
                    fmt::format("feature '{}': index 0, but indices start at "
                                "1",
                                token));
      }
      if (index <= previous) {
        return fail(errc::bad_format, number,
                    fmt::format("feature '{}': index {} after {}, but indices "
                                "must increase strictly",
                                token, index, previous));
      }
      if (opts.dimension != 0 && index > opts.dimension) {
        return fail(errc::shape_mismatch, number,
                    fmt::format("feature '{}': index {} exceeds the "
                                "dimension {}",
                                token, index, opts.dimension));
      }
      auto value_str = token.substr(colon + 1);
      double value = 0;
      if (!parse_number(value_str, value)) {
        return fail(errc::bad_format, number,
                    fmt::format("feature '{}': '{}' is not a number", token,
                                value_str));
      }
      if (!is_finite_float(value)) {
        return fail(errc::bad_value, number,
                    fmt::format("feature '{}': '{}' is not a finite float",
                                token, value_str));
      }
      result.csr.indices.push_back(static_cast<int32_t>(index - 1));
      result.csr.values.push_back(static_cast<float>(value));
      previous = index;
    }
    max_index = std::max(max_index, previous);
    result.csr.indptr.push_back(
      static_cast<int64_t>(result.csr.indices.size()));
    ++result.rows;
  }
  if (result.rows == 0) {
    return make_error(errc::bad_format,
                      fmt::format("{}:1: no data rows (empty file)", path));
  }
  // Binary -1/+1 labels become 0/1.
  if (minus_one_line != 0) {
    for (auto& t : result.targets)
      t = t < 0 ? 0.0f : 1.0f;
  }
  result.cols = opts.dimension != 0 ? opts.dimension
                                    : static_cast<size_t>(max_index);
  return result;
}

} // namespace

expected<dataset> load_libsvm(const std::string& path,
                              const load_options& opts) {
  auto text = read_file(path);
  if (!text)
    return text.err();
  return parse_libsvm(path, *text, opts);
}

} // namespace dml
