// Per-pixel math of a CPPN, written once for the CPU and CUDA backends.
//
// Every function here uses only IEEE float operations (+, -, *, /, sqrt, comparisons, integer bit
// manipulation) in a fixed order, and both backends are compiled without FMA contraction, so the CPU and
// CUDA backends compute bit-identical images. sin and exp are our own range-reduced polynomials (max abs
// error about 2e-7 on the arguments a CPPN produces) rather than the platform's sinf/expf, whose last bits
// differ between glibc and CUDA and would be amplified by deep networks. The NumPy reference renderer
// (fooling_ext.reference) mirrors these formulas operation for operation.
#pragma once

#include <cstdint>
#include <cstring>

#include "fooling/common.h"

namespace fooling {

// The activation set. Extending it means: a new enumerator before kNumActivations, a case in
// apply_activation, its name in kActivationNames, and the same formula in fooling_ext/reference.py.
enum Activation : int32_t {
  kSine = 0,      // sin(p)
  kSigmoid = 1,   // 2 * (1 / (1 + exp(-p)) - 0.5), in (-1, 1)
  kGaussian = 2,  // exp(-p^2)
  kLinear = 3,    // clip(p, -3, 3) / 3
  kNumActivations = 4,
};

constexpr const char* kActivationNames[kNumActivations] = {"sine", "sigmoid", "gaussian", "linear"};

namespace math {

FOOLING_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

FOOLING_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

// Clamp that maps NaN to the lower bound (a NaN compares false), so no NaN leaves an activation.
FOOLING_HD float clamp(float x, float lo, float hi) {
  x = x > lo ? x : lo;
  return x < hi ? x : hi;
}

// Round to nearest (ties to even) for |x| < 2^22, by the 1.5 * 2^23 trick; exact in IEEE float.
constexpr float kRoundMagic = 12582912.0f;
FOOLING_HD float round_small(float x) { return (x + kRoundMagic) - kRoundMagic; }

// sin(x): reduce by multiples of pi (three-part Cody-Waite split), then an odd Taylor polynomial of
// degree 11 on [-pi/2, pi/2] (truncation error < 6e-8). |x| is clamped to 1e7, where float spacing is
// already about 1 and the sine carries no information.
constexpr float kInvPi = static_cast<float>(0.318309886183790671538);
constexpr float kPiA = 3.140625f;
constexpr float kPiB = static_cast<float>(9.67502593994140625e-4);
constexpr float kPiC = static_cast<float>(1.509957990978376432e-7);
// Taylor coefficients of sin: (-1)^k / (2k + 1)!, k = 5..1. Constants are written as double literals cast
// to float so that every implementation (C++, CUDA, NumPy) rounds them the same way.
constexpr float kSin11 = static_cast<float>(-2.5052108385441720e-8);
constexpr float kSin9 = static_cast<float>(2.7557319223985893e-6);
constexpr float kSin7 = static_cast<float>(-1.9841269841269841e-4);
constexpr float kSin5 = static_cast<float>(8.3333333333333333e-3);
constexpr float kSin3 = static_cast<float>(-1.6666666666666667e-1);
FOOLING_HD float sin(float x) {
  x = clamp(x, -1.0e7f, 1.0e7f);
  const float k = round_small(x * kInvPi);
  float r = x - k * kPiA;
  r = r - k * kPiB;
  r = r - k * kPiC;
  const float r2 = r * r;
  float p = kSin11;
  p = p * r2 + kSin9;
  p = p * r2 + kSin7;
  p = p * r2 + kSin5;
  p = p * r2 + kSin3;
  const float s = r + r * (r2 * p);
  const int32_t ki = static_cast<int32_t>(k);
  return (ki & 1) ? -s : s;
}

// exp(x): x = k ln2 + r with |r| <= ln2/2 (two-part split of ln2), Taylor polynomial of degree 7 for
// e^r (relative error < 1e-8 before rounding), times 2^k built from the exponent bits. x is clamped to
// [-87, 88], the range where 2^k is a normal float.
constexpr float kLog2e = static_cast<float>(1.44269504088896341);
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = static_cast<float>(-2.12194440054690583e-4);
// Taylor coefficients of e^r: 1 / k!, k = 7..0.
constexpr float kExp7 = static_cast<float>(1.9841269841269841e-4);
constexpr float kExp6 = static_cast<float>(1.3888888888888889e-3);
constexpr float kExp5 = static_cast<float>(8.3333333333333333e-3);
constexpr float kExp4 = static_cast<float>(4.1666666666666667e-2);
constexpr float kExp3 = static_cast<float>(1.6666666666666667e-1);
FOOLING_HD float exp(float x) {
  x = clamp(x, -87.0f, 88.0f);
  const float k = round_small(x * kLog2e);
  float r = x - k * kLn2Hi;
  r = r - k * kLn2Lo;
  float p = kExp7;
  p = p * r + kExp6;
  p = p * r + kExp5;
  p = p * r + kExp4;
  p = p * r + kExp3;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t ki = static_cast<int32_t>(k);
  const float scale = bits_to_float(static_cast<uint32_t>(ki + 127) << 23);
  return p * scale;
}

// log(x) for x > 0 (normal floats): x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m by the atanh series
// in s = (m - 1) / (m + 1) up to s^9 (|s| <= 0.172, truncation error < 5e-10). Returns -88 for x <= 0 or
// subnormal x (exp of anything at or below -87 is clamped anyway).
constexpr float kSqrt2 = static_cast<float>(1.41421356237309505);
// atanh-series coefficients 1 / (2k + 1), k = 4..1.
constexpr float kLog9 = static_cast<float>(1.0 / 9.0);
constexpr float kLog7 = static_cast<float>(1.0 / 7.0);
constexpr float kLog5 = static_cast<float>(1.0 / 5.0);
constexpr float kLog3 = static_cast<float>(1.0 / 3.0);
constexpr float kMinNormal = static_cast<float>(1.1754943508222875e-38);
FOOLING_HD float log(float x) {
  if (!(x >= kMinNormal)) return -88.0f;
  const uint32_t bits = float_to_bits(x);
  int32_t e = static_cast<int32_t>((bits >> 23) & 0xffu) - 127;
  float m = bits_to_float((bits & 0x7fffffu) | 0x3f800000u);
  if (m > kSqrt2) {
    m = m * 0.5f;
    e = e + 1;
  }
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  float p = kLog9;
  p = p * s2 + kLog7;
  p = p * s2 + kLog5;
  p = p * s2 + kLog3;
  p = p * s2 + 1.0f;
  const float log_m = 2.0f * s * p;
  const float ef = static_cast<float>(e);
  return ef * kLn2Hi + (log_m + ef * kLn2Lo);
}

// x^y for x >= 0 as exp(y log x); 0 for x <= 0.
FOOLING_HD float pow(float x, float y) { return x > 0.0f ? exp(y * log(x)) : 0.0f; }

}  // namespace math

FOOLING_HD float act_sine(float p) { return math::sin(p); }
FOOLING_HD float act_sigmoid(float p) { return 2.0f * (1.0f / (1.0f + math::exp(-p)) - 0.5f); }
FOOLING_HD float act_gaussian(float p) { return math::exp(-(p * p)); }
FOOLING_HD float act_linear(float p) { return math::clamp(p, -3.0f, 3.0f) / 3.0f; }

FOOLING_HD float apply_activation(int32_t activation, float p) {
  switch (activation) {
    case kSine: return act_sine(p);
    case kSigmoid: return act_sigmoid(p);
    case kGaussian: return act_gaussian(p);
    default: return act_linear(p);
  }
}

// Colour: the three CPPN outputs, each |v| clipped to [0, 1], read as (H, L, S) or (H, S, V); H = 1 is the
// same hue as H = 0. Standard chroma formulation, evaluated without branches on the data.
FOOLING_HD void hue_to_rgb(float h, float c, float m, float* r, float* g, float* b) {
  const float hp = h * 6.0f;                                                               // [0, 6]
  const float sector_f = hp - 2.0f * static_cast<float>(static_cast<int32_t>(hp * 0.5f));  // hp mod 2
  const float x = c * (1.0f - (sector_f - 1.0f < 0.0f ? 1.0f - sector_f : sector_f - 1.0f));
  int32_t s = static_cast<int32_t>(hp);
  if (s >= 6) s = 0;
  // Per sector 0..5 (any other: as 5), (r, g, b) = (c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c),
  // (c, 0, x); written as selects rather than a switch, so that a loop over pixels vectorises.
  const float rr = (s == 1 || s == 4) ? x : ((s == 2 || s == 3) ? 0.0f : c);
  const float gg = (s == 1 || s == 2) ? c : ((s == 0 || s == 3) ? x : 0.0f);
  const float bb = (s == 3 || s == 4) ? c : ((s == 0 || s == 1) ? 0.0f : x);
  *r = rr + m;
  *g = gg + m;
  *b = bb + m;
}

FOOLING_HD void hsl_to_rgb(float h, float s, float l, float* r, float* g, float* b) {
  const float two_l_minus_1 = 2.0f * l - 1.0f;
  const float c = (1.0f - (two_l_minus_1 < 0.0f ? -two_l_minus_1 : two_l_minus_1)) * s;
  hue_to_rgb(h, c, l - 0.5f * c, r, g, b);
}

FOOLING_HD void hsv_to_rgb(float h, float s, float v, float* r, float* g, float* b) {
  const float c = v * s;
  hue_to_rgb(h, c, v - c, r, g, b);
}

// Pixel value of an output: |v| clipped to [0, 1] (NaN -> 0).
FOOLING_HD float output_intensity(float v) {
  const float a = v < 0.0f ? -v : v;
  return math::clamp(a, 0.0f, 1.0f);
}

// The byte the original code writes for an intensity a in [0, 1]: trunc(255 a), a float multiply, as its
// `int color = value * 255;` does.
FOOLING_HD int32_t intensity_byte(float a) { return static_cast<int32_t>(a * 255.0f); }

// An intensity on the 8-bit grid: trunc(255 a) / 255.
FOOLING_HD float quantize_intensity(float a) { return static_cast<float>(intensity_byte(a)) / 255.0f; }

// OpenCV's saturate_cast<uchar>(float): round half to even (cvRound under the default rounding mode), then
// clamp to [0, 255]. The magic-number sum rounds to nearest even for |x| < 2^22 without a library call.
FOOLING_HD int32_t saturate_byte(float x) {
  const float lo = x > -1.0f ? x : -1.0f;
  const float c = lo < 1024.0f ? lo : 1024.0f;  // NaN -> -1 -> 0
  const int32_t i = static_cast<int32_t>((c + 12582912.0f) - 12582912.0f);
  return i < 0 ? 0 : (i > 255 ? 255 : i);
}

// OpenCV's 8-bit HLS -> RGB (cvtColor with COLOR_HLS2BGR on CV_8UC3, channels then reversed), as its scalar
// HLS2RGB_b / HLS2RGB_f compute it: H byte in half-degrees (scale 6/180, wrapped into [0, 6), so bytes above
// 180 wrap round the hue circle again), L and S bytes / 255, the sector table on p1 / p2, and each channel
// rounded back to a byte. Takes bytes (0..255: H scales to [0, 8.5], so one wrap does what OpenCV's loop does)
// and returns the RGB bytes. Branch-free on the data (selects, no loop, no switch), so that a loop over
// pixels vectorises; where S is 0 the sector path gives L in every channel anyway, the select makes it exact.
constexpr float kHls8HueScale = 6.0f / 180.0f;
FOOLING_HD void hls8_to_rgb_bytes(int32_t hb, int32_t lb, int32_t sb, int32_t* r8, int32_t* g8, int32_t* b8) {
  const float l = static_cast<float>(lb) * (1.0f / 255.0f);
  const float s = static_cast<float>(sb) * (1.0f / 255.0f);
  const float p2 = l <= 0.5f ? l * (1.0f + s) : l + s - l * s;
  const float p1 = 2.0f * l - p2;
  float h = static_cast<float>(hb) * kHls8HueScale;
  h = h >= 6.0f ? h - 6.0f : h;
  const int32_t k = static_cast<int32_t>(h);  // h >= 0: truncation is floor
  h -= static_cast<float>(k);
  const float t0 = p2, t1 = p1;
  const float t2 = p1 + (p2 - p1) * (1.0f - h);
  const float t3 = p1 + (p2 - p1) * h;
  // OpenCV's sector_data {{1,3,0}, {1,0,2}, {3,0,1}, {0,2,1}, {0,1,3}, {2,1,0}} gives (B, G, R) per sector.
  float r = k == 1 ? t2 : ((k == 2 || k == 3) ? t1 : (k == 4 ? t3 : t0));
  float g = k == 0 ? t3 : ((k == 1 || k == 2) ? t0 : (k == 3 ? t2 : t1));
  float b = (k == 0 || k == 1) ? t1 : (k == 2 ? t3 : ((k == 3 || k == 4) ? t0 : t2));
  const bool grey = s == 0.0f;
  r = grey ? l : r;
  g = grey ? l : g;
  b = grey ? l : b;
  *r8 = saturate_byte(r * 255.0f);
  *g8 = saturate_byte(g * 255.0f);
  *b8 = saturate_byte(b * 255.0f);
}

// The original code's colour pixel: the three outputs (H, L, S) as bytes trunc(255 min(|v|, 1)), OpenCV's
// 8-bit HLS -> RGB, each byte / 255.
FOOLING_HD void hls8_to_rgb(float h, float l, float s, float* r, float* g, float* b) {
  int32_t r8, g8, b8;
  hls8_to_rgb_bytes(intensity_byte(h), intensity_byte(l), intensity_byte(s), &r8, &g8, &b8);
  *r = static_cast<float>(r8) / 255.0f;
  *g = static_cast<float>(g8) / 255.0f;
  *b = static_cast<float>(b8) / 255.0f;
}

}  // namespace fooling
