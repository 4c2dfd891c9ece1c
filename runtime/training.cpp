#include "runtime/training.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <unistd.h>

#include "runtime/loaders.hpp"

namespace dml {

namespace {

expected<load_options> load_options_of(const job_spec& spec) {
  auto fmt_kind = parse_data_format(spec.format);
  if (!fmt_kind)
    return fmt_kind.err();
  load_options opts;
  opts.format = *fmt_kind;
  opts.label_column = spec.label_column;
  opts.classification = resolved_task(spec) == "classification";
  return opts;
}

} // namespace

expected<dataset> load_training_set(const job_spec& spec) {
  auto opts = load_options_of(spec);
  if (!opts)
    return opts.err();
  if (auto err = check_label_column(spec.train_path, *opts))
    return err;
  auto train = load_dataset(spec.train_path, *opts);
  if (train && train->rows == 0)
    return make_error(errc::bad_format,
                      fmt::format("{}: no rows", spec.train_path));
  return train;
}

expected<prepared_data> prepare_data(const job_spec& spec,
                                     bool with_fingerprint) {
  prepared_data result;
  auto opts_ok = load_options_of(spec);
  if (!opts_ok)
    return opts_ok.err();
  auto& opts = *opts_ok;
  bool cls = opts.classification;
  result.task = cls ? task_kind::classification : task_kind::regression;
  auto train = load_training_set(spec);
  if (!train)
    return train.err();
  if (with_fingerprint)
    result.fingerprint = fingerprint(*train);
  size_t classes = 0;
  if (cls) {
    classes = std::max<size_t>(2, count_classes(train->targets));
    if (auto err = check_labels(*train, classes))
      return err;
    if (spec.model == "logistic" && classes > 2)
      return make_error(errc::bad_config,
                        fmt::format("{}: has {} classes; 'logistic' is "
                                    "binary (labels 0 and 1), use 'softmax'",
                                    spec.train_path, classes));
  }
  std::shared_ptr<dataset> test;
  if (!spec.test_path.empty()) {
    auto test_opts = opts;
    if (train->sparse)
      test_opts.dimension = train->cols;
    auto t = load_dataset(spec.test_path, test_opts);
    if (!t)
      return t.err();
    if (t->cols != train->cols)
      return make_error(errc::shape_mismatch,
                        fmt::format("{}: has {} features, the training set "
                                    "{} has {}",
                                    spec.test_path, t->cols, spec.train_path,
                                    train->cols));
    if (cls) {
      if (auto err = check_labels(*t, classes))
        return err;
    }
    test = std::make_shared<dataset>(std::move(*t));
  }
  if (spec.standardize) {
    result.stdz = fit_standardizer(*train);
    if (auto err = apply_standardizer(result.stdz, *train))
      return err;
    if (test) {
      if (auto err = apply_standardizer(result.stdz, *test))
        return err;
    }
  }
  result.config = make_model_config(spec, train->cols, classes);
  // One step's activations: a few floats per row and unit of every layer,
  // plus the gathered rows when they are dense. Refused here, before an
  // allocation fails inside an actor.
  double units = static_cast<double>(result.config.outputs);
  for (auto h : result.config.hidden)
    units += static_cast<double>(h);
  auto rows = static_cast<double>(
    std::min<uint64_t>(spec.batch_size, train->rows));
  auto step_bytes = rows
    * (3 * units + (train->sparse ? 0.0 : static_cast<double>(train->cols)))
    * sizeof(float);
  auto memory = physical_memory_bytes();
  if (memory > 0 && step_bytes > memory / 4)
    return make_error(errc::bad_config,
                      fmt::format("--batch-size {}: a step of this model "
                                  "needs {:.1f} GiB of activations, more "
                                  "than fit in this machine's memory",
                                  spec.batch_size,
                                  step_bytes / (1024.0 * 1024.0 * 1024.0)));
  result.train = std::make_shared<const dataset>(std::move(*train));
  result.test = std::move(test);
  return result;
}

model_config make_model_config(const job_spec& spec, size_t inputs,
                               size_t classes) {
  model_config cfg;
  cfg.name = spec.model;
  cfg.inputs = inputs;
  cfg.hidden = spec.hidden;
  cfg.act = spec.act;
  if (classes == 0 || spec.model == "logistic")
    cfg.outputs = 1;
  else
    cfg.outputs = classes;
  return cfg;
}

double physical_memory_bytes() {
  auto pages = ::sysconf(_SC_PHYS_PAGES);
  auto page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0)
    return 0;
  return static_cast<double>(pages) * static_cast<double>(page);
}

uint32_t shard_count(const job_spec& spec, uint64_t rows) {
  uint64_t s = spec.shards != 0 ? spec.shards : uint64_t{4} * spec.workers;
  return static_cast<uint32_t>(std::max<uint64_t>(1, std::min(s, rows)));
}

double apply_step(const model& m, const job_spec& spec, gradient_sum& sum,
                  double progress, std::vector<float>& params,
                  optimizer_state& opt) {
  return apply_step(m, spec, sum, progress, params.data(), params.data(), opt);
}

double apply_step(const model& m, const job_spec& spec, gradient_sum& sum,
                  double progress, const float* in, float* out,
                  optimizer_state& opt) {
  if (spec.l2 <= 0) {
    const float* part = sum.values.data();
    return apply_step_fused(spec, &part, 1, sum.count, sum.loss, progress, in,
                            out, sum.values.size(), opt);
  }
  auto count = static_cast<double>(sum.count == 0 ? 1 : sum.count);
  auto scale = static_cast<float>(1.0 / count);
  for (auto& g : sum.values)
    g *= scale;
  auto penalty = m.add_l2(in, spec.l2, sum.values.data());
  auto lr = learning_rate(spec.opt, progress, spec.epochs);
  apply_update(spec.opt, lr, opt, in, out, sum.values.data(),
               sum.values.size());
  return sum.loss / count + penalty;
}

double apply_step_fused(const job_spec& spec, const float* const* parts,
                        size_t nparts, uint64_t count, double loss,
                        double progress, const float* in, float* out, size_t n,
                        optimizer_state& opt, half_runner* runner) {
  auto rows = static_cast<double>(count == 0 ? 1 : count);
  auto scale = static_cast<float>(1.0 / rows);
  auto lr = learning_rate(spec.opt, progress, spec.epochs);
  // Below this many parameters handing half over costs more than it saves.
  constexpr size_t min_split = size_t{1} << 15;
  if (runner == nullptr || n < min_split) {
    apply_update(spec.opt, lr, opt, in, out, parts, nparts, scale, n);
    return loss / rows;
  }
  auto t = ++opt.updates;
  auto half = n / 2 / 16 * 16;
  // `finish` returns only once the job ran, so it may refer to this frame.
  auto upper = std::make_shared<half_job>([&, t, half] {
    apply_update_part(spec.opt, lr, opt, t, in, out, parts, nparts, scale, half,
                      n);
  });
  runner->start(upper);
  apply_update_part(spec.opt, lr, opt, t, in, out, parts, nparts, scale, 0,
                    half);
  upper->finish();
  return loss / rows;
}

shard_computer::shard_computer(std::shared_ptr<const dataset> data,
                               uint64_t seed)
  : data_(std::move(data)), seed_(seed) {
  // nop
}

const std::vector<uint32_t>& shard_computer::order(uint64_t epoch,
                                                   const shard& s) {
  if (epoch != cached_epoch_) {
    orders_.clear();
    cached_epoch_ = epoch;
  }
  if (orders_.size() <= s.id)
    orders_.resize(s.id + 1);
  auto& o = orders_[s.id];
  if (o.empty() && s.size() > 0)
    o = shard_order(seed_, epoch, s.id, s.size());
  return o;
}

void shard_computer::place(uint32_t id, uint64_t first) {
  if (base_.size() <= id)
    base_.resize(id + 1, -1);
  base_[id] = static_cast<int64_t>(first);
  prepared_ = false;
}

bool shard_computer::holds(uint32_t id) const noexcept {
  return base_.empty() || (id < base_.size() && base_[id] >= 0)
    || (id < adopted_.size() && adopted_[id]);
}

void shard_computer::adopt(uint32_t id, std::shared_ptr<const dataset> rows) {
  if (adopted_.size() <= id)
    adopted_.resize(id + 1);
  adopted_[id] = std::move(rows);
  prepared_ = false;
}

error shard_computer::gather(uint64_t epoch, const std::vector<row_span>& spans,
                             const std::vector<shard>& shards) {
  prepared_ = false;
  batch_ = batch_view{};
  rows_.clear();
  sources_.clear();
  bool mixed = false;
  for (auto& sp : spans) {
    if (sp.shard >= shards.size())
      return make_error(errc::protocol_violation,
                        fmt::format("no shard {}", sp.shard));
    auto& s = shards[sp.shard];
    if (sp.offset > s.size() || sp.count > s.size() - sp.offset)
      return make_error(errc::protocol_violation,
                        fmt::format("rows {}+{} outside shard {} of {} rows",
                                    sp.offset, sp.count, sp.shard, s.size()));
    const dataset* src = data_.get();
    uint64_t first = s.begin;
    if (sp.shard < adopted_.size() && adopted_[sp.shard]) {
      src = adopted_[sp.shard].get();
      first = 0;
      mixed = true;
    } else if (!base_.empty()) {
      if (sp.shard >= base_.size() || base_[sp.shard] < 0)
        return make_error(errc::protocol_violation,
                          fmt::format("shard {} is not held here", sp.shard));
      first = static_cast<uint64_t>(base_[sp.shard]);
    }
    if (first + s.size() > src->rows)
      return make_error(errc::protocol_violation,
                        fmt::format("shard {} lies outside the {} rows held",
                                    sp.shard, src->rows));
    span_rows(sp, first, order(epoch, s), rows_);
    sources_.resize(rows_.size(), src);
  }
  if (!rows_.empty())
    batch_ = mixed ? buf_.gather(sources_.data(), rows_.data(), rows_.size())
                   : buf_.gather(*data_, rows_.data(), rows_.size());
  return {};
}

void shard_computer::prepare(uint64_t epoch, const std::vector<row_span>& spans,
                             const std::vector<shard>& shards) {
  if (gather(epoch, spans, shards))
    return;
  prepared_ = true;
  prepared_epoch_ = epoch;
  prepared_spans_ = spans;
}

error shard_computer::compute(model& m, const float* params, uint64_t epoch,
                              const std::vector<row_span>& spans,
                              const std::vector<shard>& shards,
                              gradient_sum& out) {
  out.values.resize(m.num_params());
  return compute_to(m, params, epoch, spans, shards, out, out.values.data());
}

error shard_computer::compute_to(model& m, const float* params, uint64_t epoch,
                                 const std::vector<row_span>& spans,
                                 const std::vector<shard>& shards,
                                 gradient_sum& out, float* grad) {
  used_prepared_ = prepared_ && prepared_epoch_ == epoch
    && prepared_spans_ == spans;
  prepared_ = false;
  if (!used_prepared_)
    if (auto err = gather(epoch, spans, shards))
      return err;
  out.count = batch_.rows;
  if (batch_.rows == 0) {
    std::fill(grad, grad + m.num_params(), 0.0f);
    out.loss = 0;
    return {};
  }
  out.loss = m.loss_and_gradient(params, batch_, grad);
  return {};
}

expected<train_outcome> train_single_threaded(
  const job_spec& spec, const prepared_data& data,
  const model_registry& registry,
  const std::function<void(const epoch_report&)>& on_epoch) {
  using clock = std::chrono::steady_clock;
  auto made = registry.make(data.config);
  if (!made)
    return made.err();
  auto& m = **made;
  train_outcome out;
  auto params = m.init(spec.seed);
  auto opt = make_optimizer_state(spec.opt, params.size());
  auto rows = data.train->rows;
  shard_plan plan{rows, shard_count(spec, rows)};
  plan.assign_round_robin({0});
  shard_computer worker{data.train, spec.seed};
  gradient_sum grad;
  auto quota = spec.batch_size;
  for (uint32_t epoch = 0; epoch < spec.epochs; ++epoch) {
    plan.start_epoch();
    auto t0 = clock::now();
    double loss_sum = 0;
    uint64_t epoch_steps = 0;
    while (!plan.epoch_done()) {
      auto spans = plan.take(0, quota);
      if (auto err = worker.compute(m, params.data(), epoch, spans,
                                    plan.shards(), grad))
        return err;
      loss_sum += grad.loss;
      auto progress = static_cast<double>(out.samples)
        / static_cast<double>(rows);
      auto used = grad.count;
      apply_step(m, spec, grad, progress, params, opt);
      plan.commit(spans);
      out.samples += used;
      ++out.steps;
      ++epoch_steps;
    }
    auto secs = std::chrono::duration<double>(clock::now() - t0).count();
    out.train_seconds += secs;
    epoch_report rep;
    rep.epoch = epoch + 1;
    rep.steps = out.steps;
    rep.samples = out.samples;
    rep.train_loss = loss_sum / static_cast<double>(rows);
    rep.train_seconds = secs;
    if (data.test) {
      rep.has_test = true;
      rep.test = evaluate(m, params.data(), *data.test);
    }
    out.epochs.push_back(rep);
    if (on_epoch)
      on_epoch(rep);
  }
  out.model.config = data.config;
  out.model.task = data.task;
  out.model.stdz = data.stdz;
  out.model.params = std::move(params);
  return out;
}

} // namespace dml
