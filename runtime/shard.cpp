#include "runtime/shard.hpp"

#include <algorithm>
#include <map>
#include <numeric>

#include "runtime/random.hpp"
#include "runtime/sha256.hpp"

namespace dml {

uint64_t step_quota(uint64_t batch, uint32_t workers, uint32_t rank) {
  return batch / workers + (rank < batch % workers ? 1 : 0);
}

shard_plan::shard_plan(uint64_t rows, uint32_t shards) : rows_(rows) {
  shards_.resize(shards);
  uint64_t base = rows / shards;
  uint64_t extra = rows % shards;
  uint64_t pos = 0;
  for (uint32_t i = 0; i < shards; ++i) {
    auto& s = shards_[i];
    s.id = i;
    s.begin = pos;
    pos += base + (i < extra ? 1 : 0);
    s.end = pos;
  }
}

void shard_plan::assign_round_robin(const std::vector<int32_t>& ranks) {
  for (size_t i = 0; i < shards_.size(); ++i)
    shards_[i].owner = ranks.empty() ? -1 : ranks[i % ranks.size()];
}

std::vector<std::pair<uint32_t, int32_t>>
shard_plan::balance(const std::vector<int32_t>& live) {
  std::vector<std::pair<uint32_t, int32_t>> moves;
  if (live.empty())
    return moves;
  std::map<int32_t, std::vector<uint32_t>> held;
  for (auto r : live)
    held[r];
  std::vector<uint32_t> orphans;
  for (auto& s : shards_) {
    auto i = held.find(s.owner);
    if (i != held.end())
      i->second.push_back(s.id);
    else
      orphans.push_back(s.id);
  }
  // `held` iterates in rank order, so ties go to the lowest rank.
  auto least = [&] {
    auto best = held.begin();
    for (auto i = held.begin(); i != held.end(); ++i)
      if (i->second.size() < best->second.size())
        best = i;
    return best;
  };
  auto most = [&] {
    auto best = held.begin();
    for (auto i = held.begin(); i != held.end(); ++i)
      if (i->second.size() > best->second.size())
        best = i;
    return best;
  };
  auto give = [&](uint32_t id, std::vector<uint32_t>& to, int32_t rank) {
    shards_[id].owner = rank;
    to.push_back(id);
    moves.emplace_back(id, rank);
  };
  for (auto id : orphans) {
    auto to = least();
    give(id, to->second, to->first);
  }
  for (;;) {
    auto hi = most();
    auto lo = least();
    if (hi->second.size() <= lo->second.size() + 1)
      break;
    auto id = hi->second.back();
    hi->second.pop_back();
    give(id, lo->second, lo->first);
  }
  return moves;
}

std::vector<row_span> shard_plan::take(int32_t rank, uint64_t quota) const {
  std::vector<row_span> result;
  for (auto& s : shards_) {
    if (quota == 0)
      break;
    if (s.owner != rank || s.left() == 0)
      continue;
    auto n = std::min(quota, s.left());
    result.push_back(row_span{s.id, s.cursor, n});
    quota -= n;
  }
  return result;
}

bool shard_plan::commit(const std::vector<row_span>& spans) {
  for (auto& sp : spans) {
    if (sp.shard >= shards_.size())
      return false;
    auto& s = shards_[sp.shard];
    if (sp.offset != s.cursor || sp.count > s.left())
      return false;
  }
  for (auto& sp : spans)
    shards_[sp.shard].cursor += sp.count;
  return true;
}

bool shard_plan::epoch_done() const noexcept {
  for (auto& s : shards_)
    if (s.left() > 0)
      return false;
  return true;
}

void shard_plan::start_epoch() noexcept {
  for (auto& s : shards_)
    s.cursor = 0;
}

uint64_t shard_plan::left(int32_t rank) const noexcept {
  uint64_t result = 0;
  for (auto& s : shards_)
    if (s.owner == rank)
      result += s.left();
  return result;
}

uint64_t shard_plan::consumed() const noexcept {
  uint64_t result = 0;
  for (auto& s : shards_)
    result += s.cursor;
  return result;
}

std::vector<uint32_t> shard_order(uint64_t seed, uint64_t epoch, uint32_t shard,
                                  uint64_t size) {
  std::vector<uint32_t> order(size);
  std::iota(order.begin(), order.end(), uint32_t{0});
  rng gen{mix_seed(seed, epoch, shard)};
  for (uint64_t i = size; i > 1; --i) {
    auto j = gen.below(i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

void span_rows(const row_span& span, uint64_t first_row,
               const std::vector<uint32_t>& order, std::vector<uint32_t>& out) {
  for (uint64_t i = 0; i < span.count; ++i)
    out.push_back(static_cast<uint32_t>(first_row + order[span.offset + i]));
}

std::string fingerprint(const dataset& data) {
  sha256 h;
  uint64_t header[3] = {data.rows, data.cols, data.sparse ? 1u : 0u};
  h.update(header, sizeof(header));
  if (data.sparse) {
    h.update(data.csr.indptr.data(), data.csr.indptr.size() * sizeof(int64_t));
    h.update(data.csr.indices.data(),
             data.csr.indices.size() * sizeof(int32_t));
    h.update(data.csr.values.data(), data.csr.values.size() * sizeof(float));
  } else {
    h.update(data.dense.data(), data.dense.size() * sizeof(float));
  }
  h.update(data.targets.data(), data.targets.size() * sizeof(float));
  return to_hex(h.finish());
}

std::vector<row_span> next_spans(const std::vector<row_span>& spans,
                                 const std::vector<shard>& shards) {
  std::vector<row_span> result;
  for (auto& sp : spans) {
    if (sp.shard >= shards.size())
      continue;
    auto size = shards[sp.shard].size();
    auto offset = sp.offset + sp.count;
    if (offset >= size || sp.count == 0)
      continue;
    result.push_back(
      row_span{sp.shard, offset, std::min(sp.count, size - offset)});
  }
  return result;
}

} // namespace dml
