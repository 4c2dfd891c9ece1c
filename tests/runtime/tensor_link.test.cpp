#include "runtime/tensor_link.hpp"

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <numeric>
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
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<link_frame> frames;
  std::vector<std::string> closed;

  void attach(tensor_link& link) {
    link.start(
      max_floats,
      [this](link_frame&& f) {
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

/// A raw socket connected to `port` on 127.0.0.1 (-1 on failure).
int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
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
  BOOST_TEST(at_b.closed.empty());
}

BOOST_AUTO_TEST_CASE(both_sides_send_large_frames_at_once) {
  // 16 MB each way, queued before either side reads: no deadlock.
  link_pair p;
  auto big = iota_floats(1 << 20, 1.0f);
  for (int i = 0; i < 4; ++i) {
    p.a->send(frame_kind::params, {}, big);
    p.b->send(frame_kind::gradient, {}, big);
  }
  inbox at_a;
  inbox at_b;
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
  std::lock_guard<std::mutex> guard{at_b.mtx};
  BOOST_TEST(at_b.closed.empty());
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
  inbox at_worker;
  at_worker.attach(worker);
  inbox at_master;
  at_master.attach(master);
  for (int i = 0; i < 10; ++i) {
    auto params = iota_floats(1000, 1.0f * i);
    master.send(frame_kind::params, {'p'}, params);
    BOOST_REQUIRE(at_worker.wait_frames(static_cast<size_t>(i) + 1));
    BOOST_TEST(worker.shared());
    auto& got = at_worker.frames.back();
    BOOST_TEST(to_vector(got.values) == to_vector(params));
    BOOST_TEST(got.meta == std::vector<char>{'p'});
    auto grad = iota_floats(900 + i, -1.0f * i);
    worker.send(frame_kind::gradient, {'g'}, grad);
    BOOST_REQUIRE(at_master.wait_frames(static_cast<size_t>(i) + 1));
    BOOST_TEST(to_vector(at_master.frames.back().values) == to_vector(grad));
  }
  // A gradient computed in the segment travels without a copy.
  auto* direct = worker.region(frame_kind::gradient);
  BOOST_REQUIRE(direct != nullptr);
  std::fill(direct, direct + 1000, 0.25f);
  worker.send(frame_kind::gradient, {}, tensor{nullptr, direct, 1000});
  BOOST_REQUIRE(at_master.wait_frames(11));
  BOOST_TEST(to_vector(at_master.frames.back().values)
             == std::vector<float>(1000, 0.25f));
  BOOST_TEST(at_worker.closed.empty());
  BOOST_TEST(at_master.closed.empty());
  // A tensor larger than the segment breaks the link, on both ends.
  master.send(frame_kind::params, {}, iota_floats(5000, 3.0f));
  BOOST_TEST(at_master.wait_closed()
             == "tensor link to " + master.peer()
               + ": a frame of 0 metadata bytes and 5000 floats does not fit "
                 "the shared segment");
  BOOST_TEST(at_worker.wait_closed()
             == "tensor link to " + worker.peer() + ": closed by the peer");
}

BOOST_AUTO_TEST_CASE(frames_wait_for_a_full_mailbox_and_keep_their_order) {
  shared_pair p{10};
  inbox at_master;
  at_master.attach(*p.master);
  // Five frames before the worker's end reads any: one in the mailbox, the
  // others queued until the worker takes it.
  for (char i = 0; i < 5; ++i)
    p.master->send(frame_kind::params, {i}, iota_floats(10, i));
  inbox at_worker;
  at_worker.attach(*p.worker);
  BOOST_REQUIRE(at_worker.wait_frames(5));
  for (char i = 0; i < 5; ++i)
    BOOST_TEST(at_worker.frames[i].meta == std::vector<char>{i});
  BOOST_TEST(to_vector(at_worker.frames[4].values)
             == to_vector(iota_floats(10, 4)));
  // The worker's end goes away: the master's end notices at once (it
  // waits on the mailbox and looks at the socket every 10 ms).
  auto t0 = link_clock::now();
  p.worker.reset();
  BOOST_TEST(at_master.wait_closed()
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
  // No offer (a peer on another host offers what cannot be opened here).
  BOOST_TEST(map_error(listener, 1, {}, 1000)
             == "shared memory at /proc/0/fd/-1: no segment offered");
  BOOST_TEST(map_error(listener, 2, {pid, 999999, 5}, 1000)
             == path(999999) + "No such file or directory");
  // A real segment, but for another model size, token or nonce.
  auto seg = shared_segment::create(1000, 3);
  BOOST_REQUIRE(seg);
  auto offer = (*seg)->offer();
  BOOST_TEST(map_error(listener, 3, offer, 2000)
             == path(offer.fd) + "not a sealed segment of 2125824 bytes");
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
  BOOST_REQUIRE(::ftruncate(unsealed, 2117632) == 0);
  BOOST_TEST(map_error(listener, 5, {pid, unsealed, 7}, 1000)
             == path(unsealed) + "not a sealed segment of 2117632 bytes");
  ::close(unsealed);
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

BOOST_AUTO_TEST_SUITE_END()
