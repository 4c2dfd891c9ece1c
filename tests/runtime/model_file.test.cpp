#include "runtime/model_file.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <boost/test/unit_test.hpp>
#include <unistd.h>

using namespace dml;
namespace fs = std::filesystem;

namespace {

model_file sample_model() {
  model_file m;
  m.config.name = "mlp";
  m.config.inputs = 3;
  m.config.outputs = 4;
  m.config.hidden = {5, 2};
  m.config.act = activation::tanh;
  m.task = task_kind::classification;
  m.stdz.mean = {0.5f, -1.0f, 2.0f};
  m.stdz.scale = {1.0f, 2.0f, 0.25f};
  for (int i = 0; i < 50; ++i)
    m.params.push_back(static_cast<float>(i) * 0.125f - 3.0f);
  return m;
}

checkpoint sample_checkpoint() {
  checkpoint c;
  c.model = sample_model();
  c.opt.m.assign(50, 0.5f);
  c.opt.v.assign(50, 0.25f);
  c.opt.updates = 17;
  c.step = 17;
  c.epoch = 2;
  c.samples = 12345;
  c.cursors = {10, 20, 30};
  c.rng_state = 0xdeadbeefULL;
  c.spec_json = R"({"model":"mlp"})";
  return c;
}

struct tmp_dir {
  fs::path path;
  tmp_dir() {
    path = fs::temp_directory_path()
      / ("dml-model-file-" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~tmp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(model_file_format)

BOOST_AUTO_TEST_CASE(model_round_trip) {
  auto m = sample_model();
  auto bytes = encode(m);
  auto back = decode_model_file(bytes, "x");
  BOOST_REQUIRE(back);
  BOOST_TEST(back->config.name == "mlp");
  BOOST_TEST(back->config.hidden == m.config.hidden);
  BOOST_TEST((back->config.act == activation::tanh));
  BOOST_TEST(back->stdz.mean == m.stdz.mean);
  BOOST_TEST(back->stdz.scale == m.stdz.scale);
  BOOST_TEST(back->params == m.params);
  BOOST_TEST(encode(*back) == bytes); // byte-identical
}

BOOST_AUTO_TEST_CASE(a_standardizer_that_does_not_fit_is_rejected) {
  // Checksummed but inconsistent: a crafted file must not make evaluation
  // read past a vector or divide by zero.
  auto check = [](model_file m, const std::string& msg) {
    auto back = decode_model_file(encode(m), "x.dml");
    BOOST_REQUIRE(!back);
    BOOST_TEST(back.err().message() == msg);
    checkpoint c = sample_checkpoint();
    c.model = m;
    auto ck = decode_checkpoint(encode(c), "ck");
    BOOST_REQUIRE(!ck);
  };
  auto m = sample_model();
  m.stdz.scale.clear();
  check(m, "x.dml: the standardizer has 3 means and 0 scales for 3 inputs");
  m = sample_model();
  m.config.inputs = 4;
  check(m, "x.dml: the standardizer has 3 means and 3 scales for 4 inputs");
  m = sample_model();
  m.stdz.scale[1] = 0;
  check(m,
        "x.dml: the standardizer's input 1 has mean -1 and scale 0 (a "
        "finite mean and a finite, positive scale expected)");
  m = sample_model();
  m.stdz.mean[2] = std::numeric_limits<float>::quiet_NaN();
  check(m,
        "x.dml: the standardizer's input 2 has mean nan and scale 0.25 (a "
        "finite mean and a finite, positive scale expected)");
  m = sample_model();
  m.stdz = {};
  BOOST_TEST(static_cast<bool>(decode_model_file(encode(m), "x.dml")));
}

BOOST_AUTO_TEST_CASE(checkpoint_round_trip) {
  auto c = sample_checkpoint();
  auto bytes = encode(c);
  auto back = decode_checkpoint(bytes, "x");
  BOOST_REQUIRE(back);
  BOOST_TEST(back->opt.m == c.opt.m);
  BOOST_TEST(back->opt.v == c.opt.v);
  BOOST_TEST(back->opt.updates == 17u);
  BOOST_TEST(back->samples == 12345u);
  BOOST_TEST(back->cursors == c.cursors);
  BOOST_TEST(back->rng_state == c.rng_state);
  BOOST_TEST(back->spec_json == c.spec_json);
  BOOST_TEST(encode(*back) == bytes);
  // A checkpoint is not a model file and vice versa.
  auto wrong = decode_model_file(bytes, "ck.bin");
  BOOST_REQUIRE(!wrong);
  BOOST_TEST(wrong.err().message()
             == "ck.bin: not a dml model file (bad magic)");
}

BOOST_AUTO_TEST_CASE(every_truncation_is_rejected) {
  auto bytes = encode(sample_model());
  for (size_t n = 0; n < bytes.size(); n += 7) {
    auto r = decode_model_file(bytes.substr(0, n), "m.bin");
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().message().rfind("m.bin: ", 0) == 0u);
  }
  auto r = decode_model_file(bytes + "x", "m.bin");
  BOOST_REQUIRE(!r);
  BOOST_TEST((r.err().code() == errc::bad_format));
}

BOOST_AUTO_TEST_CASE(every_flipped_payload_byte_is_caught) {
  auto bytes = encode(sample_model());
  for (size_t i = 20; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] = static_cast<char>(copy[i] ^ 0x10);
    auto r = decode_model_file(copy, "m.bin");
    BOOST_REQUIRE(!r);
    BOOST_TEST((r.err().code() == errc::checksum_mismatch
                || r.err().code() == errc::bad_format));
  }
  auto copy = bytes;
  copy[40] = static_cast<char>(copy[40] ^ 1);
  auto r = decode_model_file(copy, "m.bin");
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.err().message()
             == "m.bin: checksum mismatch: the file is corrupted");
}

BOOST_AUTO_TEST_CASE(newer_version_is_rejected) {
  auto bytes = encode(sample_model());
  uint32_t v = model_file_version + 1;
  std::memcpy(&bytes[8], &v, 4);
  auto r = decode_model_file(bytes, "m.bin");
  BOOST_REQUIRE(!r);
  BOOST_TEST((r.err().code() == errc::version_mismatch));
  BOOST_TEST(r.err().message()
             == "m.bin: format version 2 is newer than this build reads (1)");
}

BOOST_AUTO_TEST_CASE(atomic_write_and_load) {
  tmp_dir dir;
  auto path = (dir.path / "model.bin").string();
  BOOST_REQUIRE(!write_file_atomic(path, encode(sample_model())));
  BOOST_REQUIRE(!write_file_atomic(path, encode(sample_model())));
  auto m = load_model_file(path);
  BOOST_REQUIRE(m);
  BOOST_TEST(m->params == sample_model().params);
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) {
    (void)e;
    ++files;
  }
  BOOST_TEST(files == 1u); // no temporary file left behind
  auto missing = load_model_file((dir.path / "nope.bin").string());
  BOOST_REQUIRE(!missing);
  BOOST_TEST((missing.err().code() == errc::io_error));
  BOOST_TEST(missing.err().message().find("nope.bin: cannot open")
             != std::string::npos);
  auto bad_dir = write_file_atomic("/nonexistent-dir/x.bin", "x");
  BOOST_TEST((bad_dir.code() == errc::io_error));
}

BOOST_AUTO_TEST_SUITE_END()
