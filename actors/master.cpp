#include "actors/master.hpp"

#include <fmt/format.h>

#include <caf/all.hpp>

#include "actors/data_shipper.hpp"
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

void stop_members(self_ptr self);

void fail(self_ptr self, caf::error err) {
  auto& st = self->state;
  if (st.done.pending())
    st.done.deliver(std::move(err));
  stop_members(self);
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

/// Tells every worker process and aggregator to exit.
void stop_members(self_ptr self) {
  auto& st = self->state;
  for (auto& n : st.nodes)
    if (n)
      self->send(n, stop_atom_v);
  for (auto& a : st.aggregators)
    self->send(a, stop_atom_v);
}

/// Saves the current parameters to `--model-out`, if given.
error save_model(self_ptr self) {
  auto& st = self->state;
  if (st.setup.model_out.empty() || !st.params)
    return {};
  auto file = st.setup.meta;
  file.params = *st.params;
  return write_file_atomic(st.setup.model_out, encode(file));
}

/// Ends the job when training and every evaluation are done.
void maybe_finish(self_ptr self) {
  auto& st = self->state;
  if (!st.training_done || st.evals_pending > 0 || !st.done.pending())
    return;
  auto& params = *st.params;
  if (auto err = save_model(self)) {
    fail(self, to_caf(err));
    stop_members(self);
    return;
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
  rec.params_sha256 = to_hex(
    sha256_of(params.data(), params.size() * sizeof(float)));
  auto json = st.out->final(rec);
  publish(self, json);
  st.done.deliver(std::move(json));
  stop_members(self);
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
        fail(self,
             make_caf_error(errc::io_error,
                            "evaluation failed: " + describe(err)));
      });
}

/// Applies the completed step and moves on.
void complete_step(self_ptr self) {
  auto& st = self->state;
  auto& sum = st.grad;
  st.reduction.take(sum);
  auto progress = static_cast<double>(st.samples)
    / static_cast<double>(st.setup.rows);
  if (sum.values.size() != st.params->size()) {
    fail(self,
         make_caf_error(errc::shape_mismatch,
                        "master: the step's gradient has the wrong "
                        "size"));
    return;
  }
  auto count = sum.count;
  st.epoch_loss += sum.loss;
  // Copy-on-write: a worker may still hold the parameters it was sent, so
  // update out of place into a free buffer (no extra copy pass).
  auto& instance = *st.setup.instance;
  if (st.params.use_count() > 1) {
    auto fresh = st.param_pool.acquire(st.params->size());
    apply_step(instance, st.setup.spec, sum, progress, st.params->data(),
               fresh->data(), st.opt);
    st.params = std::move(fresh);
  } else {
    apply_step(instance, st.setup.spec, sum, progress, *st.params, st.opt);
  }
  std::vector<row_span> spans;
  for (auto& a : st.work)
    spans.insert(spans.end(), a.spans.begin(), a.spans.end());
  if (!st.plan.commit(spans)) {
    fail(self,
         make_caf_error(errc::protocol_violation,
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
  if (g.values.size() != st.params->size()) {
    fail(self,
         make_caf_error(errc::shape_mismatch,
                        fmt::format("master: gradient of {} values from "
                                    "slot {}, expected {}",
                                    g.values.size(), slot, st.params->size())));
    return;
  }
  gradient_part part{g.count, g.loss, g.values.data};
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
  st.reduction.reset({});
  for (uint32_t r = 0; r < workers; ++r) {
    auto rank = static_cast<int32_t>(r);
    auto spans = st.plan.take(rank, step_quota(spec.batch_size, workers, r));
    if (!spans.empty())
      st.work.push_back(assignment{rank, std::move(spans)});
  }
  tensor params{std::shared_ptr<const std::vector<float>>(st.params)};
  auto timeout = st.setup.step_timeout;
  auto on_error = [=](caf::error& err) {
    fail(self,
         make_caf_error(errc::timeout,
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
      self
        ->request(st.workers[a.rank], timeout, step_atom_v, std::move(plan),
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
    self
      ->request(st.aggregators[g], timeout, step_atom_v, std::move(plan),
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
  if (st.started || !st.done.pending()
      || st.aggregators.size() < spec.aggregators)
    return;
  for (auto& w : st.workers)
    if (!w)
      return;
  start(self);
}

/// Returns the first rank not given out, or -1.
int32_t free_rank(self_ptr self) {
  auto& st = self->state;
  for (size_t r = 0; r < st.reserved.size(); ++r)
    if (!st.reserved[r])
      return static_cast<int32_t>(r);
  return -1;
}

/// Returns the shards rank `r` holds under the round-robin assignment.
std::vector<uint32_t> shards_of(self_ptr self, int32_t r) {
  auto& st = self->state;
  std::vector<uint32_t> result;
  auto w = st.setup.spec.workers;
  for (uint32_t s = 0; s < st.setup.shards; ++s)
    if (s % w == static_cast<uint32_t>(r))
      result.push_back(s);
  return result;
}

caf::result<job_setup>
join_remote_worker(self_ptr self, const member_info& info, caf::actor node) {
  auto& st = self->state;
  if (st.started)
    return make_caf_error(errc::bad_config,
                          "master: the job has started; no rank is free");
  auto r = free_rank(self);
  if (r < 0)
    return make_caf_error(errc::bad_config,
                          fmt::format("master: all {} worker ranks are taken",
                                      st.setup.spec.workers));
  st.reserved[r] = true;
  st.nodes[r] = node;
  self->monitor(node);
  st.watched.insert(node.address());
  job_setup js;
  js.rank = r;
  js.spec_json = to_json(st.setup.spec);
  js.inputs = st.setup.meta.config.inputs;
  js.outputs = st.setup.meta.config.outputs;
  js.rows = st.setup.rows;
  js.shards = st.setup.shards;
  js.my_shards = shards_of(self, r);
  js.mean = st.setup.meta.stdz.mean;
  js.scale = st.setup.meta.stdz.scale;
  js.shipped = info.fingerprint.empty();
  if (!st.setup.report.quiet)
    fmt::print(stderr, "worker rank {} joined ({})\n", r,
               js.shipped ? "rows shipped" : "own copy of the data");
  return js;
}

/// A worker process asks for its rows: stream them.
void ship_rows(self_ptr self, int32_t r) {
  auto& st = self->state;
  if (r < 0 || static_cast<size_t>(r) >= st.nodes.size() || !st.nodes[r]
      || !st.setup.train)
    return;
  shard_plan geo{st.setup.rows, st.setup.shards};
  std::vector<shipment> work;
  for (auto id : shards_of(self, r)) {
    auto& s = geo.shards()[id];
    work.push_back(shipment{id, s.begin, 0, s.size()});
  }
  self->spawn(data_shipper, st.setup.train, st.nodes[r], std::move(work),
              st.setup.chunk_bytes, st.setup.ship_window,
              st.setup.step_timeout);
}

caf::result<bool> on_ready(self_ptr self, int32_t r,
                           const std::string& fingerprint, caf::actor worker) {
  auto& st = self->state;
  if (r < 0 || static_cast<size_t>(r) >= st.nodes.size() || !st.nodes[r]
      || st.nodes[r].address() != self->current_sender())
    return make_caf_error(errc::protocol_violation,
                          fmt::format("master: ready for rank {} from a "
                                      "member that does not hold it",
                                      r));
  if (!fingerprint.empty() && fingerprint != st.setup.fingerprint) {
    auto msg = fmt::format("data fingerprint mismatch: the worker's copy of "
                           "the training set hashes to {}, the master's {} "
                           "to {}",
                           fingerprint.substr(0, 16), st.setup.spec.train_path,
                           st.setup.fingerprint.substr(0, 16));
    fmt::print(stderr, "dml-node: refused worker rank {}: {}\n", r, msg);
    self->demonitor(st.nodes[r]);
    st.nodes[r] = nullptr;
    st.reserved[r] = false;
    return make_caf_error(errc::bad_value, msg);
  }
  st.workers[r] = std::move(worker);
  maybe_start(self);
  return true;
}

/// A monitored worker process went away.
void on_down(self_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  st.watched.erase(msg.source);
  if (st.stopping) {
    if (st.watched.empty())
      self->quit();
    return;
  }
  for (size_t r = 0; r < st.nodes.size(); ++r) {
    if (!st.nodes[r] || st.nodes[r].address() != msg.source)
      continue;
    if (!st.started) {
      st.nodes[r] = nullptr;
      st.workers[r] = nullptr;
      st.reserved[r] = false;
      return;
    }
    if (st.done.pending())
      fail(self,
           make_caf_error(errc::timeout,
                          fmt::format("worker rank {} was lost ({})", r,
                                      caf::to_string(msg.reason))));
    return;
  }
  for (size_t g = 0; g < st.aggregators.size(); ++g) {
    if (st.aggregators[g].address() != msg.source)
      continue;
    if (st.done.pending())
      fail(self,
           make_caf_error(errc::timeout,
                          fmt::format("aggregator {} was lost ({})", g,
                                      caf::to_string(msg.reason))));
    return;
  }
}

} // namespace

caf::behavior master(caf::stateful_actor<master_state>* self,
                     master_setup setup) {
  auto& st0 = self->state;
  st0.setup = std::move(setup);
  st0.out = std::make_unique<reporter>(st0.setup.report);
  st0.workers.resize(st0.setup.spec.workers);
  st0.nodes.resize(st0.setup.spec.workers);
  st0.reserved.assign(st0.setup.spec.workers, false);
  self->set_down_handler([=](caf::down_msg& msg) { on_down(self, msg); });
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
        auto rank = free_rank(self);
        if (rank < 0)
          return make_caf_error(errc::bad_config, "master: enough workers");
        st.reserved[rank] = true;
        st.workers[rank] = std::move(member);
        maybe_start(self);
        return rank;
      }
      if (info.role == "aggregator") {
        if (st.aggregators.size() >= st.setup.spec.aggregators)
          return make_caf_error(errc::bad_config, "master: enough aggregators");
        self->monitor(member);
        st.watched.insert(member.address());
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
    [=](register_atom, const member_info& info,
        caf::actor node) -> caf::result<job_setup> {
      if (info.protocol != protocol_version)
        return make_caf_error(errc::version_mismatch,
                              fmt::format("protocol version {} refused: the "
                                          "master speaks {}",
                                          info.protocol, protocol_version));
      if (info.role != "remote-worker")
        return make_caf_error(errc::bad_value,
                              "master: unknown role '" + info.role + "'");
      return join_remote_worker(self, info, std::move(node));
    },
    [=](data_atom, int32_t rank) { ship_rows(self, rank); },
    [=](ready_atom, int32_t rank, const std::string& fingerprint,
        caf::actor worker) {
      return on_ready(self, rank, fingerprint, std::move(worker));
    },
    [=](cancel_atom) {
      auto& st = self->state;
      auto saved = save_model(self);
      auto why = std::string{"interrupted"};
      if (!st.setup.model_out.empty())
        why += saved ? "; saving the model failed: " + saved.message()
                     : "; model saved to " + st.setup.model_out;
      fail(self, make_caf_error(errc::timeout, why));
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
    [=](stop_atom) {
      auto& st = self->state;
      if (st.stopping || st.watched.empty()) {
        stop_members(self);
        self->quit();
        return;
      }
      st.stopping = true;
      stop_members(self);
      self->delayed_send(self, std::chrono::seconds(3), stop_atom_v);
    },
  };
}

} // namespace dml
