// CPU backend of the batched CPPN renderer: genomes are compiled in parallel, then (genome, pixel tile)
// tasks are spread over the cores. Within a tile every pixel runs the same program, so each step is a
// handful of loops over contiguous floats that the compiler vectorises.
#include <sstream>
#include <vector>

#include "fooling/parallel.h"
#include "fooling/render.h"

namespace fooling {

std::string check_render_call(const CppnBatchView& g, const RenderParams& p) {
  std::ostringstream msg;
  if (g.batch < 0)
    msg << "batch must be >= 0, got " << g.batch;
  else if (g.num_outputs != 1 && g.num_outputs != 3)
    msg << "num_outputs must be 1 (greyscale) or 3 (colour), got " << g.num_outputs;
  else if (g.max_nodes < g.first_hidden() || g.max_nodes > kMaxNodesCapacity)
    msg << "max_nodes must be in [" << g.first_hidden() << ", " << kMaxNodesCapacity << "], got " << g.max_nodes;
  else if (g.max_edges < 0 || g.max_edges > kMaxEdgesCapacity)
    msg << "max_edges must be in [0, " << kMaxEdgesCapacity << "], got " << g.max_edges;
  else if (p.height < 1 || p.height > kMaxImageSide || p.width < 1 || p.width > kMaxImageSide)
    msg << "image size must be within 1.." << kMaxImageSide << " on each side, got " << p.height << "x" << p.width;
  else if (p.coords != kCoordsNormalized && p.coords != kCoordsPixel)
    msg << "unknown coordinate mode " << p.coords;
  else if (p.color != kColorHsl && p.color != kColorHsv && p.color != kColorHls8)
    msg << "unknown colour mode " << p.color;
  else if (p.quantize != 0 && p.quantize != 1)
    msg << "quantize must be 0 or 1, got " << p.quantize;
  return msg.str();
}

namespace {

constexpr int64_t kTile = 256;

// The colour conversion of a tile, after the network: one loop per colour mode, chosen once per tile rather than
// per pixel, inlined into each clone of run_tile so that it vectorises with the clone's instruction set.
template <int32_t kColor, bool kQuantize>
__attribute__((always_inline)) inline void colour_pass(const float* __restrict o0, const float* __restrict o1,
                                                       const float* __restrict o2, int32_t npix, float* __restrict r,
                                                       int64_t plane) {
  float* __restrict g = r + plane;
  float* __restrict b = r + 2 * plane;
  // The selects of the conversion leave multi-way joins that GCC if-converts only in loops marked simd.
#pragma omp simd
  for (int32_t q = 0; q < npix; ++q) colour_pixel<kColor, kQuantize>(o0[q], o1[q], o2[q], r + q, g + q, b + q);
}

FOOLING_VECTOR_CLONES
void run_tile(const int32_t* prog, const ProgramLayout& L, const RenderParams& p, int32_t channels, int64_t pix0,
              int32_t npix, float* vals, float* out_b, int64_t plane) {
  float* __restrict vx = vals;
  float* __restrict vy = vals + kTile;
  float* __restrict vd = vals + 2 * kTile;
  float* __restrict vb = vals + 3 * kTile;
  for (int32_t q = 0; q < npix; ++q) {
    const int64_t pix = pix0 + q;
    const int32_t row = static_cast<int32_t>(pix / p.width);
    const int32_t col = static_cast<int32_t>(pix % p.width);
    pixel_inputs(p, row, col, vx + q, vy + q, vd + q);
    vb[q] = 1.0f;
  }
  const int32_t steps = prog[0];
  const int32_t* step_act = prog + L.step_act();
  const int32_t* step_begin = prog + L.step_begin();
  const int32_t* src_slot = prog + L.in_src_slot();
  const float* weight = reinterpret_cast<const float*>(prog + L.in_weight());
  for (int32_t s = 0; s < steps; ++s) {
    float* __restrict acc = vals + static_cast<int64_t>(kNumInputs + s) * kTile;
    for (int32_t q = 0; q < npix; ++q) acc[q] = 0.0f;
    for (int32_t e = step_begin[s]; e < step_begin[s + 1]; ++e) {
      const float w = weight[e];
      const float* __restrict in = vals + static_cast<int64_t>(src_slot[e]) * kTile;
      for (int32_t q = 0; q < npix; ++q) acc[q] += w * in[q];
    }
    switch (step_act[s]) {
      case kSine:
        for (int32_t q = 0; q < npix; ++q) acc[q] = act_sine(acc[q]);
        break;
      case kSigmoid:
        for (int32_t q = 0; q < npix; ++q) acc[q] = act_sigmoid(acc[q]);
        break;
      case kGaussian:
        for (int32_t q = 0; q < npix; ++q) acc[q] = act_gaussian(acc[q]);
        break;
      default:
        for (int32_t q = 0; q < npix; ++q) acc[q] = act_linear(acc[q]);
        break;
    }
  }
  const float* o0 = vals + static_cast<int64_t>(prog[L.out_slot()]) * kTile;
  if (channels == 1) {
    float* __restrict o = out_b + pix0;
    if (p.quantize) {
      for (int32_t q = 0; q < npix; ++q) o[q] = grey_pixel(o0[q], 1);
    } else {
      for (int32_t q = 0; q < npix; ++q) o[q] = grey_pixel(o0[q], 0);
    }
    return;
  }
  const float* o1 = vals + static_cast<int64_t>(prog[L.out_slot() + 1]) * kTile;
  const float* o2 = vals + static_cast<int64_t>(prog[L.out_slot() + 2]) * kTile;
  float* r = out_b + pix0;
  if (p.color == kColorHls8) {
    colour_pass<kColorHls8, false>(o0, o1, o2, npix, r, plane);
  } else if (p.color == kColorHsv) {
    if (p.quantize)
      colour_pass<kColorHsv, true>(o0, o1, o2, npix, r, plane);
    else
      colour_pass<kColorHsv, false>(o0, o1, o2, npix, r, plane);
  } else {
    if (p.quantize)
      colour_pass<kColorHsl, true>(o0, o1, o2, npix, r, plane);
    else
      colour_pass<kColorHsl, false>(o0, o1, o2, npix, r, plane);
  }
}

}  // namespace

int32_t validate_cpu(const CppnBatchView& g, GenomeError* errors) {
  const int64_t row_size = ProgramLayout{g.max_nodes, g.max_edges}.row_size();
  const int threads = num_threads();
  std::vector<int32_t> scratch(static_cast<size_t>(threads) * row_size);
  parallel_for(
      g.batch,
      [&](int64_t b, int thread) {
        errors[b] = compile_program(g, static_cast<int32_t>(b), scratch.data() + thread * row_size);
      },
      threads);
  int32_t invalid = 0;
  for (int32_t b = 0; b < g.batch; ++b) invalid += errors[b].code != kGenomeOk;
  return invalid;
}

int32_t render_cpu(const CppnBatchView& g, const RenderParams& p, float* out, GenomeError* errors) {
  const ProgramLayout L{g.max_nodes, g.max_edges};
  const int64_t row_size = L.row_size();
  std::vector<int32_t> programs(static_cast<size_t>(g.batch) * row_size);
  parallel_for(g.batch, [&](int64_t b, int) {
    errors[b] = compile_program(g, static_cast<int32_t>(b), programs.data() + b * row_size);
  });
  int32_t invalid = 0;
  for (int32_t b = 0; b < g.batch; ++b) invalid += errors[b].code != kGenomeOk;

  const int32_t channels = g.num_outputs;
  const int64_t plane = static_cast<int64_t>(p.height) * p.width;
  const int64_t image = plane * channels;
  const int64_t tiles = (plane + kTile - 1) / kTile;
  const int threads = num_threads();
  std::vector<float> scratch(static_cast<size_t>(threads) * g.max_nodes * kTile);
  parallel_for(
      g.batch * tiles,
      [&](int64_t task, int thread) {
        const int64_t b = task / tiles;
        const int64_t pix0 = (task % tiles) * kTile;
        const int32_t npix = static_cast<int32_t>(std::min<int64_t>(kTile, plane - pix0));
        float* out_b = out + b * image;
        if (errors[b].code != kGenomeOk) {
          for (int32_t c = 0; c < channels; ++c)
            for (int32_t q = 0; q < npix; ++q) out_b[c * plane + pix0 + q] = 0.0f;
          return;
        }
        float* vals = scratch.data() + static_cast<int64_t>(thread) * g.max_nodes * kTile;
        run_tile(programs.data() + b * row_size, L, p, channels, pix0, npix, vals, out_b, plane);
      },
      threads);
  return invalid;
}

}  // namespace fooling
