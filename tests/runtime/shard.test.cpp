#include "runtime/shard.hpp"

#include <algorithm>
#include <map>
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

BOOST_AUTO_TEST_CASE(balance_moves_orphans_and_keeps_cursors) {
  shard_plan plan{40, 4};
  plan.assign_round_robin({0, 1});
  BOOST_REQUIRE(plan.commit(plan.take(1, 5)));
  auto before = plan.shards()[1].cursor;
  // Rank 1 is lost: its shards 1 and 3 go to rank 0, cursors kept.
  auto moves = plan.balance({0});
  using move = std::pair<uint32_t, int32_t>;
  BOOST_TEST((moves == std::vector<move>{{1, 0}, {3, 0}}));
  BOOST_TEST(plan.left(1) == 0u);
  BOOST_TEST(plan.shards()[1].cursor == before);
  BOOST_TEST(plan.left(0) == 35u);
  // Nothing to do when balanced; nothing at all without live ranks.
  BOOST_TEST(plan.balance({0}).empty());
  BOOST_TEST(plan.balance({}).empty());
}

BOOST_AUTO_TEST_CASE(balance_evens_out_for_a_joiner) {
  shard_plan plan{100, 10};
  plan.assign_round_robin({0, 1, 2});
  // Ranks 0, 1, 2 hold 4, 3, 3 shards; rank 3 joins.
  auto moves = plan.balance({0, 1, 2, 3});
  using move = std::pair<uint32_t, int32_t>;
  // The joiner gets rank 0's highest shard (9); then ranks 0, 1 and 2 tie
  // at 3 and the lowest gives again (6): counts 2, 3, 3, 2.
  BOOST_TEST((moves == std::vector<move>{{9, 3}, {6, 3}}));
  std::map<int32_t, int> count;
  for (auto& s : plan.shards())
    ++count[s.owner];
  BOOST_TEST(count[0] == 2);
  BOOST_TEST(count[3] == 2);
  // Rank 2 lost: its three shards go to the least loaded ranks in turn.
  moves = plan.balance({0, 1, 3});
  BOOST_TEST(moves.size() == 3u);
  count.clear();
  for (auto& s : plan.shards())
    ++count[s.owner];
  BOOST_TEST(count.count(2) == 0u);
  BOOST_TEST(std::abs(count[0] - count[1]) <= 1);
  BOOST_TEST(std::abs(count[1] - count[3]) <= 1);
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
