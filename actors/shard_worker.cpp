#include "actors/shard_worker.hpp"

#include <csignal>

#include <fmt/format.h>

#include <caf/all.hpp>

#include "actors/data_shipper.hpp"
#include "actors/errors.hpp"
#include "actors/link_bridge.hpp"
#include "actors/messages.hpp"

namespace dml {

namespace {

using self_ptr = caf::stateful_actor<shard_worker_state>*;

/// Answers a step: on the tensor link for a plan that came on it, else to
/// the requester.
void deliver(self_ptr self, held_reply& h) {
  auto& link = self->state.setup.link;
  if (h.linked) {
    if (link)
      send_gradient(*link, std::move(h.reply));
    return;
  }
  h.rp.deliver(std::move(h.reply));
}

/// Refuses a step with `err`.
void refuse(self_ptr self, held_reply& h, const caf::error& err) {
  if (h.linked) {
    h.reply.refused = describe(err);
    deliver(self, h);
    return;
  }
  h.rp.deliver(err);
}

/// Answers after `ms` milliseconds.
void answer_late(self_ptr self, held_reply h, uint32_t ms) {
  auto& st = self->state;
  auto id = st.next_held++;
  st.held.emplace(id, std::move(h));
  self->delayed_send(self, std::chrono::milliseconds(ms), tick_atom_v, id);
}

/// Computes step `plan` and answers through `h`.
void run_step(self_ptr self, held_reply h, const step_plan& plan,
              const tensor& params) {
  auto& st = self->state;
  h.reply.step = plan.step;
  h.reply.attempt = plan.attempt;
  std::vector<row_span> spans;
  for (auto& a : plan.work) {
    h.reply.ranks.push_back(a.rank);
    spans.insert(spans.end(), a.spans.begin(), a.spans.end());
  }
  auto n = st.setup.instance->num_params();
  if (params.size() != n)
    return refuse(self, h,
                  make_caf_error(errc::shape_mismatch,
                                 fmt::format("worker: {} parameters, the "
                                             "model has {}",
                                             params.size(), n)));
  // Injected faults fire on the first attempt of their step only.
  auto rank = plan.work.empty() ? -1 : plan.work.front().rank;
  auto& faults = st.setup.faults;
  auto first = plan.attempt == 0;
  if (first && find_fault(faults, fault_kind::kill, rank, plan.step)) {
    if (st.setup.kill_process)
      std::raise(SIGKILL);
    self->quit(caf::exit_reason::kill);
    return; // no answer: the master sees it down
  }
  auto* hang = first ? find_fault(faults, fault_kind::hang, rank, plan.step)
                     : nullptr;
  auto* drop = first
    ? find_fault(faults, fault_kind::drop_gradient, rank, plan.step)
    : nullptr;
  auto* delay = find_fault(faults, fault_kind::delay, rank, plan.step);
  // Over shared memory the gradient is computed where the master reads it.
  auto& link = st.setup.link;
  tensor direct;
  if (h.linked && link)
    direct = link->region();
  if (direct.size() < n)
    direct = tensor{};
  auto& shards = st.geometry.shards();
  auto err = direct
    ? st.computer->compute_to(*st.setup.instance, params.begin(), plan.epoch,
                              spans, shards, st.scratch,
                              const_cast<float*>(direct.begin()))
    : st.computer->compute(*st.setup.instance, params.begin(), plan.epoch,
                           spans, shards, st.scratch);
  if (err)
    return refuse(self, h,
                  make_caf_error(err.code(), "worker: " + err.message()));
  h.reply.count = st.scratch.count;
  h.reply.loss = st.scratch.loss;
  if (direct) {
    h.reply.values = tensor{direct.owner(), direct.begin(), n};
  } else {
    // Hand the gradient over in a pooled buffer; the scratch takes the
    // pooled buffer's storage for the next step.
    auto buf = st.pool.acquire(0);
    std::swap(*buf, st.scratch.values);
    h.reply.values = tensor{std::shared_ptr<const std::vector<float>>{buf}};
  }
  if (drop) {
    // Lost on the way: keep the promise so that no error is sent either.
    h.reply = grad_msg{};
    st.held.emplace(st.next_held++, std::move(h));
    return;
  }
  if (hang || delay)
    return answer_late(self, std::move(h),
                       (hang ? hang->ms : 0) + (delay ? delay->ms : 0));
  deliver(self, h);
  // While the master applies the step, gather the rows of the next one.
  auto next = next_spans(spans, st.geometry.shards());
  if (!next.empty())
    st.computer->prepare(plan.epoch, next, st.geometry.shards());
  // The next step is due once the master has applied this one.
  if (h.linked && link)
    link->expect_frame();
}

caf::result<bool> adopt(self_ptr self, const data_chunk& chunk) {
  auto& st = self->state;
  auto refuse = [&](const std::string& what) {
    return make_caf_error(errc::protocol_violation,
                          fmt::format("worker: chunk of shard {} at row {} "
                                      "refused: {}",
                                      chunk.shard, chunk.first, what));
  };
  auto& shards = st.geometry.shards();
  if (chunk.shard >= shards.size())
    return refuse("no such shard");
  if (st.computer->holds(chunk.shard))
    return true; // sent again after moving away and back: nothing to do
  auto& rows = st.arriving[chunk.shard];
  auto size = shards[chunk.shard].size();
  if (chunk.first != rows.rows)
    return refuse("out of order");
  auto& held = st.computer->data();
  if (chunk.rows == 0 || chunk.rows > size - rows.rows
      || (held.rows > 0
          && (chunk.cols != held.cols || chunk.sparse != held.sparse)))
    return refuse("wrong shape");
  if (!append_rows(rows, chunk_rows(chunk)))
    return refuse("malformed rows");
  if (rows.rows == chunk.rows)
    reserve_rows(rows, size); // the first chunk: room for the whole shard
  if (rows.rows == size) {
    st.computer->adopt(chunk.shard,
                       std::make_shared<const dataset>(std::move(rows)));
    st.arriving.erase(chunk.shard);
  }
  return true;
}

} // namespace

caf::behavior shard_worker(caf::stateful_actor<shard_worker_state>* self,
                           worker_setup setup) {
  auto& st = self->state;
  st.geometry = shard_plan{setup.rows, setup.shards};
  st.computer = std::make_unique<shard_computer>(setup.data, setup.seed);
  if (setup.partial)
    st.computer->hold_none(setup.shards);
  for (auto& [id, first] : setup.placement)
    st.computer->place(id, first);
  st.setup = std::move(setup);
  return {
    [=](step_atom, const step_plan& plan,
        const tensor& params) -> caf::result<grad_msg> {
      held_reply h{self->make_response_promise(), {}, plan.linked};
      run_step(self, std::move(h), plan, params);
      return caf::delegated<grad_msg>{};
    },
    [=](tick_atom, uint64_t id) {
      auto& held = self->state.held;
      auto i = held.find(id);
      if (i == held.end())
        return;
      deliver(self, i->second);
      held.erase(i);
    },
    [=](data_atom, const data_chunk& chunk) { return adopt(self, chunk); },
    [=](stop_atom) { self->quit(); },
  };
}

} // namespace dml
