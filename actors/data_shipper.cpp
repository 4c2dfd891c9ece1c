#include "actors/data_shipper.hpp"

#include <algorithm>

#include <caf/all.hpp>

namespace dml {

data_chunk make_chunk(const dataset& data, uint32_t shard, uint64_t shard_begin,
                      uint64_t first, uint64_t n) {
  auto rows = copy_rows(data, shard_begin + first, n);
  data_chunk c;
  c.shard = shard;
  c.first = first;
  c.rows = n;
  c.cols = rows.cols;
  c.sparse = rows.sparse;
  c.targets = tensor{std::move(rows.targets)};
  if (rows.sparse) {
    c.indptr = std::move(rows.csr.indptr);
    c.indices = std::move(rows.csr.indices);
    c.values = tensor{std::move(rows.csr.values)};
  } else {
    c.dense = tensor{std::move(rows.dense)};
  }
  return c;
}

dataset chunk_rows(const data_chunk& c) {
  dataset d;
  d.rows = c.rows;
  d.cols = c.cols;
  d.sparse = c.sparse;
  if (c.targets)
    d.targets = to_vector(c.targets);
  if (c.sparse) {
    d.csr.indptr = c.indptr;
    d.csr.indices = c.indices;
    if (c.values)
      d.csr.values = to_vector(c.values);
  } else if (c.dense) {
    d.dense = to_vector(c.dense);
  }
  return d;
}

uint64_t chunk_rows_for(const dataset& data, uint64_t bytes) {
  uint64_t row_bytes = sizeof(float);
  if (data.sparse && data.rows > 0)
    row_bytes += (data.csr.indices.size() / data.rows + 1)
      * (sizeof(int32_t) + sizeof(float));
  else
    row_bytes += data.cols * sizeof(float);
  return std::max<uint64_t>(1, bytes / row_bytes);
}

namespace {

using self_ptr = caf::stateful_actor<data_shipper_state>*;

void pump(self_ptr self) {
  auto& st = self->state;
  while (st.in_flight < st.window && !st.queue.empty()) {
    auto job = st.queue.front();
    st.queue.pop_front();
    ++st.in_flight;
    auto chunk = make_chunk(*st.data, job.shard, job.begin, job.first,
                            job.rows);
    self->request(st.target, st.timeout, data_atom_v, std::move(chunk))
      .then(
        [=](bool) {
          auto& st = self->state;
          --st.in_flight;
          if (st.queue.empty() && st.in_flight == 0)
            self->quit();
          else
            pump(self);
        },
        [=](caf::error& err) { self->quit(std::move(err)); });
  }
  if (st.queue.empty() && st.in_flight == 0)
    self->quit();
}

} // namespace

caf::behavior data_shipper(caf::stateful_actor<data_shipper_state>* self,
                           std::shared_ptr<const dataset> data,
                           caf::actor target, std::vector<shipment> work,
                           uint64_t chunk_bytes, uint32_t window,
                           std::chrono::milliseconds timeout) {
  auto& st = self->state;
  st.data = std::move(data);
  st.target = std::move(target);
  st.window = std::max(1u, window);
  st.timeout = timeout;
  auto per_chunk = chunk_rows_for(*st.data, chunk_bytes);
  for (auto& w : work)
    for (uint64_t off = 0; off < w.rows; off += per_chunk)
      st.queue.push_back(shipment{w.shard, w.begin, w.first + off,
                                  std::min(per_chunk, w.rows - off)});
  pump(self);
  return {
    [](stop_atom) {
      // nop: the shipper ends by itself
    },
  };
}

} // namespace dml
