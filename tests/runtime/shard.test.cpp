#include "runtime/shard.hpp"

#include <algorithm>
#include <numeric>
#include <set>

#include <boost/test/unit_test.hpp>

using namespace dml;

BOOST_AUTO_TEST_SUITE(shard)

BOOST_AUTO_TEST_CASE(shards_cover_rows_contiguously) {
  shard_plan plan{10, 3};
  BOOST_REQUIRE(plan.shards().size() == 3u);
  BOOST_TEST(plan.shards()[0].begin == 0u);
  BOOST_TEST(plan.shards()[0].end == 4u);
  BOOST_TEST(plan.shards()[1].end == 7u);
  BOOST_TEST(plan.shards()[2].end == 10u);
}

BOOST_AUTO_TEST_CASE(quota_splits_batch) {
  BOOST_TEST(step_quota(10, 4, 0) == 3u);
  BOOST_TEST(step_quota(10, 4, 1) == 3u);
  BOOST_TEST(step_quota(10, 4, 2) == 2u);
  BOOST_TEST(step_quota(10, 4, 3) == 2u);
}

// Simulates whole epochs for many layouts and checks that every row is used
// exactly once per epoch.
BOOST_AUTO_TEST_CASE(every_row_once_per_epoch) {
  for (uint64_t rows : {1u, 7u, 100u, 1001u}) {
    for (uint32_t workers : {1u, 2u, 3u, 4u}) {
      for (uint32_t shards : {workers, workers * 4 + 1}) {
        if (shards > rows)
          continue;
        shard_plan plan{rows, shards};
        std::vector<int32_t> ranks(workers);
        std::iota(ranks.begin(), ranks.end(), 0);
        plan.assign_round_robin(ranks);
        for (uint64_t epoch = 0; epoch < 2; ++epoch) {
          plan.start_epoch();
          std::vector<int> seen(rows, 0);
          std::vector<std::vector<uint32_t>> orders;
          for (auto& s : plan.shards())
            orders.push_back(shard_order(7, epoch, s.id, s.size()));
          int guard = 0;
          while (!plan.epoch_done() && ++guard < 100000) {
            for (uint32_t r = 0; r < workers; ++r) {
              auto spans = plan.take(static_cast<int32_t>(r),
                                     step_quota(16, workers, r));
              std::vector<uint32_t> ids;
              for (auto& sp : spans)
                span_rows(sp, plan.shards()[sp.shard].begin, orders[sp.shard],
                          ids);
              for (auto id : ids)
                ++seen[id];
              BOOST_REQUIRE(plan.commit(spans));
            }
          }
          BOOST_TEST_INFO("rows " << rows << " workers " << workers
                                  << " shards " << shards);
          BOOST_TEST(std::all_of(seen.begin(), seen.end(),
                                 [](int x) { return x == 1; }));
          BOOST_TEST(plan.consumed() == rows);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(stale_commit_is_refused) {
  shard_plan plan{20, 2};
  plan.assign_round_robin({0, 1});
  auto spans = plan.take(0, 4);
  BOOST_REQUIRE(plan.commit(spans));
  BOOST_TEST(!plan.commit(spans)); // same rows twice: refused
  BOOST_TEST(plan.consumed() == 4u);
}

BOOST_AUTO_TEST_CASE(reassign_keeps_cursors) {
  shard_plan plan{40, 4};
  plan.assign_round_robin({0, 1});
  BOOST_REQUIRE(plan.commit(plan.take(1, 5)));
  auto before = plan.shards()[1].cursor;
  BOOST_TEST(plan.reassign(1, {0}) == 2u);
  BOOST_TEST(plan.left(1) == 0u);
  BOOST_TEST(plan.shards()[1].owner == 0);
  BOOST_TEST(plan.shards()[1].cursor == before);
  BOOST_TEST(plan.left(0) == 35u);
}

BOOST_AUTO_TEST_CASE(order_is_a_pure_permutation) {
  auto a = shard_order(1, 2, 3, 1000);
  auto b = shard_order(1, 2, 3, 1000);
  auto c = shard_order(1, 3, 3, 1000);
  BOOST_TEST(a == b);
  BOOST_TEST(a != c);
  std::set<uint32_t> uniq(a.begin(), a.end());
  BOOST_TEST(uniq.size() == 1000u);
  BOOST_TEST(*uniq.rbegin() == 999u);
}

BOOST_AUTO_TEST_CASE(fingerprint_tracks_content) {
  dataset d;
  d.rows = 2;
  d.cols = 2;
  d.dense = {1, 2, 3, 4};
  d.targets = {0, 1};
  auto f1 = fingerprint(d);
  BOOST_TEST(f1.size() == 64u);
  BOOST_TEST(fingerprint(d) == f1);
  d.dense[3] = 5;
  BOOST_TEST(fingerprint(d) != f1);
  d.dense[3] = 4;
  d.targets[1] = 0;
  BOOST_TEST(fingerprint(d) != f1);
}

BOOST_AUTO_TEST_SUITE_END()
