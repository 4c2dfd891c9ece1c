#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.hpp"

namespace dml {

/// The update rule.
enum class optimizer_kind : uint8_t { sgd = 0, momentum = 1, adam = 2 };

/// How the learning rate changes over training.
enum class schedule_kind : uint8_t {
  /// `lr` throughout.
  constant = 0,
  /// `lr * decay^floor(epoch / decay_epochs)`.
  step = 1,
  /// Cosine from `lr` down to `min_lr` over all epochs.
  cosine = 2,
};

/// Returns the kind named `name` ("sgd", "momentum", "adam").
expected<optimizer_kind> parse_optimizer(const std::string& name);

/// Returns the schedule named `name` ("constant", "step", "cosine").
expected<schedule_kind> parse_schedule(const std::string& name);

const char* to_string(optimizer_kind x) noexcept;

const char* to_string(schedule_kind x) noexcept;

/// Hyper-parameters of an optimizer and its schedule.
struct optimizer_config {
  optimizer_kind kind = optimizer_kind::sgd;
  /// Base learning rate.
  float lr = 0.1f;
  /// Momentum coefficient (momentum).
  float momentum = 0.9f;
  /// Whether momentum uses Nesterov's look-ahead form.
  bool nesterov = false;
  /// Adam's decay rates and epsilon.
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  /// Learning-rate schedule.
  schedule_kind schedule = schedule_kind::constant;
  /// Step schedule: multiply by `decay` every `decay_epochs` epochs.
  float decay = 0.1f;
  uint32_t decay_epochs = 1;
  /// Cosine schedule: the final learning rate.
  float min_lr = 0.0f;
};

/// Returns the learning rate after `progress` epochs of `total_epochs`
/// (`progress` may be fractional: rows used so far / rows per epoch).
float learning_rate(const optimizer_config& cfg, double progress,
                    uint32_t total_epochs);

/// All state of an optimizer in flat vectors, so it can be saved and restored
/// exactly: `m` (momentum / Adam first moment), `v` (Adam second moment) and
/// the number of updates applied.
struct optimizer_state {
  std::vector<float> m;
  std::vector<float> v;
  uint64_t updates = 0;
};

/// Returns a zeroed state for `n` parameters.
optimizer_state make_optimizer_state(const optimizer_config& cfg, size_t n);

/// Applies one update with learning rate `lr` to `n` parameters, given the
/// mean gradient `grad`.
void apply_update(const optimizer_config& cfg, float lr, optimizer_state& st,
                  float* params, const float* grad, size_t n);

/// Like `apply_update`, but reads the parameters from `in` and writes the
/// updated ones to `out` (which may equal `in`): the same bits, without a
/// copy when the old parameters must stay intact.
void apply_update(const optimizer_config& cfg, float lr, optimizer_state& st,
                  const float* in, float* out, const float* grad, size_t n);

/// Like `apply_update` with the gradient `scale * (parts[0] + parts[1])`
/// (`nparts` is 1 or 2), computed element by element inside the update: one
/// pass over memory instead of three (sum, scale, update), and the same bits
/// as summing into a buffer, scaling it and calling `apply_update`.
void apply_update(const optimizer_config& cfg, float lr, optimizer_state& st,
                  const float* in, float* out, const float* const* parts,
                  size_t nparts, float scale, size_t n);

/// Elements `[begin, end)` of the update above, as update number `t` (the
/// caller counts it in `st.updates` once): ranges that cover `[0, n)`, run
/// in any order or at once on several threads, give the same bits as the
/// update in one piece.
void apply_update_part(const optimizer_config& cfg, float lr,
                       optimizer_state& st, uint64_t t, const float* in,
                       float* out, const float* const* parts, size_t nparts,
                       float scale, size_t begin, size_t end);

} // namespace dml
