#include "actors/evaluator.hpp"

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "runtime/metrics.hpp"

namespace dml {

caf::behavior evaluator(caf::stateful_actor<evaluator_state>* self,
                        std::shared_ptr<const dataset> test,
                        std::shared_ptr<model> instance) {
  self->state.test = std::move(test);
  self->state.instance = std::move(instance);
  return {
    [=](eval_atom, uint32_t,
        const tensor& params) -> caf::result<eval_metrics> {
      auto& st = self->state;
      if (params.size() != st.instance->num_params())
        return make_caf_error(errc::shape_mismatch,
                              "evaluator: parameter vector of wrong size");
      return evaluate(*st.instance, params.begin(), *st.test);
    },
    [=](stop_atom) { self->quit(); },
  };
}

} // namespace dml
