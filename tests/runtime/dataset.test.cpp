#include "runtime/dataset.hpp"

#include <boost/test/unit_test.hpp>

using namespace dml;

namespace {

dataset sparse_sample() {
  // Rows: {0:1}, {}, {1:2, 2:3}, {2:4}
  dataset d;
  d.rows = 4;
  d.cols = 3;
  d.sparse = true;
  d.csr.indptr = {0, 1, 1, 3, 4};
  d.csr.indices = {0, 1, 2, 2};
  d.csr.values = {1, 2, 3, 4};
  d.targets = {0, 1, 0, 1};
  return d;
}

} // namespace

BOOST_AUTO_TEST_SUITE(dataset_rows)

BOOST_AUTO_TEST_CASE(copy_and_append_rebuild_dense_data) {
  dataset d;
  d.rows = 3;
  d.cols = 2;
  d.dense = {1, 2, 3, 4, 5, 6};
  d.targets = {7, 8, 9};
  dataset rebuilt;
  BOOST_REQUIRE(append_rows(rebuilt, copy_rows(d, 0, 2)));
  BOOST_REQUIRE(append_rows(rebuilt, copy_rows(d, 2, 1)));
  BOOST_TEST(rebuilt.rows == 3u);
  BOOST_TEST(rebuilt.dense == d.dense);
  BOOST_TEST(rebuilt.targets == d.targets);
}

BOOST_AUTO_TEST_CASE(copy_and_append_rebuild_sparse_data) {
  auto d = sparse_sample();
  auto mid = copy_rows(d, 1, 2);
  BOOST_TEST(mid.csr.indptr == (std::vector<int64_t>{0, 0, 2}));
  dataset rebuilt;
  BOOST_REQUIRE(append_rows(rebuilt, copy_rows(d, 0, 1)));
  BOOST_REQUIRE(append_rows(rebuilt, mid));
  BOOST_REQUIRE(append_rows(rebuilt, copy_rows(d, 3, 1)));
  BOOST_TEST(rebuilt.csr.indptr == d.csr.indptr);
  BOOST_TEST(rebuilt.csr.indices == d.csr.indices);
  BOOST_TEST(rebuilt.csr.values == d.csr.values);
}

BOOST_AUTO_TEST_CASE(hostile_rows_are_refused) {
  auto d = sparse_sample();
  dataset rebuilt;
  BOOST_REQUIRE(append_rows(rebuilt, copy_rows(d, 0, 2)));
  auto bad_index = copy_rows(d, 2, 1);
  bad_index.csr.indices[0] = 3; // outside the 3 columns
  BOOST_TEST(!append_rows(rebuilt, bad_index));
  auto bad_ptr = copy_rows(d, 2, 1);
  bad_ptr.csr.indptr.back() = 5; // more entries than it carries
  BOOST_TEST(!append_rows(rebuilt, bad_ptr));
  dataset dense;
  dense.rows = 1;
  dense.cols = 3;
  dense.dense = {1, 2, 3};
  dense.targets = {0};
  BOOST_TEST(!append_rows(rebuilt, dense)); // another kind
  BOOST_TEST(rebuilt.rows == 2u); // nothing half-appended
  auto ragged = dense;
  ragged.dense.pop_back();
  dataset fresh;
  BOOST_TEST(!append_rows(fresh, ragged));
}

BOOST_AUTO_TEST_SUITE_END()
