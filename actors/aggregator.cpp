#include "actors/aggregator.hpp"

#include <fmt/format.h>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"

namespace dml {

/// Collects the replies of one step in a group.
struct step_collect {
  ordered_reduction reduction;
  grad_msg header;
  bool failed = false;
};

caf::behavior aggregator(caf::stateful_actor<aggregator_state>* self,
                         std::chrono::milliseconds timeout) {
  self->state.timeout = timeout;
  return {
    [=](join_atom, int32_t rank, caf::actor worker) {
      self->state.workers[rank] = std::move(worker);
    },
    [=](step_atom, const step_plan& plan,
        const tensor& params) -> caf::result<grad_msg> {
      auto& st = self->state;
      std::vector<int32_t> ranks;
      for (auto& a : plan.work) {
        if (st.workers.count(a.rank) == 0)
          return make_caf_error(errc::protocol_violation,
                                fmt::format("aggregator: rank {} is not in "
                                            "this group",
                                            a.rank));
        ranks.push_back(a.rank);
      }
      auto rp = self->make_response_promise<grad_msg>();
      auto collect = std::make_shared<step_collect>();
      collect->reduction.reset(ranks);
      collect->header.step = plan.step;
      collect->header.attempt = plan.attempt;
      st.current = collect;
      auto deadline = plan.deadline_ms > 0
        ? std::chrono::milliseconds(plan.deadline_ms)
        : st.timeout;
      for (auto& a : plan.work) {
        step_plan sub{
          plan.step, plan.epoch, plan.attempt, {a}, plan.deadline_ms};
        auto rank = a.rank;
        auto& worker = st.workers[rank];
        caf::duration timeout{deadline};
        if (worker.node() == self->node())
          timeout = caf::infinite;
        self->request(worker, timeout, step_atom_v, std::move(sub), params)
          .then(
            [=](grad_msg& g) mutable {
              if (collect->failed)
                return;
              collect->reduction.add(rank,
                                     gradient_part{g.count, g.loss, g.values});
              if (!collect->reduction.complete())
                return;
              auto& st = self->state;
              collect->reduction.take(st.sum);
              auto reply = collect->header;
              reply.ranks = ranks;
              reply.count = st.sum.count;
              reply.loss = st.sum.loss;
              auto buf = st.pool.acquire(0);
              std::swap(*buf, st.sum.values);
              reply.values = tensor{
                std::shared_ptr<const std::vector<float>>{buf}};
              rp.deliver(std::move(reply));
            },
            [=](caf::error& err) mutable {
              if (collect->failed)
                return;
              collect->failed = true;
              if (is_peer_loss(err)) {
                auto reply = collect->header;
                reply.lost.push_back(rank);
                rp.deliver(std::move(reply));
                return;
              }
              rp.deliver(make_caf_error(errc::protocol_violation,
                                        fmt::format("worker rank {}: {}", rank,
                                                    describe(err))));
            });
      }
      return rp;
    },
    [=](watchdog_atom, uint64_t step, uint32_t attempt) {
      grad_msg reply;
      reply.step = step;
      reply.attempt = attempt;
      auto& c = self->state.current;
      if (c && !c->failed && c->header.step == step
          && c->header.attempt == attempt)
        reply.lost = c->reduction.missing();
      return reply;
    },
    [=](stop_atom) { self->quit(); },
  };
}

} // namespace dml
