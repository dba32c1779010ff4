// The shared per-pixel math against the true functions (double precision std::) and known values.
#include <gtest/gtest.h>

#include <cmath>

#include "fooling/activations.h"

using namespace fooling;

namespace {

template <typename F, typename G>
double max_abs_error(F approx, G exact, double lo, double hi, int n) {
  double worst = 0.0;
  for (int i = 0; i <= n; ++i) {
    const float x = static_cast<float>(lo + (hi - lo) * i / n);
    worst = std::fmax(worst, std::fabs(static_cast<double>(approx(x)) - exact(static_cast<double>(x))));
  }
  return worst;
}

}  // namespace

TEST(Math, SineIsAccurateOverTheCppnRange) {
  EXPECT_LT(
      max_abs_error([](float x) { return math::sin(x); }, [](double x) { return std::sin(x); }, -100, 100, 2000000),
      2.5e-7);
  // Far out, the Cody-Waite products k * pi_b stop being exact; the error grows slowly with |x|.
  EXPECT_LT(
      max_abs_error([](float x) { return math::sin(x); }, [](double x) { return std::sin(x); }, -3e4, 3e4, 2000000),
      1e-6);
}

TEST(Math, ExpIsAccurateRelative) {
  double worst = 0.0;
  for (int i = 0; i <= 1000000; ++i) {
    const float x = static_cast<float>(-87.0 + 175.0 * i / 1000000);
    const double exact = std::exp(static_cast<double>(x));
    worst = std::fmax(worst, std::fabs(math::exp(x) - exact) / exact);
  }
  EXPECT_LT(worst, 3e-7);
}

TEST(Math, LogAndPowAreAccurate) {
  double worst_log = 0.0, worst_pow = 0.0;
  for (int i = 1; i <= 1000000; ++i) {
    const float x = static_cast<float>(2.0 * i / 1000000);
    const double exact_log = std::log(static_cast<double>(x));
    worst_log = std::fmax(worst_log, std::fabs(math::log(x) - exact_log) / std::fmax(1.0, std::fabs(exact_log)));
    const double p = std::pow(static_cast<double>(x), 1.0 / 16.0);
    worst_pow = std::fmax(worst_pow, std::fabs(math::pow(x, 1.0f / 16.0f) - p) / p);
  }
  EXPECT_LT(worst_log, 3e-7);
  EXPECT_LT(worst_pow, 4e-7);
  EXPECT_EQ(math::pow(0.0f, 0.5f), 0.0f);
  EXPECT_EQ(math::log(-1.0f), -88.0f);
}

TEST(Math, ActivationKnownValues) {
  EXPECT_EQ(act_sine(0.0f), 0.0f);
  EXPECT_NEAR(act_sine(1.5707963f), 1.0f, 2e-7);
  EXPECT_NEAR(act_sine(-100.0f), std::sin(-100.0), 2e-7);
  EXPECT_EQ(act_sigmoid(0.0f), 0.0f);
  EXPECT_NEAR(act_sigmoid(1.0f), 2.0 / (1.0 + std::exp(-1.0)) - 1.0, 2e-7);
  EXPECT_NEAR(act_sigmoid(-50.0f), -1.0f, 1e-7);
  EXPECT_EQ(act_gaussian(0.0f), 1.0f);
  EXPECT_NEAR(act_gaussian(2.0f), std::exp(-4.0), 1e-8);
  EXPECT_LT(act_gaussian(30.0f), 1e-30f);
  EXPECT_EQ(act_linear(1.5f), 0.5f);
  EXPECT_EQ(act_linear(-7.0f), -1.0f);
  EXPECT_EQ(act_linear(3.0f), 1.0f);
}

TEST(Math, NonFiniteArgumentsGiveFiniteActivations) {
  const float inf = INFINITY, nan = NAN;
  for (int a = 0; a < kNumActivations; ++a) {
    for (float x : {inf, -inf, nan, 3e38f, -3e38f}) {
      EXPECT_TRUE(std::isfinite(apply_activation(a, x))) << "activation " << a << " at " << x;
    }
  }
  EXPECT_EQ(output_intensity(nan), 0.0f);
  EXPECT_EQ(output_intensity(-2.0f), 1.0f);
  EXPECT_EQ(output_intensity(-0.25f), 0.25f);
}

TEST(Math, HslAndHsvPrimaries) {
  float r, g, b;
  hsl_to_rgb(0.0f, 1.0f, 0.5f, &r, &g, &b);  // red
  EXPECT_FLOAT_EQ(r, 1.0f);
  EXPECT_FLOAT_EQ(g, 0.0f);
  EXPECT_FLOAT_EQ(b, 0.0f);
  hsl_to_rgb(2.0f / 3.0f, 1.0f, 0.5f, &r, &g, &b);  // blue
  EXPECT_NEAR(r, 0.0f, 1e-6);
  EXPECT_NEAR(g, 0.0f, 1e-6);
  EXPECT_NEAR(b, 1.0f, 1e-6);
  hsl_to_rgb(0.3f, 0.0f, 0.25f, &r, &g, &b);  // grey: no saturation
  EXPECT_FLOAT_EQ(r, 0.25f);
  EXPECT_FLOAT_EQ(g, 0.25f);
  EXPECT_FLOAT_EQ(b, 0.25f);
  hsl_to_rgb(1.0f, 1.0f, 0.5f, &r, &g, &b);  // hue 1 wraps to red
  EXPECT_FLOAT_EQ(r, 1.0f);
  EXPECT_FLOAT_EQ(g, 0.0f);
  hsv_to_rgb(1.0f / 6.0f, 1.0f, 1.0f, &r, &g, &b);  // yellow
  EXPECT_NEAR(r, 1.0f, 1e-6);
  EXPECT_NEAR(g, 1.0f, 1e-6);
  EXPECT_NEAR(b, 0.0f, 1e-6);
  hsv_to_rgb(0.5f, 0.5f, 0.8f, &r, &g, &b);  // cyan-ish: (0.4, 0.8, 0.8)
  EXPECT_NEAR(r, 0.4f, 1e-6);
  EXPECT_NEAR(g, 0.8f, 1e-6);
  EXPECT_NEAR(b, 0.8f, 1e-6);
}
