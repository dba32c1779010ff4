# Types of the compiled core, fooling_ext._core, as cpp/bindings/*.cpp bind it: what mypy checks calls into the
# core against. Keep it in step with the bindings. Pointers cross as integers (a tensor's data_ptr()); the
# C++ integer widths are noted where the core checks a range.
from collections.abc import Sequence
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

__version__: str
ACTIVATION_NAMES: tuple[str, ...]
NUM_INPUTS: int
MAX_NODES_CAPACITY: int
MAX_EDGES_CAPACITY: int
MAX_IMAGE_SIDE: int
ALL_ACTIVATIONS_MASK: int

class CudaDevice(TypedDict):
    name: str
    compute_capability: tuple[int, int]
    total_memory: int
    max_shared_per_block_optin: int

class CudaInfo(TypedDict):
    compiled: bool
    runtime_version: int
    driver_version: int
    architectures: str
    devices: list[CudaDevice]
    error: str

class CppnBatchView:
    """A batch of genomes in the core's layout: sizes, and the addresses of the six int32/float32 tensors."""

    def __init__(
        self,
        batch: int,
        max_nodes: int,
        max_edges: int,
        num_outputs: int,
        num_nodes: int,
        num_edges: int,
        node_activation: int,
        edge_src: int,
        edge_dst: int,
        edge_weight: int,
    ) -> None: ...
    @property
    def batch(self) -> int: ...
    @property
    def max_nodes(self) -> int: ...
    @property
    def max_edges(self) -> int: ...
    @property
    def num_outputs(self) -> int: ...

class CppnMutationParams:
    p_weight: float
    eta: float
    weight_min: float
    weight_max: float
    p_activation: float
    activations: int
    p_add_edge: float
    p_delete_edge: float
    p_add_node: float
    p_delete_node: float
    add_edge: int
    add_edge_attempts: int
    def __init__(self) -> None: ...

class PixelMutationParams:
    rate: float
    eta: float
    crossover: int
    crossover_rate: float
    eta_c: float
    def __init__(self) -> None: ...

def activation_values(activation: int, x: ArrayLike) -> NDArray[np.float32]: ...
def num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def cuda_info() -> CudaInfo: ...
def program_workspace_ints(max_nodes: int, max_edges: int) -> int: ...
def validate_cpu(genomes: CppnBatchView, errors: int) -> int: ...
def hls8_to_rgb_cpu(hls: int, rgb: int, n: int) -> None: ...
def render_cpu(
    genomes: CppnBatchView, height: int, width: int, coords: int, color: int, quantize: bool, out: int, errors: int
) -> int: ...
def render_cuda(
    genomes: CppnBatchView,
    height: int,
    width: int,
    coords: int,
    color: int,
    quantize: bool,
    out: int,
    errors: int,
    workspace: int,
    workspace_rows: int,
    stream: int,
) -> None: ...
def check_cppn_mutation_params(params: CppnMutationParams) -> str: ...
def check_pixel_mutation_params(params: PixelMutationParams) -> str: ...
def mutation_workspace_ints(max_nodes: int, max_edges: int) -> int: ...
def philox4x32_10(counter: Sequence[int], key: Sequence[int]) -> list[int]: ...  # lengths 4 and 2
def mutate_cppn_cpu(
    genomes: CppnBatchView,
    params: CppnMutationParams,
    seed: int,
    generation: int,
    genome_offset: int,
    errors: int,
    blocked: int,
) -> int: ...
def mutate_cppn_cuda(
    genomes: CppnBatchView,
    params: CppnMutationParams,
    seed: int,
    generation: int,
    genome_offset: int,
    errors: int,
    blocked: int,
    workspace: int,
    workspace_rows: int,
    stream: int,
) -> None: ...
def select_cppn_cpu(parents: CppnBatchView, index: int, children: CppnBatchView) -> int: ...
def select_cppn_cuda(
    parents: CppnBatchView, index: int, children: CppnBatchView, first_bad: int, stream: int
) -> None: ...
def select_rows_cpu(parents: int, parent_rows: int, row_size: int, index: int, count: int, children: int) -> int: ...
def select_rows_cuda(
    parents: int, parent_rows: int, row_size: int, index: int, count: int, children: int, first_bad: int, stream: int
) -> None: ...
def init_pixels_cpu(genes: int, batch: int, genes_per_genome: int, seed: int, genome_offset: int) -> None: ...
def init_pixels_cuda(
    genes: int, batch: int, genes_per_genome: int, seed: int, genome_offset: int, stream: int
) -> None: ...
def mutate_pixels_cpu(
    genes: int,
    batch: int,
    genes_per_genome: int,
    params: PixelMutationParams,
    seed: int,
    generation: int,
    genome_offset: int,
) -> None: ...
def mutate_pixels_cuda(
    genes: int,
    batch: int,
    genes_per_genome: int,
    params: PixelMutationParams,
    seed: int,
    generation: int,
    genome_offset: int,
    stream: int,
) -> None: ...
