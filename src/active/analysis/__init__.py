"""Semen analysis from detections: tracks, WHO kinematics and motility grades, fluid drift,
concentration, and the sample's report (docs/analysis.md).

Each step is a module: :mod:`tracking` (link detections into tracks) -> :mod:`drift` (the fluid's
velocity, from impurities and immotile cells) -> :mod:`kinematics` (VCL, VSL, VAP, LIN, STR, WOB,
ALH, BCF, MAD) -> :mod:`grades` (WHO 6th-edition grades and reference limits) ->
:mod:`concentration` (cells per imaged volume with a Poisson interval); :mod:`sample` chains them
for one video and combines a sample's videos; :mod:`run` adds the detector and the outputs.
Nothing here imports PyTorch or training code.
"""

from active.analysis.calibration import Calibration
from active.analysis.grades import GRADES, GradeConfig
from active.analysis.run import AnalyzeOptions, analyze
from active.analysis.sample import SampleAnalysis, VideoAnalysis, analyze_detections
from active.analysis.tracking import Track, TrackerConfig, link

__all__ = ["GRADES", "AnalyzeOptions", "Calibration", "GradeConfig", "SampleAnalysis", "Track",
           "TrackerConfig", "VideoAnalysis", "analyze", "analyze_detections", "link"]
