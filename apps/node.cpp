#include "apps/node.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <thread>

#include "actors/errors.hpp"
#include "actors/local.hpp"
#include "actors/messages.hpp"
#include "apps/node_options.hpp"
#include "runtime/loaders.hpp"
#include "runtime/metrics.hpp"
#include "runtime/model_file.hpp"
#include "runtime/report.hpp"
#include "runtime/sha256.hpp"

namespace dml {

namespace {

int fail(const error& err) {
  fmt::print(stderr, "dml-node: {}\n", err.message());
  return 1;
}

report_options report_options_of(const node_options& o) {
  report_options r;
  r.quiet = o.quiet;
  r.terminal = is_terminal(2);
  r.metrics_path = o.metrics_out;
  return r;
}

void configure(caf::actor_system_config& cfg, const node_options& o) {
  cfg.add_message_types<caf::id_block::dml>();
  add_error_category(cfg);
  auto threads = o.threads != 0 ? o.threads
                                 : std::max(1u,
                                            std::thread::hardware_concurrency());
  cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
}

int run_local_role(const node_options& o,
                   const model_registry& registry,
                   const actor_registry& actors) {
  auto data = prepare_data(o.spec);
  if (!data)
    return fail(data.err());
  if (!registry.contains(o.spec.model)) {
    auto probe = registry.make(data->config);
    return fail(probe.err());
  }
  local_options lo;
  lo.spec = o.spec;
  lo.model_out = o.model_out;
  lo.report = report_options_of(o);
  lo.step_timeout = std::chrono::milliseconds(o.step_timeout_ms);
  lo.aggregator_type = o.aggregator_type;
  lo.evaluator_type = o.evaluator_type;
  lo.observers = o.observers;
  caf::actor_system_config cfg;
  configure(cfg, o);
  caf::actor_system sys{cfg};
  auto result = run_local(sys, lo, *data, registry, actors);
  if (!result)
    return fail(result.err());
  return 0;
}

int run_eval_role(const node_options& o,
                  const model_registry& registry) {
  auto file = load_model_file(o.model_in);
  if (!file)
    return fail(file.err());
  auto made = registry.make(file->config);
  if (!made)
    return fail(made.err());
  auto& m = **made;
  if (file->params.size() != m.num_params())
    return fail(make_error(
      errc::shape_mismatch,
      fmt::format("{}: holds {} parameters, a {} of this shape needs {}",
                  o.model_in, file->params.size(), file->config.name,
                  m.num_params())));
  auto fmt_kind = parse_data_format(o.spec.format);
  if (!fmt_kind)
    return fail(fmt_kind.err());
  load_options lo;
  lo.format = *fmt_kind;
  lo.label_column = o.spec.label_column;
  lo.classification = file->task == task_kind::classification;
  auto test = load_dataset(o.spec.test_path, lo);
  if (!test)
    return fail(test.err());
  if (test->cols != file->config.inputs)
    return fail(make_error(
      errc::shape_mismatch,
      fmt::format("{}: has {} features, the model {} expects {}",
                  o.spec.test_path, test->cols, o.model_in,
                  file->config.inputs)));
  if (lo.classification) {
    auto classes = std::max<size_t>(2, file->config.outputs);
    if (auto err = check_labels(*test, classes))
      return fail(err);
  }
  if (auto err = apply_standardizer(file->stdz, *test))
    return fail(err);
  auto t0 = std::chrono::steady_clock::now();
  auto metrics = evaluate(m, file->params.data(), *test);
  if (!o.predictions_out.empty()) {
    std::vector<float> preds;
    predict_all(m, file->params.data(), *test, preds);
    std::string text;
    for (auto p : preds)
      text += lo.classification ? fmt::format("{}\n", static_cast<int>(p))
                                : fmt::format("{}\n", p);
    if (auto err = write_file_atomic(o.predictions_out, text))
      return fail(err);
  }
  auto r = report_options_of(o);
  r.task = file->task;
  reporter out{r};
  if (auto err = out.open())
    return fail(err);
  final_record rec;
  rec.evaluation_only = true;
  rec.has_test = true;
  rec.test = metrics;
  rec.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                             - t0)
                 .count();
  rec.params_sha256 = to_hex(sha256_of(
    file->params.data(), file->params.size() * sizeof(float)));
  out.final(rec);
  return 0;
}

} // namespace

int run_node(int argc, const char* const* argv, const model_registry& models,
             const actor_registry& actors) {
  auto opts = parse_node_options(argc, argv);
  if (!opts)
    return fail(opts.err()), 2;
  if (opts->help_printed)
    return 0;
  if (opts->role == "local")
    return run_local_role(*opts, models, actors);
  if (opts->role == "eval")
    return run_eval_role(*opts, models);
  return fail(make_error(errc::bad_config,
                         "--role " + opts->role
                           + ": not available in this build yet"));
}

} // namespace dml
