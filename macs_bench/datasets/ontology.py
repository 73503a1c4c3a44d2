"""The AudioSet ontology: names by MID, ancestry, and name lookup tolerant of LLP/FSD50K spellings."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from macs_bench.datasets.metadata import read_json
from macs_bench.errors import MetadataError


def normalise_name(name: str) -> str:
    """Case and punctuation folded: ``Baby_cry_infant_cry`` and ``Baby cry, infant cry`` compare equal."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


class Ontology:
    def __init__(self, nodes: list[dict]):
        self.nodes = {node["id"]: node for node in nodes}

    @classmethod
    def load(cls, path: Path) -> "Ontology":
        nodes = read_json(path)
        if not isinstance(nodes, list) or not all(isinstance(n, dict) and "id" in n for n in nodes):
            raise MetadataError(f"{path}: expected a list of ontology nodes with 'id'")
        return cls(nodes)

    def __contains__(self, mid: str) -> bool:
        return mid in self.nodes

    def name(self, mid: str) -> str:
        return self.nodes[mid]["name"]

    @cached_property
    def _parents(self) -> dict[str, set[str]]:
        parents: dict[str, set[str]] = {mid: set() for mid in self.nodes}
        for mid, node in self.nodes.items():
            for child in node.get("child_ids", []):
                parents.setdefault(child, set()).add(mid)
        return parents

    @cached_property
    def _by_normalised_name(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for mid, node in self.nodes.items():
            table.setdefault(normalise_name(node["name"]), []).append(mid)
        return table

    def ancestors(self, mid: str) -> set[str]:
        seen: set[str] = set()
        stack = [mid]
        while stack:
            for parent in self._parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def drop_ancestors(self, mids: list[str]) -> list[str]:
        """Keep the MIDs that are not an ancestor of another MID of the same list, in their order."""
        covered = set().union(*(self.ancestors(m) for m in mids)) if mids else set()
        return [m for m in mids if m not in covered]

    def mid_for_name(self, name: str) -> str | None:
        """The unique MID whose display name matches ``name`` up to case and punctuation, else ``None``."""
        matches = self._by_normalised_name.get(normalise_name(name), [])
        return matches[0] if len(matches) == 1 else None
