#pragma once

// All message types and atoms of dml, in one type-ID block, each with its
// `inspect` beside it. Register them with
// `cfg.add_message_types<caf::id_block::dml>()`.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>
#include <caf/type_id.hpp>

#include "runtime/metrics.hpp"
#include "runtime/shard.hpp"
#include "runtime/tensor.hpp"
#include "runtime/tensor_pool.hpp"

namespace dml {

/// The version of the wire protocol. Peers with another version are refused
/// at the handshake (it is part of the middleman's app identifier too).
constexpr uint32_t protocol_version = 5;

/// A tensor (runtime/tensor.hpp) travels by reference inside one process and
/// as one raw block of bytes (host byte order, x86_64 little endian) across
/// processes: CAF 0.17 would otherwise serialize a `vector<float>` element by
/// element at a tenth of the speed.
/// @relates tensor
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tensor& x) {
  if constexpr (std::is_base_of<caf::serializer, Inspector>::value) {
    size_t n = x.size();
    return caf::error::eval([&] { return f.begin_sequence(n); },
                            [&] {
                              return n
                                ? f.apply_raw(n * sizeof(float),
                                              const_cast<float*>(x.begin()))
                                : caf::error{};
                            },
                            [&] { return f.end_sequence(); });
  } else if constexpr (std::is_base_of<caf::deserializer, Inspector>::value) {
    size_t n = 0;
    auto buf = std::make_shared<std::vector<float>>();
    auto err = caf::error::eval(
      [&] { return f.begin_sequence(n); },
      [&]() -> caf::error {
        // A count beyond the bytes left is malformed: refuse it before
        // allocating (a peer could announce any size).
        if (auto* bin = dynamic_cast<caf::binary_deserializer*>(&f))
          if (n > bin->remaining() / sizeof(float))
            return caf::make_error(caf::sec::end_of_stream);
        buf->resize(n);
        return n ? f.apply_raw(n * sizeof(float), buf->data()) : caf::error{};
      },
      [&] { return f.end_sequence(); });
    x = tensor{std::shared_ptr<const std::vector<float>>{std::move(buf)}};
    return err;
  } else {
    auto n = static_cast<uint64_t>(x.size());
    return f(caf::meta::type_name("tensor"), n);
  }
}

/// @relates row_span
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, row_span& x) {
  return f(caf::meta::type_name("row_span"), x.shard, x.offset, x.count);
}

/// The rows one worker uses in one step.
struct assignment {
  int32_t rank = 0;
  std::vector<row_span> spans;
};

/// @relates assignment
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, assignment& x) {
  return f(caf::meta::type_name("assignment"), x.rank, x.spans);
}

/// A step as the master hands it down: which rows each worker of a group
/// uses. `attempt` grows when a step is redone after a failure, so replies
/// to an abandoned attempt are recognized as stale.
struct step_plan {
  uint64_t step = 0;
  uint64_t epoch = 0;
  uint32_t attempt = 0;
  std::vector<assignment> work;
  /// Milliseconds a worker has to answer (aggregators use it for their
  /// requests; 0: the receiver's default).
  uint32_t deadline_ms = 0;
  /// The plan came on the worker's tensor link (not as a CAF request): the
  /// gradient goes back on it.
  bool linked = false;
};

/// @relates step_plan
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_plan& x) {
  return f(caf::meta::type_name("step_plan"), x.step, x.epoch, x.attempt,
           x.work, x.deadline_ms, x.linked);
}

/// A (partial) gradient on its way up: the sum over `count` rows of the
/// workers `ranks`, for step `step`, attempt `attempt`.
struct grad_msg {
  uint64_t step = 0;
  uint32_t attempt = 0;
  std::vector<int32_t> ranks;
  uint64_t count = 0;
  double loss = 0;
  tensor values;
  /// From an aggregator: ranks of its group that did not answer in time (or
  /// were down); the sum is then empty and the master redoes the step.
  std::vector<int32_t> lost;
  /// Set when the worker refused the step (on a tensor link, where no
  /// error reply exists): what was wrong.
  std::string refused;
};

/// @relates grad_msg
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, grad_msg& x) {
  return f(caf::meta::type_name("grad_msg"), x.step, x.attempt, x.ranks,
           x.count, x.loss, x.values, x.lost, x.refused);
}

/// @relates eval_metrics
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, eval_metrics& x) {
  return f(caf::meta::type_name("eval_metrics"), x.rows, x.loss, x.accuracy,
           x.class_rows, x.class_correct, x.mse, x.r2);
}

/// What a member says when it joins: its role, protocol version and the
/// fingerprint of the data it holds (empty when it holds none).
struct member_info {
  std::string role;
  uint32_t protocol = protocol_version;
  std::string fingerprint;
};

/// @relates member_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.role, x.protocol,
           x.fingerprint);
}

/// What the master tells a worker process that joins: its rank, the job, the
/// shard geometry, its shards, the preprocessing to apply to data it loads
/// itself, and whether the master will ship its rows.
struct job_setup {
  int32_t rank = 0;
  /// The job spec as JSON (`to_json(job_spec)`).
  std::string spec_json;
  /// Model shape: inputs and outputs (classes, or 1).
  uint64_t inputs = 0;
  uint64_t outputs = 1;
  /// Training rows and shards of the job.
  uint64_t rows = 0;
  uint32_t shards = 1;
  /// The shards this rank holds, in the order their rows are shipped.
  std::vector<uint32_t> my_shards;
  /// Standardization statistics (empty: none).
  std::vector<float> mean;
  std::vector<float> scale;
  /// True: the master ships the rows; false: the worker loads its own copy.
  bool shipped = true;
  /// The port of the master's tensor link listener (0: none; tensors then
  /// travel in the CAF messages) and the token to present there.
  uint16_t link_port = 0;
  uint64_t link_token = 0;
};

/// @relates job_setup
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_setup& x) {
  return f(caf::meta::type_name("job_setup"), x.rank, x.spec_json, x.inputs,
           x.outputs, x.rows, x.shards, x.my_shards, x.mean, x.scale, x.shipped,
           x.link_port, x.link_token);
}

/// A run of consecutive rows of one shard, shipped by the master: rows
/// `[first, first + rows)` of shard `shard`. Dense rows fill `dense`; sparse
/// ones `indptr` (relative, `rows + 1` values starting at 0), `indices` and
/// `values`.
struct data_chunk {
  uint32_t shard = 0;
  uint64_t first = 0;
  uint64_t rows = 0;
  uint64_t cols = 0;
  bool sparse = false;
  tensor dense;
  std::vector<int64_t> indptr;
  std::vector<int32_t> indices;
  tensor values;
  tensor targets;
};

/// @relates data_chunk
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, data_chunk& x) {
  return f(caf::meta::type_name("data_chunk"), x.shard, x.first, x.rows, x.cols,
           x.sparse, x.dense, x.indptr, x.indices, x.values, x.targets);
}

} // namespace dml

CAF_BEGIN_TYPE_ID_BLOCK(dml, caf::first_custom_type_id)

  CAF_ADD_TYPE_ID(dml, (dml::tensor))
  CAF_ADD_TYPE_ID(dml, (dml::row_span))
  CAF_ADD_TYPE_ID(dml, (dml::assignment))
  CAF_ADD_TYPE_ID(dml, (dml::step_plan))
  CAF_ADD_TYPE_ID(dml, (dml::grad_msg))
  CAF_ADD_TYPE_ID(dml, (dml::eval_metrics))
  CAF_ADD_TYPE_ID(dml, (dml::member_info))
  CAF_ADD_TYPE_ID(dml, (dml::job_setup))
  CAF_ADD_TYPE_ID(dml, (dml::data_chunk))
  CAF_ADD_TYPE_ID(dml, (std::vector<dml::row_span>))
  CAF_ADD_TYPE_ID(dml, (std::vector<dml::assignment>))

  /// Master to members: run this step (with the parameters).
  CAF_ADD_ATOM(dml, dml, step_atom, "step")
  /// Member to master: let me join.
  CAF_ADD_ATOM(dml, dml, join_atom, "join")
  /// Master to evaluator: evaluate these parameters.
  CAF_ADD_ATOM(dml, dml, eval_atom, "eval")
  /// Caller to master: run the job, reply with the final record.
  CAF_ADD_ATOM(dml, dml, run_atom, "run")
  /// Master to members: the job is over, exit.
  CAF_ADD_ATOM(dml, dml, stop_atom, "stop")
  /// Worker process to master: let me join (reply: job_setup).
  CAF_ADD_ATOM(dml, dml, register_atom, "register")
  /// Worker process to master: my data is in place, here is my shard-worker.
  CAF_ADD_ATOM(dml, dml, ready_atom, "ready")
  /// Master to worker process: rows of a shard.
  CAF_ADD_ATOM(dml, dml, data_atom, "data")
  /// Signal handler to master: stop the job now.
  CAF_ADD_ATOM(dml, dml, cancel_atom, "cancel")
  /// Master to observers: a metrics record (JSON text).
  CAF_ADD_ATOM(dml, dml, record_atom, "record")
  CAF_ADD_ATOM(dml, dml, tick_atom, "tick")
  CAF_ADD_ATOM(dml, dml, watchdog_atom, "watchdog")
  /// A tensor link's reader thread to its actor: a frame, or the link broke.
  CAF_ADD_ATOM(dml, dml, link_atom, "link")

CAF_END_TYPE_ID_BLOCK(dml)
