"""Synthetic phase-contrast sperm videos with exact ground truth (boxes, tracks, motility grades,
kinematics, fluid drift and concentration).

Imitates SVIA subset-A: grey, low-contrast, noisy 698x528 frames at 30 fps; sperm heads with a
dark rim and a bright halo and faint beating tails, swimming in the four WHO motility grades
(rapid and slow progressive, non-progressive, immotile) through a fluid that drifts as a whole;
impurities; unlabelled debris dots; uneven light, blur, noise, JPEG blocks and interlace combing.
``scripts/calibrate_synth.py`` compares it with the real sample and ``docs/synthetic.md``
reports how close it is.

>>> video = render_video(SynthConfig(frames=5), seed=0, video_id="SYN_0001")  # doctest: +SKIP
>>> video.concentration_m_per_ml, video.tracks[0].net_1s_um_per_s            # doctest: +SKIP
>>> generate_dataset(Path("synth"), videos=2, frames=50, seed=0)             # doctest: +SKIP
"""

from active.data.synth.config import MOTILITY_TYPES, PROGRESSIVE_TYPES, SynthConfig
from active.data.synth.dataset import (
    SynthSummary,
    SynthVideo,
    generate_dataset,
    render_video,
    video_seed,
)
from active.data.synth.kinematics import kinematics
from active.data.synth.truth import TrackTruth

__all__ = [
    "MOTILITY_TYPES",
    "PROGRESSIVE_TYPES",
    "SynthConfig",
    "SynthSummary",
    "SynthVideo",
    "TrackTruth",
    "generate_dataset",
    "kinematics",
    "render_video",
    "video_seed",
]
