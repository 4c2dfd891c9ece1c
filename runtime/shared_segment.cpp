#include "runtime/shared_segment.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <random>

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace dml {

namespace {

constexpr uint32_t segment_magic = 0x534c4d44; // "DMLS"
constexpr size_t page = 4096;
constexpr unsigned required_seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

/// The first page of a segment.
struct segment_header {
  uint32_t magic;
  uint32_t reserved;
  uint64_t token;
  uint64_t nonce;
  uint64_t floats;
};

size_t region_bytes(size_t floats) {
  return (floats * sizeof(float) + page - 1) / page * page;
}

/// A mailbox takes a page, its metadata bytes follow.
constexpr size_t mailbox_bytes = page + shared_segment::max_meta;

size_t segment_bytes(size_t floats) {
  return page + 2 * mailbox_bytes + 4 * region_bytes(floats);
}

} // namespace

uint64_t random_token() {
  std::random_device rd;
  uint64_t x = 0;
  while (x == 0)
    x = (uint64_t{rd()} << 32) ^ rd();
  return x;
}

shared_segment::shared_segment(int fd, void* base, size_t bytes, size_t floats,
                               uint64_t nonce)
  : fd_(fd), base_(base), bytes_(bytes), floats_(floats), nonce_(nonce) {
  auto p = static_cast<char*>(base) + page;
  down_ = reinterpret_cast<mailbox*>(p);
  up_ = reinterpret_cast<mailbox*>(p + mailbox_bytes);
  p += 2 * mailbox_bytes;
  for (auto& r : regions_) {
    r = reinterpret_cast<float*>(p);
    p += region_bytes(floats);
  }
}

char* shared_segment::meta_bytes(mailbox& box) noexcept {
  return reinterpret_cast<char*>(&box) + page;
}

void wake(std::atomic<uint32_t>& word) {
  // Not FUTEX_PRIVATE: the waiter may be another process.
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE,
            INT32_MAX, nullptr, nullptr, 0);
}

void wait(std::atomic<uint32_t>& word, uint32_t seen,
          std::chrono::microseconds timeout) {
  auto us = timeout.count();
  timespec ts{static_cast<time_t>(us / 1000000),
              static_cast<long>(us % 1000000) * 1000};
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, seen,
            &ts, nullptr, 0);
}

void wake(std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleepers) {
  // Orders the caller's change of `word` before the look at `sleepers`; a
  // sleeper counts itself before the kernel compares `word`, so either this
  // sees it counted or it sees the change and does not sleep.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_relaxed) != 0)
    wake(word);
}

void wait(std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleepers,
          uint32_t seen, std::chrono::microseconds timeout) {
  sleepers.fetch_add(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst); // before the compare
  wait(word, seen, timeout);
  sleepers.fetch_sub(1, std::memory_order_relaxed);
}

shared_segment::~shared_segment() {
  ::munmap(base_, bytes_);
  ::close(fd_);
}

segment_offer shared_segment::offer() const noexcept {
  return {static_cast<uint32_t>(::getpid()), fd_, nonce_};
}

expected<std::unique_ptr<shared_segment>>
shared_segment::create(size_t floats, uint64_t token) {
  auto fail = [](const char* what) {
    return make_error(errc::io_error,
                      fmt::format("shared memory: cannot {}: {}", what,
                                  std::strerror(errno)));
  };
  // Close-on-exec keeps it from children; the master opens it by path,
  // which close-on-exec does not prevent.
  int fd = ::memfd_create("dml-link", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return fail("create a memfd");
  auto bytes = segment_bytes(floats);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0
      || ::fcntl(fd, F_ADD_SEALS, required_seals) != 0) {
    auto err = fail("size and seal a memfd");
    ::close(fd);
    return err;
  }
  auto base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    auto err = fail("map a memfd");
    ::close(fd);
    return err;
  }
  auto nonce = random_token();
  segment_header h{segment_magic, 0, token, nonce, floats};
  std::memcpy(base, &h, sizeof(h));
  return std::unique_ptr<shared_segment>{
    new shared_segment(fd, base, bytes, floats, nonce)};
}

expected<std::unique_ptr<shared_segment>>
shared_segment::open(const segment_offer& offer, size_t floats,
                     uint64_t token) {
  auto path = fmt::format("/proc/{}/fd/{}", offer.pid, offer.fd);
  auto fail = [&](const std::string& what) {
    return make_error(errc::io_error,
                      fmt::format("shared memory at {}: {}", path, what));
  };
  if (!offer)
    return make_error(errc::io_error, "the worker offered no shared memory");
  // O_PATH opens nothing (no device, FIFO or terminal reacts to it); only a
  // regular file of the right size is then opened for real.
  int at = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (at < 0)
    return fail(std::strerror(errno));
  auto bytes = segment_bytes(floats);
  struct stat st {};
  if (::fstat(at, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(at);
    return fail("not a shared memory segment");
  }
  if (static_cast<size_t>(st.st_size) != bytes) {
    ::close(at);
    return fail(fmt::format("a segment of {} bytes, expected {} (a model of "
                            "another size?)",
                            st.st_size, bytes));
  }
  int fd = ::open(fmt::format("/proc/self/fd/{}", at).c_str(),
                  O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  ::close(at);
  if (fd < 0)
    return fail(std::strerror(errno));
  auto seals = ::fcntl(fd, F_GET_SEALS);
  if (::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != bytes
      || seals < 0
      || (static_cast<unsigned>(seals) & required_seals) != required_seals) {
    ::close(fd);
    return fail("a segment that is not sealed against resizing");
  }
  auto base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    auto err = fail(std::strerror(errno));
    ::close(fd);
    return err;
  }
  segment_header h;
  std::memcpy(&h, base, sizeof(h));
  if (h.magic != segment_magic || h.token != token || h.nonce != offer.nonce
      || h.floats != floats) {
    ::munmap(base, bytes);
    ::close(fd);
    return fail("not the segment of this link");
  }
  return std::unique_ptr<shared_segment>{
    new shared_segment(fd, base, bytes, floats, offer.nonce)};
}

} // namespace dml
