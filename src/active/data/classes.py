"""Class maps: which names a dataset uses for which of ACTIVE's classes.

A class map is data, not code: SVIA calls sperm ``S``, other tools say ``sperm`` or ``Sperm``; a
user with another dataset writes a small JSON/YAML file ``{"names": [...], "aliases": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from active.errors import DataError


@dataclass(frozen=True)
class ClassMap:
    """Canonical class names (their order gives the label ids) and the aliases that map to them.

    Lookup ignores case and surrounding spaces. An unknown name is a :class:`DataError`.
    """

    names: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names) or not self.names:
            raise ValueError(f"class names must be unique and non-empty, got {self.names}")
        for alias, target in self.aliases.items():
            if target not in self.names:
                raise ValueError(f"alias {alias!r} points to unknown class {target!r}")

    @property
    def _lookup(self) -> dict[str, int]:
        table = {n.strip().lower(): i for i, n in enumerate(self.names)}
        for alias, target in self.aliases.items():
            table[alias.strip().lower()] = self.names.index(target)
        return table

    def index(self, name: str, path: str | Path | None = None) -> int:
        """Label id of ``name``; ``path`` names the file in the error if the name is unknown."""
        key = str(name).strip().lower()
        table = self._lookup
        if key not in table:
            known = sorted({*self.names, *self.aliases})
            raise DataError(path, f"unknown class name {name!r} (known: {', '.join(known)})")
        return table[key]

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_names(cls, names: Sequence[str]) -> ClassMap:
        return cls(tuple(names))

    @classmethod
    def from_file(cls, path: str | Path) -> ClassMap:
        """Read ``{"names": [...], "aliases": {alias: name}}`` from a JSON or YAML file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix.lower() in {".yaml", ".yml"}:
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
            return cls(tuple(data["names"]), dict(data.get("aliases", {})))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(path, f"not a valid class map: {exc}") from exc
        except Exception as exc:  # yaml.YAMLError and friends
            raise DataError(path, f"not a valid class map: {exc}") from exc


#: ACTIVE's two classes, with SVIA subset-A's names (``S``, ``Impurity``) as aliases.
DEFAULT_CLASSES = ClassMap(
    names=("sperm", "impurity"),
    aliases={"S": "sperm", "Sperm": "sperm", "Impurity": "impurity", "I": "impurity"},
)
