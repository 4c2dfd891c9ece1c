#include "apps/node_options.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "actors/remote.hpp"

namespace dml {

expected<std::vector<size_t>> parse_layers(const std::string& text) {
  std::vector<size_t> result;
  if (text.empty())
    return result;
  if (text.front() == ',' || text.back() == ',')
    return make_error(errc::bad_value,
                      fmt::format("--hidden: '{}' is not a list of positive "
                                  "layer sizes such as 128,64",
                                  text));
  std::stringstream ss{text};
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    errno = 0;
    auto v = std::strtoull(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || v == 0 || item[0] == '-')
      return make_error(errc::bad_value,
                        fmt::format("--hidden: '{}' is not a list of positive "
                                    "layer sizes such as 128,64",
                                    text));
    result.push_back(static_cast<size_t>(v));
  }
  return result;
}

namespace {

/// Whether `opt` is on the command line, by any of its names.
bool on_command_line(const CLI::Option& opt, int argc,
                     const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--")
      break;
    if (arg.size() > 1 && arg[0] == '-'
        && opt.check_name(arg.substr(0, arg.find('='))))
      return true;
  }
  return false;
}

/// The one-line message for a CLI11 error; one about a config file names
/// the file and the key.
std::string parse_error_text(const CLI::ParseError& e, const CLI::App& app,
                             const CLI::Option& config, int argc,
                             const char* const* argv) {
  std::string what = e.what();
  // "--epochs: At Most 1 required but received 2"
  auto twice = what.find(": At Most 1 required but received");
  if (twice != std::string::npos)
    return what.substr(0, twice) + ": given more than once";
  if (e.get_name() == "FileError" && config.count() > 0)
    return fmt::format("--config {}: cannot read it (missing, unreadable or "
                       "a folder)",
                       config.results().front());
  if (config.count() == 0 || e.get_name() == "RequiredError")
    return what;
  if (e.get_name() != "ConfigError") {
    // A bad value from the file (its flag, by none of its names, is not on
    // the command line): name the file too.
    auto at = what.find("--");
    if (at == std::string::npos)
      return what;
    auto* opt = app.get_option_no_throw(
      what.substr(at, what.find_first_of(" :=", at) - at));
    if (opt == nullptr || on_command_line(*opt, argc, argv))
      return what;
    return fmt::format("--config {}: {}", config.results().front(), what);
  }
  // CLI11 says "INI was not able to parse KEY"; a section header comes as
  // "NAME.++".
  const std::string prefix = "INI was not able to parse ";
  if (what.rfind(prefix, 0) != 0)
    return fmt::format("--config {}: {}", config.results().front(), what);
  auto key = what.substr(prefix.size());
  const std::string section = ".++";
  if (key.size() > section.size()
      && key.compare(key.size() - section.size(), section.size(), section) == 0)
    return fmt::format("--config {}: unknown section [{}] (keys go at the "
                       "top, named like the long flags)",
                       config.results().front(),
                       key.substr(0, key.size() - section.size()));
  return fmt::format("--config {}: unknown key '{}' (keys are named like the "
                     "long flags, e.g. batch-size)",
                     config.results().front(), key);
}

/// A whole number from 0 to `most`, digits only: CLI11 would read "-3"
/// into an unsigned flag as a huge number, and saturate one too large.
CLI::Validator whole_number(uint64_t most) {
  return CLI::Validator(
    [most](std::string& text) -> std::string {
      auto bad = [&] {
        return fmt::format("'{}' is no whole number from 0 to {}", text, most);
      };
      if (text.empty()
          || text.find_first_not_of("0123456789") != std::string::npos)
        return bad();
      errno = 0;
      auto v = std::strtoull(text.c_str(), nullptr, 10);
      if (errno != 0 || v > most)
        return bad();
      return {};
    },
    "", "whole number");
}

/// Flags that only mean something with a setting of another flag.
struct needs_setting {
  const char* flag;
  const char* other;
  const char* value;
};

/// The flags that define the job (its `job_spec`), each named like its key
/// in the spec's JSON (without the dashes, '-' as '_').
const std::vector<const char*>& job_flags() {
  static const std::vector<const char*> flags = {
    "--train",           "--test",     "--format",     "--label-column",
    "--standardize",     "--task",     "--model",      "--hidden",
    "--activation",      "--l2",       "--optimizer",  "--lr",
    "--momentum",        "--nesterov", "--schedule",   "--lr-decay",
    "--lr-decay-epochs", "--min-lr",   "--batch-size", "--epochs",
    "--shards",          "--seed",     "--workers",    "--aggregators"};
  return flags;
}

/// The flags that only some roles use, with those roles. A worker or an
/// aggregator takes the job spec from the master, so the training flags
/// belong to the master (or local mode) only.
const std::vector<
  std::pair<std::vector<const char*>, std::vector<const char*>>>&
role_flags() {
  static const std::vector<
    std::pair<std::vector<const char*>, std::vector<const char*>>>
    table = {
      {{"--train",
        "--standardize",
        "--task",
        "--model",
        "--hidden",
        "--activation",
        "--l2",
        "--optimizer",
        "--lr",
        "--momentum",
        "--nesterov",
        "--schedule",
        "--lr-decay",
        "--lr-decay-epochs",
        "--min-lr",
        "--epochs",
        "--batch-size",
        "--shards",
        "--seed",
        "--workers",
        "--aggregators",
        "--model-out",
        "--min-workers",
        "--join-timeout",
        "--evaluator-type",
        "--observer"},
       {"local", "master"}},
      {{"--checkpoint-dir", "--checkpoint-every", "--checkpoint-keep",
        "--resume"},
       {"local", "master"}},
      {{"--test", "--format", "--label-column", "--metrics-out"},
       {"local", "master", "eval"}},
      {{"--model-in", "--predictions-out"}, {"eval"}},
      {{"--aggregator-type"}, {"local", "aggregator"}},
      {{"--listen", "--port-file", "--tensor-link", "--link-port"}, {"master"}},
      {{"--master", "--connect-timeout"}, {"worker", "aggregator"}},
      {{"--data", "--reconnect-timeout"}, {"worker"}},
      {{"--inject"}, {"local", "worker"}},
      {{"--threads"}, {"local", "master", "worker", "aggregator"}},
      {{"--heartbeat", "--peer-timeout", "--app-id"},
       {"master", "worker", "aggregator"}},
      {{"--step-timeout"}, {"local", "master", "worker", "aggregator"}},
    };
  return table;
}

/// Whether `flag` was given (on the command line or in a config file); a
/// switch such as --standardize only when set, so that `standardize =
/// false` in a config file shared by every role is no error.
bool given(const CLI::App& app, const char* flag) {
  auto* opt = app.get_option(flag);
  if (opt->count() == 0)
    return false;
  if (opt->get_type_name().empty()) // a switch
    return opt->as<bool>();
  return true;
}

/// An error naming the first flag on the command line of a role that would
/// ignore it. A config file may hold the keys of every role (one file for
/// the whole cluster): a role takes what it uses from it.
error check_roles(const CLI::App& app, const std::string& role, int argc,
                  const char* const* argv) {
  for (auto& [flags, roles] : role_flags()) {
    if (std::find(roles.begin(), roles.end(), role) != roles.end())
      continue;
    for (auto* flag : flags) {
      if (!given(app, flag)
          || !on_command_line(*app.get_option(flag), argc, argv))
        continue;
      std::string list;
      for (size_t i = 0; i < roles.size(); ++i)
        list += std::string{i == 0                    ? ""
                              : i + 1 == roles.size() ? " or "
                                                      : ", "}
          + roles[i];
      return make_error(errc::bad_config,
                        fmt::format("{}: only for --role {}, not {}", flag,
                                    list, role));
    }
  }
  return {};
}

} // namespace

expected<node_options> parse_node_options(int argc, const char* const* argv) {
  node_options o;
  auto& s = o.spec;
  // A config file's `hidden = 64,32` arrives as two values; the command
  // line's `--hidden 64,32` as one (checked whole, empty items included).
  std::vector<std::string> hidden;
  std::string activation_name = "relu";
  std::string optimizer_name = "sgd";
  std::string schedule_name = "constant";
  CLI::App app{"dml-node: data-parallel training on CAF actors", "dml-node"};
  auto* config = app.set_config("--config", "",
                                "Read flags from a file (INI or TOML keys "
                                "named like the long flags)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app
    .add_option("--role,-r", o.role, "master, worker, aggregator, local, eval")
    ->required()
    ->check(CLI::IsMember({"master", "worker", "aggregator", "local", "eval"}));
  app.add_option("--train", s.train_path, "Training data (IDX, CSV, LIBSVM)");
  app.add_option("--test", s.test_path,
                 "Test data, evaluated after each epoch");
  app.add_option("--format", s.format, "auto, idx, csv, libsvm")
    ->check(CLI::IsMember({"auto", "idx", "csv", "libsvm"}));
  app.add_option("--label-column", s.label_column,
                 "CSV: name of the target column (default: the last)");
  app.add_flag("--standardize", s.standardize,
               "Standardize features with training statistics");
  app.add_option("--task", s.task, "auto, classification, regression")
    ->check(CLI::IsMember({"auto", "classification", "regression"}));
  app.add_option("--model", s.model, "linear, logistic, softmax, mlp, ...");
  app.add_option("--hidden", hidden, "MLP hidden layers, e.g. 128,64");
  app.add_option("--activation", activation_name, "MLP activation: relu, tanh")
    ->check(CLI::IsMember({"relu", "tanh"}));
  app.add_option("--l2", s.l2, "L2 penalty on weights");
  app.add_option("--optimizer", optimizer_name, "sgd, momentum, adam")
    ->check(CLI::IsMember({"sgd", "momentum", "adam"}));
  app.add_option("--lr", s.opt.lr, "Learning rate");
  app.add_option("--momentum", s.opt.momentum, "Momentum coefficient");
  app.add_flag("--nesterov", s.opt.nesterov, "Nesterov momentum");
  app.add_option("--schedule", schedule_name, "constant, step, cosine")
    ->check(CLI::IsMember({"constant", "step", "cosine"}));
  app.add_option("--lr-decay", s.opt.decay, "Step schedule: factor");
  app.add_option("--lr-decay-epochs", s.opt.decay_epochs,
                 "Step schedule: epochs between decays");
  app.add_option("--min-lr", s.opt.min_lr, "Cosine schedule: final rate");
  app.add_option("--epochs", s.epochs, "Passes over the training data");
  app.add_option("--batch-size", s.batch_size,
                 "Global minibatch rows per step");
  app.add_option("--shards", s.shards, "Shards (0: 4 per worker)");
  app.add_option("--seed", s.seed, "Seed of initialization and shuffles");
  app.add_option("--workers", s.workers, "Shard-workers");
  app.add_option("--aggregators", s.aggregators,
                 "Aggregators (0: the master aggregates)");
  app.add_option("--model-out", o.model_out, "Save the trained model here");
  app.add_option("--metrics-out", o.metrics_out, "JSON Lines metrics file");
  app.add_option("--model-in", o.model_in, "eval: the model to evaluate");
  app.add_option("--predictions-out", o.predictions_out,
                 "eval: one prediction per test row");
  app.add_option("--threads", o.threads, "Scheduler threads (0: one per core)");
  auto* step_timeout = app.add_option(
    "--step-timeout", o.step_timeout_ms,
    "Deadline of one step in milliseconds (default: adapts to the observed "
    "step time: 20x the mean, at least 1000)");
  app.add_option("--min-workers", o.min_workers,
                 "Fewest live workers to go on with (default 1)");
  app.add_option("--join-timeout", o.join_timeout_ms,
                 "Milliseconds to wait for workers to join when fewer than "
                 "--min-workers are left (default 60000)");
  app.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "Write checkpoints into this folder");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "Steps between checkpoints (default 100 with "
                 "--checkpoint-dir)");
  app.add_option("--checkpoint-keep", o.checkpoint_keep,
                 "Newest checkpoints to keep (default 3)");
  app.add_option("--resume", o.resume_dir,
                 "Resume from the newest valid checkpoint in this folder");
  app.add_option("--reconnect-timeout", o.reconnect_timeout_ms,
                 "worker: milliseconds to keep trying to rejoin a master "
                 "that went away (0: exit at once; default 30000)");
  std::vector<std::string> inject;
  app.add_option("--inject", inject,
                 "local, worker: inject faults, e.g. kill:rank=2,step=40 "
                 "hang:rank=1,step=10,ms=3000 delay:rank=1,ms=20 "
                 "drop-gradient:rank=0,step=7 kill-aggregator:rank=0,step=5 "
                 "(repeatable; ';' separates)");
  app.add_option("--aggregator-type", o.aggregator_type,
                 "Registered aggregator actor to spawn");
  app.add_option("--evaluator-type", o.evaluator_type,
                 "Registered evaluator actor to spawn");
  app
    .add_option("--observer", o.observers,
                "Registered observer actor (name or name:arg), repeatable")
    ->delimiter(',');
  app.add_option("--listen", o.listen,
                 "master: HOST:PORT to listen on (port 0: any free port)");
  app.add_option("--master", o.master,
                 "worker, aggregator: the master's "
                 "HOST:PORT");
  app.add_option("--data", o.data_path,
                 "worker: a local copy of the training data (checked by "
                 "fingerprint); default: the master ships the rows");
  app.add_option("--port-file", o.port_file,
                 "master: write the port it listens on to this file");
  std::string tensor_link = "on";
  app
    .add_option("--tensor-link", tensor_link,
                "master: carry parameters and gradients to worker processes "
                "on a plain TCP connection of their own, through shared "
                "memory for workers on this host (on, default), always on "
                "the socket (tcp), or in the CAF messages (off)")
    ->check(CLI::IsMember({"on", "tcp", "off"}));
  app.add_option("--link-port", o.link_port,
                 "master: port of the tensor links (default 0: any free "
                 "port, on the --listen host)");
  app.add_option("--connect-timeout", o.connect_timeout_ms,
                 "worker, aggregator: milliseconds to keep trying to reach "
                 "the master");
  app.add_option("--heartbeat", o.heartbeat_ms,
                 "Milliseconds between heartbeats to peers (0: none)");
  app.add_option("--peer-timeout", o.peer_timeout_ms,
                 "Milliseconds without data before a peer counts as lost "
                 "(0: never)");
  app.add_option("--app-id", o.app_id,
                 "Protocol tag peers must share (default: this build's "
                 "dml-protocol-N; set only to test mismatched builds)");
  app.add_flag("--quiet,-q", o.quiet, "Print nothing but errors");
  // Whole numbers, each with a bound that keeps a job possible.
  constexpr uint64_t ms = (uint64_t{1} << 31) - 1; // 24.8 days
  const std::pair<const char*, uint64_t> whole[] = {
    {"--epochs", 1000000},
    {"--batch-size", 1000000000},
    {"--shards", 1000000},
    {"--seed", UINT64_MAX},
    {"--workers", 4096},
    {"--aggregators", 4096},
    {"--threads", 256},
    {"--lr-decay-epochs", 1000000},
    {"--step-timeout", ms},
    {"--min-workers", 4096},
    {"--join-timeout", ms},
    {"--checkpoint-every", 1000000000},
    {"--checkpoint-keep", 1000000},
    {"--reconnect-timeout", ms},
    {"--link-port", 65535},
    {"--connect-timeout", ms},
    {"--heartbeat", ms},
    {"--peer-timeout", ms},
  };
  for (auto& [flag, most] : whole)
    app.get_option(flag)->check(whole_number(most));
  // "--flag=" has no value; CLI11 would take the next argument for it.
  int hidden_given = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--")
      break; // what follows are no flags (and CLI11 refuses them)
    if (arg == "--hidden" || arg.rfind("--hidden=", 0) == 0)
      if (++hidden_given > 1)
        return make_error(errc::bad_value,
                          "--hidden: given twice (one list such as 128,64)");
    if (arg.size() > 3 && arg.rfind("--", 0) == 0 && arg.back() == '='
        && arg.find('=') == arg.size() - 1)
      return make_error(errc::bad_value,
                        fmt::format("{}: empty value",
                                    arg.substr(0, arg.size() - 1)));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    o.help_printed = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return make_error(errc::bad_value,
                      parse_error_text(e, app, *config, argc, argv));
  }
  if (auto err = check_roles(app, o.role, argc, argv))
    return err;
  // An empty value ("" on the command line, `key =` in a config file) is
  // never a setting: it would stand for a default or for nothing.
  for (auto* opt : app.get_options()) {
    if (opt->count() == 0 || opt == config)
      continue;
    for (auto& value : opt->results())
      if (value.empty())
        return make_error(errc::bad_value,
                          fmt::format("{}: empty value", opt->get_name()));
  }
  const needs_setting needs[] = {
    {"--momentum", "--optimizer", "momentum"},
    {"--nesterov", "--optimizer", "momentum"},
    {"--lr-decay", "--schedule", "step"},
    {"--lr-decay-epochs", "--schedule", "step"},
    {"--min-lr", "--schedule", "cosine"},
  };
  // The job's own settings: a worker takes them from the master (a shared
  // config file may hold them), a resumed job from its checkpoint (the
  // values are compared with it then).
  bool job_here = o.trains() && app.get_option("--resume")->count() == 0;
  for (auto& n : needs) {
    auto* other = app.get_option(n.other);
    if (job_here && given(app, n.flag)
        && (other->count() == 0 || other->as<std::string>() != n.value))
      return make_error(errc::bad_config,
                        fmt::format("{}: only with {} {}", n.flag, n.other,
                                    n.value));
  }
  // A resumed job is the checkpoint's; the job flags given are compared
  // with it once it is read (a different value is an error, not ignored).
  if (app.get_option("--resume")->count() > 0)
    for (auto* flag : job_flags())
      if (app.get_option(flag)->count() > 0)
        o.job_flags_given.emplace_back(flag);
  std::string hidden_text;
  for (auto& h : hidden)
    hidden_text += (hidden_text.empty() ? "" : ",") + h;
  auto layers = parse_layers(hidden_text);
  if (!layers)
    return layers.err();
  s.hidden = std::move(*layers);
  s.act = *parse_activation(activation_name);
  s.opt.kind = *parse_optimizer(optimizer_name);
  s.opt.schedule = *parse_schedule(schedule_name);
  // The job's data by absolute path: a checkpoint then resumes from any
  // working directory.
  if (o.trains())
    for (auto* path : {&s.train_path, &s.test_path})
      if (!path->empty())
        *path = std::filesystem::absolute(*path).lexically_normal().string();
  if (s.model == "mlp" && s.hidden.empty())
    s.hidden = {128};
  if (o.role == "eval") {
    if (o.model_in.empty())
      return make_error(errc::bad_config,
                        "--model-in: required for --role "
                        "eval");
    if (s.test_path.empty())
      return make_error(errc::bad_config, "--test: required for --role eval");
  } else if (o.trains()) {
    // With --resume the job spec comes from the checkpoint (checked then).
    if (o.resume_dir.empty())
      if (auto err = validate(s))
        return err;
  } else if (o.master.empty()) {
    return make_error(errc::bad_config,
                      "--master: required for --role " + o.role);
  } else {
    auto at = parse_endpoint(o.master, "--master");
    if (!at)
      return at.err();
    if (at->second == 0)
      return make_error(errc::bad_value,
                        fmt::format("--master: '{}' names port 0", o.master));
  }
  if (o.role == "master")
    if (auto at = parse_endpoint(o.listen, "--listen"); !at)
      return at.err();
  if (o.heartbeat_ms != 0 && o.peer_timeout_ms != 0
      && o.peer_timeout_ms <= 2 * o.heartbeat_ms)
    return make_error(errc::bad_config,
                      fmt::format("--peer-timeout: {} ms must exceed twice "
                                  "--heartbeat ({} ms)",
                                  o.peer_timeout_ms, o.heartbeat_ms));
  o.tensor_link = tensor_link != "off";
  o.shared_memory = tensor_link == "on";
  // Flags that a setting of this job makes meaningless.
  auto refuse = [](const char* flag, const std::string& why) {
    return make_error(errc::bad_config, fmt::format("{}: {}", flag, why));
  };
  if (given(app, "--label-column")
      && (s.format == "idx" || s.format == "libsvm"))
    return refuse("--label-column",
                  "only for CSV data, not --format " + s.format);
  if (o.role == "master" && !o.tensor_link && given(app, "--link-port"))
    return refuse("--link-port", "no tensor links with --tensor-link off");
  if (job_here) {
    if (o.role == "local" && s.aggregators == 0
        && given(app, "--aggregator-type"))
      return refuse("--aggregator-type", "no aggregators (--aggregators 0)");
    if (s.test_path.empty() && given(app, "--evaluator-type"))
      return refuse("--evaluator-type", "nothing to evaluate without --test");
    if (given(app, "--activation")
        && (s.model == "linear" || s.model == "logistic"
            || s.model == "softmax"))
      return refuse("--activation",
                    fmt::format("'{}' has no hidden layers", s.model));
  }
  o.step_timeout_given = step_timeout->count() > 0;
  if (o.step_timeout_ms == 0)
    return make_error(errc::bad_value, "--step-timeout: must be at least 1");
  std::string inject_text;
  for (auto& i : inject)
    inject_text += i + ";";
  auto faults = parse_faults(inject_text);
  if (!faults)
    return faults.err();
  o.faults = std::move(*faults);
  // In one process the ranks are known: a fault aimed past them would never
  // fire.
  if (job_here && o.role == "local")
    for (auto& f : o.faults) {
      bool agg = f.kind == fault_kind::kill_aggregator;
      auto count = agg ? s.aggregators : s.workers;
      if (f.rank < 0 || static_cast<uint32_t>(f.rank) >= count)
        return refuse("--inject",
                      fmt::format("{} rank {} does not exist ({} {})",
                                  agg ? "aggregator" : "worker", f.rank, count,
                                  agg ? "aggregators" : "workers"));
    }
  if (o.min_workers == 0)
    return make_error(errc::bad_value, "--min-workers: must be at least 1");
  if (o.min_workers > s.workers && o.resume_dir.empty() && o.trains())
    return make_error(errc::bad_config,
                      fmt::format("--min-workers: {} is more than --workers "
                                  "{}",
                                  o.min_workers, s.workers));
  for (auto* flag : {"--checkpoint-every", "--checkpoint-keep"})
    if (o.trains() && given(app, flag) && o.checkpoint_dir.empty())
      return make_error(errc::bad_config,
                        fmt::format("{}: needs --checkpoint-dir", flag));
  if (given(app, "--checkpoint-every") && o.checkpoint_every == 0)
    return make_error(errc::bad_value,
                      "--checkpoint-every: must be at least 1");
  if (!o.checkpoint_dir.empty() && o.checkpoint_every == 0)
    o.checkpoint_every = 100;
  if (o.checkpoint_keep == 0)
    return make_error(errc::bad_value, "--checkpoint-keep: must be at least 1");
  return o;
}

} // namespace dml
