#include "runtime/report.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace dml {

using json = nlohmann::json;

namespace {

void put_test(json& o, task_kind task, const eval_metrics& t) {
  o["test_loss"] = t.loss;
  if (task == task_kind::classification) {
    o["test_accuracy"] = t.accuracy;
    o["test_class_rows"] = t.class_rows;
    o["test_class_correct"] = t.class_correct;
  } else {
    o["test_mse"] = t.mse;
    o["test_r2"] = t.r2;
  }
}

std::string test_summary(task_kind task, const eval_metrics& t) {
  if (task == task_kind::classification)
    return fmt::format("test_loss {:.4f} test_accuracy {:.4f}", t.loss,
                       t.accuracy);
  return fmt::format("test_mse {:.5g} test_r2 {:.4f}", t.mse, t.r2);
}

} // namespace

bool is_terminal(int fd) {
  return ::isatty(fd) == 1;
}

reporter::reporter(report_options opts) : opts_(std::move(opts)) {
  // nop
}

reporter::~reporter() {
  if (metrics_ != nullptr)
    std::fclose(metrics_);
}

error reporter::open() {
  if (opts_.metrics_path.empty())
    return {};
  metrics_ = std::fopen(opts_.metrics_path.c_str(), "w");
  if (metrics_ == nullptr)
    return make_error(errc::io_error,
                      fmt::format("--metrics-out: {}: cannot create: {}",
                                  opts_.metrics_path, std::strerror(errno)));
  return {};
}

void reporter::write_metrics(const std::string& line) {
  if (metrics_ == nullptr)
    return;
  bool ok = std::fputs(line.c_str(), metrics_) >= 0
    && std::fputc('\n', metrics_) != EOF && std::fflush(metrics_) == 0;
  if (ok || metrics_failed_)
    return;
  metrics_failed_ = true;
  if (opts_.metrics_failed)
    opts_.metrics_failed->store(true);
  clear_line();
  fmt::print(stderr, "dml-node: error: --metrics-out {}: write failed: {}\n",
             opts_.metrics_path, std::strerror(errno));
  std::fflush(stderr);
}

void reporter::clear_line() {
  if (line_shown_) {
    std::fputs("\r\033[K", stderr);
    line_shown_ = false;
  }
}

void reporter::progress(uint32_t epoch, uint64_t epoch_samples, double loss,
                        double samples_per_s, uint64_t faults) {
  if (opts_.quiet || !opts_.terminal)
    return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100))
    return;
  last_ = now;
  double left_rows = static_cast<double>(opts_.rows) * opts_.epochs
    - static_cast<double>(epoch - 1) * opts_.rows
    - static_cast<double>(epoch_samples);
  double eta = samples_per_s > 0 ? left_rows / samples_per_s : 0;
  double pct = opts_.rows ? 100.0 * epoch_samples / opts_.rows : 0;
  fmt::print(stderr,
             "\r\033[Kepoch {}/{} {:5.1f}% loss {:.4f} {:.0f} samples/s "
             "ETA {:.0f}s{}",
             epoch, opts_.epochs, pct, loss, samples_per_s, eta,
             faults > 0 ? fmt::format(" faults {}", faults) : "");
  std::fflush(stderr);
  line_shown_ = true;
}

std::string reporter::to_json(const epoch_record& r) const {
  json o = json::object();
  o["epoch"] = r.epoch;
  o["steps"] = r.steps;
  o["samples"] = r.samples;
  o["train_loss"] = r.train_loss;
  if (r.has_test)
    put_test(o, opts_.task, r.test);
  o["wall_s"] = r.wall_s;
  o["samples_per_s"] = r.train_s > 0 ? r.samples / r.train_s : 0.0;
  return o.dump();
}

std::string reporter::to_json(const final_record& r) const {
  json o = json::object();
  o["event"] = "final";
  o["epochs"] = r.epochs;
  o["steps"] = r.steps;
  o["samples"] = r.samples;
  o["train_loss"] = r.train_loss;
  if (r.has_test)
    put_test(o, opts_.task, r.test);
  o["wall_s"] = r.wall_s;
  o["train_s"] = r.train_s;
  o["samples_per_s"] = r.train_s > 0 ? r.samples / r.train_s : 0.0;
  o["params_sha256"] = r.params_sha256;
  if (!r.evaluation_only) {
    o["workers"] = r.workers;
    o["faults"] = r.faults;
    o["steps_redone"] = r.steps_redone;
    o["recovery_s"] = r.recovery_s;
  }
  return o.dump();
}

void reporter::note(const std::string& line) {
  if (opts_.quiet)
    return;
  clear_line();
  fmt::print(stderr, "{}\n", line);
  std::fflush(stderr);
}

void reporter::epoch(const epoch_record& r) {
  write_metrics(to_json(r));
  if (opts_.quiet)
    return;
  clear_line();
  auto sps = r.train_s > 0 ? r.samples / r.train_s : 0.0;
  fmt::print(stderr, "epoch {}/{} train_loss {:.4f}{}{} {:.0f} samples/s\n",
             r.epoch, opts_.epochs, r.train_loss, r.has_test ? " " : "",
             r.has_test ? test_summary(opts_.task, r.test) : "", sps);
  std::fflush(stderr);
}

std::string reporter::final(const final_record& r) {
  auto text = to_json(r);
  write_metrics(text);
  if (!opts_.quiet && r.evaluation_only) {
    fmt::print(stderr, "evaluated {} rows: {}\n", r.test.rows,
               test_summary(opts_.task, r.test));
  } else if (!opts_.quiet) {
    clear_line();
    fmt::print(stderr,
               "done: {} epochs, {} steps, {} samples in {:.1f}s ({:.0f} "
               "samples/s){}{}\n",
               r.epochs, r.steps, r.samples, r.wall_s,
               r.train_s > 0 ? r.samples / r.train_s : 0.0,
               r.has_test ? ", " : "",
               r.has_test ? test_summary(opts_.task, r.test) : "");
    if (r.faults > 0) {
      double worst = 0;
      for (auto s : r.recovery_s)
        worst = std::max(worst, s);
      fmt::print(stderr,
                 "faults: {} seen, {} steps redone, slowest recovery {:.3f} "
                 "s, {} workers at the end\n",
                 r.faults, r.steps_redone, worst, r.workers);
    }
    std::fflush(stderr);
  }
  return text;
}

} // namespace dml
