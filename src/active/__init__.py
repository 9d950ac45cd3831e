"""ACTIVE: sperm and impurity detection in microscopic semen videos.

>>> from active import Predictor          # doctest: +SKIP
>>> Predictor()(frame).counts()           # the bundled model on an RGB frame
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Predictor", "Results", "__version__"]


def __getattr__(name: str) -> Any:  # lazy: `import active` stays light (no torch import)
    if name == "Predictor":
        from active.inference.predictor import Predictor

        return Predictor
    if name == "Results":
        from active.inference.results import Results

        return Results
    raise AttributeError(f"module 'active' has no attribute {name!r}")
