#include "actors/master.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "runtime/sha256.hpp"
#include "runtime/training.hpp"

namespace dml {

namespace {

using clock_type = std::chrono::steady_clock;
using self_ptr = caf::stateful_actor<master_state>*;

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

void fail(self_ptr self, caf::error err) {
  auto& st = self->state;
  if (st.done.pending())
    st.done.deliver(std::move(err));
}

void next_step(self_ptr self);

/// Sends a metrics record to every observer.
void publish(self_ptr self, const std::string& json) {
  for (auto& ob : self->state.observers)
    self->send(ob, record_atom_v, json);
}

/// Writes an epoch record and tells the observers.
void record_epoch(self_ptr self, const epoch_record& rec) {
  auto& st = self->state;
  st.out->epoch(rec);
  publish(self, st.out->to_json(rec));
}

/// Ends the job when training and every evaluation are done.
void maybe_finish(self_ptr self) {
  auto& st = self->state;
  if (!st.training_done || st.evals_pending > 0 || !st.done.pending())
    return;
  auto& params = *st.params;
  if (!st.setup.model_out.empty()) {
    auto file = st.setup.meta;
    file.params = params;
    if (auto err = write_file_atomic(st.setup.model_out, encode(file))) {
      fail(self, to_caf(err));
      return;
    }
  }
  final_record rec;
  rec.epochs = st.epoch;
  rec.steps = st.step;
  rec.samples = st.samples;
  rec.train_loss = st.last_train_loss;
  rec.has_test = st.has_last_test;
  rec.test = st.last_test;
  rec.wall_s = seconds_since(st.t_start);
  rec.train_s = st.train_s;
  rec.params_sha256
    = to_hex(sha256_of(params.data(), params.size() * sizeof(float)));
  auto json = st.out->final(rec);
  publish(self, json);
  st.done.deliver(std::move(json));
}

/// Records the end of an epoch and starts its evaluation.
void end_epoch(self_ptr self) {
  auto& st = self->state;
  st.train_s += seconds_since(st.t_epoch);
  epoch_record rec;
  rec.epoch = st.epoch + 1;
  rec.steps = st.step;
  rec.samples = st.samples;
  rec.train_loss = st.epoch_loss / static_cast<double>(st.setup.rows);
  rec.wall_s = seconds_since(st.t_start);
  rec.train_s = st.train_s;
  st.last_train_loss = rec.train_loss;
  if (!st.evaluator) {
    record_epoch(self, rec);
    return;
  }
  ++st.evals_pending;
  tensor snapshot{std::vector<float>(*st.params)};
  self->request(st.evaluator, caf::infinite, eval_atom_v, rec.epoch, snapshot)
    .then(
      [=](eval_metrics& m) mutable {
        auto& st = self->state;
        rec.has_test = true;
        rec.test = m;
        st.last_test = std::move(m);
        st.has_last_test = true;
        record_epoch(self, rec);
        --st.evals_pending;
        maybe_finish(self);
      },
      [=](caf::error& err) {
        fail(self, make_caf_error(errc::io_error,
                                  "evaluation failed: " + describe(err)));
      });
}

/// Applies the completed step and moves on.
void complete_step(self_ptr self) {
  auto& st = self->state;
  auto sum = st.reduction.take();
  auto progress = static_cast<double>(st.samples)
                  / static_cast<double>(st.setup.rows);
  // Copy-on-write: a worker may still hold the parameters it was sent.
  if (st.params.use_count() > 1)
    st.params = std::make_shared<std::vector<float>>(*st.params);
  auto count = sum.count;
  st.epoch_loss += sum.loss;
  apply_step(*st.setup.instance, st.setup.spec, sum, progress, *st.params,
             st.opt);
  std::vector<row_span> spans;
  for (auto& a : st.work)
    spans.insert(spans.end(), a.spans.begin(), a.spans.end());
  if (!st.plan.commit(spans)) {
    fail(self, make_caf_error(errc::protocol_violation,
                              "master: step spans do not match the cursors"));
    return;
  }
  st.samples += count;
  st.epoch_samples += count;
  ++st.step;
  auto secs = st.train_s + seconds_since(st.t_epoch);
  st.out->progress(st.epoch + 1, st.epoch_samples,
                   st.epoch_loss / static_cast<double>(st.epoch_samples),
                   secs > 0 ? st.samples / secs : 0);
  next_step(self);
}

/// Handles one slot's reply (a worker's, or an aggregator's group sum).
void on_reply(self_ptr self, int32_t slot, grad_msg& g) {
  auto& st = self->state;
  if (g.step != st.step || g.attempt != st.attempt)
    return; // stale: an abandoned attempt
  gradient_sum part;
  part.count = g.count;
  part.loss = g.loss;
  if (g.values.size() != st.params->size()) {
    fail(self, make_caf_error(errc::shape_mismatch,
                              fmt::format("master: gradient of {} values from "
                                          "slot {}, expected {}",
                                          g.values.size(), slot,
                                          st.params->size())));
    return;
  }
  // Take the buffer without copying when nobody else holds it.
  if (g.values.data.use_count() == 1)
    part.values = std::move(
      const_cast<std::vector<float>&>(*g.values.data));
  else
    part.values = *g.values.data;
  if (!st.reduction.add(slot, std::move(part)))
    return;
  if (st.reduction.complete())
    complete_step(self);
}

void next_step(self_ptr self) {
  auto& st = self->state;
  auto& spec = st.setup.spec;
  if (st.plan.epoch_done()) {
    end_epoch(self);
    ++st.epoch;
    if (st.epoch >= spec.epochs) {
      st.training_done = true;
      maybe_finish(self);
      return;
    }
    st.plan.start_epoch();
    st.epoch_samples = 0;
    st.epoch_loss = 0;
    st.t_epoch = clock_type::now();
  }
  auto workers = static_cast<uint32_t>(st.workers.size());
  st.work.clear();
  for (uint32_t r = 0; r < workers; ++r) {
    auto rank = static_cast<int32_t>(r);
    auto spans = st.plan.take(rank, step_quota(spec.batch_size, workers, r));
    if (!spans.empty())
      st.work.push_back(assignment{rank, std::move(spans)});
  }
  tensor params{std::shared_ptr<const std::vector<float>>(st.params)};
  auto timeout = st.setup.step_timeout;
  auto on_error = [=](caf::error& err) {
    fail(self, make_caf_error(errc::timeout,
                              fmt::format("step {}: {}", self->state.step,
                                          describe(err))));
  };
  std::vector<int32_t> slots;
  if (st.aggregators.empty()) {
    for (auto& a : st.work)
      slots.push_back(a.rank);
    st.reduction.reset(slots);
    for (auto& a : st.work) {
      step_plan plan{st.step, st.epoch, st.attempt, {a}};
      auto slot = a.rank;
      self->request(st.workers[a.rank], timeout, step_atom_v, std::move(plan),
                    params)
        .then([=](grad_msg& g) { on_reply(self, slot, g); }, on_error);
    }
    return;
  }
  std::vector<step_plan> plans(st.aggregators.size());
  for (size_t g = 0; g < st.groups.size(); ++g)
    for (auto& a : st.work)
      if (std::find(st.groups[g].begin(), st.groups[g].end(), a.rank)
          != st.groups[g].end())
        plans[g].work.push_back(a);
  for (size_t g = 0; g < plans.size(); ++g)
    if (!plans[g].work.empty())
      slots.push_back(static_cast<int32_t>(g));
  st.reduction.reset(slots);
  for (auto g : slots) {
    auto& plan = plans[g];
    plan.step = st.step;
    plan.epoch = st.epoch;
    plan.attempt = st.attempt;
    self->request(st.aggregators[g], timeout, step_atom_v, std::move(plan),
                  params)
      .then([=](grad_msg& msg) { on_reply(self, g, msg); }, on_error);
  }
}

void start(self_ptr self) {
  auto& st = self->state;
  auto& spec = st.setup.spec;
  st.started = true;
  st.params = std::make_shared<std::vector<float>>(
    st.setup.instance->init(spec.seed));
  st.opt = make_optimizer_state(spec.opt, st.params->size());
  st.plan = shard_plan{st.setup.rows, st.setup.shards};
  std::vector<int32_t> ranks;
  for (size_t r = 0; r < st.workers.size(); ++r)
    ranks.push_back(static_cast<int32_t>(r));
  st.plan.assign_round_robin(ranks);
  // Aggregator g serves a contiguous block of ranks.
  auto k = st.aggregators.size();
  st.groups.assign(k, {});
  for (size_t r = 0; r < st.workers.size(); ++r) {
    auto g = r * k / st.workers.size();
    if (k == 0)
      break;
    st.groups[g].push_back(static_cast<int32_t>(r));
    self->send(st.aggregators[g], join_atom_v, static_cast<int32_t>(r),
               st.workers[r]);
  }
  st.t_start = clock_type::now();
  st.t_epoch = st.t_start;
  next_step(self);
}

void maybe_start(self_ptr self) {
  auto& st = self->state;
  auto& spec = st.setup.spec;
  if (st.started || !st.done.pending() || st.workers.size() < spec.workers
      || st.aggregators.size() < spec.aggregators)
    return;
  start(self);
}

} // namespace

caf::behavior master(caf::stateful_actor<master_state>* self,
                     master_setup setup) {
  self->state.setup = std::move(setup);
  self->state.out = std::make_unique<reporter>(self->state.setup.report);
  return {
    [=](join_atom, const member_info& info,
        caf::actor member) -> caf::result<int32_t> {
      auto& st = self->state;
      if (info.protocol != protocol_version)
        return make_caf_error(errc::version_mismatch,
                              fmt::format("protocol version {} refused: the "
                                          "master speaks {}",
                                          info.protocol, protocol_version));
      if (info.role == "worker") {
        if (st.workers.size() >= st.setup.spec.workers)
          return make_caf_error(errc::bad_config, "master: enough workers");
        st.workers.push_back(std::move(member));
        auto rank = static_cast<int32_t>(st.workers.size() - 1);
        maybe_start(self);
        return rank;
      }
      if (info.role == "aggregator") {
        if (st.aggregators.size() >= st.setup.spec.aggregators)
          return make_caf_error(errc::bad_config,
                                "master: enough aggregators");
        st.aggregators.push_back(std::move(member));
        auto index = static_cast<int32_t>(st.aggregators.size() - 1);
        maybe_start(self);
        return index;
      }
      if (info.role == "observer") {
        st.observers.push_back(std::move(member));
        return static_cast<int32_t>(st.observers.size() - 1);
      }
      return make_caf_error(errc::bad_value,
                            "master: unknown role '" + info.role + "'");
    },
    [=](join_atom, caf::actor eval) {
      self->state.evaluator = std::move(eval);
    },
    [=](run_atom) -> caf::result<std::string> {
      auto& st = self->state;
      if (auto err = st.out->open())
        return to_caf(err);
      st.done = self->make_response_promise();
      maybe_start(self);
      return st.done;
    },
    [=](stop_atom) { self->quit(); },
  };
}

} // namespace dml
