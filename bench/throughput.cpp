// Training throughput on Fashion-MNIST: the single-threaded reference loop
// against local mode with 1, 2 and 4 shard-workers, in one run.
//
// The "2 threads" column is what two bare threads reach with the same
// data-parallel step and no runtime at all: each thread computes its half of
// the batch (rows gathered ahead, as the workers do), the update runs split
// over both, and the threads meet at spinning barriers instead of messages.
// It ends with the same parameter bits as local mode with 2 workers (checked
// on every run), so "2w/2t" is what the actor runtime keeps of what two
// threads get from the machine.
//
// The "2 processes" column is the same step across three bare processes,
// as distributed mode runs it on one host: a master that applies the update
// and two forked workers, meeting in shared memory and waking each other
// with futexes, polling for what is due as the links do (no runtime, no
// messages). It also ends with local mode's
// parameter bits. "2p/2w" bounds what master + 2 worker processes can keep
// of local mode with 2 workers on this machine.
//
// Usage: dml-bench-throughput [--epochs N] [--models softmax|mlp]
//                             [--batches 64,128,256] [--repeat R]
// (local mode at the batch sizes given; by default at 128 only, the loop at
// 64, 128 and 256).
// Each cell is the median of R runs (default 1), the configurations of one
// batch size interleaved run by run, so that a slow spell of a shared
// machine does not fall on one column only. Every run is a fresh process
// (this program with `--run KIND`): where the heap put the big buffers
// changes the speed of the same code by up to a third, so no run inherits
// the heap of another.
// Prints a Markdown table of training samples per second (training time
// only: no loading, no evaluation).

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/local.hpp"
#include "actors/messages.hpp"
#include "runtime/sha256.hpp"
#include "runtime/shared_segment.hpp"
#include "runtime/tensor_link.hpp"
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

/// Ends the program after a failed run, with `what` on one line.
[[noreturn]] void die(const std::string& what) {
  fmt::print(stderr, "error: {}\n", what);
  std::exit(1);
}

/// A run's speed and final parameters.
struct rate_and_bits {
  double samples_per_s = 0;
  std::string params_sha256;
};

rate_and_bits loop_rate(const job_spec& spec, const prepared_data& data,
                        const model_registry& models) {
  auto out = train_single_threaded(spec, data, models);
  if (!out)
    die(out.err().message());
  return {static_cast<double>(out->samples) / out->train_seconds,
          params_sha256(out->model.params)};
}

/// A half update handed to the other thread of `threads_rate`, which polls
/// for it while it waits.
class spin_runner final : public half_runner {
public:
  void start(std::shared_ptr<half_job> job) override {
    held_ = std::move(job);
    slot_.store(held_.get(), std::memory_order_release);
  }

  /// Runs the job handed over, if any.
  void poll() {
    if (auto* job = slot_.exchange(nullptr, std::memory_order_acq_rel))
      job->try_run();
  }

private:
  std::shared_ptr<half_job> held_;
  std::atomic<half_job*> slot_{nullptr};
};

void must(const error& err) {
  if (err)
    die(err.message());
}

/// The shard plan of a 2-worker job over `rows` rows, its shards dealt to
/// ranks 0 and 1 as local mode deals them.
shard_plan two_rank_plan(const job_spec& spec, uint64_t rows) {
  job_spec two = spec;
  two.workers = 2;
  shard_plan plan{rows, shard_count(two, rows)};
  plan.assign_round_robin({0, 1});
  return plan;
}

/// The 2-worker step of local mode on two bare threads (see the top).
rate_and_bits threads_rate(const job_spec& spec, const prepared_data& data,
                           const model_registry& models) {
  auto make = [&] {
    auto m = models.make(data.config);
    if (!m)
      die(m.err().message());
    return std::move(*m);
  };
  auto m0 = make();
  auto m1 = make();
  auto params = m0->init(spec.seed);
  auto n = params.size();
  auto opt = make_optimizer_state(spec.opt, n);
  auto rows = data.train->rows;
  auto plan = two_rank_plan(spec, rows);
  // The shards' bounds for computing, apart from the plan whose cursors
  // rank 0 moves while rank 1 gathers (as each worker keeps its own).
  const auto shards = plan.shards();
  shard_computer c0{data.train, spec.seed};
  shard_computer c1{data.train, spec.seed};
  gradient_sum g0;
  gradient_sum g1;
  spin_runner runner;
  // Rank 1's orders, posted by rank 0: a step number to run, then done.
  std::atomic<uint64_t> go{0};
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<row_span> spans1;
  uint64_t epoch = 0;
  std::thread rank1{[&] {
    for (uint64_t seen = 0;;) {
      while (go.load(std::memory_order_acquire) == seen) {
        if (stop.load(std::memory_order_acquire))
          return;
        runner.poll();
        spin_pause();
      }
      seen = go.load(std::memory_order_acquire);
      // Rank 0 rewrites `epoch` and `spans1` once this step is done.
      auto e = epoch;
      auto next = next_spans(spans1, shards);
      must(c1.compute(*m1, params.data(), e, spans1, shards, g1));
      done.store(seen, std::memory_order_release);
      if (!next.empty())
        c1.prepare(e, next, shards);
    }
  }};
  uint64_t samples = 0;
  double secs = 0;
  for (uint32_t e = 0; e < spec.epochs; ++e) {
    plan.start_epoch();
    auto t0 = std::chrono::steady_clock::now();
    while (!plan.epoch_done()) {
      auto spans0 = plan.take(0, step_quota(spec.batch_size, 2, 0));
      spans1 = plan.take(1, step_quota(spec.batch_size, 2, 1));
      epoch = e;
      auto id = go.fetch_add(1, std::memory_order_acq_rel) + 1;
      must(c0.compute(*m0, params.data(), e, spans0, shards, g0));
      auto next = next_spans(spans0, shards);
      if (!next.empty())
        c0.prepare(e, next, shards);
      while (done.load(std::memory_order_acquire) != id)
        spin_pause();
      const float* parts[2] = {g0.values.data(), g1.values.data()};
      auto progress = static_cast<double>(samples) / static_cast<double>(rows);
      apply_step_fused(spec, parts, 2, g0.count + g1.count, g0.loss + g1.loss,
                       progress, params.data(), params.data(), n, opt, &runner);
      samples += g0.count + g1.count;
      plan.commit(spans0);
      plan.commit(spans1);
    }
    secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
  }
  stop.store(true, std::memory_order_release);
  rank1.join();
  return {static_cast<double>(samples) / secs, params_sha256(params)};
}

/// What one worker process of `processes_rate` and the master share about
/// the step in flight: futex words and the gradient's header.
struct alignas(64) process_box {
  /// The step the master posted (its parameters are in place).
  std::atomic<uint32_t> go{0};
  /// Threads asleep on `go` and `done` (a wake skips the system call
  /// without any, as the links' does).
  std::atomic<uint32_t> go_sleepers{0};
  alignas(64) std::atomic<uint32_t> done{0};
  std::atomic<uint32_t> done_sleepers{0};
  uint64_t count = 0;
  double loss = 0;
  /// Set if the worker's computation failed.
  uint32_t failed = 0;
};

/// Polls `word` (with `sched_yield`) until it holds `value`, for at most
/// the tensor links' poll budget; returns whether it does.
bool poll_for(const std::atomic<uint32_t>& word, uint32_t value) {
  auto until = std::chrono::steady_clock::now() + tensor_link::poll_budget;
  while (word.load(std::memory_order_acquire) != value) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    ::sched_yield();
  }
  return true;
}

/// The 2-worker step of distributed mode in three bare processes (see the
/// top): the master copies the parameters into each worker's region of a
/// shared mapping and wakes it with a futex, each forked worker computes its
/// half of the batch into its gradient region and wakes the master, and the
/// master applies the update. Each side polls for what is due as the links
/// do (`poll_for`). No runtime, no messages, no thread hand-over: what an
/// implementation of the design's step across processes can get from the
/// machine.
rate_and_bits processes_rate(const job_spec& spec, const prepared_data& data,
                             const model_registry& models) {
  auto m = models.make(data.config);
  if (!m)
    die(m.err().message());
  auto params = (*m)->init(spec.seed);
  auto n = params.size();
  auto opt = make_optimizer_state(spec.opt, n);
  auto rows = data.train->rows;
  auto plan = two_rank_plan(spec, rows);
  const auto shards = plan.shards();
  // The boxes, then per rank a parameter and a gradient region.
  constexpr size_t page = 4096;
  auto region = (n * sizeof(float) + page - 1) / page * page;
  auto bytes = page + 4 * region;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED)
    die(fmt::format("mmap: {}", std::strerror(errno)));
  auto* boxes = static_cast<process_box*>(base);
  new (&boxes[0]) process_box{};
  new (&boxes[1]) process_box{};
  auto at = [&](size_t i) {
    return reinterpret_cast<float*>(static_cast<char*>(base) + page
                                    + i * region);
  };
  float* params_of[2] = {at(0), at(1)};
  float* grad_of[2] = {at(2), at(3)};
  auto quota = [&](int32_t r) {
    return step_quota(spec.batch_size, 2, static_cast<uint32_t>(r));
  };
  pid_t kids[2] = {-1, -1};
  std::fflush(nullptr);
  for (int32_t r = 0; r < 2; ++r) {
    kids[r] = ::fork();
    if (kids[r] < 0)
      die(fmt::format("fork: {}", std::strerror(errno)));
    if (kids[r] > 0)
      continue;
    // A worker process: follows the plan as the master does, computes its
    // own spans only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto& box = boxes[r];
    shard_computer c{data.train, spec.seed};
    gradient_sum scratch;
    uint32_t step = 0;
    for (uint32_t e = 0; e < spec.epochs; ++e) {
      plan.start_epoch();
      while (!plan.epoch_done()) {
        auto s0 = plan.take(0, quota(0));
        auto s1 = plan.take(1, quota(1));
        auto& mine = r == 0 ? s0 : s1;
        ++step;
        // As a worker's link reader does: the next step is due once this
        // worker answered the last one.
        if (step > 1)
          poll_for(box.go, step);
        for (uint32_t seen;
             (seen = box.go.load(std::memory_order_acquire)) != step;)
          wait(box.go, box.go_sleepers, seen, std::chrono::milliseconds(10));
        auto err = c.compute_to(**m, params_of[r], e, mine, shards, scratch,
                                grad_of[r]);
        box.failed = err ? 1 : 0;
        box.count = scratch.count;
        box.loss = scratch.loss;
        box.done.store(step, std::memory_order_release);
        wake(box.done, box.done_sleepers);
        auto next = next_spans(mine, shards);
        if (!next.empty())
          c.prepare(e, next, shards);
        plan.commit(s0);
        plan.commit(s1);
      }
    }
    std::_Exit(0);
  }
  uint64_t samples = 0;
  double secs = 0;
  uint32_t step = 0;
  for (uint32_t e = 0; e < spec.epochs; ++e) {
    plan.start_epoch();
    auto t0 = std::chrono::steady_clock::now();
    while (!plan.epoch_done()) {
      auto s0 = plan.take(0, quota(0));
      auto s1 = plan.take(1, quota(1));
      ++step;
      for (int32_t r = 0; r < 2; ++r) {
        std::memcpy(params_of[r], params.data(), n * sizeof(float));
        boxes[r].go.store(step, std::memory_order_release);
        wake(boxes[r].go, boxes[r].go_sleepers);
      }
      for (int32_t r = 0; r < 2; ++r) {
        auto& box = boxes[r];
        // As the master's link readers do: once one gradient is in, the
        // other is due.
        if (r == 1)
          poll_for(box.done, step);
        for (uint32_t seen, waits = 0;
             (seen = box.done.load(std::memory_order_acquire)) != step;
             ++waits) {
          // Woken for nothing, or 10 ms without an answer: is it alive?
          if (waits > 0 && ::waitpid(kids[r], nullptr, WNOHANG) != 0)
            die(fmt::format("worker process {} ended before step {}", r, step));
          wait(box.done, box.done_sleepers, seen,
               std::chrono::milliseconds(10));
        }
        if (box.failed != 0)
          die("a worker process could not compute its gradient");
      }
      const float* parts[2] = {grad_of[0], grad_of[1]};
      auto count = boxes[0].count + boxes[1].count;
      auto progress = static_cast<double>(samples) / static_cast<double>(rows);
      apply_step_fused(spec, parts, 2, count, boxes[0].loss + boxes[1].loss,
                       progress, params.data(), params.data(), n, opt);
      samples += count;
      plan.commit(s0);
      plan.commit(s1);
    }
    secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
  }
  for (auto kid : kids)
    ::waitpid(kid, nullptr, 0);
  ::munmap(base, bytes);
  return {static_cast<double>(samples) / secs, params_sha256(params)};
}

rate_and_bits local_rate(job_spec spec, const prepared_data& data,
                         const model_registry& models,
                         const actor_registry& actors, uint32_t workers) {
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
  if (!rec)
    die(rec.err().message());
  auto final = nlohmann::json::parse(*rec);
  return {final["samples_per_s"].get<double>(),
          final["params_sha256"].get<std::string>()};
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  auto n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
}

/// Runs one configuration (`loop`, `1w`, `2w`, `4w`, `2t` or `2p`) here and
/// prints its samples/s and parameter hash.
int run_one(const std::string& kind, const std::string& name, uint64_t batch,
            uint32_t epochs) {
  static const char* const kinds[] = {"loop", "1w", "2w", "4w", "2t", "2p"};
  if (std::find(std::begin(kinds), std::end(kinds), kind) == std::end(kinds)) {
    fmt::print(stderr,
               "error: --run: unknown configuration '{}' (loop, 1w, 2w, 4w, "
               "2t or 2p)\n",
               kind);
    return 2;
  }
  model_registry models;
  register_builtin_models(models);
  actor_registry actors;
  register_builtin_actors(actors);
  auto spec = make_spec(name, batch, epochs);
  auto data = prepare_data(spec);
  if (!data)
    die(data.err().message());
  rate_and_bits r;
  if (kind == "loop")
    r = loop_rate(spec, *data, models);
  else if (kind == "2t")
    r = threads_rate(spec, *data, models);
  else if (kind == "2p")
    r = processes_rate(spec, *data, models);
  else
    r = local_rate(spec, *data, models, actors,
                   static_cast<uint32_t>(kind[0] - '0'));
  fmt::print("{} {}\n", r.samples_per_s, r.params_sha256);
  return 0;
}

/// Runs one configuration in a fresh process of this program.
rate_and_bits run_fresh(const std::string& self, const std::string& kind,
                        const std::string& name, uint64_t batch,
                        uint32_t epochs) {
  auto cmd = fmt::format("'{}' --run {} --models {} --batches {} --epochs {}",
                         self, kind, name, batch, epochs);
  std::fflush(stdout);
  auto* pipe = popen(cmd.c_str(), "r");
  char line[256] = {};
  bool got = pipe != nullptr && std::fgets(line, sizeof line, pipe) != nullptr;
  auto status = pipe != nullptr ? pclose(pipe) : -1;
  char sha[65] = {};
  double rate = 0;
  if (!got || status != 0 || std::sscanf(line, "%lf %64s", &rate, sha) != 2)
    die(fmt::format("'{}' failed", cmd));
  return {rate, sha};
}

/// Reads `text` as a whole number of at least 1 into `out`; false if it is
/// none.
bool positive(const std::string& text, uint64_t& out) {
  auto* first = text.data();
  auto* last = first + text.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc{} && ptr == last && out >= 1;
}

constexpr const char* usage
  = "usage: dml-bench-throughput [--epochs N] [--models softmax|mlp] "
    "[--batches B,B,...] [--repeat R]";

/// Ends the program with a one-line usage error.
[[noreturn]] void usage_error(const std::string& what) {
  fmt::print(stderr, "error: {} ({})\n", what, usage);
  std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
  uint32_t epochs = 2;
  std::vector<std::string> names{"softmax", "mlp"};
  std::vector<uint64_t> batches{64, 128, 256};
  std::vector<uint64_t> local_batches{128};
  std::string run;
  int repeat = 1;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      fmt::print("{}\n", usage);
      return 0;
    }
    if (i + 1 == argc)
      usage_error(fmt::format("{}: no value", flag));
    std::string value = argv[i + 1];
    uint64_t number = 0;
    auto need_number = [&] {
      if (!positive(value, number) || number > 1000000)
        usage_error(
          fmt::format("{}: '{}' is no number from 1 to 1000000", flag, value));
    };
    if (flag == "--epochs") {
      need_number();
      epochs = static_cast<uint32_t>(number);
    } else if (flag == "--repeat") {
      need_number();
      repeat = static_cast<int>(number);
    } else if (flag == "--models") {
      if (value != "softmax" && value != "mlp")
        usage_error(
          fmt::format("--models: '{}' is neither softmax nor mlp", value));
      names = {value};
    } else if (flag == "--run") {
      run = value;
    } else if (flag == "--batches") {
      batches.clear();
      for (size_t pos = 0; pos <= value.size();) {
        auto end = value.find(',', pos);
        if (end == std::string::npos)
          end = value.size();
        uint64_t batch = 0;
        if (!positive(value.substr(pos, end - pos), batch))
          usage_error(
            fmt::format("--batches: '{}' is no list of batch sizes", value));
        batches.push_back(batch);
        pos = end + 1;
      }
      local_batches = batches;
    } else {
      usage_error(fmt::format("unknown flag '{}'", flag));
    }
  }
  if (!run.empty())
    return run_one(run, names.front(), batches.front(), epochs);
  // This program, by path: the shell that `popen` starts has its own
  // /proc/self.
  std::string self = std::filesystem::read_symlink("/proc/self/exe");
  fmt::print(
    "| model | batch | loop | local 1w | local 2w | local 4w | 2 threads "
    "| 2 processes | 1w/loop | 2w/loop | 2t/loop | 2w/2t | 2p/2w |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (auto& name : names) {
    for (uint64_t batch : batches) {
      bool with_local = std::find(local_batches.begin(), local_batches.end(),
                                  batch)
        != local_batches.end();
      std::vector<double> loops, w1s, w2s, w4s, twos, procs;
      for (int r = 0; r < repeat; ++r) {
        auto fresh = [&](const char* kind) {
          return run_fresh(self, kind, name, batch, epochs);
        };
        loops.push_back(fresh("loop").samples_per_s);
        if (!with_local)
          continue;
        w1s.push_back(fresh("1w").samples_per_s);
        auto w2 = fresh("2w");
        w2s.push_back(w2.samples_per_s);
        w4s.push_back(fresh("4w").samples_per_s);
        // The bare references must end with local mode's bits.
        auto bare = [&](const char* kind, const char* what) {
          auto got = fresh(kind);
          if (got.params_sha256 != w2.params_sha256)
            die(fmt::format("{} ended with other parameters than local mode "
                            "({} against {})",
                            what, got.params_sha256, w2.params_sha256));
          return got.samples_per_s;
        };
        twos.push_back(bare("2t", "two bare threads"));
        procs.push_back(bare("2p", "two bare worker processes"));
      }
      auto loop = median(loops);
      if (with_local) {
        auto w1 = median(w1s);
        auto w2 = median(w2s);
        auto w4 = median(w4s);
        auto two = median(twos);
        auto proc = median(procs);
        fmt::print("| {} | {} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | "
                   "{:.0f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} |\n",
                   name, batch, loop, w1, w2, w4, two, proc, w1 / loop,
                   w2 / loop, two / loop, w2 / two, proc / w2);
      } else {
        fmt::print("| {} | {} | {:.0f} | - | - | - | - | - | - | - | - | - "
                   "| - |\n",
                   name, batch, loop);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
