#include "runtime/job_spec.hpp"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace dml {

using json = nlohmann::json;

expected<activation> parse_activation(const std::string& name) {
  if (name == "relu")
    return activation::relu;
  if (name == "tanh")
    return activation::tanh;
  return make_error(errc::bad_value,
                    "unknown activation '" + name + "' (known: relu, tanh)");
}

const char* to_string(activation x) noexcept {
  return x == activation::tanh ? "tanh" : "relu";
}

namespace {

json to_object(const job_spec& s) {
  json o = json::object();
  o["train"] = s.train_path;
  o["test"] = s.test_path;
  o["format"] = s.format;
  o["label_column"] = s.label_column;
  o["standardize"] = s.standardize;
  o["task"] = s.task;
  o["model"] = s.model;
  o["hidden"] = s.hidden;
  o["activation"] = to_string(s.act);
  o["l2"] = s.l2;
  o["optimizer"] = to_string(s.opt.kind);
  o["lr"] = s.opt.lr;
  o["momentum"] = s.opt.momentum;
  o["nesterov"] = s.opt.nesterov;
  o["beta1"] = s.opt.beta1;
  o["beta2"] = s.opt.beta2;
  o["epsilon"] = s.opt.epsilon;
  o["schedule"] = to_string(s.opt.schedule);
  o["lr_decay"] = s.opt.decay;
  o["lr_decay_epochs"] = s.opt.decay_epochs;
  o["min_lr"] = s.opt.min_lr;
  o["batch_size"] = s.batch_size;
  o["epochs"] = s.epochs;
  o["shards"] = s.shards;
  o["seed"] = s.seed;
  o["workers"] = s.workers;
  o["aggregators"] = s.aggregators;
  return o;
}

} // namespace

std::string to_json(const job_spec& s) {
  return to_object(s).dump();
}

std::string to_json(const job_spec& spec, const std::string& fingerprint) {
  auto o = to_object(spec);
  if (!fingerprint.empty())
    o["data_fingerprint"] = fingerprint;
  return o.dump();
}

std::string data_fingerprint_of(const std::string& spec_json) {
  auto o = json::parse(spec_json, nullptr, false);
  if (!o.is_object() || !o.contains("data_fingerprint")
      || !o["data_fingerprint"].is_string())
    return {};
  return o["data_fingerprint"].get<std::string>();
}

expected<job_spec> job_spec_from_json(const std::string& text) {
  auto o = json::parse(text, nullptr, false);
  if (o.is_discarded() || !o.is_object())
    return make_error(errc::bad_format, "job spec: not a JSON object");
  job_spec s;
  std::string act = "relu";
  std::string opt = "sgd";
  std::string sched = "constant";
  try {
    for (auto& [key, v] : o.items()) {
      if (key == "train")
        s.train_path = v.get<std::string>();
      else if (key == "test")
        s.test_path = v.get<std::string>();
      else if (key == "format")
        s.format = v.get<std::string>();
      else if (key == "label_column")
        s.label_column = v.get<std::string>();
      else if (key == "standardize")
        s.standardize = v.get<bool>();
      else if (key == "task")
        s.task = v.get<std::string>();
      else if (key == "model")
        s.model = v.get<std::string>();
      else if (key == "hidden")
        s.hidden = v.get<std::vector<size_t>>();
      else if (key == "activation")
        act = v.get<std::string>();
      else if (key == "l2")
        s.l2 = v.get<float>();
      else if (key == "optimizer")
        opt = v.get<std::string>();
      else if (key == "lr")
        s.opt.lr = v.get<float>();
      else if (key == "momentum")
        s.opt.momentum = v.get<float>();
      else if (key == "nesterov")
        s.opt.nesterov = v.get<bool>();
      else if (key == "beta1")
        s.opt.beta1 = v.get<float>();
      else if (key == "beta2")
        s.opt.beta2 = v.get<float>();
      else if (key == "epsilon")
        s.opt.epsilon = v.get<float>();
      else if (key == "schedule")
        sched = v.get<std::string>();
      else if (key == "lr_decay")
        s.opt.decay = v.get<float>();
      else if (key == "lr_decay_epochs")
        s.opt.decay_epochs = v.get<uint32_t>();
      else if (key == "min_lr")
        s.opt.min_lr = v.get<float>();
      else if (key == "batch_size")
        s.batch_size = v.get<uint64_t>();
      else if (key == "epochs")
        s.epochs = v.get<uint32_t>();
      else if (key == "shards")
        s.shards = v.get<uint32_t>();
      else if (key == "seed")
        s.seed = v.get<uint64_t>();
      else if (key == "workers")
        s.workers = v.get<uint32_t>();
      else if (key == "aggregators")
        s.aggregators = v.get<uint32_t>();
      else if (key == "data_fingerprint")
        continue; // a checkpoint's, read by data_fingerprint_of
      else
        return make_error(errc::bad_format,
                          "job spec: unknown key '" + key + "'");
    }
  } catch (const json::exception& e) {
    return make_error(errc::bad_format,
                      std::string{"job spec: wrong type: "} + e.what());
  }
  auto a = parse_activation(act);
  if (!a)
    return a.err();
  s.act = *a;
  auto k = parse_optimizer(opt);
  if (!k)
    return k.err();
  s.opt.kind = *k;
  auto sc = parse_schedule(sched);
  if (!sc)
    return sc.err();
  s.opt.schedule = *sc;
  return s;
}

std::string resolved_task(const job_spec& spec) {
  if (spec.task != "auto")
    return spec.task;
  return spec.model == "linear" ? "regression" : "classification";
}

error validate(const job_spec& s) {
  auto bad = [](const char* flag, std::string what) {
    return make_error(errc::bad_config, fmt::format("--{}: {}", flag, what));
  };
  if (s.train_path.empty())
    return bad("train", "no training data given");
  if (s.task != "auto" && s.task != "classification" && s.task != "regression")
    return bad("task",
               "must be auto, classification or regression, not '" + s.task
                 + "'");
  if (s.batch_size == 0)
    return bad("batch-size", "must be at least 1");
  if (s.epochs == 0)
    return bad("epochs", "must be at least 1");
  if (!(s.opt.lr > 0) || !std::isfinite(s.opt.lr))
    return bad("lr",
               fmt::format("must be a positive number, not {}", s.opt.lr));
  if (!(s.l2 >= 0) || !std::isfinite(s.l2))
    return bad("l2", fmt::format("must be >= 0, not {}", s.l2));
  if (!(s.opt.momentum >= 0 && s.opt.momentum < 1))
    return bad("momentum", "must be in [0, 1)");
  if (s.workers == 0)
    return bad("workers", "must be at least 1");
  if (s.aggregators > s.workers)
    return bad("aggregators",
               fmt::format("{} aggregators for {} workers: each aggregator "
                           "needs at least one worker",
                           s.aggregators, s.workers));
  if (s.shards != 0 && s.shards < s.workers)
    return bad("shards",
               fmt::format("{} shards for {} workers: need at least "
                           "one shard per worker",
                           s.shards, s.workers));
  if (s.batch_size < s.workers)
    return bad("batch-size",
               fmt::format("{} rows per step cannot be split over {} workers",
                           s.batch_size, s.workers));
  for (auto h : s.hidden)
    if (h == 0)
      return bad("hidden", "layer sizes must be at least 1");
  if (!(s.opt.decay > 0) || !std::isfinite(s.opt.decay))
    return bad("lr-decay",
               fmt::format("must be a positive number, not {}", s.opt.decay));
  if (s.opt.decay_epochs == 0)
    return bad("lr-decay-epochs", "must be at least 1");
  if (!(s.opt.min_lr >= 0) || !std::isfinite(s.opt.min_lr))
    return bad("min-lr", fmt::format("must be >= 0, not {}", s.opt.min_lr));
  if (s.opt.min_lr > s.opt.lr)
    return bad("min-lr",
               fmt::format("{} is above --lr {}: the cosine "
                           "schedule only lowers the rate",
                           s.opt.min_lr, s.opt.lr));
  if (s.model == "logistic" && s.task == "regression")
    return bad("task",
               "logistic regression classifies (labels 0 and 1); "
               "use 'linear' for regression");
  return {};
}

} // namespace dml
