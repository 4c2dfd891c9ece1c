#include "runtime/optimizer.hpp"

#include <cmath>
#include <vector>

#include <boost/test/unit_test.hpp>

using namespace dml;

namespace {

// f(w) = 0.5 * sum (w_i - t_i)^2 with gradient w - t.
std::vector<float> quad_grad(const std::vector<float>& w) {
  std::vector<float> g(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    g[i] = w[i] - static_cast<float>(i + 1);
  return g;
}

double quad_dist(const std::vector<float>& w) {
  double d = 0;
  for (size_t i = 0; i < w.size(); ++i)
    d += std::abs(w[i] - static_cast<float>(i + 1));
  return d;
}

std::vector<float> run(const optimizer_config& cfg, int steps) {
  std::vector<float> w(4, 0.0f);
  auto st = make_optimizer_state(cfg, w.size());
  for (int i = 0; i < steps; ++i) {
    auto g = quad_grad(w);
    apply_update(cfg, cfg.lr, st, w.data(), g.data(), w.size());
  }
  return w;
}

} // namespace

BOOST_AUTO_TEST_SUITE(optimizer)

BOOST_AUTO_TEST_CASE(sgd_step_matches_formula) {
  optimizer_config cfg;
  cfg.kind = optimizer_kind::sgd;
  std::vector<float> w{1.0f, -2.0f};
  std::vector<float> g{0.5f, 4.0f};
  auto st = make_optimizer_state(cfg, 2);
  apply_update(cfg, 0.1f, st, w.data(), g.data(), 2);
  BOOST_TEST(w[0] == 1.0f - 0.1f * 0.5f);
  BOOST_TEST(w[1] == -2.0f - 0.1f * 4.0f);
  BOOST_TEST(st.updates == 1u);
}

BOOST_AUTO_TEST_CASE(momentum_matches_formula) {
  optimizer_config cfg;
  cfg.kind = optimizer_kind::momentum;
  cfg.momentum = 0.5f;
  std::vector<float> w{0.0f};
  std::vector<float> g{1.0f};
  auto st = make_optimizer_state(cfg, 1);
  apply_update(cfg, 1.0f, st, w.data(), g.data(), 1); // m = 1, w = -1
  apply_update(cfg, 1.0f, st, w.data(), g.data(), 1); // m = 1.5, w = -2.5
  BOOST_TEST(w[0] == -2.5f);
  cfg.nesterov = true;
  std::vector<float> u{0.0f};
  auto st2 = make_optimizer_state(cfg, 1);
  apply_update(cfg, 1.0f, st2, u.data(), g.data(), 1); // m = 1, u -= 1 + .5
  BOOST_TEST(u[0] == -1.5f);
}

BOOST_AUTO_TEST_CASE(adam_first_step_is_lr_times_sign) {
  optimizer_config cfg;
  cfg.kind = optimizer_kind::adam;
  std::vector<float> w{0.0f, 0.0f};
  std::vector<float> g{3.0f, -0.01f};
  auto st = make_optimizer_state(cfg, 2);
  apply_update(cfg, 0.01f, st, w.data(), g.data(), 2);
  // After bias correction the first Adam step is lr * g / |g|.
  BOOST_TEST(w[0] == -0.01f, boost::test_tools::tolerance(1e-4f));
  BOOST_TEST(w[1] == 0.01f, boost::test_tools::tolerance(1e-3f));
}

BOOST_AUTO_TEST_CASE(all_optimizers_converge_on_a_quadratic) {
  for (auto kind :
       {optimizer_kind::sgd, optimizer_kind::momentum, optimizer_kind::adam}) {
    optimizer_config cfg;
    cfg.kind = kind;
    cfg.lr = kind == optimizer_kind::adam ? 0.1f : 0.1f;
    auto w = run(cfg, 500);
    BOOST_TEST_INFO("optimizer " << to_string(kind));
    BOOST_TEST(quad_dist(w) < 1e-2);
  }
}

BOOST_AUTO_TEST_CASE(state_restores_exactly) {
  optimizer_config cfg;
  cfg.kind = optimizer_kind::adam;
  std::vector<float> w(4, 0.0f);
  auto st = make_optimizer_state(cfg, 4);
  for (int i = 0; i < 10; ++i) {
    auto g = quad_grad(w);
    apply_update(cfg, 0.05f, st, w.data(), g.data(), 4);
  }
  auto saved_w = w;
  auto saved = st;
  for (int i = 0; i < 10; ++i) {
    auto g = quad_grad(w);
    apply_update(cfg, 0.05f, st, w.data(), g.data(), 4);
  }
  for (int i = 0; i < 10; ++i) {
    auto g = quad_grad(saved_w);
    apply_update(cfg, 0.05f, saved, saved_w.data(), g.data(), 4);
  }
  BOOST_TEST(w == saved_w);
  BOOST_TEST(st.m == saved.m);
  BOOST_TEST(st.v == saved.v);
}

// The fused update (sum, scale and update in one pass) gives the bits of
// summing into a buffer, scaling it and updating, for every optimizer, one or
// two parts, in place or not, over many steps and an odd length (so that the
// vectorized loop and its scalar remainder both run).
BOOST_AUTO_TEST_CASE(fused_update_equals_buffered_update_bit_for_bit) {
  const size_t n = 1037;
  std::vector<float> a(n), b(n);
  uint32_t x = 12345;
  auto next = [&] {
    x = x * 1664525u + 1013904223u;
    return static_cast<float>(static_cast<int32_t>(x >> 8) - (1 << 23))
      / static_cast<float>(1 << 20);
  };
  for (auto kind :
       {optimizer_kind::sgd, optimizer_kind::momentum, optimizer_kind::adam}) {
    for (bool nesterov : {false, true}) {
      for (size_t nparts : {1u, 2u}) {
        optimizer_config cfg;
        cfg.kind = kind;
        cfg.nesterov = nesterov;
        std::vector<float> p1(n, 0.5f), p2(n, 0.5f), p3(n, 0.5f), sum(n);
        auto s1 = make_optimizer_state(cfg, n);
        auto s2 = s1;
        auto s3 = s1;
        for (int step = 0; step < 5; ++step) {
          for (size_t i = 0; i < n; ++i) {
            a[i] = next();
            b[i] = next();
          }
          const float scale = 1.0f / 37.0f;
          for (size_t i = 0; i < n; ++i)
            sum[i] = nparts == 2 ? a[i] + b[i] : a[i];
          for (auto& g : sum)
            g *= scale;
          apply_update(cfg, 0.01f, s1, p1.data(), sum.data(), n);
          const float* parts[] = {a.data(), b.data()};
          apply_update(cfg, 0.01f, s2, p2.data(), p2.data(), parts, nparts,
                       scale, n);
          std::vector<float> out(n);
          apply_update(cfg, 0.01f, s3, p3.data(), out.data(), parts, nparts,
                       scale, n);
          p3 = out;
        }
        BOOST_TEST_INFO("optimizer " << static_cast<int>(kind) << " nesterov "
                                     << nesterov << " parts " << nparts);
        BOOST_TEST(p1 == p2);
        BOOST_TEST(p1 == p3);
        BOOST_TEST(s1.m == s2.m);
        BOOST_TEST(s1.v == s3.v);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(schedules) {
  optimizer_config cfg;
  cfg.lr = 1.0f;
  BOOST_TEST(learning_rate(cfg, 7.5, 10) == 1.0f);
  cfg.schedule = schedule_kind::step;
  cfg.decay = 0.5f;
  cfg.decay_epochs = 2;
  BOOST_TEST(learning_rate(cfg, 1.9, 10) == 1.0f);
  BOOST_TEST(learning_rate(cfg, 2.0, 10) == 0.5f);
  BOOST_TEST(learning_rate(cfg, 5.0, 10) == 0.25f);
  cfg.schedule = schedule_kind::cosine;
  cfg.min_lr = 0.0f;
  BOOST_TEST(learning_rate(cfg, 0.0, 10) == 1.0f);
  BOOST_TEST(learning_rate(cfg, 5.0, 10) == 0.5f,
             boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(learning_rate(cfg, 10.0, 10) == 0.0f,
             boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(parse_names) {
  BOOST_TEST((*parse_optimizer("adam") == optimizer_kind::adam));
  auto bad = parse_optimizer("adagrad");
  BOOST_REQUIRE(!bad);
  BOOST_TEST((bad.err().code() == errc::bad_value));
  BOOST_TEST(bad.err().message()
             == "unknown optimizer 'adagrad' (known: sgd, momentum, adam)");
  BOOST_TEST(!parse_schedule("linear"));
}

BOOST_AUTO_TEST_SUITE_END()
