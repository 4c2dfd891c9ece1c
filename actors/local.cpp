#include "actors/local.hpp"

#include <caf/all.hpp>

#include "actors/aggregator.hpp"
#include "actors/errors.hpp"
#include "actors/evaluator.hpp"
#include "actors/master.hpp"
#include "actors/messages.hpp"
#include "actors/shard_worker.hpp"

namespace dml {

expected<std::string> run_local(caf::actor_system& sys,
                                const local_options& opts,
                                const prepared_data& data,
                                const model_registry& registry) {
  auto& spec = opts.spec;
  auto make = [&]() -> expected<std::shared_ptr<model>> {
    auto m = registry.make(data.config);
    if (!m)
      return m.err();
    return std::shared_ptr<model>{std::move(*m)};
  };
  auto master_model = make();
  if (!master_model)
    return master_model.err();
  master_setup ms;
  ms.spec = spec;
  ms.meta.config = data.config;
  ms.meta.task = data.task;
  ms.meta.stdz = data.stdz;
  ms.instance = *master_model;
  ms.rows = data.train->rows;
  ms.shards = shard_count(spec, ms.rows);
  ms.step_timeout = opts.step_timeout;
  ms.model_out = opts.model_out;
  ms.report = opts.report;
  ms.report.task = data.task;
  ms.report.epochs = spec.epochs;
  ms.report.rows = ms.rows;
  auto shards = ms.shards;
  std::vector<caf::actor> members;
  auto boss = sys.spawn(master, std::move(ms));
  caf::scoped_actor self{sys};
  error failure;
  auto on_error = [&](caf::error& err) {
    failure = make_error(errc::bad_config, describe(err));
  };
  if (data.test) {
    auto m = make();
    if (!m)
      return m.err();
    auto ev = sys.spawn<caf::detached>(evaluator, data.test, *m);
    members.push_back(ev);
    self->send(boss, join_atom_v, ev);
  }
  for (uint32_t r = 0; r < spec.workers && !failure; ++r) {
    auto m = make();
    if (!m)
      return m.err();
    worker_setup ws{data.train, *m, spec.seed, data.train->rows, shards};
    auto w = sys.spawn<caf::detached>(shard_worker, std::move(ws));
    members.push_back(w);
    self->request(boss, caf::infinite, join_atom_v, member_info{"worker", protocol_version, {}}, w)
      .receive([](int32_t) {}, on_error);
  }
  for (uint32_t g = 0; g < spec.aggregators && !failure; ++g) {
    auto a = sys.spawn(aggregator, opts.step_timeout);
    members.push_back(a);
    self->request(boss, caf::infinite, join_atom_v, member_info{"aggregator", protocol_version, {}},
                  a)
      .receive([](int32_t) {}, on_error);
  }
  std::string result;
  if (!failure)
    self->request(boss, caf::infinite, run_atom_v)
      .receive([&](std::string& rec) { result = std::move(rec); },
               [&](caf::error& err) {
                 failure = make_error(errc::bad_config, describe(err));
               });
  for (auto& m : members)
    self->send(m, stop_atom_v);
  self->send(boss, stop_atom_v);
  if (failure)
    return failure;
  return result;
}

} // namespace dml
