#include "runtime/model_file.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/sha256.hpp"

namespace dml {

namespace {

constexpr char model_magic[8] = {'D', 'M', 'L', 'M', 'O', 'D', 'E', 'L'};
constexpr char checkpoint_magic[8] = {'D', 'M', 'L', 'C', 'K', 'P', 'T', '1'};
constexpr size_t header_size = 8 + 4 + 8;
constexpr size_t trailer_size = 32;

/// Appends plain values in little-endian byte order (the host's on x86_64).
class writer {
public:
  void u8(uint8_t x) {
    raw(&x, 1);
  }
  void u32(uint32_t x) {
    raw(&x, 4);
  }
  void u64(uint64_t x) {
    raw(&x, 8);
  }
  void f64(double x) {
    raw(&x, 8);
  }
  void str(const std::string& x) {
    u64(x.size());
    raw(x.data(), x.size());
  }
  void floats(const std::vector<float>& x) {
    u64(x.size());
    raw(x.data(), x.size() * sizeof(float));
  }
  void u64s(const std::vector<uint64_t>& x) {
    u64(x.size());
    raw(x.data(), x.size() * sizeof(uint64_t));
  }
  void raw(const void* p, size_t n) {
    buf_.append(static_cast<const char*>(p), n);
  }
  std::string& buf() {
    return buf_;
  }

private:
  std::string buf_;
};

/// Reads what `writer` wrote; any overrun sets `failed`.
class reader {
public:
  reader(const char* p, size_t n) : p_(p), end_(p + n) {
    // nop
  }
  bool failed = false;
  bool raw(void* out, size_t n) {
    if (failed || static_cast<size_t>(end_ - p_) < n) {
      failed = true;
      return false;
    }
    if (n > 0) // `out` may be the null data of an empty vector
      std::memcpy(out, p_, n);
    p_ += n;
    return true;
  }
  uint8_t u8() {
    uint8_t x = 0;
    raw(&x, 1);
    return x;
  }
  uint32_t u32() {
    uint32_t x = 0;
    raw(&x, 4);
    return x;
  }
  uint64_t u64() {
    uint64_t x = 0;
    raw(&x, 8);
    return x;
  }
  double f64() {
    double x = 0;
    raw(&x, 8);
    return x;
  }
  template <class T>
  bool vec(std::vector<T>& x) {
    auto n = u64();
    if (failed || n > static_cast<size_t>(end_ - p_) / sizeof(T)) {
      failed = true;
      return false;
    }
    x.resize(n);
    return raw(x.data(), n * sizeof(T));
  }
  std::string str() {
    std::vector<char> tmp;
    vec(tmp);
    return std::string(tmp.begin(), tmp.end());
  }
  bool at_end() const {
    return p_ == end_;
  }

private:
  const char* p_;
  const char* end_;
};

void put_model(writer& w, const model_file& m) {
  w.str(m.config.name);
  w.u64(m.config.inputs);
  w.u64(m.config.outputs);
  w.u64(m.config.hidden.size());
  for (auto h : m.config.hidden)
    w.u64(h);
  w.u8(static_cast<uint8_t>(m.config.act));
  w.u8(static_cast<uint8_t>(m.task));
  w.floats(m.stdz.mean);
  w.floats(m.stdz.scale);
  w.floats(m.params);
}

void get_model(reader& r, model_file& m) {
  m.config.name = r.str();
  m.config.inputs = r.u64();
  m.config.outputs = r.u64();
  auto layers = r.u64();
  if (layers > 1024) {
    r.failed = true;
    return;
  }
  for (uint64_t i = 0; i < layers && !r.failed; ++i)
    m.config.hidden.push_back(r.u64());
  auto act = r.u8();
  auto task = r.u8();
  if (act > 1 || task > 1) {
    r.failed = true;
    return;
  }
  m.config.act = static_cast<activation>(act);
  m.task = static_cast<task_kind>(task);
  r.vec(m.stdz.mean);
  r.vec(m.stdz.scale);
  r.vec(m.params);
}

/// What is wrong with a decoded model's standardizer, if anything: it must
/// have a mean and a finite, positive scale per input, or nothing.
error check_standardizer(const model_file& m, const std::string& name) {
  auto& z = m.stdz;
  if (z.mean.empty() && z.scale.empty())
    return {};
  if (z.mean.size() != m.config.inputs || z.scale.size() != m.config.inputs)
    return make_error(errc::bad_format,
                      fmt::format("{}: the standardizer has {} means and {} "
                                  "scales for {} inputs",
                                  name, z.mean.size(), z.scale.size(),
                                  m.config.inputs));
  for (size_t i = 0; i < z.mean.size(); ++i)
    if (!std::isfinite(z.mean[i]) || !std::isfinite(z.scale[i])
        || !(z.scale[i] > 0))
      return make_error(errc::bad_format,
                        fmt::format("{}: the standardizer's input {} has mean "
                                    "{} and scale {} (a finite mean and a "
                                    "finite, positive scale expected)",
                                    name, i, z.mean[i], z.scale[i]));
  return {};
}

std::string frame(const char (&magic)[8], std::string payload) {
  writer w;
  w.raw(magic, 8);
  w.u32(model_file_version);
  w.u64(payload.size());
  w.raw(payload.data(), payload.size());
  auto d = sha256_of(w.buf().data(), w.buf().size());
  w.raw(d.data(), d.size());
  return std::move(w.buf());
}

/// Checks framing and checksum; returns the payload's bounds.
expected<std::pair<size_t, size_t>>
unframe(const std::string& bytes, const char (&magic)[8], const char* what,
        const std::string& name) {
  if (bytes.size() < header_size + trailer_size)
    return make_error(errc::bad_format,
                      fmt::format("{}: truncated: {} bytes is too short for a "
                                  "{}",
                                  name, bytes.size(), what));
  if (std::memcmp(bytes.data(), magic, 8) != 0)
    return make_error(errc::bad_format,
                      fmt::format("{}: not a dml {} (bad magic)", name, what));
  uint32_t version = 0;
  uint64_t len = 0;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&len, bytes.data() + 12, 8);
  if (version > model_file_version)
    return make_error(errc::version_mismatch,
                      fmt::format("{}: format version {} is newer than this "
                                  "build reads ({})",
                                  name, version, model_file_version));
  if (version == 0)
    return make_error(errc::bad_format,
                      fmt::format("{}: format version 0 is invalid", name));
  auto expected_size = header_size + len + trailer_size;
  if (len > bytes.size() || bytes.size() != expected_size)
    return make_error(errc::bad_format,
                      fmt::format("{}: truncated or padded: {} bytes, the "
                                  "header says {}",
                                  name, bytes.size(), expected_size));
  auto d = sha256_of(bytes.data(), header_size + len);
  if (std::memcmp(d.data(), bytes.data() + header_size + len, 32) != 0)
    return make_error(errc::checksum_mismatch,
                      fmt::format("{}: checksum mismatch: the file is "
                                  "corrupted",
                                  name));
  return std::make_pair(header_size, static_cast<size_t>(len));
}

error malformed(const std::string& name, const char* what) {
  return make_error(errc::bad_format,
                    fmt::format("{}: malformed {} payload", name, what));
}

expected<std::string> slurp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return make_error(errc::io_error,
                      fmt::format("{}: is a folder, not a file", path));
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(errc::io_error,
                      fmt::format("{}: cannot open: {}", path,
                                  std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

std::string encode(const model_file& m) {
  writer w;
  put_model(w, m);
  return frame(model_magic, std::move(w.buf()));
}

std::string encode(const checkpoint& c) {
  writer w;
  put_model(w, c.model);
  w.floats(c.opt.m);
  w.floats(c.opt.v);
  w.u64(c.opt.updates);
  w.u64(c.step);
  w.u64(c.epoch);
  w.u64(c.samples);
  w.u64s(c.cursors);
  w.u64(c.rng_state);
  w.f64(c.epoch_loss);
  w.f64(c.train_s);
  w.str(c.spec_json);
  return frame(checkpoint_magic, std::move(w.buf()));
}

expected<model_file> decode_model_file(const std::string& bytes,
                                       const std::string& name) {
  auto bounds = unframe(bytes, model_magic, "model file", name);
  if (!bounds)
    return bounds.err();
  reader r{bytes.data() + bounds->first, bounds->second};
  model_file m;
  get_model(r, m);
  if (r.failed || !r.at_end())
    return malformed(name, "model file");
  if (auto err = check_standardizer(m, name))
    return err;
  return m;
}

expected<checkpoint> decode_checkpoint(const std::string& bytes,
                                       const std::string& name) {
  auto bounds = unframe(bytes, checkpoint_magic, "checkpoint", name);
  if (!bounds)
    return bounds.err();
  reader r{bytes.data() + bounds->first, bounds->second};
  checkpoint c;
  get_model(r, c.model);
  r.vec(c.opt.m);
  r.vec(c.opt.v);
  c.opt.updates = r.u64();
  c.step = r.u64();
  c.epoch = r.u64();
  c.samples = r.u64();
  r.vec(c.cursors);
  c.rng_state = r.u64();
  c.epoch_loss = r.f64();
  c.train_s = r.f64();
  c.spec_json = r.str();
  if (r.failed || !r.at_end())
    return malformed(name, "checkpoint");
  if (auto err = check_standardizer(c.model, name))
    return err;
  return c;
}

namespace {

std::string folder_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

error check_folder(const std::string& dir, const std::string& what) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return make_error(errc::io_error,
                      fmt::format("{}: folder {}: {}", what, dir,
                                  std::strerror(errno)));
  if (!S_ISDIR(st.st_mode))
    return make_error(errc::io_error,
                      fmt::format("{}: {} is not a folder", what, dir));
  if (::access(dir.c_str(), W_OK) != 0)
    return make_error(errc::io_error,
                      fmt::format("{}: folder {} is not writable: {}", what,
                                  dir, std::strerror(errno)));
  return {};
}

/// An error if `path` exists as anything but a regular file (or a link to
/// one), which an atomic rename would replace (a device node, say).
error check_not_special(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return make_error(errc::io_error,
                      fmt::format("{}: exists and is not a regular file",
                                  what));
  return {};
}

} // namespace

error check_output_path(const std::string& path, const std::string& flag) {
  auto what = flag.empty() ? path : flag + " " + path;
  if (path.empty() || path.back() == '/')
    return make_error(errc::io_error, fmt::format("{}: names no file", what));
  if (auto err = check_not_special(path, what))
    return err;
  return check_folder(folder_of(path), what);
}

error make_output_folder(const std::string& dir, const std::string& flag) {
  auto what = flag + " " + dir;
  std::error_code ec;
  // One level only: a mistyped parent is an error, not a new tree.
  std::filesystem::create_directory(dir, ec);
  if (ec)
    return make_error(errc::io_error,
                      fmt::format("{}: cannot create: {}", what, ec.message()));
  return check_folder(dir, what);
}

error write_file_atomic(const std::string& given, const std::string& bytes) {
  // Through a symbolic link to its target: renaming over the link would
  // replace the link itself (and, as root, a link such as /dev/stdout).
  std::string path = given;
  std::error_code link_ec;
  if (std::filesystem::is_symlink(given, link_ec)) {
    auto target = std::filesystem::weakly_canonical(given, link_ec);
    if (link_ec)
      return make_error(errc::io_error,
                        fmt::format("{}: cannot follow the link: {}", given,
                                    link_ec.message()));
    path = target.string();
  }
  auto fail = [&](const std::string& what) {
    return make_error(errc::io_error,
                      fmt::format("{}: {}: {}", path, what,
                                  std::strerror(errno)));
  };
  if (auto err = check_not_special(path, path))
    return err;
  // A temporary name of its own (mkstemp), so that two writers of the same
  // file never share one.
  auto tmp = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd >= 0)
    ::fchmod(fd, 0644);
  if (fd < 0)
    return fail("cannot create temporary file");
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      auto err = fail("write failed");
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto err = fail("fsync failed");
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = fail("rename failed");
    ::unlink(tmp.c_str());
    return err;
  }
  auto slash = path.find_last_of('/');
  auto dir = slash == std::string::npos ? std::string{"."}
                                        : path.substr(0, slash + 1);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

expected<model_file> load_model_file(const std::string& path) {
  auto bytes = slurp(path);
  if (!bytes)
    return bytes.err();
  return decode_model_file(*bytes, path);
}

expected<checkpoint> load_checkpoint(const std::string& path) {
  auto bytes = slurp(path);
  if (!bytes)
    return bytes.err();
  return decode_checkpoint(*bytes, path);
}

} // namespace dml
