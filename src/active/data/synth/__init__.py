"""Synthetic phase-contrast sperm videos with exact ground truth (boxes, tracks, speeds).

Imitates SVIA subset-A: grey, low-contrast, noisy 698x528 frames at 30 fps; sperm heads with a
dark rim and a bright halo and faint beating tails, on progressive, non-progressive and immotile
paths; drifting impurities; unlabelled debris dots; uneven light, blur, noise, JPEG blocks and
interlace combing. ``scripts/calibrate_synth.py`` compares it with the real sample and
``docs/synthetic.md`` reports how close it is.

>>> video = render_video(SynthConfig(frames=5), seed=0, video_id="SYN_0001")  # doctest: +SKIP
>>> generate_dataset(Path("synth"), videos=2, frames=50, seed=0)             # doctest: +SKIP
"""

from active.data.synth.config import MOTILITY_TYPES, SynthConfig
from active.data.synth.dataset import (
    SynthSummary,
    SynthVideo,
    TrackTruth,
    generate_dataset,
    render_video,
    video_seed,
)

__all__ = [
    "MOTILITY_TYPES",
    "SynthConfig",
    "SynthSummary",
    "SynthVideo",
    "TrackTruth",
    "generate_dataset",
    "render_video",
    "video_seed",
]
