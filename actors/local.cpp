#include "actors/local.hpp"

#include <algorithm>
#include <thread>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/master.hpp"
#include "actors/messages.hpp"
#include "actors/shard_worker.hpp"

namespace dml {

size_t default_threads(uint32_t workers) {
  size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max<size_t>(1, std::min<size_t>(cores, workers));
}

void poll_eagerly(caf::actor_system_config& cfg) {
  cfg.set("work-stealing.aggressive-poll-attempts", size_t{100000});
  cfg.set("work-stealing.moderate-sleep-duration",
          caf::timespan{std::chrono::microseconds(5)});
  cfg.set("work-stealing.relaxed-sleep-duration",
          caf::timespan{std::chrono::microseconds(20)});
}

master_setup make_master_setup(const local_options& opts,
                               const prepared_data& data,
                               std::shared_ptr<model> instance) {
  master_setup ms;
  ms.spec = opts.spec;
  ms.meta.config = data.config;
  ms.meta.task = data.task;
  ms.meta.stdz = data.stdz;
  ms.fingerprint = data.fingerprint;
  ms.instance = std::move(instance);
  ms.rows = data.train->rows;
  ms.shards = shard_count(opts.spec, ms.rows);
  ms.step_timeout = opts.step_timeout;
  ms.recovery = opts.recovery;
  ms.model_out = opts.model_out;
  ms.report = opts.report;
  ms.report.task = data.task;
  ms.report.epochs = opts.spec.epochs;
  ms.report.rows = ms.rows;
  return ms;
}

expected<std::vector<caf::actor>>
join_observers(caf::actor_system& sys, const caf::actor& boss,
               const actor_registry& actors, actor_context ctx,
               const std::vector<std::string>& specs) {
  caf::scoped_actor self{sys};
  std::vector<caf::actor> result;
  error failure;
  for (auto& text : specs) {
    auto colon = text.find(':');
    ctx.arg = colon == std::string::npos ? "" : text.substr(colon + 1);
    auto ob = actors.spawn(actor_kind::observer, text.substr(0, colon), sys,
                           ctx);
    if (!ob) {
      failure = ob.err();
      break;
    }
    result.push_back(*ob);
    self
      ->request(boss, caf::infinite, join_atom_v,
                member_info{"observer", protocol_version, {}}, *ob)
      .receive([](int32_t) {},
               [&](caf::error& err) {
                 failure = make_error(errc::bad_config, describe(err));
               });
    if (failure)
      break;
  }
  if (!failure)
    return result;
  for (auto& ob : result)
    self->send(ob, stop_atom_v);
  return failure;
}

expected<std::string>
run_local(caf::actor_system& sys, const local_options& opts,
          const prepared_data& data, const model_registry& models,
          const actor_registry& actors) {
  auto& spec = opts.spec;
  auto make = [&]() -> expected<std::shared_ptr<model>> {
    auto m = models.make(data.config);
    if (!m)
      return m.err();
    return std::shared_ptr<model>{std::move(*m)};
  };
  auto master_model = make();
  if (!master_model)
    return master_model.err();
  auto ms = make_master_setup(opts, data, *master_model);
  auto shards = ms.shards;
  std::vector<caf::actor> members;
  auto boss = sys.spawn(master, std::move(ms));
  caf::scoped_actor self{sys};
  error failure;
  auto on_error = [&](caf::error& err) {
    failure = make_error(errc::bad_config, describe(err));
  };
  actor_context ctx;
  ctx.spec = spec;
  ctx.step_timeout = opts.step_timeout;
  auto stop_all = [&] {
    for (auto& m : members)
      self->send(m, stop_atom_v);
    self->send(boss, stop_atom_v);
  };
  if (data.test) {
    auto m = make();
    if (!m)
      return m.err();
    ctx.test = data.test;
    ctx.instance = *m;
    auto ev = actors.spawn(actor_kind::evaluator, opts.evaluator_type, sys,
                           ctx);
    if (!ev) {
      stop_all();
      return ev.err();
    }
    members.push_back(*ev);
    self->send(boss, join_atom_v, *ev);
    ctx.test = nullptr;
    ctx.instance = nullptr;
  }
  auto observers = join_observers(sys, boss, actors, ctx, opts.observers);
  if (!observers) {
    stop_all();
    return observers.err();
  }
  members.insert(members.end(), observers->begin(), observers->end());
  for (uint32_t r = 0; r < spec.workers && !failure; ++r) {
    auto m = make();
    if (!m)
      return m.err();
    worker_setup ws;
    ws.data = data.train;
    ws.instance = *m;
    ws.seed = spec.seed;
    ws.rows = data.train->rows;
    ws.shards = shards;
    ws.faults = opts.recovery.faults;
    auto w = sys.spawn(shard_worker, std::move(ws));
    members.push_back(w);
    self
      ->request(boss, caf::infinite, join_atom_v,
                member_info{"worker", protocol_version, {}}, w)
      .receive([](int32_t) {}, on_error);
  }
  for (uint32_t g = 0; g < spec.aggregators && !failure; ++g) {
    auto a = actors.spawn(actor_kind::aggregator, opts.aggregator_type, sys,
                          ctx);
    if (!a) {
      failure = a.err();
      break;
    }
    members.push_back(*a);
    self
      ->request(boss, caf::infinite, join_atom_v,
                member_info{"aggregator", protocol_version, {}}, *a)
      .receive([](int32_t) {}, on_error);
  }
  std::string result;
  if (!failure)
    self->request(boss, caf::infinite, run_atom_v)
      .receive([&](std::string& rec) { result = std::move(rec); },
               [&](caf::error& err) {
                 failure = make_error(errc::bad_config, describe(err));
               });
  stop_all();
  if (failure)
    return failure;
  return result;
}

} // namespace dml
