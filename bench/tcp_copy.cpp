// The ceiling for the parameter/gradient exchange: how fast a plain TCP
// connection on 127.0.0.1 moves messages of a given size, request and reply
// (one message each way, like a step's parameters and gradient).
//
// Usage: dml-bench-tcp-copy BYTES [ROUNDS]
// Prints: bytes, rounds, seconds, MB/s (both directions counted), round
// trips per second.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: dml-bench-tcp-copy BYTES [ROUNDS]\n");
    return 2;
  }
  size_t bytes = std::strtoull(argv[1], nullptr, 10);
  int rounds = argc > 2 ? std::atoi(argv[2]) : 200;
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
    for (int i = 0; i < rounds; ++i)
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
  for (int i = 0; i < rounds; ++i)
    if (!send_all(fd, out.data(), bytes) || !recv_all(fd, in.data(), bytes))
      return 1;
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                            - t0)
                .count();
  echo.join();
  ::close(fd);
  ::close(lfd);
  std::printf("bytes %zu rounds %d seconds %.3f MB/s %.1f round_trips/s "
              "%.1f\n",
              bytes, rounds, secs, 2.0 * bytes * rounds / secs / 1e6,
              rounds / secs);
  return 0;
}
