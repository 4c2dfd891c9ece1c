// dml-node: one binary for every role of a dml job.

#include "apps/node.hpp"

int main(int argc, char** argv) {
  dml::model_registry models;
  dml::register_builtin_models(models);
  dml::actor_registry actors;
  dml::register_builtin_actors(actors);
  return dml::run_node(argc, argv, models, actors);
}
