#pragma once

// An example of an actor type added to dml from outside: the observer
// "csv-logger", which writes the epoch records of a job to a CSV file. It
// uses nothing but `dml::actor_registry::add` and the messages of
// actors/messages.hpp.

#include <cstdio>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/actor_registry.hpp"
#include "runtime/error.hpp"

namespace dml::examples {

/// Returns the header line of the CSV file, with its line end:
/// `epoch,steps,samples,train_loss,test_loss,test_accuracy,test_mse,wall_s`.
std::string csv_header();

/// Returns the CSV line (with its line end) of the metrics record `json`, in
/// the columns of `csv_header`, or an empty string for a record that is not
/// an epoch record (the final one, which has an `"event"` key). A cell whose
/// key is missing or null is empty: `test_*` without a test set, and one of
/// `test_accuracy` (classification) or `test_mse` (regression) always. Text
/// that is not a JSON object, or a cell that is not a number, gives
/// `errc::bad_format`.
expected<std::string> csv_row(const std::string& json);

/// A C stream that closes itself.
using file_ptr = std::shared_ptr<std::FILE>;

/// Creates (or truncates) the file at `path` and writes the CSV header. An
/// empty path or a file that cannot be created gives `errc::bad_config` or
/// `errc::io_error` with a one-line message naming the flag and the path.
expected<file_ptr> open_csv_log(const std::string& path);

/// State of a csv-logger: the open file and its path (for messages).
struct csv_logger_state {
  file_ptr file;
  std::string path;
  static inline const char* name = "dml.csv-logger";
};

/// Appends one CSV line per epoch record to `file` (opened by `open_csv_log`,
/// header written) and flushes it, so the file is complete up to the last
/// epoch even if the job dies.
///
/// Interface:
/// - `(record_atom, std::string json)`: appends the row of an epoch record;
///   ignores the final record. On a bad record or a failed write it prints
///   one line to stderr and quits with the error.
/// - `(stop_atom)`: closes the file and quits.
caf::behavior csv_logger(caf::stateful_actor<csv_logger_state>* self,
                         file_ptr file, std::string path);

/// Registers the observer "csv-logger", spawned by
/// `--observer csv-logger:PATH`. Its factory opens PATH (see
/// `open_csv_log`), so a bad path fails the job before it starts.
void register_example_actors(actor_registry& registry);

} // namespace dml::examples
