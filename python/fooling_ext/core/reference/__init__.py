"""Plain NumPy references of the core's kernels: the oracles its tests compare both backends with.

:mod:`~fooling_ext.core.reference.render` renders genomes node by node; :mod:`~fooling_ext.core.reference.mutation`
mutates them with the same Philox draws. Slow by design: written to be checked by reading.
"""
