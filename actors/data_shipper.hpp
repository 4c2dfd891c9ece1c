#pragma once

#include <cstdint>
#include <deque>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "runtime/dataset.hpp"
#include "runtime/shard.hpp"

namespace dml {

/// Returns rows `[first, first + n)` of `data` (the rows of shard `shard`
/// starting at its row `first - shard_begin`) as a chunk message.
data_chunk make_chunk(const dataset& data, uint32_t shard, uint64_t shard_begin,
                      uint64_t first, uint64_t n);

/// Returns the rows a chunk carries as a dataset.
dataset chunk_rows(const data_chunk& chunk);

/// Rows per chunk so that one chunk carries about `bytes` bytes.
uint64_t chunk_rows_for(const dataset& data, uint64_t bytes);

/// What a shipper sends: consecutive rows of shards, in order.
struct shipment {
  uint32_t shard = 0;
  uint64_t begin = 0; // first row of the shard in the data
  uint64_t first = 0; // first row to ship, within the shard
  uint64_t rows = 0;
};

/// State of a data shipper.
struct data_shipper_state {
  std::shared_ptr<const dataset> data;
  caf::actor target;
  std::deque<shipment> queue;
  uint32_t in_flight = 0;
  uint32_t window = 4;
  std::chrono::milliseconds timeout{30000};
  static inline const char* name = "dml.data_shipper";
};

/// Streams the rows of some shards to a worker process in chunks of about
/// `chunk_bytes`, with at most `window` chunks unacknowledged (a credit
/// window: CAF 0.17 has no flow control, so a sender that outran the network
/// would grow its buffers without bound). Quits when every chunk is
/// acknowledged, or with an error when the target refuses one or does not
/// answer within `timeout`.
caf::behavior data_shipper(caf::stateful_actor<data_shipper_state>* self,
                           std::shared_ptr<const dataset> data,
                           caf::actor target, std::vector<shipment> work,
                           uint64_t chunk_bytes, uint32_t window,
                           std::chrono::milliseconds timeout);

} // namespace dml
