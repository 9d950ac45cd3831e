"""ACTIVE: sperm and impurity detection in microscopic semen videos.

>>> from active import Predictor          # doctest: +SKIP
>>> Predictor()(frame).counts()           # the bundled model on an RGB frame
>>> from active import analyze, Calibration                           # doctest: +SKIP
>>> analyze(["sample.mp4"], Calibration(um_per_px=0.35, chamber_depth_um=20)).motility
"""

from typing import Any

from active.version import __version__

__all__ = ["Calibration", "Predictor", "Results", "__version__", "analyze"]


def __getattr__(name: str) -> Any:  # lazy: `import active` stays light (no torch import)
    if name == "Predictor":
        from active.inference.predictor import Predictor

        return Predictor
    if name == "Results":
        from active.inference.results import Results

        return Results
    if name in ("analyze", "Calibration"):
        import active.analysis

        return getattr(active.analysis, name)
    raise AttributeError(f"module 'active' has no attribute {name!r}")
