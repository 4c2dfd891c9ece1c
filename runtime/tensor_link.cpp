#include "runtime/tensor_link.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace dml {

namespace {

constexpr uint32_t frame_magic = 0x464c4d44; // "DMLF"
constexpr uint32_t hello_magic = 0x4c4c4d44; // "DMLL"
constexpr size_t header_size = 32;
constexpr size_t hello_size = 32;

/// How often a reader that waits on a mailbox looks at the socket (which
/// tells whether the peer lives).
constexpr auto socket_check = std::chrono::milliseconds(10);

/// A frame header as it travels: magic, kind, metadata bytes, flags, float
/// count, reserved.
struct frame_header {
  uint32_t magic = frame_magic;
  uint32_t kind = 0;
  uint32_t meta = 0;
  uint32_t flags = 0;
  uint64_t floats = 0;
  uint64_t reserved2 = 0;
};

/// The most metadata a peer may announce (a frame beyond it is malformed).
constexpr uint32_t max_meta = 1u << 20;

static_assert(sizeof(frame_header) == header_size);

std::string errno_text() {
  return std::strerror(errno);
}

/// Waits until `fd` is ready for `events` or `deadline` (`max()`: no
/// deadline); returns whether it is (errors and hang-ups count as ready: the
/// next call reports them).
bool wait_for(int fd, short events, link_clock::time_point deadline) {
  for (;;) {
    int ms = -1;
    if (deadline != link_clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - link_clock::now())
                    .count();
      if (left < 0)
        left = 0;
      ms = static_cast<int>(std::min<int64_t>(left, 60000));
    }
    pollfd p{fd, events, 0};
    auto n = ::poll(&p, 1, ms);
    if (n > 0)
      return true;
    if (n < 0 && errno != EINTR)
      return true;
    if (n == 0 && ms >= 0 && link_clock::now() >= deadline)
      return false;
  }
}

/// Resolves `host` (IPv4; empty: any interface) and sets `port` into `out`;
/// returns the resolver's error text, or null.
const char* resolve(const std::string& host, uint16_t port, sockaddr_in& out) {
  out = sockaddr_in{};
  out.sin_family = AF_INET;
  out.sin_port = htons(port);
  if (host.empty()) {
    out.sin_addr.s_addr = htonl(INADDR_ANY);
    return nullptr;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (auto rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0)
    return ::gai_strerror(rc);
  out.sin_addr = reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr;
  ::freeaddrinfo(found);
  return nullptr;
}

/// Resolves `host:port` into `addr` and opens a non-blocking TCP socket;
/// returns it, or -1 with the reason in `why`.
int open_socket(const std::string& host, uint16_t port, sockaddr_in& addr,
                std::string& why) {
  if (auto err = resolve(host, port, addr)) {
    why = err;
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    why = errno_text();
  return fd;
}

/// No Nagle delay. (Sockets stay non-blocking: every send and receive passes
/// MSG_DONTWAIT and waits in poll.)
void tune(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string name_of(const sockaddr_in& addr) {
  char text[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &addr.sin_addr, text, sizeof(text));
  return fmt::format("{}:{}", text, ntohs(addr.sin_port));
}

/// Reads exactly `n` bytes from the non-blocking socket `fd`.
error read_all(int fd, char* p, size_t n, link_clock::time_point deadline,
               const std::string& peer) {
  while (n > 0) {
    auto k = ::recv(fd, p, n, MSG_DONTWAIT);
    if (k > 0) {
      p += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k == 0)
      return make_error(errc::peer_lost,
                        fmt::format("tensor link to {}: closed by the peer",
                                    peer));
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return make_error(errc::peer_lost,
                        fmt::format("tensor link to {}: {}", peer,
                                    errno_text()));
    if (!wait_for(fd, POLLIN, deadline))
      return make_error(errc::timeout,
                        fmt::format("tensor link to {}: no data within the "
                                    "deadline",
                                    peer));
  }
  return {};
}

/// Writes all of `n` bytes to the non-blocking socket `fd`.
bool write_all(int fd, const char* p, size_t n,
               link_clock::time_point deadline) {
  while (n > 0) {
    auto k = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      p += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
        && wait_for(fd, POLLOUT, deadline))
      continue;
    return false;
  }
  return true;
}

} // namespace

// -- tensor_link --------------------------------------------------------------

tensor_link::tensor_link(int fd, std::string peer, bool accepting,
                         uint64_t token, segment_offer offer,
                         std::unique_ptr<shared_segment> own)
  : fd_(fd), peer_(std::move(peer)), accepting_(accepting), token_(token),
    offer_(offer), segment_(std::move(own)) {
  tune(fd_);
  writer_ = std::thread{[this] { write_loop(); }};
}

tensor_link::~tensor_link() {
  gone_->store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closing_ = true;
  }
  cv_.notify_all();
  ::shutdown(fd_, SHUT_RDWR);
  if (shared()) {
    // Threads waiting on a mailbox look at the socket now, not in 10 ms.
    wake(inbox().posted);
    wake(outbox().taken);
    wake(outbox().busy[0]);
    wake(outbox().busy[1]);
  }
  writer_.join();
  if (reader_.joinable()) {
    // Dropped by the last owner on the reader thread itself (see `start`):
    // the thread ends right after this, touching nothing of the link.
    if (reader_.get_id() == std::this_thread::get_id())
      reader_.detach();
    else
      reader_.join();
  }
  ::close(fd_);
}

error tensor_link::map_shared(size_t floats) {
  // On one host a connection's two ends have the same address; a pid and a
  // descriptor number from another host mean nothing here.
  sockaddr_in here{};
  sockaddr_in there{};
  socklen_t len = sizeof(here);
  socklen_t len2 = sizeof(there);
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&here), &len) != 0
      || ::getpeername(fd_, reinterpret_cast<sockaddr*>(&there), &len2) != 0
      || here.sin_addr.s_addr != there.sin_addr.s_addr)
    return make_error(errc::io_error,
                      fmt::format("the worker runs on another host ({})",
                                  peer_));
  auto seg = shared_segment::open(offer_, floats, token_);
  if (!seg)
    return seg.err();
  segment_ = std::move(*seg);
  // Tell the peer, on the socket, that the mailbox carries the frames from
  // now on; then use it.
  send(frame_kind::shared, {}, tensor{});
  std::lock_guard<std::mutex> guard{mtx_};
  if (!queue_.empty() || broken_) {
    auto err = bad("cannot tell the peer to switch to shared memory");
    if (!broken_)
      break_locally(err.message());
    return err;
  }
  shared_.store(true, std::memory_order_release);
  return {};
}

void tensor_link::start(size_t max_floats, frame_handler on_frame,
                        close_handler on_close) {
  max_floats_ = max_floats;
  reader_ = std::thread{[this, owner = weak_from_this(), gone = gone_,
                         f = std::move(on_frame),
                         c = std::move(on_close)]() mutable {
    read_loop(std::move(owner), std::move(gone), std::move(f), std::move(c));
  }};
}

expected<std::unique_ptr<tensor_link>>
tensor_link::connect(const std::string& host, uint16_t port, link_hello hello,
                     std::chrono::milliseconds timeout, size_t offer_floats) {
  auto where = fmt::format("{}:{}", host, port);
  auto fail = [&](const std::string& what) {
    return make_error(errc::peer_lost,
                      fmt::format("tensor link to {}: {}", where, what));
  };
  sockaddr_in addr{};
  std::string why;
  int fd = open_socket(host, port, addr, why);
  if (fd < 0)
    return fail(why);
  auto deadline = link_clock::now() + timeout;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      auto err = fail(errno_text());
      ::close(fd);
      return err;
    }
    if (!wait_for(fd, POLLOUT, deadline)) {
      ::close(fd);
      return fail("no connection within the deadline");
    }
    int so = 0;
    socklen_t len = sizeof(so);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
    if (so != 0) {
      ::close(fd);
      return fail(std::strerror(so));
    }
  }
  // A segment that cannot be made only means the socket carries the floats.
  std::unique_ptr<shared_segment> own;
  segment_offer offer;
  if (offer_floats > 0) {
    if (auto seg = shared_segment::create(offer_floats, hello.token)) {
      own = std::move(*seg);
      offer = own->offer();
    }
  }
  char buf[hello_size];
  std::memcpy(buf, &hello_magic, 4);
  std::memcpy(buf + 4, &hello.protocol, 4);
  std::memcpy(buf + 8, &hello.token, 8);
  std::memcpy(buf + 16, &offer.pid, 4);
  std::memcpy(buf + 20, &offer.fd, 4);
  std::memcpy(buf + 24, &offer.nonce, 8);
  if (!write_all(fd, buf, sizeof(buf), deadline)) {
    auto err = fail("cannot send the greeting");
    ::close(fd);
    return err;
  }
  return std::make_unique<tensor_link>(fd, where, false, hello.token,
                                       segment_offer{}, std::move(own));
}

bool tensor_link::write_some(pending& p) {
  auto body = p.body.size() * sizeof(float);
  auto total = p.head.size() + body;
  while (p.done < total) {
    iovec iov[2];
    int count = 0;
    if (p.done < p.head.size()) {
      iov[count++] = {p.head.data() + p.done, p.head.size() - p.done};
      if (body > 0)
        iov[count++] = {const_cast<float*>(p.body.begin()), body};
    } else {
      auto off = p.done - p.head.size();
      iov[count++] = {
        reinterpret_cast<char*>(const_cast<float*>(p.body.begin())) + off,
        body - off};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    auto k = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      p.done += static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return false;
    broken_ = true;
    ::shutdown(fd_, SHUT_RDWR); // both readers notice at once
    return true;
  }
  return true;
}

mailbox& tensor_link::outbox() noexcept {
  return accepting_ ? segment_->down() : segment_->up();
}

mailbox& tensor_link::inbox() noexcept {
  return accepting_ ? segment_->up() : segment_->down();
}

int tensor_link::free_region() noexcept {
  auto& box = outbox();
  // Prefer the region not used last: the peer released that one first.
  for (uint32_t k = 0; k < 2; ++k) {
    auto i = (last_region_ + 1 + k) % 2;
    if (!lent_->at(i) && box.busy[i].load(std::memory_order_acquire) == 0)
      return static_cast<int>(i);
  }
  return -1;
}

tensor tensor_link::region() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!shared())
    return {};
  auto i = free_region();
  if (i < 0)
    return {};
  // Lent until the last copy of the tensor is gone: no other frame is
  // copied there meanwhile, and `region` does not hand it out again.
  auto r = static_cast<uint32_t>(i);
  lent_->at(r) = true;
  auto* at = segment_->region(outbox(), r);
  std::shared_ptr<const void> owner{at,
                                    [seg = segment_, lent = lent_,
                                     r](const void*) { lent->at(r) = false; }};
  return tensor{std::move(owner), at, segment_->floats()};
}

int tensor_link::region_for(const pending& p) noexcept {
  auto& box = outbox();
  for (uint32_t i = 0; i < 2; ++i) {
    if (p.body.begin() != segment_->region(box, i))
      continue;
    // Computed there (lent to this frame); the peer may still read it.
    auto busy = box.busy[i].load(std::memory_order_acquire);
    if (busy == 0)
      return static_cast<int>(i);
    blocker_ = &box.busy[i];
    blocker_sleepers_ = &box.busy_sleepers[i];
    blocker_seen_ = busy;
    return -1;
  }
  return free_region();
}

bool tensor_link::try_post(pending& p) {
  auto& box = outbox();
  blocker_ = nullptr;
  auto taken = box.taken.load(std::memory_order_acquire);
  if (taken != posted_) {
    // The peer has not taken the last frame yet.
    blocker_ = &box.taken;
    blocker_sleepers_ = &box.taken_sleepers;
    blocker_seen_ = taken;
    return false;
  }
  int i = -1;
  if (p.body.size() > 0 && (i = region_for(p)) < 0) {
    if (blocker_ == nullptr) {
      // Both regions in use: wait for the one the peer got first.
      auto j = (last_region_ + 1) % 2;
      blocker_ = &box.busy[j];
      blocker_sleepers_ = &box.busy_sleepers[j];
      blocker_seen_ = box.busy[j].load(std::memory_order_acquire);
    }
    return false;
  }
  auto meta = p.head.size() - header_size;
  box.kind.store(p.kind, std::memory_order_relaxed);
  box.meta.store(static_cast<uint32_t>(meta), std::memory_order_relaxed);
  box.floats.store(p.body.size(), std::memory_order_relaxed);
  if (meta > 0)
    std::memcpy(shared_segment::meta_bytes(box), p.head.data() + header_size,
                meta);
  if (i >= 0) {
    auto r = static_cast<uint32_t>(i);
    auto dst = segment_->region(box, r);
    if (p.body.begin() != dst)
      std::memcpy(dst, p.body.begin(), p.body.size() * sizeof(float));
    box.region.store(r, std::memory_order_relaxed);
    box.busy[r].store(1, std::memory_order_relaxed);
    last_region_ = r;
  }
  box.posted.store(++posted_, std::memory_order_release);
  wake(box.posted, box.posted_sleepers);
  return true;
}

void tensor_link::wait_outbox(std::unique_lock<std::mutex>& guard) {
  // Wait for the word that kept the front frame back, to change from the
  // value seen (at most 10 ms: a lent region is released without a wake).
  auto* word = blocker_;
  auto* sleepers = blocker_sleepers_;
  auto seen = blocker_seen_;
  blocker_ = nullptr;
  guard.unlock();
  if (word != nullptr)
    wait(*word, *sleepers, seen, socket_check);
  else
    std::this_thread::sleep_for(socket_check);
  guard.lock();
}

void tensor_link::break_locally(std::string why) {
  broken_ = true;
  local_why_ = std::move(why);
  ::shutdown(fd_, SHUT_RDWR); // both readers notice at once
}

void tensor_link::send(frame_kind kind, std::vector<char> meta, tensor values) {
  frame_header h;
  h.kind = static_cast<uint32_t>(kind);
  h.meta = static_cast<uint32_t>(meta.size());
  h.floats = values.size();
  pending p;
  p.kind = h.kind;
  p.head.resize(header_size + meta.size());
  std::memcpy(p.head.data(), &h, header_size);
  if (!meta.empty())
    std::memcpy(p.head.data() + header_size, meta.data(), meta.size());
  p.body = std::move(values);
  std::lock_guard<std::mutex> guard{mtx_};
  if (broken_ || closing_)
    return;
  p.shared = shared();
  if (p.shared) {
    if (meta.size() > shared_segment::max_meta
        || p.body.size() > segment_->floats())
      return break_locally(fmt::format("tensor link to {}: a frame of {} "
                                       "metadata bytes and {} floats does "
                                       "not fit the shared segment",
                                       peer_, meta.size(), p.body.size()));
    if (queue_.empty() && try_post(p))
      return;
  } else if (queue_.empty() && write_some(p)) {
    return;
  }
  queue_.push_back(std::move(p));
  cv_.notify_one();
}

void tensor_link::write_loop() {
  std::unique_lock<std::mutex> guard{mtx_};
  for (;;) {
    cv_.wait(guard, [this] { return closing_ || !queue_.empty(); });
    if (closing_)
      return;
    while (!queue_.empty() && !closing_ && !broken_) {
      auto& front = queue_.front();
      if (front.shared ? try_post(front) : write_some(front)) {
        queue_.pop_front();
        continue;
      }
      if (front.shared) {
        wait_outbox(guard);
        continue;
      }
      guard.unlock();
      wait_for(fd_, POLLOUT,
               link_clock::now() + std::chrono::milliseconds(100));
      guard.lock();
    }
    if (broken_)
      queue_.clear();
  }
}

error tensor_link::bad(const std::string& what) const {
  return make_error(errc::protocol_violation,
                    fmt::format("tensor link to {}: {}", peer_, what));
}

error tensor_link::check_frame(uint32_t kind, uint64_t meta, uint64_t floats,
                               uint64_t most_floats) const {
  if (kind != static_cast<uint32_t>(frame_kind::params)
      && kind != static_cast<uint32_t>(frame_kind::gradient))
    return bad(fmt::format("unknown frame kind {}", kind));
  if (meta > max_meta || floats > most_floats)
    return bad(
      fmt::format("a frame of {} metadata bytes and {} floats", meta, floats));
  return {};
}

error tensor_link::socket_frame(link_frame& f) {
  auto never = link_clock::time_point::max();
  frame_header h;
  if (auto why = read_all(fd_, reinterpret_cast<char*>(&h), header_size, never,
                          peer_))
    return why;
  if (h.magic != frame_magic)
    return bad("not a frame (bad magic)");
  if (h.kind == static_cast<uint32_t>(frame_kind::shared)) {
    // From the accepting side, before any frame in the mailbox.
    if (accepting_ || !segment_ || shared() || h.meta != 0 || h.floats != 0
        || h.flags != 0)
      return bad("an unexpected switch to shared memory");
    shared_.store(true, std::memory_order_release);
    f.kind = frame_kind::shared;
    return {};
  }
  if (h.flags != 0)
    return bad(fmt::format("unknown frame flags {}", h.flags));
  if (auto why = check_frame(h.kind, h.meta, h.floats, max_floats_))
    return why;
  if (!accepting_ && segment_ && !shared()) {
    // The master sends on the socket: it did not map the segment (it runs
    // on another host, or was told not to). Free it.
    std::lock_guard<std::mutex> guard{mtx_};
    segment_.reset();
  }
  f.kind = static_cast<frame_kind>(h.kind);
  f.meta.resize(h.meta);
  if (h.meta > 0)
    if (auto why = read_all(fd_, f.meta.data(), h.meta, never, peer_))
      return why;
  std::shared_ptr<std::vector<float>> buf;
  try {
    buf = buffers_.acquire(h.floats);
  } catch (const std::bad_alloc&) {
    return bad(fmt::format("no memory for a frame of {} floats", h.floats));
  }
  if (h.floats > 0)
    if (auto why = read_all(fd_, reinterpret_cast<char*>(buf->data()),
                            h.floats * sizeof(float), never, peer_))
      return why;
  f.values = tensor{std::shared_ptr<const std::vector<float>>{buf}};
  return {};
}

error tensor_link::take_frame(link_frame& f) {
  auto& box = inbox();
  // Everything here was written by the peer: check it like socket bytes.
  auto kind = box.kind.load(std::memory_order_relaxed);
  auto meta = box.meta.load(std::memory_order_relaxed);
  auto floats = box.floats.load(std::memory_order_relaxed);
  auto region = box.region.load(std::memory_order_relaxed);
  if (auto why = check_frame(kind, meta, floats,
                             std::min<uint64_t>(max_floats_,
                                                segment_->floats())))
    return why;
  if (floats > 0 && region > 1)
    return bad(fmt::format("a frame in region {}", region));
  f.kind = static_cast<frame_kind>(kind);
  f.meta.assign(shared_segment::meta_bytes(box),
                shared_segment::meta_bytes(box) + meta);
  if (floats > 0) {
    // The region is the peer's again once the last copy of this tensor is
    // gone (the deleter also keeps the mapping alive until then).
    auto* at = segment_->region(box, region);
    auto* busy = &box.busy[region];
    auto* sleepers = &box.busy_sleepers[region];
    std::shared_ptr<const void> owner{
      at, [seg = segment_, busy, sleepers](const void*) {
        busy->store(0, std::memory_order_release);
        wake(*busy, *sleepers);
      }};
    f.values = tensor{std::move(owner), at, static_cast<size_t>(floats)};
  }
  box.taken.store(++taken_, std::memory_order_release);
  wake(box.taken, box.taken_sleepers);
  // Whatever was said to be due has come (or comes after this one).
  expecting_.store(false, std::memory_order_release);
  return {};
}

void tensor_link::expect_frame() {
  if (!shared())
    return;
  expecting_.store(true, std::memory_order_release);
  // A reader asleep on the inbox starts polling (one running this, in its
  // frame handler, sees the flag once the handler returns).
  if (std::this_thread::get_id() != reader_.get_id())
    wake(inbox().posted, inbox().posted_sleepers);
}

void tensor_link::poll_inbox() {
  auto& box = inbox();
  auto until = link_clock::now() + poll_budget;
  while (box.posted.load(std::memory_order_acquire) == taken_
         && link_clock::now() < until)
    ::sched_yield();
}

error tensor_link::mailbox_frame(link_frame& f) {
  auto& box = inbox();
  for (;;) {
    if (box.posted.load(std::memory_order_acquire) != taken_)
      return take_frame(f);
    if (expecting_.exchange(false, std::memory_order_acq_rel)) {
      poll_inbox();
      continue;
    }
    // The socket tells when the peer is gone; after the switch it carries
    // no frames.
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) {
      // A frame the peer posted right before it closed comes first.
      if (box.posted.load(std::memory_order_acquire) != taken_)
        return take_frame(f);
      char byte;
      auto k = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (k > 0)
        return bad("bytes on the socket after the switch to shared memory");
      if (k == 0)
        return make_error(errc::peer_lost,
                          fmt::format("tensor link to {}: closed by the peer",
                                      peer_));
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return make_error(errc::peer_lost,
                          fmt::format("tensor link to {}: {}", peer_,
                                      errno_text()));
    }
    if (!expecting_.load(std::memory_order_acquire))
      wait(box.posted, box.posted_sleepers, taken_, socket_check);
  }
}

void tensor_link::read_loop(std::weak_ptr<tensor_link> owner,
                            std::shared_ptr<std::atomic<bool>> gone,
                            frame_handler on_frame, close_handler on_close) {
  // As a batch thread a reader does not preempt, when woken, the thread
  // that runs on its core (a gradient's computation, or the master sending
  // the next step to the other workers): with two cores and three processes
  // that preemption cost a fifth of the throughput (MLP, batch 128, one
  // host). The handler may run an actor on this thread (link_bridge.cpp).
  sched_param batch{};
  ::sched_setscheduler(0, SCHED_BATCH, &batch);
  error why;
  for (;;) {
    link_frame f;
    why = shared() ? mailbox_frame(f) : socket_frame(f);
    if (why)
      break;
    if (f.kind == frame_kind::shared)
      continue;
    std::string threw;
    {
      // Keeps the link alive while the handler runs (see `start`); if the
      // handler let go of its last owner, the link closes when `keep` goes.
      auto keep = owner.lock();
      try {
        on_frame(std::move(f));
      } catch (const std::exception& e) {
        threw = e.what();
      }
    }
    if (gone->load(std::memory_order_acquire))
      return; // closed: nothing of the link may be touched now
    if (!threw.empty()) {
      why = bad(fmt::format("a frame that could not be handled: {}", threw));
      break;
    }
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closing_)
      return; // closed by this side
    broken_ = true;
    if (!local_why_.empty())
      why = make_error(errc::protocol_violation, local_why_);
  }
  on_close(why);
}

// -- link_listener ------------------------------------------------------------

void link_listener::forget(uint64_t token) {
  if (auto i = early_.find(token); i != early_.end()) {
    ::close(i->second.fd);
    early_.erase(i);
  }
}

link_listener::~link_listener() {
  for (auto& [token, conn] : early_)
    ::close(conn.fd);
  ::close(fd_);
}

expected<std::unique_ptr<link_listener>>
link_listener::open(const std::string& host, uint16_t port, uint32_t protocol) {
  auto fail = [&](const std::string& what) {
    return make_error(errc::io_error,
                      fmt::format("tensor link: cannot listen on {}:{}: {}",
                                  host, port, what));
  };
  sockaddr_in addr{};
  std::string why;
  int fd = open_socket(host, port, addr, why);
  if (fd < 0)
    return fail(why);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::listen(fd, 64) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    auto err = fail(errno_text());
    ::close(fd);
    return err;
  }
  return std::unique_ptr<link_listener>{
    new link_listener(fd, ntohs(addr.sin_port), protocol)};
}

expected<std::unique_ptr<tensor_link>>
link_listener::accept(uint64_t token, link_clock::time_point deadline) {
  for (;;) {
    if (auto i = early_.find(token); i != early_.end()) {
      auto conn = i->second;
      early_.erase(i);
      return std::make_unique<tensor_link>(conn.fd, conn.peer, true, token,
                                           conn.offer);
    }
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return make_error(errc::io_error,
                          fmt::format("tensor link: accept failed: {}",
                                      errno_text()));
      if (!wait_for(fd_, POLLIN, deadline))
        return make_error(errc::timeout,
                          fmt::format("tensor link: the worker did not "
                                      "connect to port {} in time",
                                      port_));
      continue;
    }
    // A peer has 200 ms to say who it is (the master waits meanwhile).
    auto peer = name_of(addr);
    char buf[hello_size];
    auto limit = std::min(deadline,
                          link_clock::now() + std::chrono::milliseconds(200));
    uint32_t magic = 0;
    uint32_t protocol = 0;
    uint64_t presented = 0;
    segment_offer offer;
    if (!read_all(fd, buf, sizeof(buf), limit, peer)) {
      std::memcpy(&magic, buf, 4);
      std::memcpy(&protocol, buf + 4, 4);
      std::memcpy(&presented, buf + 8, 8);
      std::memcpy(&offer.pid, buf + 16, 4);
      std::memcpy(&offer.fd, buf + 20, 4);
      std::memcpy(&offer.nonce, buf + 24, 8);
    }
    if (magic != hello_magic || protocol != protocol_ || presented == 0) {
      ::close(fd); // a stranger, or a peer of another build
      continue;
    }
    if (presented == token)
      return std::make_unique<tensor_link>(fd, peer, true, token, offer);
    if (auto i = early_.find(presented); i != early_.end())
      ::close(i->second.fd);
    else if (early_.size() >= 256) {
      ::close(early_.begin()->second.fd); // bounded: drop one
      early_.erase(early_.begin());
    }
    early_[presented] = {fd, peer, offer};
  }
}

} // namespace dml
