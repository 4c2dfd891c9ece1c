#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/dataset.hpp"
#include "runtime/error.hpp"

namespace dml {

/// File formats the loaders understand.
enum class data_format : uint8_t {
  /// Chosen from the file name: `*idx*-ubyte[.gz]` is IDX, `*.csv[.gz]` is
  /// CSV, `*.svm`, `*.libsvm`, `*.txt` (and `.gz` of those) are LIBSVM.
  automatic = 0,
  idx,
  csv,
  libsvm,
};

/// Returns the format named `name` ("auto", "idx", "csv", "libsvm").
expected<data_format> parse_data_format(const std::string& name);

/// Options of `load_dataset`.
struct load_options {
  /// The file's format; `automatic` picks it from the file name.
  data_format format = data_format::automatic;

  /// CSV: the header name of the target column; empty means the last column.
  std::string label_column;

  /// LIBSVM: the feature dimension; 0 means the largest index in the file.
  /// A file with a larger index is an error.
  size_t dimension = 0;

  /// Whether targets are class labels (non-negative integers) or real
  /// regression targets. LIBSVM binary labels -1/+1 map to 0/1 when true.
  bool classification = true;
};

/// Loads a dataset from `path`. IDX: `path` names the images file (e.g.
/// `train-images-idx3-ubyte.gz`); the labels file is found beside it by
/// replacing `images-idx3` with `labels-idx1`, with or without `.gz`. Pixels
/// are scaled to [0, 1]. Files ending in `.gz` are decompressed on the fly.
/// The result's `source` is `path`.
///
/// Errors name the file and the line (CSV, LIBSVM) or byte offset (IDX) and
/// the problem, e.g. `data.csv:17: expected 5 cells, found 4`. Codes:
/// - `io_error`: a file is missing or unreadable (IDX: no labels file; the
///   message names both paths tried);
/// - `bad_format`: the text or bytes break the format (bad magic, payload
///   shorter or longer than the header says, ragged row, non-numeric or empty
///   cell, blank line inside the data, bad or non-increasing LIBSVM index,
///   empty file, corrupt gzip stream);
/// - `bad_value`: a well-formed value that is not accepted (nan or inf, a
///   value beyond float range, a class label that is not an integer in
///   [0, 2^24), LIBSVM label -1 in a file that is not binary -1/+1, an unknown
///   `label_column`, a file name that tells no format, an IDX images name
///   without `images-idx3`);
/// - `shape_mismatch`: IDX label count differs from the image count, or a
///   LIBSVM index exceeds `dimension`.
expected<dataset> load_dataset(const std::string& path,
                               const load_options& opts = {});

/// An error if `opts` names a label column and `path` is no CSV file (the
/// other formats have their labels in a place of their own), so that the
/// flag is not silently ignored.
error check_label_column(const std::string& path, const load_options& opts);

/// Loads IDX images at `path` plus the labels file beside them (see
/// `load_dataset`). Byte offsets in errors count decompressed bytes.
expected<dataset> load_idx(const std::string& path,
                           const load_options& opts = {});

/// Loads a CSV file: a header row, then one row of numbers per example. The
/// target is the last column or the one named `opts.label_column`. Cells may
/// be surrounded by spaces and hold anything `strtod` reads except nan and
/// inf. Accepts `\r\n` line ends and blank lines at the end of the file.
expected<dataset> load_csv(const std::string& path,
                           const load_options& opts = {});

/// Loads a LIBSVM file: one `label index:value ...` line per example with
/// 1-based, strictly increasing indices, into 0-based CSR features.
expected<dataset> load_libsvm(const std::string& path,
                              const load_options& opts = {});

/// Reads the whole file at `path`, decompressing it when it ends in `.gz`
/// (concatenated gzip members are read in turn). A corrupt or truncated gzip
/// stream is an error (`bad_format`), as is anything after the last member.
expected<std::string> read_file(const std::string& path);

namespace detail {

/// Asks the kernel to back the large buffer `[data, data + bytes)` with
/// transparent huge pages where it can (Linux; elsewhere a no-op). The loaders
/// call it before first touching big buffers: faulting them in 2 MiB at a
/// time instead of 4 KiB makes loading Fashion-MNIST two to four times as
/// fast on a VM, where page faults are dear.
void advise_huge_pages(void* data, size_t bytes) noexcept;

} // namespace detail

/// Parameters of the synthetic generators.
struct synthetic_options {
  size_t rows = 1000;
  size_t cols = 10;
  /// Classes of `make_classification`.
  size_t classes = 2;
  /// Standard deviation of the noise (regression) or of each class cluster
  /// around its center (classification): small means separable.
  float noise = 0.1f;
  uint64_t seed = 1;
};

/// Returns rows `x ~ N(0, 1)` with targets `y = w.x + b + noise`, where `w`
/// and `b` are drawn from `seed` too.
dataset make_regression(const synthetic_options& opts);

/// Returns rows drawn around one random center per class (centers at distance
/// about 4 from each other); with a small `noise` the classes are separable,
/// with a large one they overlap. Precisely: with `classes <= cols` the
/// centers form a regular simplex with edge 4, otherwise a square grid with
/// spacing 4, in a random orientation and centered on 0; each row's label is
/// uniform in `[0, classes)` and its features are `N(center, noise^2)`.
dataset make_classification(const synthetic_options& opts);

} // namespace dml
