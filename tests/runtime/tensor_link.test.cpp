#include "runtime/tensor_link.hpp"

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <boost/test/unit_test.hpp>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace dml;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t version = 7;

/// Collects what a link's reader thread hands over, for the test thread.
struct inbox {
  size_t max_floats = size_t{1} << 24;
  /// Keep copies of the floats and let go of the frames' own (which, over
  /// shared memory, lets the peer use their regions again).
  bool copy = true;
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<link_frame> frames;
  std::vector<std::string> closed;

  void attach(tensor_link& link) {
    link.start(
      max_floats,
      [this](link_frame&& f) {
        if (copy)
          f.values = tensor{to_vector(f.values)};
        std::lock_guard<std::mutex> guard{mtx};
        frames.push_back(std::move(f));
        cv.notify_all();
      },
      [this](const error& why) {
        std::lock_guard<std::mutex> guard{mtx};
        closed.push_back(why.message());
        cv.notify_all();
      });
  }

  /// Waits (at most 10 s) until `n` frames or a close arrived.
  bool wait_frames(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, 10s, [&] {
      return frames.size() >= n || !closed.empty();
    }) && frames.size() >= n;
  }

  /// Returns a copy of frame `i` (which must have arrived).
  link_frame frame(size_t i) {
    std::lock_guard<std::mutex> guard{mtx};
    return frames.at(i);
  }

  /// Returns how many frames arrived so far.
  size_t frames_now() {
    std::lock_guard<std::mutex> guard{mtx};
    return frames.size();
  }

  /// Returns whether the link was reported closed.
  bool is_closed() {
    std::lock_guard<std::mutex> guard{mtx};
    return !closed.empty();
  }

  /// Waits (at most 10 s) for the close; returns its message.
  std::string wait_closed() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait_for(guard, 10s, [&] { return !closed.empty(); });
    return closed.empty() ? "(not closed)" : closed.front();
  }
};

/// A connected pair: `a` connected to the listener, `b` accepted there.
struct link_pair {
  std::unique_ptr<link_listener> listener;
  std::unique_ptr<tensor_link> a;
  std::unique_ptr<tensor_link> b;

  link_pair() {
    auto l = link_listener::open("127.0.0.1", 0, version);
    BOOST_REQUIRE(l);
    listener = std::move(*l);
    auto c = tensor_link::connect("127.0.0.1", listener->port(),
                                  link_hello{version, 42}, 2000ms);
    BOOST_REQUIRE(c);
    a = std::move(*c);
    auto s = listener->accept(42, link_clock::now() + 2s);
    BOOST_REQUIRE(s);
    b = std::move(*s);
  }
};

/// A pair whose connecting end (a worker's) offers a segment of `floats`
/// floats, mapped by the accepting end (the master's).
struct shared_pair {
  /// What each end receives (declared first: the links' reader threads may
  /// report a close while the links are destroyed).
  inbox at_worker;
  inbox at_master;
  std::unique_ptr<link_listener> listener;
  std::unique_ptr<tensor_link> worker;
  std::unique_ptr<tensor_link> master;

  explicit shared_pair(size_t floats) {
    auto l = link_listener::open("127.0.0.1", 0, version);
    BOOST_REQUIRE(l);
    listener = std::move(*l);
    auto c = tensor_link::connect("127.0.0.1", listener->port(),
                                  link_hello{version, 42}, 2000ms, floats);
    BOOST_REQUIRE(c);
    worker = std::move(*c);
    auto s = listener->accept(42, link_clock::now() + 2s);
    BOOST_REQUIRE(s);
    master = std::move(*s);
    BOOST_REQUIRE(!master->map_shared(floats));
  }
};

tensor iota_floats(size_t n, float first) {
  std::vector<float> xs(n);
  std::iota(xs.begin(), xs.end(), first);
  return tensor{std::move(xs)};
}

/// A raw socket connected to `port` on 127.0.0.1 (-1 on failure), from
/// address `from`.
int raw_connect(uint16_t port, const char* from = "127.0.0.1") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &src.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
    ::close(fd);
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void raw_write(int fd, const void* p, size_t n) {
  BOOST_REQUIRE(::send(fd, p, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n));
}

/// Greets on `fd` as a peer of this build with `token`, offering `offer`.
void raw_hello(int fd, uint64_t token, segment_offer offer) {
  uint32_t magic = 0x4c4c4d44;
  char buf[32];
  std::memcpy(buf, &magic, 4);
  std::memcpy(buf + 4, &version, 4);
  std::memcpy(buf + 8, &token, 8);
  std::memcpy(buf + 16, &offer.pid, 4);
  std::memcpy(buf + 20, &offer.fd, 4);
  std::memcpy(buf + 24, &offer.nonce, 8);
  raw_write(fd, buf, sizeof(buf));
}

/// The error `map_shared(floats)` gives for a link whose peer offers
/// `offer` with `token` (empty: none).
std::string map_error(link_listener& l, uint64_t token, segment_offer offer,
                      size_t floats) {
  int fd = raw_connect(l.port());
  raw_hello(fd, token, offer);
  auto link = l.accept(token, link_clock::now() + 2s);
  BOOST_REQUIRE(link);
  auto err = (*link)->map_shared(floats);
  ::close(fd);
  return err ? err.message() : "";
}

} // namespace

BOOST_AUTO_TEST_SUITE(tensor_links)

BOOST_AUTO_TEST_CASE(frames_arrive_in_order_bit_exact) {
  link_pair p;
  inbox at_b;
  at_b.attach(*p.b);
  std::vector<tensor> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(iota_floats(1000 + i, 0.5f * i));
    p.a->send(i % 2 ? frame_kind::gradient : frame_kind::params,
              std::vector<char>(static_cast<size_t>(i), static_cast<char>(i)),
              sent.back());
  }
  p.a->send(frame_kind::params, {'x'}, tensor{}); // metadata only
  BOOST_REQUIRE(at_b.wait_frames(21));
  for (int i = 0; i < 20; ++i) {
    auto& f = at_b.frames[i];
    BOOST_TEST((f.kind == (i % 2 ? frame_kind::gradient : frame_kind::params)));
    BOOST_TEST(f.meta.size() == static_cast<size_t>(i));
    BOOST_REQUIRE(f.values.size() == sent[i].size());
    BOOST_TEST(std::memcmp(f.values.begin(), sent[i].begin(),
                           sent[i].size() * sizeof(float))
               == 0);
  }
  BOOST_TEST(at_b.frames[20].values.size() == 0);
  BOOST_TEST(!at_b.is_closed());
}

BOOST_AUTO_TEST_CASE(both_sides_send_large_frames_at_once) {
  // 16 MB each way, queued before either side reads: no deadlock.
  inbox at_a; // outlive the links, whose readers report to them
  inbox at_b;
  link_pair p;
  auto big = iota_floats(1 << 20, 1.0f);
  for (int i = 0; i < 4; ++i) {
    p.a->send(frame_kind::params, {}, big);
    p.b->send(frame_kind::gradient, {}, big);
  }
  at_a.attach(*p.a);
  at_b.attach(*p.b);
  BOOST_REQUIRE(at_a.wait_frames(4));
  BOOST_REQUIRE(at_b.wait_frames(4));
  BOOST_TEST(to_vector(at_a.frames[3].values) == to_vector(big));
  BOOST_TEST(to_vector(at_b.frames[3].values) == to_vector(big));
}

BOOST_AUTO_TEST_CASE(peer_closing_is_reported) {
  link_pair p;
  inbox at_b;
  at_b.attach(*p.b);
  p.a.reset();
  auto why = at_b.wait_closed();
  BOOST_TEST(why.find("closed by the peer") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(closing_this_side_calls_no_handler) {
  link_pair p;
  inbox at_b;
  at_b.attach(*p.b);
  p.b.reset();
  BOOST_TEST(!at_b.is_closed());
}

BOOST_AUTO_TEST_CASE(malformed_frames_are_reported) {
  auto l = link_listener::open("127.0.0.1", 0, version);
  BOOST_REQUIRE(l);
  auto hello = [&](uint64_t token) {
    int fd = raw_connect((*l)->port());
    BOOST_REQUIRE(fd >= 0);
    raw_hello(fd, token, {});
    return fd;
  };
  // Not a frame.
  {
    int fd = hello(5);
    auto link = (*l)->accept(5, link_clock::now() + 2s);
    BOOST_REQUIRE(link);
    inbox box;
    box.attach(**link);
    raw_write(fd, "garbage garbage garbage garbage!", 32);
    BOOST_TEST(box.wait_closed()
               == "tensor link to " + (*link)->peer()
                 + ": not a frame (bad magic)");
    ::close(fd);
  }
  // Frames announcing more floats than the model has (by one, or by far).
  for (uint32_t high : {0u, 0x10u}) {
    uint64_t token = 6 + high;
    int fd = hello(token);
    auto link = (*l)->accept(token, link_clock::now() + 2s);
    BOOST_REQUIRE(link);
    inbox box;
    box.max_floats = 1000;
    box.attach(**link);
    uint32_t head[8] = {0x464c4d44, 1, 0, 0, high ? 0u : 1001u, high, 0, 0};
    raw_write(fd, head, sizeof(head));
    BOOST_TEST(box.wait_closed()
               == "tensor link to " + (*link)->peer()
                 + ": a frame of 0 metadata bytes and "
                 + (high ? "68719476736" : "1001") + " floats");
    ::close(fd);
  }
}

BOOST_AUTO_TEST_CASE(listener_matches_tokens_and_drops_strangers) {
  auto l = link_listener::open("127.0.0.1", 0, version);
  BOOST_REQUIRE(l);
  auto& listener = **l;
  // A stranger that sends garbage, one of another build, then rank 2's and
  // rank 1's connections, in that order.
  int stranger = raw_connect(listener.port());
  raw_write(stranger, "GET / HTTP/1.0\r\n", 16);
  auto other_build = tensor_link::connect("127.0.0.1", listener.port(),
                                          link_hello{version + 1, 1}, 2000ms);
  auto two = tensor_link::connect("127.0.0.1", listener.port(),
                                  link_hello{version, 2}, 2000ms);
  auto one = tensor_link::connect("127.0.0.1", listener.port(),
                                  link_hello{version, 1}, 2000ms);
  BOOST_REQUIRE(other_build && two && one);
  auto got_one = listener.accept(1, link_clock::now() + 5s);
  BOOST_REQUIRE(got_one);
  auto got_two = listener.accept(2, link_clock::now() + 5s);
  BOOST_REQUIRE(got_two);
  // The accepted ends talk to the right connecting ends.
  inbox at_one;
  at_one.attach(**got_one);
  (*one)->send(frame_kind::gradient, {'1'}, tensor{});
  BOOST_REQUIRE(at_one.wait_frames(1));
  BOOST_TEST(at_one.frames[0].meta == std::vector<char>{'1'});
  // Nobody presents token 3.
  auto none = listener.accept(3, link_clock::now() + 200ms);
  BOOST_REQUIRE(!none);
  BOOST_TEST(none.err().message()
             == "tensor link: the worker did not connect to port "
               + std::to_string(listener.port()) + " in time");
  ::close(stranger);
}

BOOST_AUTO_TEST_CASE(connect_names_the_endpoint) {
  auto l = link_listener::open("127.0.0.1", 0, version);
  BOOST_REQUIRE(l);
  auto port = (*l)->port();
  l = link_listener::open("127.0.0.1", 0, version); // frees `port`
  auto c = tensor_link::connect("127.0.0.1", port, link_hello{version, 1},
                                1000ms);
  BOOST_REQUIRE(!c);
  BOOST_TEST(c.err().message()
             == "tensor link to 127.0.0.1:" + std::to_string(port)
               + ": Connection refused");
  // A port taken by a listener cannot be listened on twice.
  auto taken = link_listener::open("127.0.0.1", (*l)->port(), version);
  BOOST_REQUIRE(!taken);
  BOOST_TEST(taken.err().message()
             == "tensor link: cannot listen on 127.0.0.1:"
               + std::to_string((*l)->port()) + ": Address already in use");
}

BOOST_AUTO_TEST_CASE(a_throwing_handler_breaks_the_link) {
  link_pair p;
  std::mutex mtx;
  std::condition_variable cv;
  std::string why;
  p.b->start(
    16, [](link_frame&&) { throw std::runtime_error("cannot decode"); },
    [&](const error& e) {
      std::lock_guard<std::mutex> guard{mtx};
      why = e.message();
      cv.notify_all();
    });
  p.a->send(frame_kind::params, {}, iota_floats(4, 0));
  std::unique_lock<std::mutex> guard{mtx};
  cv.wait_for(guard, 10s, [&] { return !why.empty(); });
  BOOST_TEST(why
             == "tensor link to " + p.b->peer()
               + ": a frame that could not be handled: cannot decode");
}

BOOST_AUTO_TEST_CASE(a_forgotten_early_connection_is_closed) {
  auto l = link_listener::open("127.0.0.1", 0, version);
  BOOST_REQUIRE(l);
  auto early = tensor_link::connect("127.0.0.1", (*l)->port(),
                                    link_hello{version, 9}, 2000ms);
  BOOST_REQUIRE(early);
  // Accepting another token parks token 9's connection; forgetting the
  // token closes it, which the connecting side sees.
  auto none = (*l)->accept(10, link_clock::now() + 300ms);
  BOOST_REQUIRE(!none);
  inbox box;
  box.attach(**early);
  (*l)->forget(9);
  auto why = box.wait_closed();
  BOOST_TEST(why.find("closed by the peer") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(shared_memory_carries_the_floats_both_ways) {
  shared_pair p{1000};
  auto& worker = *p.worker;
  auto& master = *p.master;
  BOOST_TEST(master.shared());
  BOOST_TEST(!worker.shared()); // until its reader takes the switch
  p.at_worker.attach(worker);
  p.at_master.attach(master);
  for (int i = 0; i < 10; ++i) {
    auto params = iota_floats(1000, 1.0f * i);
    master.send(frame_kind::params, {'p'}, params);
    BOOST_REQUIRE(p.at_worker.wait_frames(static_cast<size_t>(i) + 1));
    BOOST_TEST(worker.shared());
    auto got = p.at_worker.frame(static_cast<size_t>(i));
    BOOST_TEST(to_vector(got.values) == to_vector(params));
    BOOST_TEST(got.meta == std::vector<char>{'p'});
    auto grad = iota_floats(900 + i, -1.0f * i);
    worker.send(frame_kind::gradient, {'g'}, grad);
    BOOST_REQUIRE(p.at_master.wait_frames(static_cast<size_t>(i) + 1));
    BOOST_TEST(to_vector(p.at_master.frame(static_cast<size_t>(i)).values)
               == to_vector(grad));
  }
  // A gradient computed in the segment travels without a copy.
  auto direct = worker.region();
  BOOST_REQUIRE(direct.size() == 1000u);
  auto* at = const_cast<float*>(direct.begin());
  std::fill(at, at + 1000, 0.25f);
  worker.send(frame_kind::gradient, {}, direct);
  BOOST_REQUIRE(p.at_master.wait_frames(11));
  BOOST_TEST(to_vector(p.at_master.frame(10).values)
             == std::vector<float>(1000, 0.25f));
  BOOST_TEST(!p.at_worker.is_closed());
  BOOST_TEST(!p.at_master.is_closed());
  // A tensor larger than the segment breaks the link, on both ends.
  master.send(frame_kind::params, {}, iota_floats(5000, 3.0f));
  BOOST_TEST(p.at_master.wait_closed()
             == "tensor link to " + master.peer()
               + ": a frame of 0 metadata bytes and 5000 floats does not fit "
                 "the shared segment");
  BOOST_TEST(p.at_worker.wait_closed()
             == "tensor link to " + worker.peer() + ": closed by the peer");
}

BOOST_AUTO_TEST_CASE(frames_wait_for_a_full_mailbox_and_keep_their_order) {
  shared_pair p{10};
  p.at_master.attach(*p.master);
  // Five frames before the worker's end reads any: one in the mailbox, the
  // others queued until the worker takes it.
  for (char i = 0; i < 5; ++i)
    p.master->send(frame_kind::params, {i}, iota_floats(10, i));
  p.at_worker.attach(*p.worker);
  BOOST_REQUIRE(p.at_worker.wait_frames(5));
  for (char i = 0; i < 5; ++i) {
    BOOST_TEST(p.at_worker.frames[i].meta == std::vector<char>{i});
    BOOST_TEST(to_vector(p.at_worker.frames[i].values)
               == to_vector(iota_floats(10, i)));
  }
  // The worker's end goes away: the master's end notices at once (it
  // waits on the mailbox and looks at the socket every 10 ms).
  auto t0 = link_clock::now();
  p.worker.reset();
  BOOST_TEST(p.at_master.wait_closed()
             == "tensor link to " + p.master->peer() + ": closed by the peer");
  BOOST_TEST((link_clock::now() - t0 < 1s));
}

BOOST_AUTO_TEST_CASE(only_the_offered_sealed_segment_is_mapped) {
  auto l = link_listener::open("127.0.0.1", 0, version);
  BOOST_REQUIRE(l);
  auto& listener = **l;
  auto pid = static_cast<uint32_t>(::getpid());
  auto path = [&](int fd) {
    return "shared memory at /proc/" + std::to_string(pid) + "/fd/"
      + std::to_string(fd) + ": ";
  };
  BOOST_TEST(map_error(listener, 1, {}, 1000)
             == "the worker offered no shared memory");
  BOOST_TEST(map_error(listener, 2, {pid, 999999, 5}, 1000)
             == path(999999) + "No such file or directory");
  // Descriptors that are no segment are not even opened (O_PATH).
  int pipe_fds[2];
  BOOST_REQUIRE(::pipe(pipe_fds) == 0);
  BOOST_TEST(map_error(listener, 2, {pid, pipe_fds[0], 5}, 1000)
             == path(pipe_fds[0]) + "not a shared memory segment");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  // A real segment, but for another model size, token or nonce.
  auto seg = shared_segment::create(1000, 3);
  BOOST_REQUIRE(seg);
  auto offer = (*seg)->offer();
  BOOST_TEST(map_error(listener, 3, offer, 2000)
             == path(offer.fd)
               + "a segment of 2125824 bytes, expected 2142208 (a model "
                 "of another size?)");
  BOOST_TEST(map_error(listener, 4, offer, 1000)
             == path(offer.fd) + "not the segment of this link");
  auto forged = offer;
  forged.nonce += 1;
  BOOST_TEST(map_error(listener, 3, forged, 1000)
             == path(offer.fd) + "not the segment of this link");
  BOOST_TEST(map_error(listener, 3, offer, 1000).empty());
  // A file of the right size that its owner could still shrink.
  int unsealed = ::memfd_create("unsealed", MFD_CLOEXEC);
  BOOST_REQUIRE(unsealed >= 0);
  BOOST_REQUIRE(::ftruncate(unsealed, 2125824) == 0);
  BOOST_TEST(map_error(listener, 5, {pid, unsealed, 7}, 1000)
             == path(unsealed)
               + "a segment that is not sealed against "
                 "resizing");
  ::close(unsealed);
  // A peer at another address (127.0.0.2 is this host too, but counts as
  // another one) is not asked for its segment at all.
  int fd = raw_connect(listener.port(), "127.0.0.2");
  BOOST_REQUIRE(fd >= 0);
  raw_hello(fd, 6, offer);
  auto link = listener.accept(6, link_clock::now() + 2s);
  BOOST_REQUIRE(link);
  auto err = (*link)->map_shared(1000);
  BOOST_TEST(err.message()
             == "the worker runs on another host (" + (*link)->peer() + ")");
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(unexpected_frames_are_refused) {
  auto l = link_listener::open("127.0.0.1", 0, version);
  BOOST_REQUIRE(l);
  // A switch to shared memory sent to the listener's end, or flags.
  for (uint32_t kind : {3u, 2u}) {
    int fd = raw_connect((*l)->port());
    raw_hello(fd, 8 + kind, {});
    auto link = (*l)->accept(8 + kind, link_clock::now() + 2s);
    BOOST_REQUIRE(link);
    inbox box;
    box.attach(**link);
    uint32_t head[8] = {0x464c4d44, kind, 0, kind == 2 ? 2u : 0u, 0, 0, 0, 0};
    raw_write(fd, head, sizeof(head));
    BOOST_TEST(box.wait_closed()
               == "tensor link to " + (*link)->peer()
                 + (kind == 3 ? ": an unexpected switch to shared memory"
                              : ": unknown frame flags 2"));
    ::close(fd);
  }
  // A mapped link refuses a frame in its mailbox that claims more floats
  // than its segment holds, even below the model's size.
  auto seg = shared_segment::create(100, 20);
  BOOST_REQUIRE(seg);
  int fd = raw_connect((*l)->port());
  raw_hello(fd, 20, (*seg)->offer());
  auto link = (*l)->accept(20, link_clock::now() + 2s);
  BOOST_REQUIRE(link);
  BOOST_REQUIRE(!(*link)->map_shared(100));
  inbox box;
  box.attach(**link);
  auto& up = (*seg)->up();
  up.kind = 2;
  up.meta = 0;
  up.floats = 101;
  up.posted.store(1);
  wake(up.posted);
  BOOST_TEST(box.wait_closed()
             == "tensor link to " + (*link)->peer()
               + ": a frame of 0 metadata bytes and 101 floats");
  ::close(fd);
}

// Whatever the peer writes into the mailbox is checked before use, and
// after the switch the socket carries no frames.
BOOST_AUTO_TEST_CASE(hostile_mailboxes_break_the_link) {
  auto l = link_listener::open("127.0.0.1", 0, version);
  BOOST_REQUIRE(l);
  struct hostile {
    uint32_t kind, meta, floats, region;
    std::string why;
  };
  std::vector<hostile> cases{
    {7, 0, 0, 0, "unknown frame kind 7"},
    {2, (1u << 20) + 1, 0, 0, "a frame of 1048577 metadata bytes and 0 floats"},
    {2, 0, 10, 2, "a frame in region 2"},
  };
  uint64_t token = 30;
  for (auto& c : cases) {
    auto seg = shared_segment::create(100, token);
    BOOST_REQUIRE(seg);
    int fd = raw_connect((*l)->port());
    raw_hello(fd, token, (*seg)->offer());
    auto link = (*l)->accept(token++, link_clock::now() + 2s);
    BOOST_REQUIRE(link);
    BOOST_REQUIRE(!(*link)->map_shared(100));
    inbox box;
    box.attach(**link);
    auto& up = (*seg)->up();
    up.kind = c.kind;
    up.meta = c.meta;
    up.floats = c.floats;
    up.region = c.region;
    up.posted.store(1);
    wake(up.posted);
    BOOST_TEST(box.wait_closed()
               == "tensor link to " + (*link)->peer() + ": " + c.why);
    ::close(fd);
  }
  // A frame on the socket after the switch.
  auto seg = shared_segment::create(100, token);
  BOOST_REQUIRE(seg);
  int fd = raw_connect((*l)->port());
  raw_hello(fd, token, (*seg)->offer());
  auto link = (*l)->accept(token, link_clock::now() + 2s);
  BOOST_REQUIRE(link);
  BOOST_REQUIRE(!(*link)->map_shared(100));
  inbox box;
  box.attach(**link);
  raw_write(fd, "x", 1); // not even a whole frame
  BOOST_TEST(box.wait_closed()
             == "tensor link to " + (*link)->peer()
               + ": bytes on the socket after the switch to shared memory");
  ::close(fd);
}

// A worker's end takes the switch only with a segment of its own, and
// frees its segment once the master sends on the socket instead.
BOOST_AUTO_TEST_CASE(a_switch_needs_a_segment) {
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  BOOST_REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  BOOST_REQUIRE(::listen(lfd, 4) == 0);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto port = ntohs(addr.sin_port);
  uint32_t switch_head[8] = {0x464c4d44, 3, 0, 0, 0, 0, 0, 0};
  uint32_t params_head[8] = {0x464c4d44, 1, 0, 0, 0, 0, 0, 0};
  for (size_t offer : {size_t{0}, size_t{10}}) {
    inbox box; // outlives the link, whose reader reports to it
    auto c = tensor_link::connect("127.0.0.1", port, link_hello{version, 1},
                                  2000ms, offer);
    BOOST_REQUIRE(c);
    int fd = ::accept(lfd, nullptr, nullptr);
    BOOST_REQUIRE(fd >= 0);
    box.attach(**c);
    if (offer == 0) {
      raw_write(fd, switch_head, sizeof(switch_head));
      BOOST_TEST(box.wait_closed()
                 == "tensor link to " + (*c)->peer()
                   + ": an unexpected switch to shared memory");
    } else {
      // A frame on the socket: the master did not map it (another host).
      raw_write(fd, params_head, sizeof(params_head));
      BOOST_REQUIRE(box.wait_frames(1));
      BOOST_TEST(!(*c)->shared());
      BOOST_TEST((*c)->region().size() == 0u);
      // A switch after that is refused too.
      raw_write(fd, switch_head, sizeof(switch_head));
      BOOST_TEST(box.wait_closed()
                 == "tensor link to " + (*c)->peer()
                   + ": an unexpected switch to shared memory");
    }
    ::close(fd);
  }
  ::close(lfd);
}

// A region stays the receiver's while a copy of its tensor lives: with both
// regions held, the next frame waits until one is released.
BOOST_AUTO_TEST_CASE(held_regions_are_not_overwritten) {
  shared_pair p{100};
  p.at_worker.copy = false; // keep the views
  p.at_worker.attach(*p.worker);
  for (int i = 0; i < 3; ++i)
    p.master->send(frame_kind::params, {}, iota_floats(100, 10.0f * i));
  BOOST_REQUIRE(p.at_worker.wait_frames(2));
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard<std::mutex> guard{p.at_worker.mtx};
    BOOST_TEST(p.at_worker.frames.size() == 2u); // the third waits
    BOOST_TEST(to_vector(p.at_worker.frames[0].values)
               == to_vector(iota_floats(100, 0.0f)));
    BOOST_TEST(to_vector(p.at_worker.frames[1].values)
               == to_vector(iota_floats(100, 10.0f)));
    p.at_worker.frames[0].values = tensor{}; // releases region 0
  }
  BOOST_REQUIRE(p.at_worker.wait_frames(3));
  BOOST_TEST(to_vector(p.at_worker.frames[2].values)
             == to_vector(iota_floats(100, 20.0f)));
  BOOST_TEST(to_vector(p.at_worker.frames[1].values)
             == to_vector(iota_floats(100, 10.0f)));
}

// A frame posted right before the peer closes is delivered before the
// close.
BOOST_AUTO_TEST_CASE(the_last_frame_before_a_close_arrives) {
  for (int round = 0; round < 20; ++round) {
    shared_pair p{10};
    p.at_master.attach(*p.master);
    p.at_worker.attach(*p.worker);
    p.master->send(frame_kind::params, {}, iota_floats(10, 0));
    BOOST_REQUIRE(p.at_worker.wait_frames(1));
    p.worker->send(frame_kind::gradient, {'g'}, iota_floats(10, 1));
    p.worker.reset();
    BOOST_REQUIRE(p.at_master.wait_frames(1));
    BOOST_TEST(p.at_master.frames[0].meta == std::vector<char>{'g'});
    BOOST_TEST(p.at_master.wait_closed()
               == "tensor link to " + p.master->peer()
                 + ": closed by the peer");
  }
}

// A region handed out to compute in is the caller's while it holds the
// tensor: frames copied meanwhile go elsewhere, or wait.
BOOST_AUTO_TEST_CASE(regions_lent_for_computing_are_not_used_by_others) {
  shared_pair p{100};
  p.at_master.attach(*p.master);
  p.at_worker.attach(*p.worker);
  p.master->send(frame_kind::params, {}, iota_floats(100, 0));
  BOOST_REQUIRE(p.at_worker.wait_frames(1)); // the worker's end switched
  auto r1 = p.worker->region();
  auto r2 = p.worker->region();
  BOOST_REQUIRE(r1.size() == 100u);
  BOOST_REQUIRE(r2.size() == 100u);
  BOOST_TEST(r1.begin() != r2.begin());
  BOOST_TEST(p.worker->region().size() == 0u); // both lent
  auto* at = const_cast<float*>(r1.begin());
  std::fill(at, at + 100, 0.25f);
  // A copied frame finds no free region and waits; the computed one after
  // it keeps its place in the queue.
  p.worker->send(frame_kind::gradient, {'c'}, iota_floats(100, 7));
  p.worker->send(frame_kind::gradient, {'r'}, r1);
  r1 = tensor{};
  std::this_thread::sleep_for(50ms);
  BOOST_TEST(!p.at_master.is_closed());
  BOOST_TEST(p.at_master.frames_now() == 0u);
  r2 = tensor{}; // the copied frame may use this region now
  BOOST_REQUIRE(p.at_master.wait_frames(2));
  auto c = p.at_master.frame(0);
  auto r = p.at_master.frame(1);
  BOOST_TEST(c.meta == std::vector<char>{'c'});
  BOOST_TEST(to_vector(c.values) == to_vector(iota_floats(100, 7)));
  BOOST_TEST(r.meta == std::vector<char>{'r'});
  BOOST_TEST(to_vector(r.values) == std::vector<float>(100, 0.25f));
}

// A frame said to be due is polled for; frames that come while the reader
// polls, after the poll gave up, or with no poll at all all arrive, in
// order.
BOOST_AUTO_TEST_CASE(frames_said_to_be_due_arrive_in_every_case) {
  shared_pair p{100};
  p.at_worker.attach(*p.worker);
  p.master->send(frame_kind::params, {}, iota_floats(100, 0));
  BOOST_REQUIRE(p.at_worker.wait_frames(1)); // the worker's end switched
  const std::chrono::microseconds gaps[] = {
    0us, 50us, tensor_link::poll_budget + 5ms, 0us};
  for (size_t i = 0; i < std::size(gaps); ++i) {
    if (i < 3)
      p.worker->expect_frame();
    std::this_thread::sleep_for(gaps[i]);
    p.master->send(frame_kind::params, {static_cast<char>('a' + i)},
                   iota_floats(100, static_cast<float>(i + 1)));
    BOOST_REQUIRE(p.at_worker.wait_frames(i + 2));
    auto got = p.at_worker.frame(i + 1);
    BOOST_TEST(got.meta == std::vector<char>{static_cast<char>('a' + i)});
    BOOST_TEST(to_vector(got.values)
               == to_vector(iota_floats(100, static_cast<float>(i + 1))));
  }
  BOOST_TEST(!p.at_worker.is_closed());
  // Over the socket it changes nothing.
  link_pair q;
  inbox at_b;
  at_b.attach(*q.b);
  q.b->expect_frame();
  q.a->send(frame_kind::params, {'s'}, iota_floats(10, 0));
  BOOST_REQUIRE(at_b.wait_frames(1));
  BOOST_TEST(at_b.frame(0).meta == std::vector<char>{'s'});
}

// A handler may let go of the link's last owner, as an actor run on the
// reader thread does when it ends: the link then closes on that thread,
// without a close report and without waiting for itself; the peer sees it
// closed.
BOOST_AUTO_TEST_CASE(a_handler_may_drop_the_last_owner) {
  for (auto shared : {false, true}) {
    BOOST_TEST_CONTEXT("shared memory: " << shared) {
      shared_pair p{10};
      std::shared_ptr<tensor_link> master{std::move(p.master)};
      if (!shared) {
        // A pair whose frames stay on the socket.
        link_pair q;
        p.worker = std::move(q.a);
        master = std::shared_ptr<tensor_link>{std::move(q.b)};
        p.listener = std::move(q.listener);
      }
      std::mutex mtx;
      std::condition_variable cv;
      bool dropped = false;
      bool closed = false;
      master->start(
        100,
        [&](link_frame&&) {
          std::lock_guard<std::mutex> guard{mtx};
          master.reset(); // the last owner
          dropped = true;
          cv.notify_all();
        },
        [&](const error&) {
          std::lock_guard<std::mutex> guard{mtx};
          closed = true;
          cv.notify_all();
        });
      p.at_worker.attach(*p.worker);
      // A step first: it also switches the worker's end to the segment.
      master->send(frame_kind::params, {}, iota_floats(10, 0));
      BOOST_REQUIRE(p.at_worker.wait_frames(1));
      p.worker->send(frame_kind::gradient, {'g'}, iota_floats(10, 1));
      {
        std::unique_lock<std::mutex> guard{mtx};
        BOOST_REQUIRE(cv.wait_for(guard, 10s, [&] { return dropped; }));
      }
      BOOST_TEST(p.at_worker.wait_closed().find("closed by the peer")
                 != std::string::npos);
      std::this_thread::sleep_for(20ms);
      std::lock_guard<std::mutex> guard{mtx};
      BOOST_TEST(!closed);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(futex_words)

// The counted wake skips the system call when nobody sleeps; a lost wake
// would keep the sleeper for its whole timeout. The change comes at varied
// moments: before the sleeper counts itself, while it sleeps, in between.
BOOST_AUTO_TEST_CASE(a_counted_wake_reaches_every_sleeper) {
  using namespace std::chrono;
  std::atomic<uint32_t> word{0};
  std::atomic<uint32_t> sleepers{0};
  for (uint32_t round = 0; round < 300; ++round) {
    auto t0 = steady_clock::now();
    std::thread sleeper{[&] {
      while (word.load(std::memory_order_acquire) == round)
        wait(word, sleepers, round, seconds(3));
    }};
    if (round % 3 != 0)
      std::this_thread::sleep_for(microseconds(round % 7 * 100));
    word.store(round + 1, std::memory_order_release);
    wake(word, sleepers);
    sleeper.join();
    BOOST_REQUIRE_MESSAGE(steady_clock::now() - t0 < seconds(2),
                          "round " << round << ": the wake was lost");
  }
  BOOST_CHECK_EQUAL(sleepers.load(), 0u);
}

BOOST_AUTO_TEST_SUITE_END()
