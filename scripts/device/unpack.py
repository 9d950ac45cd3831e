"""(device) webp frames -> the SVIA layout with PNG frames; checks every frame's pixel MD5."""
import hashlib
import pathlib
import shutil
import sys

import cv2

src, dst = pathlib.Path(".devdata/svia"), pathlib.Path(sys.argv[1])
shutil.copytree(src / "Subset-A", dst / "Subset-A", dirs_exist_ok=True)
shutil.copy(src / "README.md", dst / "README.md")
want = dict(line.split()[::-1] for line in (src / "pixels.md5").read_text().splitlines())
for w in sorted((src / "frames").glob("*/*.webp")):
    im = cv2.imread(str(w), cv2.IMREAD_UNCHANGED)
    name = f"{w.parent.name}/{w.stem}.png"
    assert hashlib.md5(im.tobytes()).hexdigest() == want[name], name
    out = dst / "Frames from original videos" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), im)
print("unpacked", len(want), "frames, pixels identical")
