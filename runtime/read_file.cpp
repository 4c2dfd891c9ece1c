#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string_view>
#include <system_error>

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>
#ifdef __linux__
#  include <sys/mman.h>
#endif

#include "runtime/loaders.hpp"

namespace dml {

namespace {

/// Closes a `FILE` when it goes out of scope.
struct file_closer {
  void operator()(std::FILE* f) const noexcept {
    std::fclose(f);
  }
};

using file_ptr = std::unique_ptr<std::FILE, file_closer>;

/// Releases the state of an initialized `z_stream` when it goes out of scope.
struct inflate_guard {
  z_stream* strm;
  ~inflate_guard() {
    inflateEnd(strm);
  }
};

/// Resizes `buf` to `size` bytes, asking for huge pages before touching them.
void resize_buffer(std::string& buf, size_t size) {
  if (size > buf.capacity()) {
    buf.reserve(size);
    detail::advise_huge_pages(buf.data(), buf.capacity());
  }
  buf.resize(size);
}

bool ends_with(std::string_view str, std::string_view suffix) {
  return str.size() >= suffix.size()
    && str.compare(str.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string errno_text(int code) {
  return std::generic_category().message(code);
}

/// Reads the raw bytes of `path`.
expected<std::string> read_raw(const std::string& path) {
  errno = 0;
  file_ptr f{std::fopen(path.c_str(), "rb")};
  if (!f) {
    return make_error(errc::io_error,
                      fmt::format("{}: cannot open: {}", path,
                                  errno_text(errno)));
  }
  // Size the buffer from the file size when we can tell it, so that a regular
  // file takes a single read; one byte more lets that read see the end.
  struct stat info;
  if (fstat(fileno(f.get()), &info) != 0) {
    return make_error(errc::io_error,
                      fmt::format("{}: cannot stat: {}", path,
                                  errno_text(errno)));
  }
  if (S_ISDIR(info.st_mode))
    return make_error(errc::io_error, path + ": cannot read: is a directory");
  size_t size = S_ISREG(info.st_mode) ? static_cast<size_t>(info.st_size) : 0;
  std::string buf;
  resize_buffer(buf, std::max(size + 1, size_t{4096}));
  size_t used = 0;
  for (;;) {
    if (used == buf.size())
      resize_buffer(buf, buf.size() * 2);
    auto n = std::fread(buf.data() + used, 1, buf.size() - used, f.get());
    used += n;
    if (n > 0)
      continue;
    if (std::ferror(f.get())) {
      return make_error(errc::io_error,
                        fmt::format("{}: cannot read: {}", path,
                                    errno_text(errno)));
    }
    break; // end of file
  }
  buf.resize(used);
  return buf;
}

error corrupt(const std::string& path, std::string_view what) {
  return make_error(errc::bad_format,
                    fmt::format("{}: corrupt gzip stream ({})", path, what));
}

/// Inflates the gzip members in `in`, which came from `path`.
expected<std::string> gunzip(const std::string& path, const std::string& in) {
  z_stream strm{};
  // 16 + MAX_WBITS: gzip wrapper only. zlib then checks the CRC-32 and the
  // length of each member itself.
  if (inflateInit2(&strm, 16 + MAX_WBITS) != Z_OK)
    return make_error(errc::io_error, path + ": cannot initialize zlib");
  inflate_guard guard{&strm};
  // The last four bytes hold the size of the last member modulo 2^32: a good
  // first guess. Deflate expands at most about 1032:1, so cap a corrupt value.
  // One byte more lets inflate reach the trailer without growing `out`.
  size_t hint = 0;
  if (in.size() >= 18) {
    auto p = reinterpret_cast<const unsigned char*>(in.data() + in.size() - 4);
    hint = size_t{p[0]} | size_t{p[1]} << 8 | size_t{p[2]} << 16
      | size_t{p[3]} << 24;
    hint = std::min(hint, in.size() * 1032);
  }
  std::string out;
  resize_buffer(out, std::max(hint + 1, size_t{1} << 16));
  size_t in_pos = 0;
  size_t out_pos = 0;
  for (;;) {
    if (out_pos == out.size())
      resize_buffer(out, out.size() * 2);
    auto in_len = static_cast<uInt>(
      std::min<size_t>(in.size() - in_pos, UINT_MAX));
    auto out_len = static_cast<uInt>(
      std::min<size_t>(out.size() - out_pos, UINT_MAX));
    strm.next_in = reinterpret_cast<Bytef*>(
      const_cast<char*>(in.data() + in_pos));
    strm.avail_in = in_len;
    strm.next_out = reinterpret_cast<Bytef*>(out.data() + out_pos);
    strm.avail_out = out_len;
    auto rc = inflate(&strm, Z_NO_FLUSH);
    in_pos += in_len - strm.avail_in;
    out_pos += out_len - strm.avail_out;
    if (rc == Z_OK)
      continue;
    if (rc == Z_STREAM_END) {
      if (in_pos == in.size())
        break;
      // Another member may follow (as `cat a.gz b.gz` makes); nothing else.
      if (in.size() - in_pos >= 2
          && static_cast<unsigned char>(in[in_pos]) == 0x1f
          && static_cast<unsigned char>(in[in_pos + 1]) == 0x8b) {
        inflateReset(&strm);
        continue;
      }
      return corrupt(path,
                     fmt::format("{} bytes of trailing garbage at byte {}",
                                 in.size() - in_pos, in_pos));
    }
    if (rc == Z_BUF_ERROR && in_pos == in.size())
      return corrupt(
        path, fmt::format("unexpected end of file after {} bytes", in.size()));
    if (rc == Z_MEM_ERROR)
      return make_error(errc::io_error, path + ": out of memory in zlib");
    return corrupt(path, strm.msg != nullptr ? strm.msg : zError(rc));
  }
  out.resize(out_pos);
  return out;
}

} // namespace

namespace detail {

void advise_huge_pages(void* data, size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t huge = uintptr_t{1} << 21;
  auto first = reinterpret_cast<uintptr_t>(data);
  auto last = first + bytes;
  first = (first + huge - 1) & ~(huge - 1);
  last &= ~(huge - 1);
  if (last > first) // a failure only costs speed
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  static_cast<void>(data);
  static_cast<void>(bytes);
#endif
}

} // namespace detail

expected<std::string> read_file(const std::string& path) {
  auto raw = read_raw(path);
  if (!raw || !ends_with(path, ".gz"))
    return raw;
  return gunzip(path, *raw);
}

} // namespace dml
