// The ceiling for the parameter/gradient exchange: how fast a plain TCP
// connection on 127.0.0.1 moves messages of a given size, request and reply
// (one message each way, like a step's parameters and gradient).
//
// Usage: dml-bench-tcp-copy BYTES [ROUNDS]
// Prints: bytes, rounds, seconds, MB/s (both directions counted), round
// trips per second.

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    auto k = ::send(fd, p, n, 0);
    if (k <= 0)
      return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool recv_all(int fd, char* p, size_t n) {
  while (n > 0) {
    auto k = ::recv(fd, p, n, 0);
    if (k <= 0)
      return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

constexpr const char* usage = "usage: dml-bench-tcp-copy BYTES [ROUNDS]";

/// Reads `text` as a whole number from 1 to `max`; false if it is none.
bool in_range(const char* text, uint64_t max, uint64_t& out) {
  auto* last = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, last, out);
  return ec == std::errc{} && ptr == last && out >= 1 && out <= max;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2
      && (std::strcmp(argv[1], "--help") == 0
          || std::strcmp(argv[1], "-h") == 0)) {
    std::printf("%s\n", usage);
    return 0;
  }
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "error: %s (%s)\n",
                 argc < 2 ? "no BYTES" : "too many arguments", usage);
    return 2;
  }
  // Up to 1 GiB per message, up to a million round trips.
  uint64_t bytes = 0;
  uint64_t rounds = 200;
  if (!in_range(argv[1], uint64_t{1} << 30, bytes)) {
    std::fprintf(stderr,
                 "error: BYTES: '%s' is no number from 1 to %llu (%s)\n",
                 argv[1], 1ULL << 30, usage);
    return 2;
  }
  if (argc > 2 && !in_range(argv[2], 1000000, rounds)) {
    std::fprintf(stderr,
                 "error: ROUNDS: '%s' is no number from 1 to 1000000 (%s)\n",
                 argv[2], usage);
    return 2;
  }
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::listen(lfd, 1) != 0
      || ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("listen");
    return 1;
  }
  std::thread echo{[&] {
    int fd = ::accept(lfd, nullptr, nullptr);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::vector<char> buf(bytes);
    for (uint64_t i = 0; i < rounds; ++i)
      if (!recv_all(fd, buf.data(), bytes) || !send_all(fd, buf.data(), bytes))
        break;
    ::close(fd);
  }};
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("connect");
    return 1;
  }
  std::vector<char> out(bytes, 'x');
  std::vector<char> in(bytes);
  auto t0 = std::chrono::steady_clock::now();
  bool ok = true;
  for (uint64_t i = 0; ok && i < rounds; ++i)
    ok = send_all(fd, out.data(), bytes) && recv_all(fd, in.data(), bytes);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                            - t0)
                .count();
  ::close(fd);
  echo.join();
  ::close(lfd);
  if (!ok) {
    std::fprintf(stderr, "error: the loopback connection broke off\n");
    return 1;
  }
  std::printf("bytes %llu rounds %llu seconds %.3f MB/s %.1f round_trips/s "
              "%.1f\n",
              static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(rounds), secs,
              2.0 * static_cast<double>(bytes) * static_cast<double>(rounds)
                / secs / 1e6,
              static_cast<double>(rounds) / secs);
  return 0;
}
