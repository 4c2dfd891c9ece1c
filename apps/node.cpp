#include "apps/node.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/aggregator.hpp"
#include "actors/errors.hpp"
#include "actors/local.hpp"
#include "actors/messages.hpp"
#include "actors/remote.hpp"
#include "actors/worker_node.hpp"
#include "apps/node_options.hpp"
#include "runtime/checkpoints.hpp"
#include "runtime/loaders.hpp"
#include "runtime/metrics.hpp"
#include "runtime/model_file.hpp"
#include "runtime/report.hpp"
#include "runtime/sha256.hpp"
#include "runtime/tensor_link.hpp"

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
  r.metrics_failed = std::make_shared<std::atomic<bool>>(false);
  return r;
}

/// The exit code of a role that ran to its end: 1 if a metrics record
/// could not be written (reported when it happened), else 0.
int metrics_exit_code(const report_options& r) {
  return r.metrics_failed && r.metrics_failed->load() ? 1 : 0;
}

void configure(caf::actor_system_config& cfg, const node_options& o) {
  cfg.add_message_types<caf::id_block::dml>();
  add_error_category(cfg);
  // Local mode: one thread per core, up to one per worker. A worker process
  // runs one shard-worker, a master or aggregator process control work
  // only: one scheduler thread each (beside CAF's network thread) is fastest
  // (MLP on loopback, 2 vCPUs: 89k samples/s against 65k with one per core).
  size_t threads = o.threads != 0 ? o.threads
    : o.role == "local"           ? default_threads(o.spec.workers)
                                  : 1;
  cfg.set("scheduler.max-threads", threads);
  // Deserialize arriving messages on the network thread instead of handing
  // them to a pool thread first: one thread hop less per message (96k
  // against 89k samples/s).
  if (o.role != "local")
    cfg.set("middleman.workers", size_t{0});
  // Eager polling pays in one process; processes that share cores (several
  // nodes on one machine) would only steal each other's CPU with it.
  if (o.role == "local")
    poll_eagerly(cfg);
  else
    cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
}

transport_options transport_of(const node_options& o) {
  transport_options t;
  t.heartbeat = std::chrono::milliseconds(o.heartbeat_ms);
  t.peer_timeout = std::chrono::milliseconds(o.peer_timeout_ms);
  t.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
  t.app_id = o.app_id;
  return t;
}

/// Turns SIGINT and SIGTERM into a `cancel_atom` to the master: a handler
/// writes to a pipe, a thread reads it and sends the message.
class signal_bridge {
public:
  signal_bridge(caf::actor target) : target_(std::move(target)) {
    if (::pipe(fds_) != 0)
      return;
    write_fd() = fds_[1];
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    thread_ = std::thread{[this] {
      char c = 0;
      while (::read(fds_[0], &c, 1) == 1 && c == 's')
        caf::anon_send(target_, cancel_atom_v);
    }};
  }

  ~signal_bridge() {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    write_fd() = -1;
    if (thread_.joinable()) {
      char c = 'q';
      (void)!::write(fds_[1], &c, 1);
      thread_.join();
    }
    ::close(fds_[0]);
    ::close(fds_[1]);
  }

private:
  static int& write_fd() {
    static int fd = -1;
    return fd;
  }

  static void on_signal(int) {
    char c = 's';
    if (write_fd() >= 0)
      (void)!::write(write_fd(), &c, 1);
  }

  caf::actor target_;
  int fds_[2] = {-1, -1};
  std::thread thread_;
};

/// Whether paths `a` and `b` name the same file (`data.csv` and
/// `./data.csv`, say).
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::equivalent(a, b, ec))
    return true;
  return std::filesystem::path{a}.lexically_normal()
    == std::filesystem::path{b}.lexically_normal();
}

/// An error if an output named by the flags could not be written: found
/// before training (once the data is read, so that a job that cannot start
/// leaves no folder behind), so that nothing trained is lost at the end.
error check_outputs(const node_options& o) {
  // The role's own outputs only: a config file may name those of others.
  auto& role = o.role;
  bool trains = o.trains();
  auto mine = [&](const std::string& path, bool used) {
    return used ? path : std::string{};
  };
  auto checkpoint_dir = mine(o.checkpoint_dir, trains);
  auto model_out = mine(o.model_out, trains);
  auto port_file = mine(o.port_file, role == "master");
  auto predictions_out = mine(o.predictions_out, role == "eval");
  auto metrics_out = mine(o.metrics_out, trains || role == "eval");
  // No output may be an input or another output: one would overwrite the
  // other.
  const std::pair<const std::string*, const char*> paths[] = {
    {&model_out, "--model-out"},     {&predictions_out, "--predictions-out"},
    {&port_file, "--port-file"},     {&metrics_out, "--metrics-out"},
    {&o.spec.train_path, "--train"}, {&o.spec.test_path, "--test"},
    {&o.model_in, "--model-in"},
  };
  // The first three are replaced atomically, the fourth appended to.
  constexpr size_t replaced = 3;
  constexpr size_t outputs = 4;
  for (size_t i = 0; i < outputs; ++i) {
    auto& [out, flag] = paths[i];
    if (out->empty())
      continue;
    for (size_t j = 0; j < std::size(paths); ++j)
      if (j != i && !paths[j].first->empty()
          && same_file(*out, *paths[j].first))
        return make_error(errc::bad_config,
                          fmt::format("{} {}: is also {}", flag, *out,
                                      paths[j].second));
  }
  // The folder first: an output may go into it.
  if (!checkpoint_dir.empty())
    if (auto err = make_output_folder(checkpoint_dir, "--checkpoint-dir"))
      return err;
  // Replaced atomically, so regular files only.
  for (size_t i = 0; i < replaced; ++i)
    if (!paths[i].first->empty())
      if (auto err = check_output_path(*paths[i].first, paths[i].second))
        return err;
  // Appended to as written: a pipe or /dev/stdout will do.
  if (!metrics_out.empty()) {
    std::error_code ec;
    auto st = std::filesystem::status(metrics_out, ec);
    if (std::filesystem::is_directory(st))
      return make_error(errc::io_error,
                        fmt::format("--metrics-out {}: is a folder",
                                    metrics_out));
    if (!std::filesystem::exists(st))
      if (auto err = check_output_path(metrics_out, "--metrics-out"))
        return err;
  }
  return {};
}

/// An error if a pluggable actor the role will spawn is not registered:
/// found before any data is read or any connection is made.
error check_actor_names(const node_options& o, const actor_registry& actors) {
  auto& role = o.role;
  if (role == "local" || role == "aggregator")
    if (auto err = actors.check(actor_kind::aggregator, o.aggregator_type))
      return err;
  if (o.trains()) {
    if (auto err = actors.check(actor_kind::evaluator, o.evaluator_type))
      return err;
    for (auto& text : o.observers)
      if (auto err = actors.check(actor_kind::observer,
                                  text.substr(0, text.find(':'))))
        return err;
  }
  return {};
}

/// An error if a job flag given with --resume differs from the job of the
/// checkpoint `path`: a resumed job keeps its spec.
error check_same_job(const node_options& o, const job_spec& saved,
                     const std::string& path) {
  auto given = nlohmann::json::parse(to_json(o.spec));
  auto kept = nlohmann::json::parse(to_json(saved));
  for (auto& flag : o.job_flags_given) {
    auto key = flag.substr(2);
    std::replace(key.begin(), key.end(), '-', '_');
    if ((key == "train" || key == "test")
        && same_file(given[key].get<std::string>(),
                     kept[key].get<std::string>()))
      continue;
    if (given[key] != kept[key]) {
      // Floats as the float they are (0.02, not 0.019999999552965164).
      auto text = [](const nlohmann::json& v) {
        return v.is_number_float()
          ? fmt::format("{}", static_cast<float>(v.get<double>()))
          : v.dump();
      };
      return make_error(errc::bad_config,
                        fmt::format("{}: {} differs from the job of {} ({}); "
                                    "a resumed job keeps its settings",
                                    flag, text(given[key]), path,
                                    text(kept[key])));
    }
  }
  return {};
}

/// With `--resume DIR`: loads the newest valid checkpoint (warning about
/// damaged ones) and makes its job spec the job's. Returns null without.
expected<std::shared_ptr<const checkpoint>> load_resume(node_options& o) {
  if (o.resume_dir.empty())
    return std::shared_ptr<const checkpoint>{};
  auto found = newest_checkpoint(o.resume_dir);
  if (!found)
    return found.err();
  for (auto& line : found->skipped)
    fmt::print(stderr, "dml-node: warning: {}\n", line);
  auto spec = job_spec_from_json(found->data.spec_json);
  if (!spec)
    return make_error(spec.err().code(),
                      found->path + ": job spec: " + spec.err().message());
  if (auto err = validate(*spec))
    return make_error(err.code(), found->path + ": " + err.message());
  if (auto err = check_same_job(o, *spec, found->path))
    return err;
  o.spec = std::move(*spec);
  if (!o.quiet)
    fmt::print(stderr, "dml-node: resuming from {}\n", found->path);
  return std::make_shared<const checkpoint>(std::move(found->data));
}

/// An error if `data` is not the data the checkpoint `resumed` (if any) was
/// trained on: its shard cursors would point into other rows.
error check_resumed_data(const std::shared_ptr<const checkpoint>& resumed,
                         const prepared_data& data, const std::string& train) {
  if (!resumed)
    return {};
  auto saved = data_fingerprint_of(resumed->spec_json);
  if (saved.empty() || data.fingerprint.empty() || saved == data.fingerprint)
    return {};
  return make_error(errc::bad_config,
                    fmt::format("--resume: {} is not the data the checkpoint "
                                "was trained on (fingerprint {}, the "
                                "checkpoint's {})",
                                train, data.fingerprint.substr(0, 16),
                                saved.substr(0, 16)));
}

/// Returns the options shared by the local and master roles (`resume`: the
/// checkpoint to start from, or null).
local_options local_options_of(const node_options& o,
                               std::shared_ptr<const checkpoint> resume) {
  local_options lo;
  lo.spec = o.spec;
  lo.model_out = o.model_out;
  lo.report = report_options_of(o);
  lo.step_timeout = std::chrono::milliseconds(o.step_timeout_ms);
  auto& r = lo.recovery;
  r.adaptive_timeout = !o.step_timeout_given;
  r.min_workers = o.min_workers;
  r.join_timeout = std::chrono::milliseconds(o.join_timeout_ms);
  r.checkpoint_dir = o.checkpoint_dir;
  r.checkpoint_every = o.checkpoint_every;
  r.checkpoint_keep = o.checkpoint_keep;
  r.resume = std::move(resume);
  r.faults = o.faults;
  return lo;
}

int run_master_role(node_options o, const model_registry& registry,
                    const actor_registry& actors) {
  auto resume = load_resume(o);
  if (!resume)
    return fail(resume.err());
  auto endpoint = parse_endpoint(o.listen, "--listen");
  if (!endpoint)
    return fail(endpoint.err());
  auto data = prepare_data(o.spec, true);
  if (!data)
    return fail(data.err());
  if (auto err = check_resumed_data(*resume, *data, o.spec.train_path))
    return fail(err);
  if (auto err = check_outputs(o))
    return fail(err);
  auto instance = registry.make(data->config);
  if (!instance)
    return fail(instance.err());
  auto lo = local_options_of(o, *resume);
  auto ms = make_master_setup(lo, *data,
                              std::shared_ptr<model>{std::move(*instance)});
  ms.train = data->train;
  ms.fingerprint = data->fingerprint;
  if (o.tensor_link) {
    auto links = link_listener::open(endpoint->first, o.link_port,
                                     protocol_version);
    if (!links) {
      // The flag that chose the port that could not be opened.
      auto flag = o.link_port != 0 ? fmt::format("--link-port {}", o.link_port)
                                   : fmt::format("--listen {}", o.listen);
      return fail(
        make_error(links.err().code(),
                   fmt::format("{}: {}", flag, links.err().message())));
    }
    ms.links = std::shared_ptr<link_listener>{std::move(*links)};
    ms.shared_memory = o.shared_memory;
  }
  caf::actor_system_config cfg;
  configure(cfg, o);
  configure_transport(cfg, transport_of(o));
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  std::vector<caf::actor> locals;
  auto boss = sys.spawn(master, std::move(ms));
  auto stop_locals = [&] {
    for (auto& a : locals)
      self->send(a, stop_atom_v);
    self->send(boss, stop_atom_v);
    self->wait_for(boss);
  };
  if (data->test) {
    actor_context ctx;
    ctx.spec = o.spec;
    ctx.test = data->test;
    auto m = registry.make(data->config);
    if (!m)
      return stop_locals(), fail(m.err());
    ctx.instance = std::shared_ptr<model>{std::move(*m)};
    auto ev = actors.spawn(actor_kind::evaluator, o.evaluator_type, sys, ctx);
    if (!ev)
      return stop_locals(), fail(ev.err());
    locals.push_back(*ev);
    self->send(boss, join_atom_v, *ev);
  }
  actor_context observed;
  observed.spec = lo.spec;
  auto observers = join_observers(sys, boss, actors, observed, o.observers);
  if (!observers)
    return stop_locals(), fail(observers.err());
  locals.insert(locals.end(), observers->begin(), observers->end());
  auto host = endpoint->first;
  // SO_REUSEADDR: a master restarted after a crash can listen on its port
  // again while connections of the old one linger in TIME_WAIT.
  auto port = sys.middleman().publish(
    boss, endpoint->second, host == "0.0.0.0" ? nullptr : host.c_str(), true);
  if (!port) {
    stop_locals();
    return fail(make_error(errc::io_error,
                           fmt::format("--listen {}: cannot listen: {}",
                                       o.listen, describe(port.error()))));
  }
  if (!o.port_file.empty()) {
    if (auto err = write_file_atomic(o.port_file, fmt::format("{}\n", *port)))
      return stop_locals(), fail(err);
  }
  if (!o.quiet)
    fmt::print(stderr,
               "master listening on {}:{}, waiting for {} workers and {} "
               "aggregators\n",
               host, *port, o.spec.workers, o.spec.aggregators);
  error failure;
  {
    signal_bridge signals{boss};
    self->request(boss, caf::infinite, run_atom_v)
      .receive([](std::string&) {},
               [&](caf::error& err) {
                 failure = make_error(errc::bad_config, describe(err));
               });
  }
  stop_locals();
  if (failure)
    return fail(failure);
  return metrics_exit_code(lo.report);
}

/// Starts a member process (worker or aggregator): parses `--master`, starts
/// the actor system with the transport settings, connects, then returns
/// `body(sys, master)`.
template <class Body>
int run_member(const node_options& o, Body body) {
  auto endpoint = parse_endpoint(o.master, "--master");
  if (!endpoint)
    return fail(endpoint.err());
  caf::actor_system_config cfg;
  configure(cfg, o);
  configure_transport(cfg, transport_of(o));
  caf::actor_system sys{cfg};
  auto boss = connect_with_retry(sys, endpoint->first, endpoint->second,
                                 transport_of(o));
  if (!boss)
    return fail(boss.err());
  return body(sys, *boss);
}

/// Runs a worker process: joins the master and serves until the job ends.
/// If the master goes away, keeps trying to reach it (a restarted master
/// resuming the job) for up to --reconnect-timeout and joins again.
int run_worker(const node_options& o, const model_registry& registry) {
  auto endpoint = parse_endpoint(o.master, "--master");
  if (!endpoint)
    return fail(endpoint.err());
  // The copy of the data is read once the master sent the job; a file that
  // cannot be opened is said now, not after waiting for the master.
  if (!o.data_path.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(o.data_path, ec)
        || ::access(o.data_path.c_str(), R_OK) != 0)
      return fail(make_error(errc::io_error,
                             fmt::format("--data {}: cannot read it (missing, "
                                         "unreadable or not a file)",
                                         o.data_path)));
  }
  caf::actor_system_config cfg;
  configure(cfg, o);
  auto transport = transport_of(o);
  configure_transport(cfg, transport);
  caf::actor_system sys{cfg};
  auto boss = connect_with_retry(sys, endpoint->first, endpoint->second,
                                 transport);
  if (!boss)
    return fail(boss.err());
  worker_node_options wo;
  wo.data_path = o.data_path;
  wo.master_host = endpoint->first;
  wo.models = &registry;
  wo.timeout = std::chrono::milliseconds(o.step_timeout_ms);
  wo.faults = o.faults;
  for (;;) {
    auto node = sys.spawn(worker_node, *boss, wo);
    caf::scoped_actor self{sys};
    self->monitor(node);
    caf::error reason;
    self->receive([&](caf::down_msg& msg) { reason = msg.reason; });
    if (!reason || reason == caf::exit_reason::normal)
      return 0;
    auto lost = reason.category() == caf::atom("dml")
      && reason.code() == static_cast<uint8_t>(errc::peer_lost);
    if (!lost || o.reconnect_timeout_ms == 0)
      return fail(make_error(errc::protocol_violation, describe(reason)));
    if (!o.quiet)
      fmt::print(stderr, "dml-node: {}; trying to rejoin for up to {} s\n",
                 describe(reason), o.reconnect_timeout_ms / 1000.0);
    transport.connect_timeout = std::chrono::milliseconds(
      o.reconnect_timeout_ms);
    boss = connect_with_retry(sys, endpoint->first, endpoint->second,
                              transport);
    if (!boss)
      return fail(
        make_error(errc::peer_lost,
                   fmt::format("lost the master and could not "
                               "rejoin within {} ms: {}",
                               o.reconnect_timeout_ms, boss.err().message())));
  }
}

int run_aggregator(const node_options& o, const actor_registry& actors,
                   caf::actor_system& sys, caf::actor boss) {
  // The job spec is the master's; an aggregator process knows only its
  // deadline when it starts.
  actor_context ctx;
  ctx.step_timeout = std::chrono::milliseconds(o.step_timeout_ms);
  auto made = actors.spawn(actor_kind::aggregator, o.aggregator_type, sys, ctx);
  if (!made)
    return fail(made.err());
  auto agg = *made;
  caf::scoped_actor self{sys};
  error failure;
  self
    ->request(boss, std::chrono::milliseconds(o.connect_timeout_ms),
              join_atom_v, member_info{"aggregator", protocol_version, {}}, agg)
    .receive([](int32_t) {},
             [&](caf::error& err) {
               failure = make_error(errc::bad_config, describe(err));
             });
  if (failure) {
    self->send(agg, stop_atom_v);
    return fail(failure);
  }
  self->monitor(agg);
  self->monitor(boss);
  for (;;) {
    caf::down_msg down;
    self->receive([&](caf::down_msg& msg) { down = std::move(msg); });
    if (down.source == agg.address()) {
      sys.registry().erase(agg.id()); // see worker_node.cpp: unpin
      return 0;
    }
    if (down.source == boss.address()) {
      self->send(agg, stop_atom_v);
      self->wait_for(agg);
      sys.registry().erase(agg.id());
      return fail(
        make_error(errc::protocol_violation,
                   "lost the master (" + describe(down.reason) + ")"));
    }
  }
}

int run_local_role(node_options o, const model_registry& registry,
                   const actor_registry& actors) {
  auto resume = load_resume(o);
  if (!resume)
    return fail(resume.err());
  // The data's fingerprint goes into checkpoints and is compared on resume.
  auto data = prepare_data(o.spec,
                           !o.checkpoint_dir.empty() || !o.resume_dir.empty());
  if (!data)
    return fail(data.err());
  if (auto err = check_resumed_data(*resume, *data, o.spec.train_path))
    return fail(err);
  if (auto err = check_outputs(o))
    return fail(err);
  if (!registry.contains(o.spec.model)) {
    auto probe = registry.make(data->config);
    return fail(probe.err());
  }
  auto lo = local_options_of(o, *resume);
  lo.aggregator_type = o.aggregator_type;
  lo.evaluator_type = o.evaluator_type;
  lo.observers = o.observers;
  caf::actor_system_config cfg;
  configure(cfg, o);
  caf::actor_system sys{cfg};
  auto result = run_local(sys, lo, *data, registry, actors);
  if (!result)
    return fail(result.err());
  return metrics_exit_code(lo.report);
}

int run_eval_role(const node_options& o, const model_registry& registry) {
  if (auto err = check_outputs(o))
    return fail(err);
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
  if (auto err = check_label_column(o.spec.test_path, lo))
    return fail(err);
  auto test = load_dataset(o.spec.test_path, lo);
  if (!test)
    return fail(test.err());
  if (test->cols != file->config.inputs)
    return fail(
      make_error(errc::shape_mismatch,
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
  rec.params_sha256 = params_sha256(file->params);
  out.final(rec);
  return metrics_exit_code(r);
}

int run_role(int argc, const char* const* argv, const model_registry& models,
             const actor_registry& actors) {
  auto opts = parse_node_options(argc, argv);
  if (!opts)
    return fail(opts.err()), 2;
  if (opts->help_printed)
    return 0;
  if (auto err = check_actor_names(*opts, actors))
    return fail(err);
  if (opts->role == "local")
    return run_local_role(*opts, models, actors);
  if (opts->role == "eval")
    return run_eval_role(*opts, models);
  if (opts->role == "master")
    return run_master_role(*opts, models, actors);
  if (opts->role == "worker")
    return run_worker(*opts, models);
  return run_member(*opts, [&](caf::actor_system& sys, caf::actor boss) {
    return run_aggregator(*opts, actors, sys, std::move(boss));
  });
}

} // namespace

int run_node(int argc, const char* const* argv, const model_registry& models,
             const actor_registry& actors) {
  // A reader that goes away (`--metrics-out /dev/stdout | head`) is a write
  // error reported in one line, not a silent death by SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  // What escapes the roles (memory exhausted while loading data, say) ends
  // in one line, not in std::terminate.
  try {
    return run_role(argc, argv, models, actors);
  } catch (const std::bad_alloc&) {
    return fail(make_error(errc::io_error,
                           "out of memory (the data or the model is larger "
                           "than this machine holds)"));
  } catch (const std::exception& e) {
    return fail(make_error(errc::io_error, e.what()));
  }
}

} // namespace dml
