// The CPU renderer on hand-made networks whose pixels can be worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "fooling/parallel.h"
#include "fooling/render.h"
#include "genome_builder.h"

using namespace fooling;
using fooling_test::HostBatch;

namespace {

std::vector<float> render(HostBatch& hb, RenderParams p, int32_t* invalid = nullptr) {
  std::vector<float> out(static_cast<size_t>(hb.batch) * hb.num_outputs * p.height * p.width, -1.0f);
  std::vector<GenomeError> errors(hb.batch);
  const int32_t bad = render_cpu(hb.view(), p, out.data(), errors.data());
  if (invalid) *invalid = bad;
  return out;
}

}  // namespace

TEST(RenderCpu, LinearOfXIsTheAbsoluteCoordinate) {
  HostBatch hb(1, 1);
  hb.set_activation(0, 4, kLinear);
  hb.add_edge(0, kInputX, 4, 3.0f);
  const auto img = render(hb, {3, 5, kCoordsNormalized, kColorHsl});
  const float row[5] = {1.0f, 0.5f, 0.0f, 0.5f, 1.0f};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 5; ++c) EXPECT_FLOAT_EQ(img[r * 5 + c], row[c]) << r << "," << c;
}

TEST(RenderCpu, GaussianOfDistanceAndSineOfY) {
  HostBatch hb(2, 1);
  hb.set_activation(0, 4, kGaussian);
  hb.add_edge(0, kInputD, 4, 1.0f);
  hb.set_activation(1, 4, kSine);
  hb.add_edge(1, kInputY, 4, 1.5707963f);
  const auto img = render(hb, {5, 5, kCoordsNormalized, kColorHsl});
  EXPECT_FLOAT_EQ(img[12], 1.0f);                      // centre: d = 0
  EXPECT_NEAR(img[0], std::exp(-2.0), 2e-7);           // corner: d = sqrt(2)
  EXPECT_NEAR(img[1], std::exp(-1.25), 2e-7);          // (x, y) = (-0.5, -1)
  EXPECT_NEAR(img[25 + 0], 1.0f, 2e-7);                // y = -1: |sin(-pi/2)|
  EXPECT_NEAR(img[25 + 5], std::sin(M_PI / 4), 2e-7);  // y = -0.5
  EXPECT_EQ(img[25 + 10], 0.0f);                       // y = 0
}

TEST(RenderCpu, PixelCoordinatesUseIndicesButNormalisedDistance) {
  HostBatch hb(2, 1);
  hb.set_activation(0, 4, kLinear);
  hb.add_edge(0, kInputY, 4, 1.0f);  // linear(row) = clip(row, -3, 3) / 3
  hb.set_activation(1, 4, kLinear);
  hb.add_edge(1, kInputD, 4, 1.0f);
  const auto img = render(hb, {5, 1, kCoordsPixel, kColorHsl});
  const float rows[5] = {0.0f, 1.0f / 3.0f, 2.0f / 3.0f, 1.0f, 1.0f};
  for (int r = 0; r < 5; ++r) EXPECT_FLOAT_EQ(img[r], rows[r]);
  EXPECT_FLOAT_EQ(img[5 + 0], 1.0f / 3.0f);  // d = 1 at the top
  EXPECT_FLOAT_EQ(img[5 + 2], 0.0f);         // d = 0 at the centre
}

TEST(RenderCpu, ColourFromHlsOutputs) {
  HostBatch hb(1, 3);
  for (int o = 0; o < 3; ++o) hb.set_activation(0, 4 + o, kLinear);
  hb.add_edge(0, kInputBias, 4, 0.0f);  // H = 0
  hb.add_edge(0, kInputBias, 5, 1.5f);  // L = 0.5
  hb.add_edge(0, kInputBias, 6, 3.0f);  // S = 1
  const auto img = render(hb, {2, 2, kCoordsNormalized, kColorHsl});
  for (int px = 0; px < 4; ++px) {
    EXPECT_FLOAT_EQ(img[px], 1.0f);
    EXPECT_FLOAT_EQ(img[4 + px], 0.0f);
    EXPECT_FLOAT_EQ(img[8 + px], 0.0f);
  }
}

TEST(RenderCpu, Hls8IsOpenCvsEightBitHlsWithTheHueInHalfDegrees) {
  // H = 0 -> byte 0, L = 0.5 -> byte 127, S = 1 -> byte 255: OpenCV gives (R, G, B) = (254, 0, 0).
  // H = 1 -> byte 255 = 510 degrees = 150 degrees: (0, 254, 127), where float HSL gives red again.
  for (const float h_weight : {0.0f, 3.0f}) {
    HostBatch hb(1, 3);
    for (int o = 0; o < 3; ++o) hb.set_activation(0, 4 + o, kLinear);
    hb.add_edge(0, kInputBias, 4, h_weight);
    hb.add_edge(0, kInputBias, 5, 1.5f);
    hb.add_edge(0, kInputBias, 6, 3.0f);
    const auto img = render(hb, {1, 2, kCoordsNormalized, kColorHls8});
    const float want[2][3] = {{254.0f, 0.0f, 0.0f}, {0.0f, 254.0f, 127.0f}};
    const int k = h_weight > 0.0f;
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(img[2 * c], want[k][c] / 255.0f) << "channel " << c;
      EXPECT_EQ(img[2 * c + 1], want[k][c] / 255.0f) << "channel " << c;
    }
  }
  int32_t r, g, b;
  hls8_to_rgb_bytes(200, 127, 255, &r, &g, &b);  // 400 degrees wraps to 40
  int32_t r2, g2, b2;
  hls8_to_rgb_bytes(20, 127, 255, &r2, &g2, &b2);
  EXPECT_EQ(r, r2);
  EXPECT_EQ(g, g2);
  EXPECT_EQ(b, b2);
  hls8_to_rgb_bytes(77, 90, 0, &r, &g, &b);  // no saturation: grey at the lightness byte
  EXPECT_EQ(r, 90);
  EXPECT_EQ(g, 90);
  EXPECT_EQ(b, 90);
}

TEST(RenderCpu, QuantizeTruncatesToTheEightBitGrid) {
  HostBatch hb(1, 1);
  hb.set_activation(0, 4, kLinear);
  hb.add_edge(0, kInputX, 4, 3.0f);  // |x| on 5 columns: 1, 0.5, 0, 0.5, 1
  RenderParams p{1, 5, kCoordsNormalized, kColorHsl};
  p.quantize = 1;
  const auto img = render(hb, p);
  const float want[5] = {1.0f, 127.0f / 255.0f, 0.0f, 127.0f / 255.0f, 1.0f};
  for (int px = 0; px < 5; ++px) EXPECT_EQ(img[px], want[px]) << px;
  EXPECT_EQ(quantize_intensity(0.999f), 254.0f / 255.0f);
  EXPECT_EQ(intensity_byte(1.0f), 255);
}

TEST(RenderCpu, InvalidGenomesAreZeroAndCounted) {
  HostBatch hb(3, 1);
  for (int b = 0; b < 3; ++b) {
    hb.set_activation(b, 4, kGaussian);
    hb.add_edge(b, kInputBias, 4, 0.0f);  // gaussian(0) = 1 everywhere
  }
  hb.add_edge(1, 4, 4, 1.0f);  // a self loop
  int32_t invalid = 0;
  const auto img = render(hb, {4, 4, kCoordsNormalized, kColorHsl}, &invalid);
  EXPECT_EQ(invalid, 1);
  for (int px = 0; px < 16; ++px) {
    EXPECT_EQ(img[px], 1.0f);
    EXPECT_EQ(img[16 + px], 0.0f);
    EXPECT_EQ(img[32 + px], 1.0f);
  }
}

TEST(RenderCpu, LargeImagesSpanManyTilesIdenticallyForAnyThreadCount) {
  std::mt19937 rng(9);
  HostBatch hb(6, 3, 48, 300);
  for (int b = 0; b < hb.batch; ++b) hb.randomize(b, rng, 5 + 5 * b, 0.2f);
  const RenderParams p{300, 257, kCoordsNormalized, kColorHsl};
  set_num_threads(1);
  const auto one = render(hb, p);
  set_num_threads(4);
  const auto four = render(hb, p);
  set_num_threads(0);
  ASSERT_EQ(one.size(), four.size());
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i], four[i]) << i;
    ASSERT_GE(one[i], 0.0f);
    ASSERT_LE(one[i], 1.0f);
  }
}

TEST(RenderCpu, RejectsBadCalls) {
  HostBatch hb(1, 1);
  EXPECT_NE(check_render_call(hb.view(), {0, 4, kCoordsNormalized, kColorHsl}), "");
  EXPECT_NE(check_render_call(hb.view(), {4, 1025, kCoordsNormalized, kColorHsl}), "");
  EXPECT_NE(check_render_call(hb.view(), {4, 4, 7, kColorHsl}), "");
  EXPECT_NE(check_render_call(hb.view(), {4, 4, kCoordsNormalized, 9}), "");
  HostBatch two(1, 2);
  EXPECT_NE(check_render_call(two.view(), {4, 4, kCoordsNormalized, kColorHsl}), "");
  EXPECT_EQ(check_render_call(hb.view(), {1024, 1, kCoordsPixel, kColorHsv}), "");
  EXPECT_EQ(check_render_call(hb.view(), {4, 4, kCoordsPixel, kColorHls8, 1}), "");
  EXPECT_NE(check_render_call(hb.view(), {4, 4, kCoordsPixel, kColorHls8, 2}), "");
}
