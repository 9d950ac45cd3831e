"""The package's layers point one way (``../shared/design/style.md``, "This project's shape").

Every module under ``src/active`` is parsed (not imported) and each of its imports is checked, the
ones inside functions included: a function-level import still ties the layers together, it only
postpones the error to the path that runs it. Two rules:

(a) a layer imports only itself and the layers to its left in ``STAGES``; ``training`` and
    ``inference`` (the same rank) never import each other, ``inference`` and ``analysis``
    import neither training code nor PyTorch (the base install leaves it out), and
    ``evaluation`` imports no training code;
(b) no import cycle between modules.

Where the loose modules sit: ``errors.py`` and ``version.py`` at the bottom with ``utils/``
(anyone may import them); ``demo.py``, ``cli.py``, ``__main__.py`` and the package's front door
``active/__init__.py`` (which reaches up to inference and analysis) among the faces, with
``commands/``, ``batch/`` and ``web/``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "active"

#: Rank of each top-level part of the package (a sub-package or a loose module; "" is
#: ``active/__init__.py``). Something new under src/active must be placed here on purpose.
STAGES: dict[str, int] = {
    "errors": 0, "version": 0, "utils": 0,
    "data": 1,
    "models": 2,
    "training": 3, "inference": 3,
    "evaluation": 4,
    "experiments": 5,
    "analysis": 6,
    "commands": 7, "cli": 7, "__main__": 7, "batch": 7, "web": 7, "demo": 7, "": 7,
}
#: Layers of one rank that must not import each other either.
SIBLINGS = [{"training", "inference"}]
#: PyTorch and the libraries built on it (importing them imports it).
TORCH = ("torch", "torchvision", "effdet", "ultralytics", "timm")
#: What each of these layers may not import at all, besides the rank rule: inference and analysis
#: run in the base install (no PyTorch); evaluation scores detections and checkpoints, and what
#: trains and then evaluates is experiments/.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "inference": ("active.training", *TORCH),
    "analysis": ("active.training", *TORCH),
    "evaluation": ("active.training",),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as written in ``file`` at ``line``."""

    module: str  # the importing module, e.g. "active.inference.predictor"
    file: str  # its path relative to src/
    line: int
    target: str  # the module imported (for `from X import name`: X.name if that is a module)
    text: str  # the statement, for the failure message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _modules() -> dict[str, tuple[Path, bool]]:
    return {name: (p, pkg) for p in sorted(PACKAGE.rglob("*.py"))
            for name, pkg in [_module_name(p)]}


def _imports(name: str, path: Path, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in the file (module level, in functions, under TYPE_CHECKING alike)."""
    source_text = path.read_text(encoding="utf-8")
    tree = ast.parse(source_text, str(path))
    here = name if is_package else name.rpartition(".")[0]
    rel = str(path.relative_to(SRC))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        text = (ast.get_source_segment(source_text, node) or "").splitlines()[0]
        if isinstance(node, ast.Import):
            out += [Import(name, rel, node.lineno, a.name, text) for a in node.names]
        else:
            if node.level:  # relative: resolve against this module's package
                base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for a in node.names:
                sub = f"{source}.{a.name}"
                out.append(Import(name, rel, node.lineno, sub if sub in known else source, text))
    return out


def _all_imports() -> list[Import]:
    mods = _modules()
    known = set(mods)
    return [imp for name, (path, pkg) in mods.items() for imp in _imports(name, path, pkg, known)]


def _stage(module: str) -> str:
    """``active.models.coder`` -> ``models``; ``active`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _within(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def test_every_part_of_the_package_has_a_place() -> None:
    parts = {_stage(name) for name in _modules()}
    unplaced = sorted(parts - set(STAGES))
    assert not unplaced, (f"src/active/{unplaced}: not in STAGES of tests/test_layers.py; give "
                          "it the rank of the layer it belongs to")


def test_layers_import_only_to_their_left() -> None:
    imports = _all_imports()
    assert len({i.module for i in imports}) > 50  # the parser saw the package
    problems = []
    for imp in imports:
        src = _stage(imp.module)
        for banned in FORBIDDEN.get(src, ()):
            if _within(imp.target, banned):
                problems.append(f"{imp}  ({src} must not import {banned})")
        if not _within(imp.target, "active"):
            continue
        dst = _stage(imp.target)
        if dst not in STAGES or src not in STAGES:
            continue  # said by test_every_part_of_the_package_has_a_place
        if STAGES[dst] > STAGES[src]:
            problems.append(f"{imp}  ({src or 'active/__init__'} (rank {STAGES[src]}) imports "
                            f"{dst or 'active/__init__'} (rank {STAGES[dst]}), a layer above it)")
        elif src != dst and any({src, dst} <= pair for pair in SIBLINGS):
            problems.append(f"{imp}  ({src} and {dst} must not import each other)")
    assert not problems, "imports against the layers:\n" + "\n".join(dict.fromkeys(problems))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself),
    by Tarjan's algorithm. Written out (30 lines) rather than taken from networkx, which is not
    a dependency of the project; iterative, so a deep chain of imports cannot hit Python's
    recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "d"}, "e": set()}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["d"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules() -> None:
    imports = [i for i in _all_imports() if _within(i.target, "active")]
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.module, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    problems = []
    for component in _cycles(graph):
        members = set(component)
        edges = dict.fromkeys(str(i) for i in imports if i.module in members
                              and i.target in members)
        problems.append(" <-> ".join(component) + ":\n    " + "\n    ".join(edges))
    assert not problems, "import cycles:\n" + "\n".join(problems)
