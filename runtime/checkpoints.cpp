#include "runtime/checkpoints.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace dml {

namespace fs = std::filesystem;

namespace {

bool is_checkpoint_name(const std::string& name) {
  return name.size() == 22 && name.compare(0, 5, "ckpt-") == 0
    && name.compare(17, 5, ".dmlc") == 0
    && std::all_of(name.begin() + 5, name.begin() + 17,
                   [](char c) { return c >= '0' && c <= '9'; });
}

/// Returns the checkpoint files of `dir`, newest (highest step) first.
expected<std::vector<std::string>> list(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (is_checkpoint_name(name))
      names.push_back(name);
  }
  if (ec)
    return make_error(errc::io_error,
                      fmt::format("{}: cannot list checkpoints: {}", dir,
                                  ec.message()));
  std::sort(names.rbegin(), names.rend());
  return names;
}

} // namespace

std::string checkpoint_name(uint64_t step) {
  return fmt::format("ckpt-{:012}.dmlc", step);
}

error save_checkpoint(const std::string& dir, const checkpoint& c,
                      size_t keep) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return make_error(errc::io_error,
                      fmt::format("{}: cannot create the checkpoint folder: "
                                  "{}",
                                  dir, ec.message()));
  auto path = (fs::path{dir} / checkpoint_name(c.step)).string();
  if (auto err = write_file_atomic(path, encode(c)))
    return err;
  auto names = list(dir);
  if (!names)
    return names.err();
  for (size_t i = std::max<size_t>(keep, 1); i < names->size(); ++i)
    fs::remove(fs::path{dir} / (*names)[i], ec);
  return {};
}

expected<found_checkpoint> newest_checkpoint(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return make_error(errc::io_error,
                      fmt::format(fs::exists(dir, ec)
                                    ? "--resume {}: is a file, not a folder "
                                      "of checkpoints"
                                    : "--resume {}: no such folder",
                                  dir));
  auto names = list(dir);
  if (!names)
    return names.err();
  found_checkpoint result;
  for (auto& name : *names) {
    auto path = (fs::path{dir} / name).string();
    auto c = load_checkpoint(path);
    if (!c) {
      result.skipped.push_back(
        fmt::format("skipped damaged checkpoint: {}", c.err().message()));
      continue;
    }
    result.data = std::move(*c);
    result.path = path;
    return result;
  }
  return make_error(
    errc::bad_format,
    fmt::format("--resume {}: no valid checkpoint{}", dir,
                result.skipped.empty()
                  ? " (the folder holds none)"
                  : fmt::format(" ({} damaged)", result.skipped.size())));
}

} // namespace dml
