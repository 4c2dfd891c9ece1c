#pragma once

// A tensor link: a plain TCP connection between the master and a worker
// process that carries the steps (plan and parameters) down and the
// gradients up, beside the CAF connection that carries everything else.
// CAF 0.17's network layer takes 0.7-0.8 ms to move a 0.4 MB message and
// adds two thread hand-offs per message; a socket moves it in a twentieth
// of that.
//
// A frame is a 32-byte header (magic, kind, metadata length, flags, float
// count) followed by the metadata (bytes the caller encodes, e.g. a
// serialized step plan) and the floats as raw bytes, host byte order.
//
// When both ends run on one host, the floats go through a shared memory
// segment instead (see shared_segment.hpp) and the frame only says so: the
// connecting side offers its segment in the greeting, and the accepting side
// maps it if it can (map_shared).
//
// Sending never blocks: the bytes that do not fit the socket at once are
// written by a thread of the link, so two processes that send to each other
// while each is busy cannot deadlock. Receiving runs on a thread of the
// link too, which hands each frame to a callback.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/shared_segment.hpp"
#include "runtime/tensor.hpp"
#include "runtime/tensor_pool.hpp"

namespace dml {

/// What a frame carries.
enum class frame_kind : uint32_t {
  /// Master to worker: a step plan and the parameters.
  params = 1,
  /// Worker to master: a gradient sum and its header.
  gradient = 2,
  /// Master to worker, on the socket: the frames travel in the shared
  /// segment's mailboxes from now on (never handed to a frame handler).
  shared = 3,
};

using link_clock = std::chrono::steady_clock;

/// The first bytes a connecting side sends: who it is.
struct link_hello {
  /// The wire protocol version of the sender.
  uint32_t protocol = 0;
  /// The token the accepting side handed out for this connection.
  uint64_t token = 0;
};

/// A received frame.
struct link_frame {
  frame_kind kind = frame_kind::params;
  std::vector<char> meta;
  /// The floats: a buffer of the link's own, or (shared memory) a region of
  /// the segment, which the peer does not write again before the last copy
  /// of this tensor is gone.
  tensor values;
};

/// One end of a connected tensor link. `send` may be called from any thread.
class tensor_link : public std::enable_shared_from_this<tensor_link> {
public:
  /// How long a reader polls for a frame said to be due (`expect_frame`)
  /// before it sleeps again.
  static constexpr std::chrono::microseconds poll_budget{300};

  using frame_handler = std::function<void(link_frame&&)>;
  using close_handler = std::function<void(const error&)>;

  /// Takes ownership of the connected socket `fd`; `peer` names the other
  /// end in error messages, `accepting` tells the listener's end from the
  /// connecting one, `token` is the link's, `offer` the segment the peer
  /// offers (if any) and `own` the segment this side offered (if any).
  tensor_link(int fd, std::string peer, bool accepting, uint64_t token = 0,
              segment_offer offer = {},
              std::unique_ptr<shared_segment> own = nullptr);

  /// Closes the connection; the close handler is not called.
  ~tensor_link();

  tensor_link(const tensor_link&) = delete;
  tensor_link& operator=(const tensor_link&) = delete;

  /// Connects to `host:port` within `timeout` and presents `hello`. With
  /// `offer_floats` > 0 it also offers a shared memory segment for tensors
  /// of that many floats, which the peer uses if it runs on this host.
  static expected<std::unique_ptr<tensor_link>>
  connect(const std::string& host, uint16_t port, link_hello hello,
          std::chrono::milliseconds timeout, size_t offer_floats = 0);

  /// Maps the segment the peer offered, for tensors of exactly `floats`
  /// floats, and sends all further frames through it (the peer switches
  /// too). Call before `start` and before sending anything.
  /// Returns why not if it cannot (the peer runs on another host, offered
  /// none, or offered a bad one); the link then keeps using the socket. If
  /// the switch itself cannot be sent, the link is broken as well.
  error map_shared(size_t floats);

  /// Returns whether the frames travel through shared memory (on the
  /// connecting side: once the accepting side said so).
  bool shared() const noexcept {
    return shared_.load(std::memory_order_acquire);
  }

  /// Starts receiving: calls `on_frame` for every frame, on the link's
  /// reader thread, and `on_close` once when the connection breaks or a
  /// malformed frame arrives (more than `max_floats` floats or 1 MB of
  /// metadata, or one `on_frame` throws on). Call once.
  ///
  /// A link owned by a `shared_ptr` stays alive while `on_frame` runs, so
  /// the handler may drop the link's last owner (e.g. run an actor that lets
  /// go of it): the link then closes once the handler has returned, on the
  /// reader thread, without calling `on_close`.
  void start(size_t max_floats, frame_handler on_frame, close_handler on_close);

  /// Says that the peer's next frame is due soon. Over shared memory the
  /// reader then polls the mailbox for it, for up to `poll_budget` and
  /// handing its core to any other thread that wants it meanwhile
  /// (`sched_yield`), before it sleeps on the futex again. A thread woken
  /// from the futex starts 20-60 us later on a virtual machine whose idle
  /// cores halt; a polling one sees the frame at once. Nothing happens over
  /// the socket. May be called from any thread.
  void expect_frame();

  /// Queues a frame and returns at once. `values` must not change
  /// afterwards (it is shared, not copied); an empty tensor sends no
  /// floats. Over shared memory the floats are copied into a free region of
  /// the segment, unless they are in one already (see `region`).
  void send(frame_kind kind, std::vector<char> meta, tensor values);

  /// Returns a region of the segment that the peer does not read now, to
  /// compute the next frame's floats in place and then send that tensor (the
  /// one exception to tensors being immutable: write through `begin()`
  /// before sending). No other frame uses it, and it is not handed out
  /// again, while a copy of the tensor lives. Empty unless the frames
  /// travel through shared memory, or if both regions are in use.
  tensor region();

  /// Returns the other end's name, e.g. `"127.0.0.1:40112"`.
  const std::string& peer() const noexcept {
    return peer_;
  }

private:
  struct pending {
    uint32_t kind = 0;
    /// Whether it goes to the mailbox (decided when it was sent).
    bool shared = false;
    std::vector<char> head; // header and metadata
    tensor body;
    size_t done = 0; // bytes of head + body written
  };

  /// Writes as much of `p` as the socket takes now; returns whether all.
  bool write_some(pending& p);

  /// The mailboxes this side posts to and reads from.
  mailbox& outbox() noexcept;
  mailbox& inbox() noexcept;

  /// Returns an outbox region neither lent nor read by the peer, or -1.
  int free_region() noexcept;

  /// Returns the free region for `p`'s floats (the one they are in, if
  /// they were computed in place), or -1 if there is none now.
  int region_for(const pending& p) noexcept;

  /// Puts `p` into the outbox and wakes the peer; returns false if the peer
  /// has not taken the last frame or released a region yet.
  bool try_post(pending& p);

  /// Waits (at most 10 ms, without the lock) for what keeps the front frame
  /// from being posted.
  void wait_outbox(std::unique_lock<std::mutex>& guard);

  /// Breaks the link for a reason of this side's.
  void break_locally(std::string why);

  void write_loop();

  error bad(const std::string& what) const;

  /// Refuses a step frame of another kind, or with more than `max_meta`
  /// metadata bytes or `most_floats` floats (from the socket or the inbox).
  error check_frame(uint32_t kind, uint64_t meta, uint64_t floats,
                    uint64_t most_floats) const;

  /// Reads the next frame from the socket into `f`.
  error socket_frame(link_frame& f);

  /// Reads the next frame from the inbox (or the socket) into `f`.
  error mailbox_frame(link_frame& f);

  /// Takes the frame posted in the inbox.
  error take_frame(link_frame& f);

  /// Polls the inbox for a frame, for at most `poll_budget`.
  void poll_inbox();

  void read_loop(std::weak_ptr<tensor_link> owner,
                 std::shared_ptr<std::atomic<bool>> gone,
                 frame_handler on_frame, close_handler on_close);

  int fd_;
  std::string peer_;
  bool accepting_;
  uint64_t token_;
  segment_offer offer_;
  std::shared_ptr<shared_segment> segment_;
  std::atomic<bool> shared_{false};
  /// Set by `expect_frame`, taken by the reader.
  std::atomic<bool> expecting_{false};
  /// Set once the link is being destroyed; shared with the reader thread,
  /// which may outlive the link (see `start`).
  std::shared_ptr<std::atomic<bool>>
    gone_ = std::make_shared<std::atomic<bool>>(false);
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<pending> queue_;
  bool closing_ = false;
  bool broken_ = false;
  std::string local_why_;
  /// Frames posted to the outbox (under the mutex) and taken from the inbox
  /// (reader thread only).
  uint32_t posted_ = 0;
  uint32_t taken_ = 0;
  /// The outbox region of the last frame posted (under the mutex).
  uint32_t last_region_ = 1;
  /// Outbox regions handed out by `region` and still referred to (shared
  /// with the tensors' deleters, which may outlive the link).
  std::shared_ptr<std::array<std::atomic<bool>, 2>>
    lent_ = std::make_shared<std::array<std::atomic<bool>, 2>>();
  /// What kept the last frame from being posted, and its value then
  /// (under the mutex).
  std::atomic<uint32_t>* blocker_ = nullptr;
  std::atomic<uint32_t>* blocker_sleepers_ = nullptr;
  uint32_t blocker_seen_ = 0;
  size_t max_floats_ = 0;
  /// Buffers of received frames (reader thread only).
  tensor_pool buffers_{4};
  std::thread writer_;
  std::thread reader_;
};

/// The accepting side of tensor links: a listening socket plus the
/// connections that presented a token not yet asked for.
class link_listener {
public:
  ~link_listener();

  link_listener(const link_listener&) = delete;
  link_listener& operator=(const link_listener&) = delete;

  /// Listens on `host` (`"0.0.0.0"`: every interface) and `port` (0: a free
  /// one) for peers speaking `protocol`.
  static expected<std::unique_ptr<link_listener>>
  open(const std::string& host, uint16_t port, uint32_t protocol);

  /// Returns the port it listens on.
  uint16_t port() const noexcept {
    return port_;
  }

  /// Returns the connection that presents `token`, accepting connections
  /// until it comes or `deadline` passes. Connections with other tokens are
  /// kept for later calls (at most 256); strangers are closed (each may take
  /// 200 ms to show it is one).
  expected<std::unique_ptr<tensor_link>>
  accept(uint64_t token, link_clock::time_point deadline);

  /// Closes a connection kept for `token`, if any (its worker is gone).
  void forget(uint64_t token);

private:
  link_listener(int fd, uint16_t port, uint32_t protocol)
    : fd_(fd), port_(port), protocol_(protocol) {
    // nop
  }

  int fd_;
  uint16_t port_;
  uint32_t protocol_;
  /// A connection that greeted with a token not yet asked for.
  struct early {
    int fd;
    std::string peer;
    segment_offer offer;
  };

  std::map<uint64_t, early> early_;
};

} // namespace dml
