#include "apps/node_options.hpp"

#include <filesystem>
#include <fstream>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <unistd.h>

using namespace dml;

namespace {

expected<node_options> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "dml-node");
  return parse_node_options(static_cast<int>(args.size()), args.data());
}

/// Parsing `args` fails with exactly `msg`.
void check(std::vector<const char*> args, const std::string& msg) {
  auto o = parse(std::move(args));
  BOOST_REQUIRE(!o);
  BOOST_TEST(o.err().message() == msg);
}

} // namespace

BOOST_AUTO_TEST_SUITE(node_options_parsing)

BOOST_AUTO_TEST_CASE(space_and_equals_forms_agree) {
  auto a = parse({"--role",    "local", "--train",       "x.csv",
                  "--epochs",  "3",     "--batch-size",  "64",
                  "--lr",      "0.5",   "--hidden",      "32,16",
                  "--model",   "mlp",   "--optimizer",   "adam",
                  "--workers", "4",     "--aggregators", "2"});
  auto b = parse({"--role=local", "--train=x.csv", "--epochs=3",
                  "--batch-size=64", "--lr=0.5", "--hidden=32,16",
                  "--model=mlp", "--optimizer=adam", "--workers=4",
                  "--aggregators=2"});
  BOOST_REQUIRE(a);
  BOOST_REQUIRE(b);
  BOOST_TEST(to_json(a->spec) == to_json(b->spec));
  BOOST_TEST(a->spec.epochs == 3u);
  BOOST_TEST(a->spec.hidden == (std::vector<size_t>{32, 16}));
  BOOST_TEST((a->spec.opt.kind == optimizer_kind::adam));
  BOOST_TEST(a->spec.opt.lr == 0.5f);
}

BOOST_AUTO_TEST_CASE(errors_name_the_flag) {
  auto bad_number = parse(
    {"--role", "local", "--train", "x", "--epochs", "ten"});
  BOOST_REQUIRE(!bad_number);
  BOOST_TEST(bad_number.err().message().find("--epochs") != std::string::npos);
  auto unknown = parse({"--role", "local", "--train", "x", "--frobnicate"});
  BOOST_REQUIRE(!unknown);
  BOOST_TEST(unknown.err().message().find("--frobnicate") != std::string::npos);
  auto missing = parse({"--role", "local", "--train"});
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.err().message().find("--train") != std::string::npos);
  auto role = parse({"--role", "boss"});
  BOOST_REQUIRE(!role);
  BOOST_TEST(role.err().message().find("--role") != std::string::npos);
  auto no_role = parse({"--train", "x"});
  BOOST_REQUIRE(!no_role);
  BOOST_TEST(no_role.err().message().find("--role") != std::string::npos);
  auto hidden = parse({"--role", "local", "--train", "x", "--hidden", "12,x"});
  BOOST_REQUIRE(!hidden);
  BOOST_TEST(hidden.err().message()
             == "--hidden: '12,x' is not a list of positive layer sizes such "
                "as 128,64");
  auto opt = parse({"--role", "local", "--train", "x", "--optimizer", "rms"});
  BOOST_REQUIRE(!opt);
  BOOST_TEST(opt.err().message().find("--optimizer") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(tensor_link_flags) {
  auto on = parse({"--role", "master", "--train", "x"});
  BOOST_REQUIRE(on);
  BOOST_TEST(on->tensor_link);
  BOOST_TEST(on->shared_memory);
  BOOST_TEST(on->link_port == 0u);
  auto tcp = parse({"--role", "master", "--train", "x", "--tensor-link", "tcp",
                    "--link-port", "7401"});
  BOOST_REQUIRE(tcp);
  BOOST_TEST(tcp->tensor_link);
  BOOST_TEST(!tcp->shared_memory);
  BOOST_TEST(tcp->link_port == 7401u);
  auto off = parse({"--role", "master", "--train", "x", "--tensor-link=off"});
  BOOST_REQUIRE(off);
  BOOST_TEST(!off->tensor_link);
  BOOST_TEST(!off->shared_memory);
  auto bad = parse(
    {"--role", "master", "--train", "x", "--tensor-link", "maybe"});
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.err().message().find("--tensor-link") != std::string::npos,
             bad.err().message());
  auto port = parse(
    {"--role", "master", "--train", "x", "--link-port", "70000"});
  BOOST_REQUIRE(!port);
  BOOST_TEST(port.err().message().find("--link-port") != std::string::npos,
             port.err().message());
}

BOOST_AUTO_TEST_CASE(impossible_configs_are_refused) {
  auto agg = parse({"--role", "local", "--train", "x", "--workers", "2",
                    "--aggregators", "3"});
  BOOST_REQUIRE(!agg);
  BOOST_TEST(agg.err().message().rfind("--aggregators: ", 0) == 0u);
  auto no_train = parse({"--role", "local"});
  BOOST_REQUIRE(!no_train);
  BOOST_TEST(no_train.err().message() == "--train: no training data given");
  auto eval = parse({"--role", "eval", "--test", "t.csv"});
  BOOST_REQUIRE(!eval);
  BOOST_TEST(eval.err().message() == "--model-in: required for --role eval");
  auto lr = parse({"--role", "local", "--train", "x", "--lr", "0"});
  BOOST_REQUIRE(!lr);
  BOOST_TEST(lr.err().message().rfind("--lr: ", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(fault_tolerance_flags_parse_and_refuse_nonsense) {
  auto ok = parse({"--role", "local", "--train", "x", "--workers", "3",
                   "--min-workers", "2", "--checkpoint-dir", "ck", "--inject",
                   "kill:rank=2,step=40",
                   "--inject=hang:rank=1,"
                   "step=10,ms=3000;delay:rank=1,ms=20"});
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->min_workers == 2u);
  BOOST_TEST(ok->checkpoint_every == 100u); // the default with a folder
  BOOST_TEST(ok->faults.size() == 3u);
  BOOST_TEST(!ok->step_timeout_given); // adaptive
  auto fixed = parse(
    {"--role", "local", "--train", "x", "--step-timeout", "500"});
  BOOST_REQUIRE(fixed);
  BOOST_TEST(fixed->step_timeout_given);
  BOOST_TEST(fixed->step_timeout_ms == 500u);
  check({"--role", "local", "--train", "x", "--workers", "2", "--min-workers",
         "3"},
        "--min-workers: 3 is more than --workers 2");
  check({"--role", "local", "--train", "x", "--min-workers", "0"},
        "--min-workers: must be at least 1");
  check({"--role", "local", "--train", "x", "--checkpoint-every", "5"},
        "--checkpoint-every: needs --checkpoint-dir");
  check({"--role", "worker", "--master", "h:1", "--checkpoint-dir", "ck"},
        "--checkpoint-dir: only for --role local or master, not worker");
  check({"--role", "master", "--train", "x", "--inject", "kill:rank=0,step=1"},
        "--inject: only for --role local or worker, not master");
  check({"--role", "local", "--train", "x", "--inject", "kill:rank=0"},
        "--inject 'kill:rank=0': step is required");
  // With --resume the job comes from the checkpoint: no --train needed.
  BOOST_TEST(static_cast<bool>(parse({"--role", "master", "--resume", "ck"})));
}

BOOST_AUTO_TEST_CASE(a_flag_of_another_role_is_refused) {
  // A worker or aggregator takes the job from the master: a training flag
  // given to it would be ignored, so it is an error, as is any flag the
  // role has no use for.
  check({"--role", "worker", "--master", "h:1", "--epochs", "5"},
        "--epochs: only for --role local or master, not worker");
  check({"--role", "aggregator", "--master", "h:1", "--observer", "x"},
        "--observer: only for --role local or master, not aggregator");
  check({"--role", "master", "--train", "x", "--aggregator-type", "y"},
        "--aggregator-type: only for --role local or aggregator, not master");
  check({"--role", "local", "--train", "x", "--listen", "127.0.0.1:1"},
        "--listen: only for --role master, not local");
  check({"--role", "eval", "--model-in", "m", "--test", "t", "--workers=2"},
        "--workers: only for --role local or master, not eval");
  check({"--role", "local", "--train", "x", "--heartbeat", "100"},
        "--heartbeat: only for --role master, worker or aggregator, not local");
  check({"--role", "worker", "--master", "h:1", "--model-in", "m"},
        "--model-in: only for --role eval, not worker");
  check({"--role", "eval", "--model-in", "m", "--test", "t", "--threads", "2"},
        "--threads: only for --role local, master, worker or aggregator, not "
        "eval");
  check({"--role", "local", "--train", "x", "--model-out", ""},
        "--model-out: empty value");
  check({"--role", "local", "--train", "x", "--epochs", "1", "--epochs=2"},
        "--epochs: given more than once");
  check({"--role", "local", "--train", "x.svm", "--format", "libsvm",
         "--label-column", "y"},
        "--label-column: only for CSV data, not --format libsvm");
  check({"--role", "local", "--config", "/"},
        "--config /: cannot read it (missing, unreadable or a folder)");
  check({"--role", "local", "--train", "x", "--checkpoint-keep", "2"},
        "--checkpoint-keep: needs --checkpoint-dir");
  check({"--role", "local", "--train", "x", "--checkpoint-dir", "c",
         "--checkpoint-every", "0"},
        "--checkpoint-every: must be at least 1");
  // Flags a setting of the job makes meaningless.
  check({"--role", "local", "--train", "x", "--workers", "2", "--inject",
         "kill:rank=5,step=1"},
        "--inject: worker rank 5 does not exist (2 workers)");
  check({"--role", "local", "--train", "x", "--inject",
         "kill-aggregator:rank=0,step=1"},
        "--inject: aggregator rank 0 does not exist (0 aggregators)");
  check({"--role", "local", "--train", "x", "--activation", "tanh"},
        "--activation: 'softmax' has no hidden layers");
  check({"--role", "local", "--train", "x", "--evaluator-type", "e"},
        "--evaluator-type: nothing to evaluate without --test");
  check({"--role", "local", "--train", "x", "--aggregator-type", "a"},
        "--aggregator-type: no aggregators (--aggregators 0)");
  check({"--role", "master", "--train", "x", "--tensor-link", "off",
         "--link-port", "5000"},
        "--link-port: no tensor links with --tensor-link off");
  // The job's settings belong to the master or the checkpoint: checked
  // there, not on a worker or against a resumed job's defaults.
  BOOST_TEST(static_cast<bool>(
    parse({"--role", "master", "--resume", "ck", "--momentum", "0.8"})));
  // A switch set to false is as good as absent.
  BOOST_TEST(static_cast<bool>(parse({"--role", "eval", "--model-in", "m",
                                      "--test", "t", "--standardize=false"})));
  // The flags of each role pass.
  BOOST_TEST(static_cast<bool>(
    parse({"--role", "aggregator", "--master", "h:1", "--aggregator-type", "y",
           "--step-timeout", "900", "--heartbeat", "100"})));
  BOOST_TEST(static_cast<bool>(
    parse({"--role", "worker", "--master", "h:1", "--data", "d", "--inject",
           "kill:rank=0,step=1", "--reconnect-timeout", "0"})));
  BOOST_TEST(static_cast<bool>(
    parse({"--role", "eval", "--model-in", "m", "--test", "t", "--metrics-out",
           "x.jsonl", "--predictions-out", "p.txt"})));
}

BOOST_AUTO_TEST_CASE(values_are_checked_whole) {
  auto local = [](std::vector<const char*> args, const std::string& msg) {
    std::vector<const char*> all{"--role", "local", "--train", "x"};
    all.insert(all.end(), args.begin(), args.end());
    check(std::move(all), msg);
  };
  // No wrap-around of a negative number, no saturation of a huge one.
  local({"--batch-size=-3"},
        "--batch-size: '-3' is no whole number from 0 to 1000000000");
  local({"--seed", "99999999999999999999999"},
        "--seed: '99999999999999999999999' is no whole number from 0 to "
        "18446744073709551615");
  local({"--step-timeout", "-1"},
        "--step-timeout: '-1' is no whole number from 0 to 2147483647");
  local({"--threads", "1000"},
        "--threads: '1000' is no whole number from 0 to 256");
  // "--flag=" is empty, not the next argument.
  local({"--model-out=", "--standardize"}, "--model-out: empty value");
  // One list of layers, every item a size.
  local({"--model", "mlp", "--hidden", "128,,64"},
        "--hidden: '128,,64' is not a list of positive layer sizes such as "
        "128,64");
  local({"--model", "mlp", "--hidden", "5,"},
        "--hidden: '5,' is not a list of positive layer sizes such as 128,64");
  local({"--model", "mlp", "--hidden", "5", "--hidden=6"},
        "--hidden: given twice (one list such as 128,64)");
  // A flag of a setting not chosen would be ignored: refused.
  local({"--momentum", "0.5"}, "--momentum: only with --optimizer momentum");
  local({"--optimizer", "adam", "--nesterov"},
        "--nesterov: only with --optimizer momentum");
  local({"--lr-decay", "0.5"}, "--lr-decay: only with --schedule step");
  local({"--schedule", "step", "--min-lr", "0"},
        "--min-lr: only with --schedule cosine");
  // Schedules that would train on a NaN or negative rate.
  local({"--schedule", "cosine", "--min-lr", "nan"},
        "--min-lr: must be >= 0, not nan");
  local({"--schedule", "cosine", "--min-lr", "-5"},
        "--min-lr: must be >= 0, not -5");
  local({"--schedule", "step", "--lr-decay", "-1"},
        "--lr-decay: must be a positive number, not -1");
  local({"--schedule", "step", "--lr-decay-epochs", "0"},
        "--lr-decay-epochs: must be at least 1");
  local({"--model", "logistic", "--task", "regression"},
        "--task: logistic regression classifies (labels 0 and 1); use "
        "'linear' for regression");
  auto ok = parse({"--role", "local", "--train", "x", "--optimizer", "momentum",
                   "--momentum", "0.5", "--nesterov", "--schedule", "step",
                   "--lr-decay", "0.5", "--lr-decay-epochs", "2"});
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->spec.opt.decay == 0.5f);
}

BOOST_AUTO_TEST_CASE(addresses_are_checked_with_the_flags) {
  check({"--role", "worker", "--master", "nohost"},
        "--master: 'nohost' is not HOST:PORT");
  check({"--role", "aggregator", "--master", "h:0"},
        "--master: 'h:0' names port 0");
  check({"--role", "master", "--train", "x", "--listen", "127.0.0.1:99999"},
        "--listen: '127.0.0.1:99999' is not HOST:PORT");
  check({"--role", "master", "--train", "x", "--listen", "127.0.0.1:0:0"},
        "--listen: '127.0.0.1:0:0' is not HOST:PORT");
  check({"--role", "master", "--train", "x", "--listen", " 127.0.0.1:0"},
        "--listen: ' 127.0.0.1:0' is not HOST:PORT");
  check({"--role", "worker", "--master", "127.0.0.1:+80"},
        "--master: '127.0.0.1:+80' is not HOST:PORT");
  BOOST_TEST(static_cast<bool>(
    parse({"--role", "master", "--train", "x", "--listen", "0.0.0.0:0"})));
}

BOOST_AUTO_TEST_CASE(config_file_sets_the_same_keys) {
  auto path = std::filesystem::temp_directory_path()
    / ("dml-node-" + std::to_string(::getpid()) + ".ini");
  {
    std::ofstream out{path};
    out << "role = local\ntrain = data.csv\nepochs = 7\nbatch-size = 32\n"
           "hidden = 64,32\nmodel = mlp\n";
  }
  auto o = parse({"--config", path.c_str(), "--epochs", "9"});
  std::filesystem::remove(path);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(o),
                        (o ? std::string{} : o.err().message()));
  // Made absolute, so that a checkpoint resumes from any folder.
  BOOST_TEST(o->spec.train_path
             == (std::filesystem::current_path() / "data.csv").string());
  BOOST_TEST(o->spec.batch_size == 32u);
  BOOST_TEST(o->spec.epochs == 9u); // the command line wins
  BOOST_TEST(o->spec.hidden == (std::vector<size_t>{64, 32}));
  // A key no flag has, or one under a section, is an error naming the file
  // and the key, not a setting silently dropped.
  auto bad_key = [&](const std::string& text, const std::string& msg) {
    {
      std::ofstream out{path};
      out << "role = local\ntrain = data.csv\n" << text;
    }
    auto bad = parse({"--config", path.c_str()});
    std::filesystem::remove(path);
    BOOST_REQUIRE(!bad);
    BOOST_TEST(bad.err().message() == "--config " + path.string() + ": " + msg);
  };
  bad_key("batch_size = 64\n",
          "unknown key 'batch_size' (keys are named like the long flags, "
          "e.g. batch-size)");
  // A bad value names the file when it came from there (not when the
  // command line, by any name of the flag, gave it).
  bad_key("epochs = one\n",
          "--epochs: 'one' is no whole number from 0 to 1000000");
  {
    std::ofstream out{path};
    out << "train = data.csv\nepochs = 2\n";
  }
  auto cli = parse({"--config", path.c_str(), "-r", "boss"});
  BOOST_REQUIRE(!cli);
  BOOST_TEST(cli.err().message().rfind("--role: boss not in", 0) == 0u,
             cli.err().message());
  // One file for the whole cluster: each role takes the keys it uses.
  {
    std::ofstream out{path};
    out << "master = h:7400\nlisten = 0.0.0.0:7400\ntrain = data.csv\n"
           "epochs = 2\nworkers = 2\noptimizer = momentum\nmomentum = 0.8\n"
           "port-file = /nonexistent/port\n";
  }
  for (auto* role : {"master", "worker", "aggregator"}) {
    auto shared = parse({"--config", path.c_str(), "--role", role});
    BOOST_TEST_CONTEXT(role) {
      BOOST_TEST(static_cast<bool>(shared),
                 (shared ? std::string{} : shared.err().message()));
    }
  }
  std::filesystem::remove(path);
  bad_key("[job]\nepochs = 1\n",
          "unknown section [job] (keys go at the top, named like the long "
          "flags)");
  auto missing = parse({"--config", "/nonexistent/dml.ini"});
  BOOST_REQUIRE(!missing);
  BOOST_TEST(missing.err().message().find("/nonexistent/dml.ini")
             != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
