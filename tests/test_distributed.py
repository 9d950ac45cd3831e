"""Training in two processes on the CPU (gloo), as a user runs it: the real CLI under
``python -m torch.distributed.run``. Rank 0 alone prints and writes; both ranks end with the same
weights; ``--resume`` continues under torchrun; a failure on one rank ends the other."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from active.data.synth import SynthConfig, generate_dataset
from active.models.build import build_model
from active.models.checkpoint import read_checkpoint
from active.models.variants import ModelConfig
from active.training import distributed as ddp

TIMEOUT_S = 300  # a hang fails the test instead of stalling the suite

CONFIG = """\
model: {variant: active-i, scale: tiny, imgsz: [128, 160]}
data: {path: DATA}
augment: {mosaic: 0}
warmup_steps: 2
stages:
  - {name: frozen, epochs: 1, batch: 2, lr: 0.002, freeze_backbone: true}
  - {name: unfrozen, epochs: 1, batch: 2, lr: 0.001, freeze_backbone: false}
"""


def _env(**extra: str) -> dict[str, str]:
    # one thread each, so two processes do not fight over two cores; a short collective timeout
    # so that a hang would end in an error well inside TIMEOUT_S
    return {**os.environ, "OMP_NUM_THREADS": "1", "ACTIVE_DIST_TIMEOUT": "60", **extra}


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env())


def _train(config, out, *flags: str) -> subprocess.CompletedProcess:
    proc = _torchrun("-m", "active", "train", "--config", str(config), "--out", str(out),
                     "--quiet", *flags)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _raw_weights_digest(path) -> str:
    """The digest of the raw (non-EMA) parameters saved in a ``last.pt``."""
    data = read_checkpoint(path)
    model = build_model(ModelConfig.from_dict(data["model_config"]))
    model.load_state_dict(data["train_state"].get("raw_model", data["model"]))
    return ddp.parameter_digest(model)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    synth = SynthConfig(width=160, height=128, sperm_in_view=(6, 10), impurities_in_view=(1, 2),
                        dots_in_view=(5, 10))
    generate_dataset(root / "data", videos=5, frames=6, seed=0, cfg=synth)
    path = root / "tiny.yaml"
    path.write_text(CONFIG.replace("DATA", str(root / "data")))
    return path


@pytest.fixture(scope="module")
def resumed(config, tmp_path_factory):
    """Stage 1 in one torchrun launch, then stage 2 in a second one with ``--resume``."""
    out = tmp_path_factory.mktemp("resumed")
    first = _train(config, out, "--epochs", "1", "0")
    second = _train(config, out, "--epochs", "1", "1", "--resume")
    return out, first, second


def test_two_processes_train_one_model(resumed):
    out, first, second = resumed
    for proc in (first, second):  # rank 0 alone prints its epoch lines
        assert proc.stdout.count("epoch=1 stage=frozen") == (proc is first)
    assert second.stdout.count("epoch=2 stage=unfrozen") == 1
    for name in ("config.yaml", "last.pt", "best.pt", "log.csv", "curves.png"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.yaml", "last.pt", "best.pt", "log.csv", "curves.png"])
    assert (out / "log.csv").read_text().count("\n") == 3  # header + 2 epochs: resumed history
    data = read_checkpoint(out / "last.pt")
    assert data["train_state"]["stage"] == 2
    assert [r["epoch"] for r in data["train_state"]["history"]] == [1, 2]
    # after every epoch the ranks gathered the digests of their weights; they must agree and be
    # the weights rank 0 saved
    digests = data["meta"]["replica_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert digests[0] == _raw_weights_digest(out / "last.pt")


def test_resume_reaches_the_uninterrupted_weights(config, resumed, tmp_path):
    _train(config, tmp_path, "--epochs", "1", "1")
    assert _raw_weights_digest(tmp_path / "last.pt") == _raw_weights_digest(
        resumed[0] / "last.pt")


DRIVER = """\
import sys
from active.cli import main
{patch}
sys.exit(main(sys.argv[1:]))
"""


def test_without_ddp_the_replica_check_fails(config, tmp_path):
    """The check has teeth: with the DDP wrapper taken away each rank trains its own shard and
    the run stops with an error instead of saving one rank's model as if it were the run's."""
    driver = tmp_path / "no_ddp.py"
    driver.write_text(DRIVER.format(patch=textwrap.dedent("""\
        from active.training import distributed
        distributed.wrap = lambda model, ranks, device: model
        """)))
    proc = _torchrun(str(driver), "train", "--config", str(config), "--out",
                     str(tmp_path / "run"), "--quiet", "--epochs", "1", "0")
    assert proc.returncode != 0
    assert "ranks hold different weights" in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_rank_does_not_hang_the_other(config, tmp_path):
    """Without torchrun's agent to kill the survivors (two plain processes, as ``srun`` alone
    would start them), rank 0 must still end when rank 1 dies mid-training."""
    driver = tmp_path / "fail.py"
    driver.write_text(DRIVER.format(patch=textwrap.dedent("""\
        import os
        from active.training import trainer
        if os.environ["RANK"] == "1":
            def fail(*args, **kwargs):
                raise RuntimeError("injected failure on rank 1")
            trainer.train_one_epoch = fail
        """)))
    port = str(_free_port())
    procs = [subprocess.Popen(
        [sys.executable, str(driver), "train", "--config", str(config), "--out",
         str(tmp_path / "run"), "--quiet"],
        env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                 MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert "injected failure on rank 1" in outputs[1]
    assert procs[0].returncode != 0 and procs[1].returncode != 0, outputs


class _Dataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 11

    def __getitem__(self, i: int) -> int:
        return i


def test_shards_are_disjoint_and_reshuffled_each_epoch():
    def shards(epoch):
        out = []
        for rank in range(2):
            s = ddp.sampler(_Dataset(), ddp.Ranks(rank, 2), 0, torch.Generator())
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    a, b = shards(0)
    assert len(a) == len(b) == 5 and not set(a) & set(b)  # 11 frames: 1 skipped, none repeated
    assert shards(0) == [a, b]  # deterministic
    assert shards(1) != [a, b]
    with pytest.raises(ValueError, match="1 training frames cannot be shared by 2"):
        ddp.sampler(range(1), ddp.Ranks(0, 2), 0, torch.Generator())
    seeds = {ddp.rank_seed(0, s, e, r) for s in range(2) for e in range(3) for r in range(2)}
    assert len(seeds) == 12
