#include "apps/examples/csv_logger.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"

namespace dml::examples {

namespace {

using json = nlohmann::json;

/// The columns of the CSV file, in order; each is the key of the record.
constexpr const char* columns[] = {"epoch",      "steps",     "samples",
                                   "train_loss", "test_loss", "test_accuracy",
                                   "test_mse",   "wall_s"};

/// Appends the cell of `key` of `record` to `line`, or returns an error.
error append_cell(const json& record, const char* key, std::string& line) {
  auto i = record.find(key);
  if (i == record.end() || i->is_null())
    return {};
  if (i->is_number_unsigned())
    line += fmt::format("{}", i->get<uint64_t>());
  else if (i->is_number_integer())
    line += fmt::format("{}", i->get<int64_t>());
  else if (i->is_number_float())
    line += fmt::format("{}", i->get<double>());
  else
    return make_error(errc::bad_format,
                      fmt::format("csv-logger: record field '{}' is not a "
                                  "number",
                                  key));
  return {};
}

/// Prints `err` to stderr and makes `self` quit with it.
void fail(caf::stateful_actor<csv_logger_state>* self, const error& err) {
  fmt::print(stderr, "dml-node: {}\n", err.message());
  self->state.file.reset();
  self->quit(to_caf(err));
}

expected<caf::actor> make_csv_logger(caf::actor_system& sys,
                                     const actor_context& ctx) {
  auto file = open_csv_log(ctx.arg);
  if (!file)
    return file.err();
  return sys.spawn(csv_logger, std::move(*file), ctx.arg);
}

} // namespace

std::string csv_header() {
  std::string result;
  for (auto col : columns)
    result += (result.empty() ? "" : ",") + std::string{col};
  return result + '\n';
}

expected<std::string> csv_row(const std::string& text) {
  // No exceptions: a handler must not throw (the actor would die).
  auto record = json::parse(text, nullptr, false);
  if (record.is_discarded() || !record.is_object())
    return make_error(errc::bad_format,
                      "csv-logger: a metrics record is not a JSON object");
  if (record.contains("event"))
    return std::string{};
  std::string line;
  for (auto col : columns) {
    if (col != columns[0])
      line += ',';
    if (auto err = append_cell(record, col, line))
      return err;
  }
  return line + '\n';
}

expected<file_ptr> open_csv_log(const std::string& path) {
  if (path.empty())
    return make_error(errc::bad_config,
                      "--observer csv-logger: needs a file, as "
                      "csv-logger:PATH");
  auto* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    auto code = errno;
    return make_error(errc::io_error,
                      fmt::format("--observer csv-logger: {}: cannot create: "
                                  "{}",
                                  path, std::strerror(code)));
  }
  file_ptr file{f, [](std::FILE* x) { std::fclose(x); }};
  auto header = csv_header();
  if (std::fputs(header.c_str(), f) < 0 || std::fflush(f) != 0) {
    auto code = errno;
    return make_error(errc::io_error,
                      fmt::format("--observer csv-logger: {}: cannot write: "
                                  "{}",
                                  path, std::strerror(code)));
  }
  return file;
}

caf::behavior csv_logger(caf::stateful_actor<csv_logger_state>* self,
                         file_ptr file, std::string path) {
  self->state.file = std::move(file);
  self->state.path = std::move(path);
  return {
    [=](record_atom, const std::string& text) {
      auto& st = self->state;
      if (!st.file)
        return;
      auto row = csv_row(text);
      if (!row) {
        fail(self, row.err());
        return;
      }
      if (row->empty())
        return;
      if (std::fputs(row->c_str(), st.file.get()) < 0
          || std::fflush(st.file.get()) != 0) {
        auto code = errno;
        fail(self,
             make_error(errc::io_error,
                        fmt::format("csv-logger: {}: cannot write: {}", st.path,
                                    std::strerror(code))));
      }
    },
    [=](stop_atom) {
      self->state.file.reset();
      self->quit();
    },
  };
}

void register_example_actors(actor_registry& registry) {
  registry.add(actor_kind::observer, "csv-logger", make_csv_logger);
}

} // namespace dml::examples
