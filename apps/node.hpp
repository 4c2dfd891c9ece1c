#pragma once

#include "actors/actor_registry.hpp"
#include "runtime/model_registry.hpp"

namespace dml {

/// Runs `dml-node` with the command line `argv`: parses the flags, then runs
/// the role with the models and actors of the two registries. Returns the
/// process exit code (0 success, 1 failure, 2 bad command line). A program
/// that extends dml registers its models and actors, then calls this (see
/// apps/examples).
int run_node(int argc, const char* const* argv, const model_registry& models,
             const actor_registry& actors);

} // namespace dml
