// Batched CPPN rendering: parameters, the per-pixel inputs, and the backend entry points.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "fooling/activations.h"
#include "fooling/common.h"
#include "fooling/genome.h"
#include "fooling/program.h"

namespace fooling {

enum CoordMode : int32_t {
  kCoordsNormalized = 0,  // x, y on [-1, 1]
  kCoordsPixel = 1,       // x, y = raw column / row index (the original code's choice)
};

enum ColorMode : int32_t {
  kColorHsl = 0,   // 3 outputs read as H, L, S (the original code's choice)
  kColorHsv = 1,   // 3 outputs read as H, S, V
  kColorHls8 = 2,  // the original code: H, L, S bytes through OpenCV's 8-bit HLS -> RGB (hue in half-degrees)
};

struct RenderParams {
  int32_t height = 28;
  int32_t width = 28;
  int32_t coords = kCoordsNormalized;
  int32_t color = kColorHsl;
  int32_t quantize = 0;  // 1: outputs become trunc(255 a) / 255 before they become pixels (8-bit images)
};

// Coordinate of index i on an axis of n pixels, on [-1, 1]: (2i - (n - 1)) / (n - 1), one rounding.
FOOLING_HD float normalized_coord(int32_t i, int32_t n) {
  return n > 1 ? static_cast<float>(2 * i - (n - 1)) / static_cast<float>(n - 1) : 0.0f;
}

// The four CPPN inputs at pixel (row, col). d is always measured on normalised coordinates.
FOOLING_HD void pixel_inputs(const RenderParams& p, int32_t row, int32_t col, float* x, float* y, float* d) {
  const float xn = normalized_coord(col, p.width);
  const float yn = normalized_coord(row, p.height);
  *d = sqrtf(xn * xn + yn * yn);
  if (p.coords == kCoordsPixel) {
    *x = static_cast<float>(col);
    *y = static_cast<float>(row);
  } else {
    *x = xn;
    *y = yn;
  }
}

// A grey pixel from its output-node value.
FOOLING_HD float grey_pixel(float o0, int32_t quantize) {
  const float a = output_intensity(o0);
  return quantize ? quantize_intensity(a) : a;
}

// A colour pixel from the three output-node values, in colour mode kColor with quantize kQuantize: fixed at
// compile time, so the CPU backend runs one branch-free loop per mode (vectorised) and CUDA one inlined path.
template <int32_t kColor, bool kQuantize>
FOOLING_HD void colour_pixel(float o0, float o1, float o2, float* r, float* g, float* bl) {
  float a = output_intensity(o0), b = output_intensity(o1), c = output_intensity(o2);
  float rr, gg, bb;
  if (kColor == kColorHls8) {
    hls8_to_rgb(a, b, c, &rr, &gg, &bb);  // always 8-bit: the bytes are taken inside
  } else {
    if (kQuantize) {
      a = quantize_intensity(a);
      b = quantize_intensity(b);
      c = quantize_intensity(c);
    }
    if (kColor == kColorHsv) {
      hsv_to_rgb(a, b, c, &rr, &gg, &bb);
    } else {
      hsl_to_rgb(a, c, b, &rr, &gg, &bb);  // outputs are (H, L, S)
    }
  }
  *r = math::clamp(rr, 0.0f, 1.0f);
  *g = math::clamp(gg, 0.0f, 1.0f);
  *bl = math::clamp(bb, 0.0f, 1.0f);
}

// Writes the pixel's output channels (1: grey, 3: colour) from the output-node values.
FOOLING_HD void write_pixel(const RenderParams& p, int32_t channels, float o0, float o1, float o2, float* out,
                            int64_t plane) {
  if (channels == 1) {
    out[0] = grey_pixel(o0, p.quantize);
    return;
  }
  float r, g, b;
  if (p.color == kColorHls8) {
    colour_pixel<kColorHls8, false>(o0, o1, o2, &r, &g, &b);
  } else if (p.color == kColorHsv) {
    if (p.quantize)
      colour_pixel<kColorHsv, true>(o0, o1, o2, &r, &g, &b);
    else
      colour_pixel<kColorHsv, false>(o0, o1, o2, &r, &g, &b);
  } else {
    if (p.quantize)
      colour_pixel<kColorHsl, true>(o0, o1, o2, &r, &g, &b);
    else
      colour_pixel<kColorHsl, false>(o0, o1, o2, &r, &g, &b);
  }
  out[0] = r;
  out[plane] = g;
  out[2 * plane] = b;
}

// Checks shared by both backends; returns an empty string when the call is well formed.
std::string check_render_call(const CppnBatchView& g, const RenderParams& p);

inline int64_t program_workspace_ints(int32_t max_nodes, int32_t max_edges) {
  return ProgramLayout{max_nodes, max_edges}.row_size();
}

// Validates every genome on the CPU (in parallel); errors: [batch]. Returns the number of invalid genomes.
int32_t validate_cpu(const CppnBatchView& g, GenomeError* errors);

// CPU backend. out: float32 [batch, num_outputs, height, width]; errors: [batch]. Returns the number of
// invalid genomes (their images are left as zeros); images of valid genomes are always written.
int32_t render_cpu(const CppnBatchView& g, const RenderParams& p, float* out, GenomeError* errors);

// CUDA backend (all pointers on the current device). workspace: int32 [chunk, program_workspace_ints]
// where chunk = workspace_rows; errors: device [batch]. Runs on `stream`, asynchronously; returns "" or a
// CUDA error message.
std::string render_cuda(const CppnBatchView& g, const RenderParams& p, float* out, GenomeError* errors,
                        int32_t* workspace, int64_t workspace_rows, void* stream);

}  // namespace fooling
