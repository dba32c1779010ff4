"""How every random stream of a run follows from its seed.

The core's kernels draw from Philox4x32-10 keyed by the run's seed with the counter (generation, genome,
purpose, index), so they need no derived seeds. Everything else that needs one (a run's starting population,
the parent draws of a generation, the runs and networks of a fooling-class experiment) derives it here, from
the seed and words that say what it is for, so that two uses never share a stream.
"""

from __future__ import annotations

import numpy as np

# Purpose words, kept apart from the counters they are combined with.
INITIAL_POPULATION = 0x1A17
PARENT_DRAWS = 0x5E1EC7


def derive_seed(*words: int) -> int:
    """A 63-bit seed determined by `words` (for example seed, generation, purpose)."""
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seeded_rng(*words: int) -> np.random.Generator:
    """A NumPy generator determined by `words`."""
    return np.random.default_rng([int(w) for w in words])
