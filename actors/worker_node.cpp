#include "actors/worker_node.hpp"

#include <fmt/format.h>

#include <caf/all.hpp>

#include "actors/data_shipper.hpp"
#include "actors/errors.hpp"
#include "actors/link_bridge.hpp"
#include "actors/shard_worker.hpp"
#include "runtime/job_spec.hpp"
#include "runtime/preprocess.hpp"
#include "runtime/training.hpp"

namespace dml {

namespace {

using self_ptr = caf::stateful_actor<worker_node_state>*;

/// Drops this node and its shard-worker from the actor registry. CAF 0.17
/// pins every actor whose handle crossed the network there (issues #1340,
/// #2056) and releases the pin only if the peer's proxy says goodbye, which
/// a peer that exits first never does: the detached shard-worker's thread
/// would then wait forever for its destruction and the process would hang
/// at exit.
void unpin(self_ptr self) {
  auto& reg = self->system().registry();
  if (self->state.worker)
    reg.erase(self->state.worker.id());
  reg.erase(self->id());
}

void die(self_ptr self, std::string why, errc code = errc::protocol_violation) {
  auto& st = self->state;
  if (st.failure.empty())
    st.failure = std::move(why);
  if (st.worker)
    self->send_exit(st.worker, caf::exit_reason::user_shutdown);
  unpin(self);
  self->quit(make_caf_error(code, st.failure));
}

/// Spawns the shard-worker over the rows now held and reports ready.
void finish_setup(self_ptr self) {
  auto& st = self->state;
  auto spec = job_spec_from_json(st.setup.spec_json);
  if (!spec)
    return die(self, "job spec from the master: " + spec.err().message());
  auto cfg = make_model_config(*spec, st.setup.inputs,
                               st.setup.outputs == 1 ? 0 : st.setup.outputs);
  auto m = st.opts.models->make(cfg);
  if (!m)
    return die(self, m.err().message());
  worker_setup ws;
  ws.instance = std::shared_ptr<model>{std::move(*m)};
  auto num_params = ws.instance->num_params();
  ws.seed = spec->seed;
  ws.rows = st.setup.rows;
  ws.shards = st.setup.shards;
  ws.faults = st.opts.faults;
  ws.kill_process = true;
  if (st.setup.shipped) {
    ws.partial = true;
    shard_plan geo{st.setup.rows, st.setup.shards};
    uint64_t pos = 0;
    for (auto id : st.setup.my_shards) {
      ws.placement.emplace_back(id, pos);
      pos += geo.shards()[id].size();
    }
  }
  if (st.setup.link_port != 0) {
    auto link = tensor_link::connect(st.opts.master_host, st.setup.link_port,
                                     link_hello{protocol_version,
                                                st.setup.link_token},
                                     st.opts.timeout, num_params);
    if (!link)
      return die(self,
                 link.err().message()
                   + " (open that port to the workers, or start the master "
                     "with --tensor-link off)",
                 errc::io_error);
    st.link = std::shared_ptr<tensor_link>{std::move(*link)};
    ws.link = st.link;
  }
  ws.data = std::make_shared<const dataset>(std::move(st.rows));
  st.rows = dataset{};
  // Scheduled, not detached: CAF 0.17 keeps an actor whose handle crossed
  // the network referenced after it quit (see unpin), and the thread of a
  // detached actor waits for its destruction, so the process would hang at
  // exit. The scheduler runs with --threads threads (one per core), so the
  // node's control messages still find a free thread.
  st.worker = self->spawn(shard_worker, std::move(ws));
  if (st.link)
    start_worker_side(*st.link, st.worker, self, num_params);
  self
    ->request(st.master, st.opts.timeout, ready_atom_v, st.setup.rank,
              st.data_fingerprint, st.worker)
    .then([](bool) {}, [=](caf::error& err) { die(self, describe(err)); });
}

void on_setup(self_ptr self, job_setup setup) {
  auto& st = self->state;
  st.setup = std::move(setup);
  if (st.setup.shipped) {
    shard_plan geo{st.setup.rows, st.setup.shards};
    for (auto id : st.setup.my_shards) {
      if (id >= geo.shards().size())
        return die(self,
                   fmt::format("master named shard {} of {}", id,
                               st.setup.shards));
      st.expected_rows += geo.shards()[id].size();
    }
    if (st.expected_rows == 0)
      finish_setup(self);
    else
      self->send(st.master, data_atom_v, st.setup.rank);
    return;
  }
  auto spec = job_spec_from_json(st.setup.spec_json);
  if (!spec)
    return die(self, "job spec from the master: " + spec.err().message());
  spec->train_path = st.opts.data_path;
  auto data = load_training_set(*spec);
  if (!data)
    return die(self, data.err().message());
  st.data_fingerprint = fingerprint(*data);
  if (!st.setup.mean.empty()) {
    standardizer s{st.setup.mean, st.setup.scale};
    if (auto err = apply_standardizer(s, *data))
      return die(self, err.message());
  }
  st.rows = std::move(*data);
  finish_setup(self);
}

} // namespace

caf::behavior worker_node(caf::stateful_actor<worker_node_state>* self,
                          caf::actor master, worker_node_options opts) {
  auto& st = self->state;
  st.master = master;
  st.opts = std::move(opts);
  self->monitor(master);
  self->set_down_handler([=](caf::down_msg& msg) {
    if (msg.source == self->state.master)
      die(self, "lost the master (" + describe(msg.reason) + ")",
          errc::peer_lost);
  });
  member_info me{"remote-worker", protocol_version,
                 st.opts.data_path.empty() ? "" : "own-data"};
  self->request(master, st.opts.timeout, register_atom_v, me, caf::actor{self})
    .then([=](job_setup& setup) { on_setup(self, std::move(setup)); },
          [=](caf::error& err) { die(self, describe(err)); });
  return {
    [=](data_atom, const data_chunk& chunk) -> caf::result<bool> {
      auto& st = self->state;
      auto refuse = [&](const char* what) {
        return make_caf_error(errc::protocol_violation,
                              fmt::format("worker: chunk of shard {} at row "
                                          "{} refused: {}",
                                          chunk.shard, chunk.first, what));
      };
      if (!st.setup.shipped || st.rows.rows >= st.expected_rows)
        return refuse("no rows expected");
      // Chunks arrive in order: shard by shard, rows in sequence.
      shard_plan geo{st.setup.rows, st.setup.shards};
      uint64_t pos = st.rows.rows;
      uint32_t shard = 0;
      uint64_t left = 0;
      for (auto id : st.setup.my_shards) {
        auto size = geo.shards()[id].size();
        if (pos < size) {
          shard = id;
          left = size - pos;
          break;
        }
        pos -= size;
      }
      if (chunk.shard != shard || chunk.first != pos)
        return refuse("out of order");
      if (chunk.rows == 0 || chunk.rows > left || chunk.cols != st.setup.inputs)
        return refuse("wrong shape");
      if (!append_rows(st.rows, chunk_rows(chunk)))
        return refuse("malformed rows");
      if (st.rows.rows == chunk.rows)
        reserve_rows(st.rows, st.expected_rows);
      if (st.rows.rows == st.expected_rows)
        finish_setup(self);
      return true;
    },
    [=](link_atom, const std::string& why) {
      // The master closes the link of a worker it dropped and then says
      // stop; a master that died is seen down. If neither follows, the
      // link broke on its own: leave (and rejoin).
      self->state.link_failure = why;
      self->delayed_send(self, std::chrono::seconds(2), link_atom_v);
    },
    [=](link_atom) { die(self, self->state.link_failure, errc::peer_lost); },
    [=](stop_atom) {
      auto& st = self->state;
      if (st.worker)
        self->send(st.worker, stop_atom_v);
      unpin(self);
      self->quit();
    },
  };
}

} // namespace dml
