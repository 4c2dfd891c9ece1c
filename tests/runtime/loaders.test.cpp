#include "runtime/loaders.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

namespace fs = std::filesystem;

using namespace dml;

namespace {

/// Gives each test a fresh temporary directory for its fixture files and
/// removes it afterwards.
struct fixture {
  fs::path dir;

  fixture() {
    auto base = fs::temp_directory_path();
    auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    for (int i = 0;; ++i) {
      dir = base / fmt::format("dml-loaders-{}-{}-{}", getpid(), stamp, i);
      if (fs::create_directory(dir))
        break;
    }
  }

  ~fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  /// Returns the path of `name` inside the fixture directory.
  std::string path(const std::string& name) const {
    return (dir / name).string();
  }

  /// Writes `content` to `name` and returns its path.
  std::string write(const std::string& name, const std::string& content) {
    auto p = path(name);
    std::ofstream out{p, std::ios::binary};
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    BOOST_REQUIRE(out.good());
    return p;
  }

  /// Writes `content` gzip-compressed to `name` (`mode` as for gzopen) and
  /// returns its path.
  std::string write_gz(const std::string& name, const std::string& content,
                       const char* mode = "wb") {
    auto p = path(name);
    auto f = gzopen(p.c_str(), mode);
    BOOST_REQUIRE(f != nullptr);
    if (!content.empty()) {
      BOOST_REQUIRE_EQUAL(gzwrite(f, content.data(),
                                  static_cast<unsigned>(content.size())),
                          static_cast<int>(content.size()));
    }
    BOOST_REQUIRE_EQUAL(gzclose(f), Z_OK);
    return p;
  }

  /// Returns the bytes of the file at `p`.
  static std::string slurp(const std::string& p) {
    std::ifstream in{p, std::ios::binary};
    return {std::istreambuf_iterator<char>{in},
            std::istreambuf_iterator<char>{}};
  }
};

/// Returns `x` as four big-endian bytes.
std::string be32(uint32_t x) {
  std::string result(4, '\0');
  result[0] = static_cast<char>(x >> 24);
  result[1] = static_cast<char>(x >> 16);
  result[2] = static_cast<char>(x >> 8);
  result[3] = static_cast<char>(x);
  return result;
}

/// Returns an IDX images file with `n` images of `h`x`w` pixels whose values
/// count up from 0 (mod 256), plus `extra` payload bytes (negative: fewer).
std::string idx_images(uint32_t n, uint32_t h, uint32_t w, int extra = 0) {
  auto result = be32(0x00000803) + be32(n) + be32(h) + be32(w);
  auto size = static_cast<int>(n * h * w) + extra;
  for (int i = 0; i < size; ++i)
    result += static_cast<char>(i % 256);
  return result;
}

/// Returns an IDX labels file holding `labels` plus `extra` payload bytes.
std::string idx_labels(const std::vector<uint8_t>& labels, int extra = 0,
                       uint32_t magic = 0x00000801) {
  auto result = be32(magic) + be32(static_cast<uint32_t>(labels.size()));
  for (auto x : labels)
    result += static_cast<char>(x);
  if (extra < 0)
    result.resize(result.size() - static_cast<size_t>(-extra));
  else
    result.append(static_cast<size_t>(extra), '\0');
  return result;
}

/// Returns a text that compresses poorly and checks well.
std::string pseudo_random_text(size_t n) {
  std::string result;
  result.reserve(n);
  uint32_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    result += static_cast<char>('a' + (x >> 24) % 26);
  }
  return result;
}

/// Returns the message of `res`, or an empty string if it holds a value (the
/// message argument of BOOST_REQUIRE_MESSAGE is evaluated in any case).
template <class T>
std::string what(const expected<T>& res) {
  return res ? std::string{} : res.err().message();
}

bool contains(const std::string& str, const std::string& part) {
  return str.find(part) != std::string::npos;
}

/// Checks that `res` failed with `code` and that its message contains every
/// string in `parts`.
template <class T>
void check_error(const expected<T>& res, errc code,
                 std::initializer_list<std::string> parts) {
  BOOST_REQUIRE_MESSAGE(!res, "expected an error, got a value");
  BOOST_TEST_MESSAGE("error: " << what(res));
  BOOST_TEST(to_string(res.err().code()) == to_string(code));
  for (auto& part : parts)
    BOOST_TEST(contains(res.err().message(), part),
               "'" << res.err().message() << "' lacks '" << part << "'");
}

/// Checks the Fashion-MNIST set whose images file is `name`.
dataset check_fashion_mnist(const std::string& name, size_t rows) {
  auto path = std::string{DML_FASHION_MNIST_DIR} + "/" + name;
  BOOST_REQUIRE_MESSAGE(fs::exists(path),
                        path << " missing: install the "
                                "dataset-fashion-mnist "
                                "package");
  auto start = std::chrono::steady_clock::now();
  auto data = load_dataset(path);
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                               - start)
                   .count();
  BOOST_TEST_MESSAGE(name << " loaded in " << elapsed << " s");
  BOOST_REQUIRE_MESSAGE(data, what(data));
  BOOST_TEST(data->rows == rows);
  BOOST_TEST(data->cols == 784u);
  BOOST_TEST(!data->sparse);
  BOOST_TEST(data->source == path);
  BOOST_TEST(data->dense.size() == rows * 784);
  BOOST_TEST(data->targets.size() == rows);
  auto [lo, hi] = std::minmax_element(data->dense.begin(), data->dense.end());
  BOOST_TEST(*lo == 0.0f);
  BOOST_TEST(*hi == 1.0f);
  return std::move(*data);
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(loaders, fixture)

// -- read_file ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(read_file_plain_and_gzip) {
  auto text = pseudo_random_text(200000);
  auto plain = write("a.txt", text);
  auto gz = write_gz("a.txt.gz", text);
  auto r1 = read_file(plain);
  BOOST_REQUIRE(r1);
  BOOST_TEST((*r1 == text));
  auto r2 = read_file(gz);
  BOOST_REQUIRE_MESSAGE(r2, what(r2));
  BOOST_TEST((*r2 == text));
  auto empty = write("empty.txt", "");
  auto r3 = read_file(empty);
  BOOST_REQUIRE(r3);
  BOOST_TEST(r3->empty());
}

BOOST_AUTO_TEST_CASE(read_file_concatenated_gzip_members) {
  auto a = slurp(write_gz("a.gz", "hello "));
  auto b = slurp(write_gz("b.gz", "world"));
  auto both = write("both.gz", a + b);
  auto res = read_file(both);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  BOOST_TEST(*res == "hello world");
  check_error(read_file(write("junk.gz", a + "junk")), errc::bad_format,
              {"junk.gz: corrupt gzip stream", "trailing garbage"});
}

BOOST_AUTO_TEST_CASE(read_file_missing) {
  auto p = path("nope.csv");
  check_error(read_file(p), errc::io_error,
              {p + ": cannot open: No such file or directory"});
  check_error(read_file(p + ".gz"), errc::io_error,
              {p + ".gz: cannot open: No such file or directory"});
  auto d = path("");
  check_error(read_file(d), errc::io_error, {d + ": cannot read"});
}

BOOST_AUTO_TEST_CASE(gzip_truncated) {
  auto gz = slurp(write_gz("full.gz", pseudo_random_text(100000)));
  auto half = write("half.gz", gz.substr(0, gz.size() / 2));
  check_error(read_file(half), errc::bad_format,
              {half + ": corrupt gzip stream (unexpected end of file"});
  // Only the 8-byte trailer (CRC and length) missing.
  auto no_trailer = write("no_trailer.gz", gz.substr(0, gz.size() - 8));
  check_error(read_file(no_trailer), errc::bad_format,
              {no_trailer + ": corrupt gzip stream"});
  check_error(read_file(write("empty.gz", "")), errc::bad_format,
              {"empty.gz: corrupt gzip stream"});
  check_error(read_file(write("plain.gz", "not gzip at all")), errc::bad_format,
              {"plain.gz: corrupt gzip stream (incorrect header check)"});
}

BOOST_AUTO_TEST_CASE(gzip_corrupted) {
  // Compressed: flipped bytes break the Huffman codes or the CRC.
  auto gz = slurp(write_gz("full.gz", pseudo_random_text(100000)));
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 4; ++i)
    gz[i] = static_cast<char>(~gz[i]);
  auto p = write("flipped.gz", gz);
  check_error(read_file(p), errc::bad_format, {p + ": corrupt gzip stream ("});
  // Stored (level 0): the blocks still decode, so only the CRC can tell.
  auto stored = slurp(write_gz("stored.gz", pseudo_random_text(100000), "wb0"));
  stored[stored.size() / 2] ^= 0x01;
  auto q = write("stored_flipped.gz", stored);
  check_error(read_file(q), errc::bad_format,
              {q + ": corrupt gzip stream (incorrect data check)"});
}

// -- format dispatch ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(data_format_names) {
  BOOST_TEST((*parse_data_format("auto") == data_format::automatic));
  BOOST_TEST((*parse_data_format("idx") == data_format::idx));
  BOOST_TEST((*parse_data_format("csv") == data_format::csv));
  BOOST_TEST((*parse_data_format("libsvm") == data_format::libsvm));
  check_error(parse_data_format("parquet"), errc::bad_value,
              {"'parquet'", "auto, idx, csv, libsvm"});
}

BOOST_AUTO_TEST_CASE(format_from_file_name) {
  auto p = write("data.parquet", "x");
  check_error(load_dataset(p), errc::bad_value,
              {p, "*.csv", "*.libsvm", "*idx*-ubyte"});
  // An explicit format overrides the name; upper-case extensions work.
  auto q = write("data.dat", "a,b\n1,2\n");
  load_options opts;
  opts.format = data_format::csv;
  auto res = load_dataset(q, opts);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  BOOST_TEST(res->rows == 1u);
  auto upper = write("DATA.CSV", "a,b\n1,2\n");
  BOOST_TEST(static_cast<bool>(load_dataset(upper)));
  auto svm = write_gz("d.svm.gz", "1 1:2\n");
  auto res2 = load_dataset(svm);
  BOOST_REQUIRE_MESSAGE(res2, what(res2));
  BOOST_TEST(res2->sparse);
}

// -- CSV ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(csv_good) {
  auto p = write("good.csv",
                 "a, b ,label\r\n"
                 "1e-3,.5,2\r\n"
                 "-2,+4.25,0\n"
                 "0x10,1E2,1\n"
                 "\n"
                 "\r\n");
  auto res = load_dataset(p);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  auto& d = *res;
  BOOST_TEST(d.rows == 3u);
  BOOST_TEST(d.cols == 2u);
  BOOST_TEST(!d.sparse);
  BOOST_TEST(d.source == p);
  std::vector<float> dense{1e-3f, 0.5f, -2.0f, 4.25f, 16.0f, 100.0f};
  BOOST_TEST(d.dense == dense, boost::test_tools::per_element());
  std::vector<float> targets{2, 0, 1};
  BOOST_TEST(d.targets == targets, boost::test_tools::per_element());
  // The same through gzip.
  auto gz = write_gz("good.csv.gz", slurp(p));
  auto res2 = load_dataset(gz);
  BOOST_REQUIRE_MESSAGE(res2, what(res2));
  BOOST_TEST(res2->dense == dense, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(csv_label_column_by_name) {
  auto p = write("named.csv", "label,x,y\n3,0.5,2\n1,-1,7\n");
  load_options opts;
  opts.label_column = "label";
  auto res = load_dataset(p, opts);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  BOOST_TEST(res->cols == 2u);
  std::vector<float> dense{0.5f, 2, -1, 7};
  BOOST_TEST(res->dense == dense, boost::test_tools::per_element());
  std::vector<float> targets{3, 1};
  BOOST_TEST(res->targets == targets, boost::test_tools::per_element());
  opts.label_column = "y";
  res = load_dataset(p, opts);
  BOOST_REQUIRE(res);
  std::vector<float> dense2{3, 0.5f, 1, -1};
  BOOST_TEST(res->dense == dense2, boost::test_tools::per_element());
  opts.label_column = "target";
  check_error(load_dataset(p, opts), errc::bad_value,
              {p + ":1:", "'target'", "label, x, y"});
}

BOOST_AUTO_TEST_CASE(csv_regression_targets) {
  auto p = write("reg.csv", "x,y\n1,-2.5\n2,0.25\n");
  load_options opts;
  opts.classification = false;
  auto res = load_dataset(p, opts);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  std::vector<float> targets{-2.5f, 0.25f};
  BOOST_TEST(res->targets == targets, boost::test_tools::per_element());
  // The same file is no classification data.
  check_error(load_dataset(p), errc::bad_value,
              {p + ":2: column 'y': label '-2.5'"});
}

BOOST_AUTO_TEST_CASE(csv_ragged_row) {
  auto p = write("ragged.csv", "a,b,c\n1,2,0\n1,2\n");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":3: expected 3 cells, found 2"});
  auto q = write("ragged2.csv", "a,b,c\n1,2,0,4\n");
  check_error(load_dataset(q), errc::bad_format,
              {q + ":2: expected 3 cells, found 4"});
}

BOOST_AUTO_TEST_CASE(csv_non_numeric_cell) {
  auto p = write("text.csv", "a,b,c\n1,abc,0\n");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":2: column 'b': 'abc' is not a number"});
  auto q = write("garbage.csv", "a,b,c\n1,2,0\n1.5x,2,0\n");
  check_error(load_dataset(q), errc::bad_format,
              {q + ":3: column 'a': '1.5x' is not a number"});
  auto r = write("empty_cell.csv", "a,b,c\n1,,0\n");
  check_error(load_dataset(r), errc::bad_format,
              {r + ":2: column 'b': empty cell"});
  auto s = write("last_empty.csv", "a,b,c\n1,2,\n3,4,0\n");
  check_error(load_dataset(s), errc::bad_format,
              {s + ":2: column 'c': empty cell"});
  auto t = write("nan.csv", "a,b,c\n1,nan,0\n");
  check_error(load_dataset(t), errc::bad_value,
              {t + ":2: column 'b': 'nan' is not a finite float"});
  auto u = write("inf.csv", "a,b,c\n1,2,0\n-inf,2,0\n");
  check_error(load_dataset(u), errc::bad_value, {u + ":3: column 'a'"});
  auto v = write("huge.csv", "a,b,c\n1e300,2,0\n");
  check_error(load_dataset(v), errc::bad_value, {v + ":2: column 'a'"});
}

BOOST_AUTO_TEST_CASE(csv_empty_file) {
  auto p = write("empty.csv", "");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":1: expected a header row"});
}

BOOST_AUTO_TEST_CASE(csv_header_only) {
  auto p = write("header.csv", "a,b,c\n");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":2: no data rows after the header"});
  auto q = write("one_column.csv", "a\n1\n");
  check_error(load_dataset(q), errc::bad_format,
              {q + ":1: expected at least 2 columns"});
}

BOOST_AUTO_TEST_CASE(csv_blank_line_inside_data) {
  auto p = write("blank.csv", "a,b\n1,0\n\n2,1\n");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":3: blank line inside the data"});
}

BOOST_AUTO_TEST_CASE(csv_non_integer_label) {
  auto p = write("frac.csv", "a,b\n1,0\n2,1.5\n");
  check_error(load_dataset(p), errc::bad_value,
              {p + ":3: column 'b': label '1.5' is not a class index"});
}

BOOST_AUTO_TEST_CASE(csv_negative_label) {
  auto p = write("neg.csv", "a,b\n1,-1\n");
  check_error(load_dataset(p), errc::bad_value,
              {p + ":2: column 'b': label '-1' is not a class index"});
}

// -- LIBSVM -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(libsvm_good) {
  auto p = write("good.svm",
                 "1 1:0.5 3:2  \n"
                 "0\t2:-1\r\n"
                 "2\n"
                 "3 1:1e-3 2:.5 3:-2\n"
                 "\n");
  auto res = load_dataset(p);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  auto& d = *res;
  BOOST_TEST(d.sparse);
  BOOST_TEST(d.rows == 4u);
  BOOST_TEST(d.cols == 3u);
  BOOST_TEST(d.source == p);
  std::vector<int64_t> indptr{0, 2, 3, 3, 6};
  std::vector<int32_t> indices{0, 2, 1, 0, 1, 2};
  std::vector<float> values{0.5f, 2, -1, 1e-3f, 0.5f, -2};
  std::vector<float> targets{1, 0, 2, 3};
  BOOST_TEST(d.csr.indptr == indptr, boost::test_tools::per_element());
  BOOST_TEST(d.csr.indices == indices, boost::test_tools::per_element());
  BOOST_TEST(d.csr.values == values, boost::test_tools::per_element());
  BOOST_TEST(d.targets == targets, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(libsvm_dimension_given) {
  auto p = write("dim.libsvm", "1 1:1 4:2\n0 2:3\n");
  load_options opts;
  opts.dimension = 10;
  auto res = load_dataset(p, opts);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  BOOST_TEST(res->cols == 10u);
  opts.dimension = 4;
  res = load_dataset(p, opts);
  BOOST_REQUIRE(res);
  BOOST_TEST(res->cols == 4u);
  opts.dimension = 0;
  res = load_dataset(p, opts);
  BOOST_REQUIRE(res);
  BOOST_TEST(res->cols == 4u);
}

BOOST_AUTO_TEST_CASE(libsvm_index_zero) {
  auto p = write("zero.svm", "1 1:1\n0 0:1 2:1\n");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":2: feature '0:1': index 0"});
}

BOOST_AUTO_TEST_CASE(libsvm_non_increasing_index) {
  auto p = write("order.svm", "1 1:1\n1 1:1\n0 3:1 2:1\n");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":3: feature '2:1': index 2 after 3"});
  auto q = write("dup.svm", "1 2:1 2:5\n");
  check_error(load_dataset(q), errc::bad_format,
              {q + ":1: feature '2:5': index 2 after 2"});
}

BOOST_AUTO_TEST_CASE(libsvm_index_exceeds_dimension) {
  auto p = write("big.svm", "1 1:1\n1 3:1 5:1\n");
  load_options opts;
  opts.dimension = 4;
  check_error(load_dataset(p, opts), errc::shape_mismatch,
              {p + ":2: feature '5:1': index 5 exceeds the dimension 4"});
}

BOOST_AUTO_TEST_CASE(libsvm_bad_tokens) {
  auto p = write("tok.svm", "1 1:1\n1 2:abc\n");
  check_error(load_dataset(p), errc::bad_format,
              {p + ":2: feature '2:abc': 'abc' is not a number"});
  auto q = write("tok2.svm", "1 1:1 x\n");
  check_error(load_dataset(q), errc::bad_format,
              {q + ":1: bad feature 'x', expected index:value"});
  auto r = write("tok3.svm", "1 1:1\n1 a:1\n");
  check_error(load_dataset(r), errc::bad_format,
              {r + ":2: feature 'a:1': index is not a positive integer"});
  auto s = write("tok4.svm", "1 1:1\nyes 1:1\n");
  check_error(load_dataset(s), errc::bad_format,
              {s + ":2: label 'yes' is not a number"});
  auto t = write("tok5.svm", "1 1:\n");
  check_error(load_dataset(t), errc::bad_format,
              {t + ":1: feature '1:': '' is not a number"});
  auto u = write("tok6.svm", "1 99999999999:1\n");
  check_error(load_dataset(u), errc::bad_value, {u + ":1: feature"});
  auto v = write("tok7.svm", "1 1:1\n\n0 1:1\n");
  check_error(load_dataset(v), errc::bad_format,
              {v + ":2: blank line inside the data"});
  auto w = write("empty.svm", "\n\n");
  check_error(load_dataset(w), errc::bad_format, {w + ":1: no data rows"});
  auto x = write("nan.svm", "1 1:nan\n");
  check_error(load_dataset(x), errc::bad_value, {x + ":1: feature '1:nan'"});
}

BOOST_AUTO_TEST_CASE(libsvm_binary_minus_one_plus_one) {
  auto p = write("pm.svm", "+1 1:1\n-1 2:1\n1 1:2\n-1 1:3\n");
  auto res = load_dataset(p);
  BOOST_REQUIRE_MESSAGE(res, what(res));
  std::vector<float> targets{1, 0, 1, 0};
  BOOST_TEST(res->targets == targets, boost::test_tools::per_element());
  // Regression keeps the labels.
  load_options opts;
  opts.classification = false;
  res = load_dataset(p, opts);
  BOOST_REQUIRE(res);
  std::vector<float> raw{1, -1, 1, -1};
  BOOST_TEST(res->targets == raw, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(libsvm_bad_labels) {
  auto p = write("mixed.svm", "1 1:1\n-1 1:1\n2 1:1\n");
  check_error(load_dataset(p), errc::bad_value,
              {p + ":2: label -1", "line 3 has label '2'"});
  auto q = write("mixed0.svm", "0 1:1\n1 1:1\n-1 1:1\n");
  check_error(load_dataset(q), errc::bad_value,
              {q + ":3: label -1", "line 1 has label '0'"});
  auto r = write("neg.svm", "1 1:1\n-2 1:1\n");
  check_error(load_dataset(r), errc::bad_value,
              {r + ":2: label '-2' is not a class index"});
  auto s = write("frac.svm", "1 1:1\n0.5 1:1\n");
  check_error(load_dataset(s), errc::bad_value,
              {s + ":2: label '0.5' is not a class index"});
}

// -- IDX ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(idx_good_plain_and_gzip) {
  auto images = idx_images(3, 2, 2);
  auto labels = idx_labels({7, 0, 255});
  std::vector<float> dense;
  for (int i = 0; i < 12; ++i)
    dense.push_back(static_cast<float>(i) / 255.0f);
  std::vector<float> targets{7, 0, 255};
  auto check = [&](const std::string& p) {
    auto res = load_dataset(p);
    BOOST_REQUIRE_MESSAGE(res, what(res));
    BOOST_TEST(res->rows == 3u);
    BOOST_TEST(res->cols == 4u);
    BOOST_TEST(!res->sparse);
    BOOST_TEST(res->source == p);
    BOOST_TEST(res->dense == dense, boost::test_tools::per_element());
    BOOST_TEST(res->targets == targets, boost::test_tools::per_element());
  };
  write("a-labels-idx1-ubyte", labels);
  check(write("a-images-idx3-ubyte", images));
  write_gz("b-labels-idx1-ubyte.gz", labels);
  check(write_gz("b-images-idx3-ubyte.gz", images));
  // Labels with the other compression than the images.
  write_gz("c-labels-idx1-ubyte.gz", labels);
  check(write("c-images-idx3-ubyte", images));
  write("d-labels-idx1-ubyte", labels);
  check(write_gz("d-images-idx3-ubyte.gz", images));
  // Full range of pixel values.
  write("e-labels-idx1-ubyte", idx_labels({1}));
  auto res = load_dataset(write("e-images-idx3-ubyte", idx_images(1, 16, 16)));
  BOOST_REQUIRE(res);
  BOOST_TEST(res->dense.front() == 0.0f);
  BOOST_TEST(res->dense.back() == 1.0f);
}

BOOST_AUTO_TEST_CASE(idx_wrong_magic) {
  auto images = idx_images(3, 2, 2);
  images[3] = 0x01;
  auto p = write("a-images-idx3-ubyte", images);
  write("a-labels-idx1-ubyte", idx_labels({1, 2, 3}));
  check_error(load_dataset(p), errc::bad_format,
              {p + ": byte 0: bad IDX magic 0x00000801, expected 0x00000803"});
  auto q = write("b-images-idx3-ubyte", idx_images(3, 2, 2));
  auto l = write("b-labels-idx1-ubyte", idx_labels({1, 2, 3}, 0, 0x00000803));
  check_error(load_dataset(q), errc::bad_format,
              {l + ": byte 0: bad IDX magic 0x00000803, expected 0x00000801"});
  auto r = write("c-images-idx3-ubyte", idx_images(3, 2, 2).substr(0, 10));
  check_error(load_dataset(r), errc::bad_format,
              {r + ": byte 10: truncated IDX header"});
}

BOOST_AUTO_TEST_CASE(idx_payload_short) {
  auto p = write("a-images-idx3-ubyte", idx_images(3, 2, 2, -1));
  write("a-labels-idx1-ubyte", idx_labels({1, 2, 3}));
  check_error(load_dataset(p), errc::bad_format,
              {p + ": byte 27: payload ends after 11 of 12 bytes",
               "3 images of 2x2"});
  auto q = write("b-images-idx3-ubyte", idx_images(3, 2, 2));
  auto l = write("b-labels-idx1-ubyte", idx_labels({1, 2, 3}, -2));
  check_error(load_dataset(q), errc::bad_format,
              {l + ": byte 9: payload ends after 1 of 3 bytes"});
  // A header that promises more than 2^64 bytes.
  auto huge = be32(0x00000803) + be32(0xffffffff) + be32(0xffffffff)
    + be32(0xffffffff) + "xyz";
  auto r = write("c-images-idx3-ubyte", huge);
  check_error(load_dataset(r), errc::bad_format,
              {r + ": byte 19: payload ends after 3 of"});
}

BOOST_AUTO_TEST_CASE(idx_payload_long) {
  auto p = write_gz("a-images-idx3-ubyte.gz", idx_images(3, 2, 2, 5));
  write("a-labels-idx1-ubyte", idx_labels({1, 2, 3}));
  check_error(load_dataset(p), errc::bad_format,
              {p + ": byte 28: 5 bytes after the payload"});
  auto q = write("b-images-idx3-ubyte", idx_images(3, 2, 2));
  auto l = write("b-labels-idx1-ubyte", idx_labels({1, 2, 3}, 1));
  check_error(load_dataset(q), errc::bad_format,
              {l + ": byte 11: 1 bytes after the payload"});
}

BOOST_AUTO_TEST_CASE(idx_missing_labels_file) {
  auto p = write("a-images-idx3-ubyte", idx_images(3, 2, 2));
  check_error(load_dataset(p), errc::io_error,
              {p, path("a-labels-idx1-ubyte"), path("a-labels-idx1-ubyte.gz")});
  auto q = write_gz("b-images-idx3-ubyte.gz", idx_images(3, 2, 2));
  check_error(load_dataset(q), errc::io_error,
              {q, path("b-labels-idx1-ubyte.gz"), path("b-labels-idx1-ubyte")});
  // The IDX format, but a name without `images-idx3`.
  auto r = write("pictures-ubyte", idx_images(3, 2, 2));
  load_options opts;
  opts.format = data_format::idx;
  check_error(load_dataset(r, opts), errc::bad_value,
              {r + ": cannot find the IDX labels file"});
}

BOOST_AUTO_TEST_CASE(idx_label_count_mismatch) {
  auto p = write("a-images-idx3-ubyte", idx_images(3, 2, 2));
  auto l = write("a-labels-idx1-ubyte", idx_labels({1, 2}));
  check_error(load_dataset(p), errc::shape_mismatch,
              {l + ": byte 4: 2 labels, but '" + p + "' has 3 images"});
}

// -- Fashion-MNIST ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fashion_mnist_train) {
  auto data = check_fashion_mnist("train-images-idx3-ubyte.gz", 60000);
  std::vector<size_t> counts(10, 0);
  for (auto t : data.targets) {
    BOOST_REQUIRE(t >= 0.0f);
    BOOST_REQUIRE(t <= 9.0f);
    BOOST_REQUIRE(t == static_cast<float>(static_cast<int>(t)));
    ++counts[static_cast<size_t>(t)];
  }
  for (auto n : counts)
    BOOST_TEST(n == 6000u);
  BOOST_TEST(count_classes(data.targets) == 10u);
}

BOOST_AUTO_TEST_CASE(fashion_mnist_test) {
  auto data = check_fashion_mnist("t10k-images-idx3-ubyte.gz", 10000);
  std::vector<size_t> counts(10, 0);
  for (auto t : data.targets) {
    BOOST_REQUIRE(t >= 0.0f);
    BOOST_REQUIRE(t <= 9.0f);
    ++counts[static_cast<size_t>(t)];
  }
  for (auto n : counts)
    BOOST_TEST(n == 1000u);
}

BOOST_AUTO_TEST_SUITE_END()
