#include "actors/master.hpp"

#include <fmt/format.h>

#include <caf/all.hpp>

#include "actors/data_shipper.hpp"
#include "actors/errors.hpp"
#include "actors/link_bridge.hpp"
#include "actors/messages.hpp"
#include "actors/scheduler_runner.hpp"
#include "runtime/checkpoints.hpp"
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
  rec.params_sha256 = params_sha256(params);
  for (auto& w : st.workers)
    if (w)
      ++rec.workers;
  rec.faults = st.faults;
  rec.steps_redone = st.steps_redone;
  rec.recovery_s = st.recoveries;
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

void issue_step(self_ptr self);

/// Returns the ranks with a ready, live shard-worker.
std::vector<int32_t> live_ranks(self_ptr self) {
  std::vector<int32_t> result;
  auto& st = self->state;
  for (size_t r = 0; r < st.workers.size(); ++r)
    if (st.workers[r])
      result.push_back(static_cast<int32_t>(r));
  return result;
}

/// Returns the job's state as a checkpoint.
checkpoint make_checkpoint(self_ptr self) {
  auto& st = self->state;
  checkpoint c;
  c.model = st.setup.meta;
  c.model.params = *st.params;
  c.opt = st.opt;
  c.step = st.step;
  c.epoch = st.epoch;
  c.samples = st.samples;
  for (auto& s : st.plan.shards())
    c.cursors.push_back(s.cursor);
  // The shuffles are a pure function of (seed, epoch, shard): the seed is
  // the whole random state.
  c.rng_state = st.setup.spec.seed;
  c.epoch_loss = st.epoch_loss;
  c.train_s = st.train_s + seconds_since(st.t_epoch);
  c.spec_json = to_json(st.setup.spec, st.setup.fingerprint);
  return c;
}

/// Writes a checkpoint if a folder is set; returns a note for messages.
std::string write_checkpoint(self_ptr self) {
  auto& st = self->state;
  if (!st.params)
    return {};
  if (st.setup.recovery.checkpoint_dir.empty())
    return "; no checkpoint written (no --checkpoint-dir)";
  if (auto err = save_checkpoint(st.setup.recovery.checkpoint_dir,
                                 make_checkpoint(self),
                                 st.setup.recovery.checkpoint_keep)) {
    st.out->note("warning: " + err.message());
    return "; writing a checkpoint failed: " + err.message();
  }
  return fmt::format("; checkpoint of step {} in {}", st.step,
                     st.setup.recovery.checkpoint_dir);
}

/// Copies the state and writes it on a thread of its own; its exit reason
/// carries a failure (see on_down).
void write_checkpoint_in_background(self_ptr self) {
  auto& st = self->state;
  auto job =
    [c = make_checkpoint(self), dir = st.setup.recovery.checkpoint_dir,
     keep = st.setup.recovery.checkpoint_keep](caf::event_based_actor* w) {
      if (auto err = save_checkpoint(dir, c, keep))
        w->quit(to_caf(err));
      else
        w->quit();
    };
  auto writer = self->spawn<caf::detached + caf::monitored>(std::move(job));
  st.ckpt_writer = writer.address();
}

/// Counts a fault and starts its recovery clock.
void note_fault(self_ptr self, const std::string& what) {
  auto& st = self->state;
  ++st.faults;
  if (!st.recovering) {
    st.recovering = true;
    st.t_fault = clock_type::now();
  }
  st.out->note(what);
}

/// Streams the rows of shards `ids` to `target` (rank `r`'s node or
/// shard-worker) and watches the shipper: if it fails, rank `r` is lost
/// (see on_down).
void spawn_shipper(self_ptr self, int32_t r, const caf::actor& target,
                   const std::vector<uint32_t>& ids) {
  auto& st = self->state;
  shard_plan geo{st.setup.rows, st.setup.shards};
  std::vector<shipment> work;
  for (auto id : ids) {
    auto& s = geo.shards()[id];
    work.push_back(shipment{id, s.begin, 0, s.size()});
  }
  auto shipper = self->spawn(data_shipper, st.setup.train, target,
                             std::move(work), st.setup.chunk_bytes,
                             st.setup.ship_window, st.setup.step_timeout);
  self->monitor(shipper);
  st.shippers.emplace(shipper.address(), r);
}

/// Ships the rows of `shards` to rank `r`'s shard-worker (a worker process
/// holding only its own rows); steps wait until they have arrived.
void ship_shards(self_ptr self, int32_t r, const std::vector<uint32_t>& ids) {
  auto& st = self->state;
  if (ids.empty() || !st.setup.train)
    return;
  spawn_shipper(self, r, st.workers[r], ids);
  if (st.awaiting[r]++ == 0)
    st.ship_start[r] = clock_type::now();
}

/// Gives shards of lost ranks to live ones and evens out the shard counts
/// (`shard_plan::balance`), and ships the moved shards' rows to ranks that
/// hold only their own.
void balance(self_ptr self) {
  auto& st = self->state;
  std::map<int32_t, std::vector<uint32_t>> moved;
  for (auto& [id, to] : st.plan.balance(live_ranks(self)))
    moved[to].push_back(id);
  for (auto& [r, ids] : moved) {
    if (!st.partial[r])
      continue;
    std::vector<uint32_t> missing;
    for (auto id : ids)
      if (st.holds[r].insert(id).second)
        missing.push_back(id);
    ship_shards(self, r, missing);
  }
}

/// Issues the next step if none is in flight and the job is running (a step
/// held back by rows on their way or too few workers).
void issue_if_idle(self_ptr self) {
  auto& st = self->state;
  if (!st.in_flight && st.started && !st.training_done && !st.waiting
      && st.done.pending())
    issue_step(self);
}

/// Redoes the step in flight with a new attempt number, or, between steps,
/// issues the next one if nothing else holds it back (rows on their way, too
/// few workers: whatever clears those issues it).
void redo_step(self_ptr self) {
  auto& st = self->state;
  if (st.in_flight) {
    ++st.steps_redone;
    issue_step(self);
    return;
  }
  issue_if_idle(self);
}

/// Waits for joiners until `join_timeout`, then fails the job.
void wait_for_workers(self_ptr self) {
  auto& st = self->state;
  if (st.waiting)
    return;
  st.waiting = true;
  auto id = ++st.wait_id;
  st.out->note(fmt::format("{} live workers, --min-workers is {}: waiting up "
                           "to {} s for workers to join",
                           live_ranks(self).size(),
                           st.setup.recovery.min_workers,
                           st.setup.recovery.join_timeout.count() / 1000.0));
  self->delayed_send(self, st.setup.recovery.join_timeout, tick_atom_v, id);
}

/// Closes rank `r`'s tensor link, or the connection it parked.
void drop_link(self_ptr self, int32_t r) {
  auto& st = self->state;
  st.links.erase(r);
  if (auto i = st.link_tokens.find(r); i != st.link_tokens.end()) {
    st.setup.links->forget(i->second);
    st.link_tokens.erase(i);
  }
}

/// Drops rank `r` from the job: its shards go to the live ranks and the
/// step in flight is redone without it.
void lose_worker(self_ptr self, int32_t r, const std::string& why) {
  auto& st = self->state;
  if (r < 0 || static_cast<size_t>(r) >= st.workers.size()
      || (!st.workers[r] && !st.nodes[r]))
    return;
  auto node = st.nodes[r];
  auto worker = st.workers[r];
  // A joiner that was not ready yet held no shards: nothing to recover.
  bool active = static_cast<bool>(worker);
  st.workers[r] = nullptr;
  st.nodes[r] = nullptr;
  st.route[r] = -1;
  st.holds.erase(r);
  st.ship_start.erase(r);
  st.awaiting.erase(r);
  drop_link(self, r);
  if (node) {
    // Fence it: if it was only frozen, it exits when it wakes up.
    self->demonitor(node);
    st.watched.erase(node.address());
    self->send(node, stop_atom_v);
  } else if (worker) {
    self->demonitor(worker);
    self->send(worker, stop_atom_v);
  }
  if (!st.started) {
    st.reserved[r] = false;
    return;
  }
  if (!st.done.pending() || !active || st.training_done)
    return;
  note_fault(self,
             fmt::format("worker rank {} lost: {}; its shards move to "
                         "the live workers",
                         r, why));
  if (live_ranks(self).size() < std::max(1u, st.setup.recovery.min_workers)) {
    wait_for_workers(self);
    return;
  }
  balance(self);
  redo_step(self);
}

/// Drops aggregator `g`: its workers report to the master directly.
void lose_aggregator(self_ptr self, size_t g, const std::string& why) {
  auto& st = self->state;
  if (g >= st.aggregators.size() || !st.aggregators[g])
    return;
  auto agg = st.aggregators[g];
  st.aggregators[g] = nullptr;
  self->demonitor(agg);
  st.watched.erase(agg.address());
  for (auto& x : st.route)
    if (x == static_cast<int32_t>(g))
      x = -1;
  if (!st.started || !st.done.pending())
    return;
  note_fault(self,
             fmt::format("aggregator {} lost: {}; its workers report "
                         "to the master",
                         g, why));
  redo_step(self);
}

/// Applies the completed step and moves on.
void complete_step(self_ptr self) {
  auto& st = self->state;
  st.in_flight = false;
  auto progress = static_cast<double>(st.samples)
    / static_cast<double>(st.setup.rows);
  auto& spec = st.setup.spec;
  auto n = st.params->size();
  // Copy-on-write: a worker may still hold the parameters it was sent, so
  // update out of place into a free buffer (no extra copy pass).
  const float* in = st.params->data();
  std::shared_ptr<std::vector<float>> fresh;
  if (st.params.use_count() > 1)
    fresh = st.param_pool.acquire(n);
  float* out = fresh ? fresh->data() : st.params->data();
  uint64_t count = 0;
  auto& parts = st.reduction.parts();
  if (spec.l2 <= 0 && (parts.size() == 1 || parts.size() == 2)) {
    // Sum, scale and update in one pass over the parts (same bits as the
    // buffered path below).
    const float* views[2] = {nullptr, nullptr};
    double loss = 0;
    for (size_t k = 0; k < parts.size(); ++k) {
      count += parts[k].count;
      loss += parts[k].loss;
      views[k] = parts[k].values.begin();
    }
    st.epoch_loss += loss;
    apply_step_fused(spec, views, parts.size(), count, loss, progress, in, out,
                     n, st.opt, st.helper.get());
    st.reduction.clear();
  } else {
    auto& sum = st.grad;
    st.reduction.take(sum);
    if (sum.values.size() != n) {
      fail(self,
           make_caf_error(errc::shape_mismatch,
                          "master: the step's gradient has the wrong "
                          "size"));
      return;
    }
    count = sum.count;
    st.epoch_loss += sum.loss;
    apply_step(*st.setup.instance, spec, sum, progress, in, out, st.opt);
  }
  if (fresh)
    st.params = std::move(fresh);
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
  st.attempt = 0;
  auto took = seconds_since(st.t_step);
  st.mean_step_s = st.mean_step_s == 0 ? took
                                       : 0.9 * st.mean_step_s + 0.1 * took;
  if (st.resuming) {
    st.resuming = false;
    st.out->note(fmt::format("first step after resuming completed ({:.3f} s "
                             "after the members joined)",
                             seconds_since(st.t_start)));
  }
  if (st.recovering) {
    st.recovering = false;
    auto secs = seconds_since(st.t_fault);
    st.recoveries.push_back(secs);
    st.out->note(fmt::format("recovered: step {} completed {:.3f} s after the "
                             "fault",
                             st.step, secs));
  }
  if (st.setup.recovery.checkpoint_every > 0
      && st.step % st.setup.recovery.checkpoint_every == 0) {
    if (!st.setup.recovery.checkpoint_in_background)
      write_checkpoint(self);
    else if (!st.ckpt_writer)
      write_checkpoint_in_background(self);
    else
      st.ckpt_due = true;
  }
  auto secs = st.train_s + seconds_since(st.t_epoch);
  st.out->progress(st.epoch + 1, st.epoch_samples,
                   st.epoch_loss / static_cast<double>(st.epoch_samples),
                   secs > 0 ? st.samples / secs : 0, st.faults);
  next_step(self);
}

/// Handles one slot's reply (a worker's, or an aggregator's group sum).
void on_reply(self_ptr self, int32_t slot, grad_msg& g) {
  auto& st = self->state;
  if (!st.in_flight || g.step != st.step || g.attempt != st.attempt)
    return; // stale: an abandoned attempt
  if (!g.lost.empty()) {
    for (auto r : g.lost)
      lose_worker(self, r,
                  "no answer within the step deadline (seen by its "
                  "aggregator)");
    return;
  }
  if (g.values.size() != st.params->size()) {
    fail(self,
         make_caf_error(errc::shape_mismatch,
                        fmt::format("master: gradient of {} values from "
                                    "slot {}, expected {}",
                                    g.values.size(), slot, st.params->size())));
    return;
  }
  gradient_part part{g.count, g.loss, g.values};
  if (!st.reduction.add(slot, std::move(part)))
    return;
  st.arrivals.push_back(slot);
  if (st.reduction.complete()) {
    complete_step(self);
    return;
  }
  // The other gradients are due soon: their links' readers poll for them.
  for (auto r : st.reduction.missing())
    if (auto i = st.links.find(r); i != st.links.end())
      i->second->expect_frame();
}

/// Handles a reply that came on rank `r`'s tensor link.
void on_linked_reply(self_ptr self, int32_t r, grad_msg& msg) {
  auto& st = self->state;
  if (st.links.count(r) == 0)
    return; // from a link closed since
  if (!msg.refused.empty()) {
    if (st.in_flight && msg.step == st.step && msg.attempt == st.attempt)
      fail(self,
           make_caf_error(errc::protocol_violation,
                          fmt::format("step {}: worker rank {}: {}", msg.step,
                                      r, msg.refused)));
    return;
  }
  on_reply(self, r, msg);
}

/// Returns the deadline of the next step.
std::chrono::milliseconds step_deadline(self_ptr self) {
  auto& st = self->state;
  if (!st.setup.recovery.adaptive_timeout || st.mean_step_s == 0)
    return st.setup.step_timeout;
  auto ms = static_cast<int64_t>(20 * 1000 * st.mean_step_s);
  return std::max(st.setup.recovery.min_step_timeout,
                  std::chrono::milliseconds(ms));
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
  issue_step(self);
}

/// Carries out injected `kill-aggregator` faults due at this step.
void inject(self_ptr self) {
  auto& st = self->state;
  if (st.attempt != 0)
    return;
  for (size_t g = 0; g < st.aggregators.size(); ++g)
    if (st.aggregators[g]
        && find_fault(st.setup.recovery.faults, fault_kind::kill_aggregator,
                      static_cast<int32_t>(g), st.step))
      self->send_exit(st.aggregators[g], caf::exit_reason::kill);
}

/// The order to send a step's plans in: first the slots whose gradients
/// came in first in the last step, the others in slot order. On one host
/// the master's thread runs the update on the core of the last worker to
/// answer, while the first ones wait on the other cores: they can start at
/// once (1-2% more samples/s with two worker processes on two cores).
std::vector<int32_t> send_order(const std::map<int32_t, step_plan>& plans,
                                const std::vector<int32_t>& arrivals) {
  std::vector<int32_t> order;
  for (auto slot : arrivals) // each at most once: a reduction takes a slot once
    if (plans.count(slot) != 0)
      order.push_back(slot);
  for (auto& entry : plans)
    if (std::find(order.begin(), order.end(), entry.first) == order.end())
      order.push_back(entry.first);
  return order;
}

/// Sends the current step (a new attempt of it, if one was in flight).
void issue_step(self_ptr self) {
  auto& st = self->state;
  auto& spec = st.setup.spec;
  if (st.in_flight)
    ++st.attempt;
  st.in_flight = false;
  if (!st.done.pending() || st.waiting)
    return;
  for (auto& [r, n] : st.awaiting)
    if (n > 0)
      return; // adopted rows still on their way
  auto live = live_ranks(self);
  if (live.size() < std::max(1u, st.setup.recovery.min_workers)) {
    wait_for_workers(self);
    return;
  }
  inject(self);
  st.in_flight = true;
  st.t_step = clock_type::now();
  // The global batch is split over the ranks with rows left (a rank may run
  // dry before the others, or join with more ranks than the batch has rows).
  std::vector<int32_t> active;
  for (auto r : live)
    if (st.plan.left(r) > 0)
      active.push_back(r);
  auto n = static_cast<uint32_t>(active.size());
  st.work.clear();
  for (uint32_t i = 0; i < n; ++i) {
    auto rank = active[i];
    auto spans = st.plan.take(rank, step_quota(spec.batch_size, n, i));
    if (!spans.empty())
      st.work.push_back(assignment{rank, std::move(spans)});
  }
  tensor params{std::shared_ptr<const std::vector<float>>(st.params)};
  auto deadline = step_deadline(self);
  auto step = st.step;
  auto attempt = st.attempt;
  // Group the work: by aggregator, or one slot per rank sent directly. A
  // group's slot is its lowest rank, so slots sum in rank order.
  // `st.work` is in rank order, so a group's first rank is its lowest.
  std::map<int32_t, step_plan> plans;
  std::map<int32_t, int32_t> group_slot;
  st.slot_via.clear();
  for (auto& a : st.work) {
    auto g = st.route[a.rank];
    if (g >= 0 && !st.aggregators[g])
      g = -1;
    auto slot = g < 0 ? a.rank : group_slot.emplace(g, a.rank).first->second;
    st.slot_via.emplace(slot, g);
    auto& plan = plans[slot];
    plan.step = step;
    plan.epoch = st.epoch;
    plan.attempt = attempt;
    plan.deadline_ms = static_cast<uint32_t>(deadline.count());
    plan.work.push_back(a);
  }
  st.deadline = deadline;
  st.t_sent = self->clock().now();
  std::vector<int32_t> slots;
  for (auto& [slot, plan] : plans)
    slots.push_back(slot);
  st.reduction.reset(slots);
  auto order = send_order(plans, st.arrivals);
  st.arrivals.clear();
  if (slots.empty()) {
    // Nothing left to take: every shard is consumed (cannot happen while the
    // epoch is not done) or no live rank holds rows.
    fail(self,
         make_caf_error(errc::protocol_violation,
                        "master: a step with no rows"));
    return;
  }
  auto current = [=] {
    auto& st = self->state;
    return st.in_flight && st.step == step && st.attempt == attempt;
  };
  // Members in this process are watched by the watchdog instead.
  auto timeout_for = [&](const caf::actor& member) -> caf::duration {
    if (member.node() == self->node())
      return caf::infinite;
    return caf::duration{deadline};
  };
  for (auto slot : order) {
    auto& plan = plans[slot];
    auto g = st.slot_via[slot];
    if (g < 0) {
      auto rank = slot;
      auto& worker = st.workers[rank];
      if (auto i = st.links.find(rank); i != st.links.end()) {
        // The reply comes back on the link, as (link_atom, rank, grad_msg).
        plan.linked = true;
        send_step(*i->second, plan, params);
        continue;
      }
      self
        ->request(worker, timeout_for(worker), step_atom_v, std::move(plan),
                  params)
        .then([=](grad_msg& msg) { on_reply(self, slot, msg); },
              [=](caf::error& err) {
                if (!current())
                  return;
                if (is_peer_loss(err))
                  lose_worker(self, rank,
                              fmt::format("no answer to step {} within {} "
                                          "ms ({})",
                                          step, deadline.count(),
                                          describe(err)));
                else
                  fail(self,
                       make_caf_error(errc::protocol_violation,
                                      fmt::format("step {}: {}", step,
                                                  describe(err))));
              });
    } else {
      auto& agg = st.aggregators[g];
      caf::duration agg_timeout{2 * deadline + std::chrono::milliseconds(500)};
      if (agg.node() == self->node())
        agg_timeout = caf::infinite;
      self->request(agg, agg_timeout, step_atom_v, std::move(plan), params)
        .then([=](grad_msg& msg) { on_reply(self, slot, msg); },
              [=](caf::error& err) {
                if (!current())
                  return;
                if (is_peer_loss(err))
                  lose_aggregator(self, static_cast<size_t>(g), describe(err));
                else
                  fail(self,
                       make_caf_error(errc::protocol_violation,
                                      fmt::format("step {}: {}", step,
                                                  describe(err))));
              });
    }
  }
}

/// Every quarter second: loses the members of an overdue step that have
/// not answered (asking aggregators which of their workers those are).
void watchdog(self_ptr self) {
  auto& st = self->state;
  if (st.training_done || !st.done.pending())
    return;
  self->delayed_send(self, std::chrono::milliseconds(250), watchdog_atom_v);
  if (!st.in_flight || st.waiting
      || self->clock().now() - st.t_sent <= st.deadline)
    return;
  auto step = st.step;
  auto attempt = st.attempt;
  auto why = fmt::format("no answer to step {} within {} ms", step,
                         st.deadline.count());
  for (auto slot : st.reduction.missing()) {
    auto g = st.slot_via.count(slot) > 0 ? st.slot_via[slot] : -1;
    if (g < 0) {
      lose_worker(self, slot, why);
    } else if (g < static_cast<int32_t>(st.aggregators.size())
               && st.aggregators[g]) {
      self
        ->request(st.aggregators[g], st.deadline, watchdog_atom_v, step,
                  attempt)
        .then(
          [=](grad_msg& answer) {
            auto& st = self->state;
            if (!st.in_flight || st.step != step || st.attempt != attempt)
              return;
            for (auto r : answer.lost)
              lose_worker(self, r, why + " (seen by its aggregator)");
          },
          [=](caf::error& err) {
            auto& st = self->state;
            if (st.in_flight && st.step == step && st.attempt == attempt)
              lose_aggregator(self, static_cast<size_t>(g), describe(err));
          });
    }
    if (!st.in_flight || st.step != step || st.attempt != attempt)
      return; // a loss redid the step
  }
}

/// Restores the job's progress from `--resume`'s checkpoint.
error restore(self_ptr self, const checkpoint& c) {
  auto& st = self->state;
  if (c.model.params.size() != st.params->size())
    return make_error(errc::shape_mismatch,
                      fmt::format("checkpoint: {} parameters, the model has "
                                  "{}",
                                  c.model.params.size(), st.params->size()));
  if (c.opt.m.size() != st.opt.m.size() || c.opt.v.size() != st.opt.v.size())
    return make_error(errc::shape_mismatch,
                      fmt::format("checkpoint: optimizer state of {}+{} "
                                  "values, the job's optimizer keeps {}+{}",
                                  c.opt.m.size(), c.opt.v.size(),
                                  st.opt.m.size(), st.opt.v.size()));
  if (c.cursors.size() != st.plan.shards().size())
    return make_error(errc::shape_mismatch,
                      fmt::format("checkpoint: {} shards, the job has {}",
                                  c.cursors.size(), st.plan.shards().size()));
  for (size_t i = 0; i < c.cursors.size(); ++i) {
    if (c.cursors[i] > st.plan.shards()[i].size())
      return make_error(errc::bad_format,
                        fmt::format("checkpoint: cursor {} beyond shard {}",
                                    c.cursors[i], i));
    st.plan.shards()[i].cursor = c.cursors[i];
  }
  *st.params = c.model.params;
  st.opt = c.opt;
  st.step = c.step;
  st.epoch = static_cast<uint32_t>(c.epoch);
  st.samples = c.samples;
  st.epoch_samples = st.plan.consumed();
  st.epoch_loss = c.epoch_loss;
  st.train_s = c.train_s;
  return {};
}

void start(self_ptr self) {
  auto& st = self->state;
  auto& spec = st.setup.spec;
  st.started = true;
  st.params = std::make_shared<std::vector<float>>(
    st.setup.instance->init(spec.seed));
  st.opt = make_optimizer_state(spec.opt, st.params->size());
  // While the workers wait for the next step their threads are free: one
  // of them takes half of the update.
  auto& sys = self->home_system();
  if (sys.scheduler().num_workers() > 1)
    st.helper = std::make_unique<scheduler_runner>(sys);
  st.plan = shard_plan{st.setup.rows, st.setup.shards};
  std::vector<int32_t> ranks;
  for (size_t r = 0; r < st.workers.size(); ++r)
    ranks.push_back(static_cast<int32_t>(r));
  st.plan.assign_round_robin(ranks);
  if (st.setup.recovery.resume) {
    if (auto err = restore(self, *st.setup.recovery.resume)) {
      fail(self, to_caf(err));
      return;
    }
    st.out->note(fmt::format("resumed at step {} (epoch {}, {} samples)",
                             st.step, st.epoch + 1, st.samples));
    st.resuming = true;
  }
  // Aggregator g serves a contiguous block of ranks.
  auto k = st.aggregators.size();
  st.route.assign(st.workers.size(), -1);
  for (size_t r = 0; r < st.workers.size() && k > 0; ++r) {
    auto g = r * k / st.workers.size();
    st.route[r] = static_cast<int32_t>(g);
    self->send(st.aggregators[g], join_atom_v, static_cast<int32_t>(r),
               st.workers[r]);
  }
  st.t_start = clock_type::now();
  st.t_epoch = st.t_start;
  next_step(self);
  watchdog(self);
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

/// Adds a rank for a worker joining a running job.
int32_t add_rank(self_ptr self) {
  auto& st = self->state;
  st.workers.emplace_back();
  st.nodes.emplace_back();
  st.reserved.push_back(true);
  st.partial.push_back(false);
  st.route.push_back(-1);
  return static_cast<int32_t>(st.workers.size() - 1);
}

/// A worker joined a running job: it gets shards from the next step on.
void admit(self_ptr self, int32_t r) {
  auto& st = self->state;
  st.out->note(fmt::format("worker rank {} joined the running job", r));
  balance(self);
  if (st.waiting
      && live_ranks(self).size()
        >= std::max(1u, st.setup.recovery.min_workers)) {
    st.waiting = false;
    issue_step(self); // the step that was in flight, if any, again
  }
}

/// Rank `r` has its shard-worker: it joins the running job, or the job
/// starts once every rank has one.
void admit_or_start(self_ptr self, int32_t r) {
  if (self->state.started)
    admit(self, r);
  else
    maybe_start(self);
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
  int32_t r = -1;
  if (st.started)
    r = add_rank(self);
  else
    r = free_rank(self);
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
  // A late joiner starts with no rows: it adopts shards once ready.
  if (!st.started)
    js.my_shards = shards_of(self, r);
  js.mean = st.setup.meta.stdz.mean;
  js.scale = st.setup.meta.stdz.scale;
  js.shipped = info.fingerprint.empty();
  if (st.setup.links) {
    js.link_port = st.setup.links->port();
    js.link_token = random_token();
    st.link_tokens[r] = js.link_token;
  }
  st.partial[r] = js.shipped;
  if (js.shipped)
    st.holds[r] = std::set<uint32_t>(js.my_shards.begin(), js.my_shards.end());
  st.out->note(
    fmt::format("worker rank {} joined ({})", r,
                js.shipped ? "rows shipped" : "own copy of the data"));
  return js;
}

/// A worker process asks for its rows: stream them.
void ship_rows(self_ptr self, int32_t r) {
  auto& st = self->state;
  if (r < 0 || static_cast<size_t>(r) >= st.nodes.size() || !st.nodes[r]
      || !st.setup.train || st.started)
    return;
  spawn_shipper(self, r, st.nodes[r], shards_of(self, r));
}

/// Refuses the worker process holding rank `r` at `ready`, which frees the
/// rank for another.
caf::error refuse_rank(self_ptr self, int32_t r, errc code,
                       const std::string& why) {
  auto& st = self->state;
  fmt::print(stderr, "dml-node: refused worker rank {}: {}\n", r, why);
  drop_link(self, r);
  self->demonitor(st.nodes[r]);
  st.watched.erase(st.nodes[r].address());
  st.nodes[r] = nullptr;
  st.reserved[r] = false;
  return make_caf_error(code, why);
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
    return refuse_rank(self, r, errc::bad_value, msg);
  }
  if (auto i = st.link_tokens.find(r);
      i != st.link_tokens.end() && st.links.count(r) == 0) {
    // The worker opened its tensor link before saying ready.
    auto token = i->second;
    auto link = st.setup.links->accept(
      token, link_clock::now() + std::chrono::seconds(10));
    if (!link)
      return refuse_rank(self, r, errc::peer_lost, link.err().message());
    auto floats = st.setup.instance->num_params();
    // Workers on this host share memory for the tensors; the others (and
    // any whose segment cannot be mapped) use the socket.
    std::string how = "TCP";
    if (st.setup.shared_memory) {
      if (auto err = (*link)->map_shared(floats))
        how = fmt::format("TCP; {}", err.message());
      else
        how = "shared memory";
    }
    st.out->note(fmt::format("worker rank {}: tensor link from {} ({})", r,
                             (*link)->peer(), how));
    start_master_side(**link, self, r, token, floats);
    st.links[r] = std::shared_ptr<tensor_link>{std::move(*link)};
  }
  st.workers[r] = std::move(worker);
  admit_or_start(self, r);
  return true;
}

/// A monitored member (worker process or local shard-worker, aggregator,
/// data shipper) went away.
void on_down(self_ptr self, const caf::down_msg& msg) {
  auto& st = self->state;
  if (msg.source == st.ckpt_writer) {
    st.ckpt_writer = nullptr;
    if (msg.reason)
      st.out->note("warning: checkpoint not written: " + describe(msg.reason));
    if (st.ckpt_due && !st.training_done) {
      st.ckpt_due = false;
      write_checkpoint_in_background(self);
    }
    return;
  }
  if (auto i = st.shippers.find(msg.source); i != st.shippers.end()) {
    auto r = i->second;
    st.shippers.erase(i);
    if (msg.reason) {
      lose_worker(self, r, "shipping rows failed: " + describe(msg.reason));
      return;
    }
    if (st.awaiting.count(r) > 0 && --st.awaiting[r] == 0) {
      st.awaiting.erase(r);
      st.out->note(fmt::format("rows of adopted shards arrived at rank {} "
                               "in {:.3f} s",
                               r, seconds_since(st.ship_start[r])));
      st.ship_start.erase(r);
      issue_if_idle(self);
    }
    return;
  }
  st.watched.erase(msg.source);
  if (st.stopping) {
    if (st.watched.empty())
      self->quit();
    return;
  }
  auto why = "down (" + describe(msg.reason) + ")";
  for (size_t r = 0; r < st.nodes.size(); ++r)
    if ((st.nodes[r] && st.nodes[r].address() == msg.source)
        || (st.workers[r] && st.workers[r].address() == msg.source)) {
      lose_worker(self, static_cast<int32_t>(r), why);
      return;
    }
  for (size_t g = 0; g < st.aggregators.size(); ++g)
    if (st.aggregators[g] && st.aggregators[g].address() == msg.source) {
      lose_aggregator(self, g, why);
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
  st0.partial.assign(st0.setup.spec.workers, false);
  st0.route.assign(st0.setup.spec.workers, -1);
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
        auto rank = st.started ? add_rank(self) : free_rank(self);
        if (rank < 0)
          return make_caf_error(errc::bad_config, "master: enough workers");
        st.reserved[rank] = true;
        self->monitor(member);
        st.workers[rank] = std::move(member);
        admit_or_start(self, rank);
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
    [=](watchdog_atom) { watchdog(self); },
    [=](link_atom, int32_t rank, grad_msg& msg) {
      on_linked_reply(self, rank, msg);
    },
    [=](link_atom, int32_t rank, uint64_t token, const std::string& why) {
      auto& st = self->state;
      auto i = st.link_tokens.find(rank);
      if (i == st.link_tokens.end() || i->second != token)
        return; // an old link
      if (st.stopping || !st.done.pending()) {
        st.links.erase(rank); // ending anyway: the monitor sees it go
        return;
      }
      lose_worker(self, rank, "down (" + why + ")");
    },
    [=](tick_atom, uint64_t id) {
      auto& st = self->state;
      if (!st.waiting || id != st.wait_id || !st.done.pending())
        return;
      auto saved = save_model(self);
      auto why = fmt::format("only {} live workers, --min-workers is {}, and "
                             "none joined within {} s{}",
                             live_ranks(self).size(),
                             st.setup.recovery.min_workers,
                             st.setup.recovery.join_timeout.count() / 1000.0,
                             write_checkpoint(self));
      if (saved)
        why += "; saving the model failed: " + saved.message();
      fail(self, make_caf_error(errc::timeout, why));
    },
    [=](cancel_atom) {
      auto& st = self->state;
      auto saved = save_model(self);
      auto why = std::string{"interrupted"};
      if (!st.setup.model_out.empty() && !st.params)
        why += " before training; no model to save";
      else if (!st.setup.model_out.empty())
        why += saved ? "; saving the model failed: " + saved.message()
                     : "; model saved to " + st.setup.model_out;
      if (st.started && !st.setup.recovery.checkpoint_dir.empty())
        why += write_checkpoint(self);
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
