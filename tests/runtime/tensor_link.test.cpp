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

std::shared_ptr<const std::vector<float>> iota_floats(size_t n, float first) {
  auto xs = std::make_shared<std::vector<float>>(n);
  std::iota(xs->begin(), xs->end(), first);
  return xs;
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

} // namespace

BOOST_AUTO_TEST_SUITE(tensor_links)

BOOST_AUTO_TEST_CASE(frames_arrive_in_order_bit_exact) {
  link_pair p;
  inbox at_b;
  at_b.attach(*p.b);
  std::vector<std::shared_ptr<const std::vector<float>>> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(iota_floats(1000 + i, 0.5f * i));
    p.a->send(i % 2 ? frame_kind::gradient : frame_kind::params,
              std::vector<char>(static_cast<size_t>(i), static_cast<char>(i)),
              sent.back());
  }
  p.a->send(frame_kind::params, {'x'}, nullptr); // metadata only
  BOOST_REQUIRE(at_b.wait_frames(21));
  for (int i = 0; i < 20; ++i) {
    auto& f = at_b.frames[i];
    BOOST_TEST((f.kind == (i % 2 ? frame_kind::gradient : frame_kind::params)));
    BOOST_TEST(f.meta.size() == static_cast<size_t>(i));
    BOOST_REQUIRE(f.values->size() == sent[i]->size());
    BOOST_TEST(std::memcmp(f.values->data(), sent[i]->data(),
                           sent[i]->size() * sizeof(float))
               == 0);
  }
  BOOST_TEST(at_b.frames[20].values->empty());
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
  BOOST_TEST(*at_a.frames[3].values == *big);
  BOOST_TEST(*at_b.frames[3].values == *big);
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
    uint32_t magic = 0x4c4c4d44;
    char buf[16];
    std::memcpy(buf, &magic, 4);
    std::memcpy(buf + 4, &version, 4);
    std::memcpy(buf + 8, &token, 8);
    raw_write(fd, buf, sizeof(buf));
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
  (*one)->send(frame_kind::gradient, {'1'}, nullptr);
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

BOOST_AUTO_TEST_SUITE_END()
