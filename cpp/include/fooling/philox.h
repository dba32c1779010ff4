// Philox4x32-10, the counter-based random number generator of Salmon, Moraes, Dror & Shaw, "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011), with the Random123 library's constants.
//
// A draw is a pure function of (key, counter), so any thread can compute any draw without shared state:
// mutation on the CPU and on the GPU, in any order or chunking, sees the same numbers. fooling_ext keys
// the generator with the 64-bit run seed and uses the counter (generation, genome, purpose, index); see
// RandomPurpose in mutation.h. Only 32-bit integer operations are used, so every backend (and the NumPy
// reference in fooling_ext/reference_mutation.py) gives the same bits.
#pragma once

#include <cstdint>

#include "fooling/common.h"

namespace fooling {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // round multipliers
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Weyl key increments (golden ratio, sqrt(3) - 1)
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;

struct PhiloxKey {
  uint32_t k0;
  uint32_t k1;
};

struct PhiloxBlock {
  uint32_t x[4];
};

// The 64-bit seed as a key: low word first.
FOOLING_HD PhiloxKey philox_key(uint64_t seed) {
  return {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
}

FOOLING_HD PhiloxBlock philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, PhiloxKey key) {
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < kPhiloxRounds; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform float in [0, 1) from the top 24 bits: every value is exactly representable, so the CPU, the GPU
// and NumPy agree, and p = 0 / p = 1 give "never" / "always" under the test `uniform < p`.
FOOLING_HD float uniform_float(uint32_t bits) { return static_cast<float>(bits >> 8) * 5.9604644775390625e-8f; }

// Integer in [0, n) for n >= 1, by multiply-shift (Lemire): bias at most n / 2^32, far below what any
// test or run could see, and no data-dependent loop.
FOOLING_HD int32_t uniform_below(uint32_t bits, int32_t n) {
  return static_cast<int32_t>((static_cast<uint64_t>(bits) * static_cast<uint32_t>(n)) >> 32);
}

// A sequential stream of draws for one (seed, generation, genome, purpose): draw k is word k % 4 of block
// k / 4, the block counter being (generation, genome, purpose, k / 4).
class PhiloxStream {
 public:
  FOOLING_HD PhiloxStream(uint64_t seed, uint32_t generation, uint32_t genome, uint32_t purpose)
      : key_(philox_key(seed)), generation_(generation), genome_(genome), purpose_(purpose) {}

  FOOLING_HD uint32_t next_bits() {
    if (used_ == 4) {
      block_ = philox4x32_10(generation_, genome_, purpose_, next_block_++, key_);
      used_ = 0;
    }
    return block_.x[used_++];
  }

  FOOLING_HD float next_uniform() { return uniform_float(next_bits()); }

  FOOLING_HD int32_t next_below(int32_t n) { return uniform_below(next_bits(), n); }

 private:
  PhiloxKey key_;
  uint32_t generation_, genome_, purpose_;
  uint32_t next_block_ = 0;
  int32_t used_ = 4;
  PhiloxBlock block_ = {{0, 0, 0, 0}};
};

}  // namespace fooling
