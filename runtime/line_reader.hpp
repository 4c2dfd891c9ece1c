// Text helpers shared by the line-based loaders (CSV, LIBSVM).
#pragma once

#include <cstddef>
#include <string_view>

namespace dml::detail {

/// Splits a text into lines without their `\n` or `\r\n` ends.
class line_reader {
public:
  explicit line_reader(std::string_view text) : text_(text) {
    // nop
  }

  /// Stores the next line in `line` and returns true, or returns false at the
  /// end of the text.
  bool next(std::string_view& line) {
    if (pos_ >= text_.size())
      return false;
    auto end = text_.find('\n', pos_);
    if (end == std::string_view::npos)
      end = text_.size();
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    pos_ = end + 1;
    ++number_;
    return true;
  }

  /// Returns the 1-based number of the last line `next` returned.
  size_t number() const noexcept {
    return number_;
  }

private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t number_ = 0;
};

/// Returns whether `c` is a blank (space or tab).
inline bool is_space(char c) {
  return c == ' ' || c == '\t';
}

/// Returns `str` without leading and trailing blanks.
inline std::string_view trim(std::string_view str) {
  while (!str.empty() && is_space(str.front()))
    str.remove_prefix(1);
  while (!str.empty() && is_space(str.back()))
    str.remove_suffix(1);
  return str;
}

} // namespace dml::detail
