"""Batch analysis of a lab's archive on Dask (docs/batch.md): many videos, one task each, on a
local cluster or an existing one; a SQLite catalogue that makes a re-run skip what is done and a
killed run resume; a cohort summary over the samples.

:mod:`inputs` (folders, globs, manifests -> videos with samples and calibration) ->
:mod:`catalogue` (the SQLite file) -> :mod:`worker` (one video on a worker, the model loaded once
per worker) -> :mod:`engine` (plan, run, record) -> :mod:`cohort` (a sample's row from its
videos, by the analysis layer's combination) -> :mod:`summary` (cohort CSV, Parquet, HTML).
This layer sits beside the command line: it imports the analysis and inference layers, never
training code or PyTorch.
"""

from active.batch.engine import BatchOptions, BatchReport, run_batch
from active.batch.inputs import VideoJob, expand, is_batch_input, read_manifest

__all__ = ["BatchOptions", "BatchReport", "VideoJob", "expand", "is_batch_input",
           "read_manifest", "run_batch"]
