#include "actors/shard_worker.hpp"

#include <fmt/format.h>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"

namespace dml {

caf::behavior shard_worker(caf::stateful_actor<shard_worker_state>* self,
                           worker_setup setup) {
  auto& st = self->state;
  st.geometry = shard_plan{setup.rows, setup.shards};
  st.computer = std::make_unique<shard_computer>(setup.data, setup.seed);
  for (auto& [id, first] : setup.placement)
    st.computer->place(id, first);
  st.setup = std::move(setup);
  return {
    [=](step_atom, const step_plan& plan,
        const tensor& params) -> caf::result<grad_msg> {
      auto& st = self->state;
      if (params.size() != st.setup.instance->num_params())
        return make_caf_error(errc::shape_mismatch,
                              fmt::format("worker: {} parameters, the model "
                                          "has {}",
                                          params.size(),
                                          st.setup.instance->num_params()));
      grad_msg reply;
      reply.step = plan.step;
      reply.attempt = plan.attempt;
      std::vector<row_span> spans;
      for (auto& a : plan.work) {
        reply.ranks.push_back(a.rank);
        spans.insert(spans.end(), a.spans.begin(), a.spans.end());
      }
      if (auto err = st.computer->compute(*st.setup.instance, params.begin(),
                                          plan.epoch, spans,
                                          st.geometry.shards(), st.scratch))
        return make_caf_error(err.code(), "worker: " + err.message());
      reply.count = st.scratch.count;
      reply.loss = st.scratch.loss;
      // Hand the gradient over in a pooled buffer; the scratch takes the
      // pooled buffer's storage for the next step.
      auto buf = st.pool.acquire(0);
      std::swap(*buf, st.scratch.values);
      reply.values = tensor{std::shared_ptr<const std::vector<float>>{buf}};
      return reply;
    },
    [=](stop_atom) { self->quit(); },
  };
}

} // namespace dml
