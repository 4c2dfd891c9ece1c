#include <cstdint>
#include <filesystem>
#include <limits>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "runtime/loaders.hpp"

namespace dml {

namespace {

constexpr uint32_t images_magic = 0x00000803;

constexpr uint32_t labels_magic = 0x00000801;

constexpr size_t images_header_size = 16;

constexpr size_t labels_header_size = 8;

bool ends_with(std::string_view str, std::string_view suffix) {
  return str.size() >= suffix.size()
    && str.compare(str.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Returns the big-endian 32-bit number at `buf[pos]`.
uint32_t read_be32(const std::string& buf, size_t pos) {
  auto p = reinterpret_cast<const unsigned char*>(buf.data() + pos);
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8
    | uint32_t{p[3]};
}

/// Checks the magic number and the header size of the IDX file `buf` read
/// from `path`.
error check_header(const std::string& path, const std::string& buf,
                   uint32_t magic, size_t header_size) {
  if (buf.size() >= 4 && read_be32(buf, 0) != magic) {
    return make_error(errc::bad_format,
                      fmt::format("{}: byte 0: bad IDX magic 0x{:08x}, "
                                  "expected 0x{:08x}",
                                  path, read_be32(buf, 0), magic));
  }
  if (buf.size() < header_size) {
    return make_error(errc::bad_format,
                      fmt::format("{}: byte {}: truncated IDX header, expected "
                                  "{} bytes",
                                  path, buf.size(), header_size));
  }
  return {};
}

/// Checks that the payload after the header of `buf` has exactly `expected`
/// bytes; `what` describes them for the message.
error check_payload(const std::string& path, const std::string& buf,
                    size_t header_size, uint64_t expected,
                    const std::string& what) {
  uint64_t actual = buf.size() - header_size;
  if (actual < expected) {
    return make_error(errc::bad_format,
                      fmt::format("{}: byte {}: payload ends after {} of {} "
                                  "bytes ({})",
                                  path, buf.size(), actual, expected, what));
  }
  if (actual > expected) {
    return make_error(errc::bad_format,
                      fmt::format("{}: byte {}: {} bytes after the payload "
                                  "({}) that the header declares",
                                  path, header_size + expected,
                                  actual - expected, what));
  }
  return {};
}

/// Returns the paths where the labels of the images at `path` may be, or
/// nothing if the file name does not contain `images-idx3`.
std::vector<std::string> label_paths(const std::string& path) {
  constexpr std::string_view images = "images-idx3";
  constexpr std::string_view labels = "labels-idx1";
  auto slash = path.find_last_of('/');
  auto name_start = slash == std::string::npos ? 0 : slash + 1;
  auto pos = path.rfind(images);
  if (pos == std::string::npos || pos < name_start)
    return {};
  auto base = path;
  base.replace(pos, images.size(), labels);
  if (ends_with(base, ".gz"))
    return {base, base.substr(0, base.size() - 3)};
  return {base, base + ".gz"};
}

} // namespace

expected<dataset> load_idx(const std::string& path, const load_options&) {
  auto candidates = label_paths(path);
  if (candidates.empty()) {
    return make_error(errc::bad_value,
                      fmt::format("{}: cannot find the IDX labels file: the "
                                  "name does not contain 'images-idx3'",
                                  path));
  }
  // Images.
  auto images = read_file(path);
  if (!images)
    return images.err();
  const auto& img = *images;
  if (auto err = check_header(path, img, images_magic, images_header_size))
    return err;
  uint64_t count = read_be32(img, 4);
  uint64_t height = read_be32(img, 8);
  uint64_t width = read_be32(img, 12);
  auto pixels = height * width; // < 2^64: both factors are < 2^32
  auto what = fmt::format("{} images of {}x{}", count, height, width);
  if (count == 0 || pixels == 0) {
    return make_error(errc::bad_format,
                      fmt::format("{}: byte 4: the header declares no data "
                                  "({})",
                                  path, what));
  }
  auto payload = count > std::numeric_limits<uint64_t>::max() / pixels
    ? std::numeric_limits<uint64_t>::max()
    : count * pixels;
  if (auto err = check_payload(path, img, images_header_size, payload, what))
    return err;
  // Labels.
  const std::string* labels_path = nullptr;
  for (auto& candidate : candidates) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) {
      labels_path = &candidate;
      break;
    }
  }
  if (labels_path == nullptr) {
    return make_error(errc::io_error,
                      fmt::format("{}: no IDX labels file beside it (tried "
                                  "'{}' and '{}')",
                                  path, candidates[0], candidates[1]));
  }
  auto labels = read_file(*labels_path);
  if (!labels)
    return labels.err();
  const auto& lbl = *labels;
  if (auto err = check_header(*labels_path, lbl, labels_magic,
                              labels_header_size))
    return err;
  uint64_t label_count = read_be32(lbl, 4);
  if (auto err = check_payload(*labels_path, lbl, labels_header_size,
                               label_count,
                               fmt::format("{} labels", label_count)))
    return err;
  if (label_count != count) {
    return make_error(errc::shape_mismatch,
                      fmt::format("{}: byte 4: {} labels, but '{}' has {}",
                                  *labels_path, label_count, path, what));
  }
  // Convert. Labels are bytes, hence exact class indices below 2^24.
  dataset result;
  result.rows = static_cast<size_t>(count);
  result.cols = static_cast<size_t>(pixels);
  result.sparse = false;
  result.source = path;
  auto n = static_cast<size_t>(payload);
  result.dense.reserve(n);
  detail::advise_huge_pages(result.dense.data(), n * sizeof(float));
  result.dense.resize(n);
  auto src = reinterpret_cast<const unsigned char*>(img.data()
                                                    + images_header_size);
  auto dst = result.dense.data();
  for (size_t i = 0; i < n; ++i)
    dst[i] = static_cast<float>(src[i]) / 255.0f;
  result.targets.resize(result.rows);
  auto lsrc = reinterpret_cast<const unsigned char*>(lbl.data()
                                                     + labels_header_size);
  for (size_t i = 0; i < result.rows; ++i)
    result.targets[i] = static_cast<float>(lsrc[i]);
  return result;
}

} // namespace dml
