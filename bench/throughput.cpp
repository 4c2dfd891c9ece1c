// Training throughput on Fashion-MNIST: the single-threaded reference loop
// against local mode with 1, 2 and 4 shard-workers, in one run.
//
// Usage: dml-bench-throughput [--epochs N] [--models softmax|mlp]
//                             [--batches 64,128,256] [--repeat R]
// Each cell is the median of R runs (default 1), the configurations of one
// batch size interleaved run by run, so that a slow spell of a shared
// machine does not fall on one column only.
// Prints a Markdown table of training samples per second (training time
// only: no loading, no evaluation).

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/local.hpp"
#include "actors/messages.hpp"
#include "runtime/training.hpp"

using namespace dml;

namespace {

const std::string fashion = "/usr/share/datasets/fashion-mnist";

job_spec make_spec(const std::string& model, uint64_t batch, uint32_t epochs) {
  job_spec s;
  s.train_path = fashion + "/train-images-idx3-ubyte.gz";
  s.model = model;
  s.batch_size = batch;
  s.epochs = epochs;
  if (model == "mlp") {
    s.hidden = {128};
    s.opt.kind = optimizer_kind::adam;
    s.opt.lr = 0.001f;
  }
  return s;
}

double loop_rate(const job_spec& spec, const prepared_data& data,
                 const model_registry& models) {
  auto out = train_single_threaded(spec, data, models);
  if (!out) {
    fmt::print(stderr, "error: {}\n", out.err().message());
    std::exit(1);
  }
  return static_cast<double>(out->samples) / out->train_seconds;
}

double local_rate(job_spec spec, const prepared_data& data,
                  const model_registry& models, const actor_registry& actors,
                  uint32_t workers) {
  spec.workers = workers;
  local_options o;
  o.spec = spec;
  o.report.quiet = true;
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::dml>();
  add_error_category(cfg);
  cfg.set("scheduler.max-threads", default_threads(workers));
  poll_eagerly(cfg);
  caf::actor_system sys{cfg};
  auto rec = run_local(sys, o, data, models, actors);
  if (!rec) {
    fmt::print(stderr, "error: {}\n", rec.err().message());
    std::exit(1);
  }
  return nlohmann::json::parse(*rec)["samples_per_s"].get<double>();
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
}

} // namespace

int main(int argc, char** argv) {
  uint32_t epochs = 2;
  std::vector<std::string> names{"softmax", "mlp"};
  std::vector<uint64_t> batches{64, 128, 256};
  std::vector<uint64_t> local_batches{128};
  int repeat = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--epochs") == 0)
      epochs = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    else if (std::strcmp(argv[i], "--models") == 0
             && argv[i + 1] == std::string{"softmax"})
      names = {"softmax"};
    else if (std::strcmp(argv[i], "--models") == 0
             && argv[i + 1] == std::string{"mlp"})
      names = {"mlp"};
    else if (std::strcmp(argv[i], "--repeat") == 0)
      repeat = std::max(1, std::atoi(argv[i + 1]));
    else if (std::strcmp(argv[i], "--batches") == 0) {
      batches.clear();
      std::string list = argv[i + 1];
      for (size_t pos = 0; pos < list.size();) {
        auto end = list.find(',', pos);
        if (end == std::string::npos)
          end = list.size();
        batches.push_back(std::stoull(list.substr(pos, end - pos)));
        pos = end + 1;
      }
      local_batches = batches;
    }
  }
  model_registry models;
  register_builtin_models(models);
  actor_registry actors;
  register_builtin_actors(actors);
  fmt::print(
    "| model | batch | loop | local 1w | local 2w | local 4w | 1w/loop "
    "| 2w/loop |\n|---|---|---|---|---|---|---|---|\n");
  for (auto& name : names) {
    auto data = prepare_data(make_spec(name, 128, epochs));
    if (!data) {
      fmt::print(stderr, "error: {}\n", data.err().message());
      return 1;
    }
    for (uint64_t batch : batches) {
      auto spec = make_spec(name, batch, epochs);
      data->config = make_model_config(spec, data->train->cols, 10);
      bool with_local = std::find(local_batches.begin(), local_batches.end(),
                                  batch)
        != local_batches.end();
      std::vector<double> loops, w1s, w2s, w4s;
      for (int r = 0; r < repeat; ++r) {
        loops.push_back(loop_rate(spec, *data, models));
        if (with_local) {
          w1s.push_back(local_rate(spec, *data, models, actors, 1));
          w2s.push_back(local_rate(spec, *data, models, actors, 2));
          w4s.push_back(local_rate(spec, *data, models, actors, 4));
        }
      }
      auto loop = median(loops);
      if (with_local) {
        auto w1 = median(w1s);
        auto w2 = median(w2s);
        auto w4 = median(w4s);
        fmt::print("| {} | {} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.2f} | "
                   "{:.2f} |\n",
                   name, batch, loop, w1, w2, w4, w1 / loop, w2 / loop);
      } else {
        fmt::print("| {} | {} | {:.0f} | - | - | - | - | - |\n", name, batch,
                   loop);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
