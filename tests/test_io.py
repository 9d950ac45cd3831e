import os
import stat

import pytest

from active.utils.io import atomic_open, write_json


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    mode = stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
