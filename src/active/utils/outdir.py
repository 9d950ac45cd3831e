"""Output folders that never mix two runs (docs/errors.md, "Output folders").

Every command that writes a folder claims it here first:

- **a default folder** (no ``--out``): the first free one of ``NAME``, ``NAME-2``, ``NAME-3``,
  ... (free: missing or empty), so a rerun on a same-named source never overwrites a run;
- **an explicit ``--out``**: used when it is missing or empty; a non-empty one is refused;
- **``--overwrite``**: the folder (given or default) is emptied first, but only when an ACTIVE
  run wrote it (its marker file is there): a folder of anything else is never emptied.

A claimed folder gets the marker file :data:`MARKER`. A run that fails before writing anything
removes the folder it claimed, so a typo does not leave empty numbered folders behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from active.errors import UsageError

#: The file that marks a folder as an ACTIVE run's output (``--overwrite`` may empty it).
MARKER = ".active-run"


def _entries(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.name != MARKER]


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_inputs(out: Path, inputs: Sequence[Path], not_inside: Sequence[Path], flag: str,
                  overwrite: bool) -> None:
    target = out.resolve()
    for folder in not_inside:
        folder = Path(folder).resolve()
        if _inside(target, folder):
            raise UsageError(f"{flag} {out}: is inside the input {folder}, which would then be "
                             "read back with its own copy; choose a folder outside it")
    if overwrite:
        for item in inputs:
            item = Path(item).resolve()
            if _inside(item, target):
                raise UsageError(f"{flag} {out} --overwrite: would delete the input {item}; "
                                 f"choose another {flag}")


def _mark(path: Path, command: str, who: str) -> bool:
    """Create ``path`` (and its parents) with the marker; False if another run got there first.
    A folder that cannot be created or written is a UsageError naming the flag."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(path / MARKER, "x", encoding="utf-8") as fh:
            fh.write(f"written by 'active {command}'; 'active {command} --overwrite' may empty "
                     "this folder\n")
    except FileExistsError as exc:
        if exc.filename is not None and Path(exc.filename) == path / MARKER:
            return False
        raise UsageError(f"{who}: {exc.filename} is a file, not a folder") from None
    except NotADirectoryError:
        raise UsageError(f"{who}: a part of this path is a file, not a folder") from None
    except OSError as exc:
        raise UsageError(f"{who}: cannot write here ({exc.strerror or exc})") from None
    return True


def _empty(path: Path) -> None:
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def claim_output(out: str | Path | None, default: str | Path | None = None, *,
                 overwrite: bool = False, command: str = "", flag: str = "--out",
                 inputs: Sequence[str | Path] = (),
                 not_inside: Sequence[str | Path] = ()) -> Path:
    """The folder this run writes into, created and marked; see the module docstring.

    Args:
        out: the folder the user gave (``--out``), or None for ``default``.
        default: where the outputs go without ``--out``; numbered when used.
        overwrite: empty the folder first (only one an ACTIVE run wrote).
        command: the subcommand, for the marker and the messages.
        inputs: files or folders the run reads; ``--overwrite`` never deletes them.
        not_inside: folders the output must not be in (a dataset read recursively).
    """
    if out is None and default is None:
        raise ValueError("claim_output needs out or default")
    given = out is not None
    base = Path(out if given else default)  # type: ignore[arg-type]
    who = f"{flag} {base}" if given else f"{base} (the default output folder)"
    if base.exists() and not base.is_dir():
        raise UsageError(f"{who}: is a file, not a folder; choose a folder")
    _check_inputs(base, [Path(i) for i in inputs], [Path(f) for f in not_inside], flag,
                  overwrite)
    if base.is_dir() and _entries(base):
        if overwrite:
            if not (base / MARKER).is_file():
                raise UsageError(
                    f"{who}: holds files that no ACTIVE run wrote (no {MARKER} marker), so "
                    f"--overwrite will not empty it; empty it yourself or choose another {flag}")
            try:
                _empty(base)
            except OSError as exc:
                raise UsageError(f"{who}: cannot empty it ({exc.strerror or exc})") from None
        elif given:
            raise UsageError(
                f"{who}: the folder is not empty (an earlier run's outputs?); choose another "
                f"{flag}, or add --overwrite to empty it first")
        else:
            return _next_free(base, command, flag)
    # a folder with only a marker is being written by another run (or one that died): a
    # default moves on to the next number, an explicit --out (or --overwrite) takes it
    if not _mark(base, command, who) and not given and not overwrite:
        return _next_free(base, command, flag)
    return base


def _next_free(base: Path, command: str, flag: str) -> Path:
    """The first of ``base-2``, ``base-3``, ... that is missing or empty, claimed."""
    for n in range(2, 100_000):
        cand = base.with_name(f"{base.name}-{n}")
        if cand.exists() and (not cand.is_dir() or _entries(cand) or (cand / MARKER).exists()):
            continue
        if _mark(cand, command, f"{cand} (a numbered output folder)"):
            return cand
    raise UsageError(f"{base}: no free numbered folder left beside it; clean up old runs")


@contextlib.contextmanager
def output_folder(out: str | Path | None, default: str | Path | None = None, *,
                  overwrite: bool = False, command: str = "", flag: str = "--out",
                  inputs: Sequence[str | Path] = (),
                  not_inside: Sequence[str | Path] = ()) -> Iterator[Path]:
    """:func:`claim_output` as a context: if the block fails before writing anything into the
    folder, the folder (and the marker) is removed again."""
    path = claim_output(out, default, overwrite=overwrite, command=command, flag=flag,
                        inputs=inputs, not_inside=not_inside)
    try:
        yield path
    except BaseException:
        with contextlib.suppress(OSError):
            if not _entries(path):
                (path / MARKER).unlink(missing_ok=True)
                os.rmdir(path)
        raise
