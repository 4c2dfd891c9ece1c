// dml-node-plus: dml-node plus the example model "svm" and the example
// observer "csv-logger", added through the public extension points only.

#include "apps/examples/csv_logger.hpp"
#include "apps/examples/hinge_model.hpp"
#include "apps/node.hpp"

int main(int argc, char** argv) {
  dml::model_registry models;
  dml::register_builtin_models(models);
  dml::examples::register_example_models(models);
  dml::actor_registry actors;
  dml::register_builtin_actors(actors);
  dml::examples::register_example_actors(actors);
  return dml::run_node(argc, argv, models, actors);
}
