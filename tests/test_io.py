import os
import stat

import pytest

from active.utils.io import atomic_open, write_between, write_json


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


def test_write_between_replaces_the_block_or_appends_it(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# Doc\n\nbefore\n<!-- t -->\nold\n<!-- /t -->\nafter\n")
    write_between(doc, "<!-- t -->", "<!-- /t -->", "new")
    assert doc.read_text() == "# Doc\n\nbefore\n<!-- t -->\nnew\n<!-- /t -->\nafter\n"
    write_between(doc, "<!-- u -->", "<!-- /u -->", "more", heading="## U")
    assert doc.read_text().endswith("after\n\n## U\n\n<!-- u -->\nmore\n<!-- /u -->\n")
    fresh = tmp_path / "new.md"
    write_between(fresh, "<!-- t -->", "<!-- /t -->", "x")
    assert fresh.read_text() == "<!-- t -->\nx\n<!-- /t -->\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.md", "new.md"]
