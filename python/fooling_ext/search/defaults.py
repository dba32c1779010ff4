"""The paper's settings that depend on the model and the encoding, as the authors' code sets them.

- Children per generation: 400 for CPPNs against ImageNet, 200 otherwise (MNIST both encodings, ImageNet
  direct).
- Render size: ImageNet images are rendered at 256 x 256 and reach the network resized, or as 10 crops (the
  paper: CaffeNet's 227 x 227 crops of 256 x 256 images); other models get their own input size.

The number of generations is not set here: the paper's runs are long (MNIST about 1000, ImageNet CPPN 5000,
ImageNet direct 20,000), and ``fooling evolve`` defaults to 200 so that a first run ends in seconds; see
docs/ for the paper-size commands.
"""

from __future__ import annotations

from fooling_ext.classifiers.protocol import ImageScorer

DEFAULT_BATCH = 200
# The paper's ImageNet settings hold for each built-in ImageNet network.
PAPER_BATCH = {(name, "cppn"): 400 for name in ("imagenet", "imagenet-lite1", "imagenet-lite2")}
PAPER_RENDER_SIZE = {name: (256, 256) for name in ("imagenet", "imagenet-lite1", "imagenet-lite2")}


def paper_batch(classifier: ImageScorer, encoding: str) -> int:
    """Children per generation in the paper for this classifier and encoding."""
    return PAPER_BATCH.get((classifier.name, encoding), DEFAULT_BATCH)


def render_size(classifier: ImageScorer) -> tuple[int, int]:
    """(height, width) the paper renders at for this classifier: 256 x 256 for ImageNet, else its input size."""
    return PAPER_RENDER_SIZE.get(classifier.name, (classifier.spec.height, classifier.spec.width))
