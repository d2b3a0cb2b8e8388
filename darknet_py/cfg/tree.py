"""Darknet's softmax tree (``tree=`` in ``[region]`` and ``[softmax]``, yolo9000's
WordTree): ``read_tree`` of ``src/tree.c``.  A tree file has one ``name parent`` line per
class; classes with the same parent on consecutive lines form a group, and the softmax
runs within each group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CfgError


@dataclass(frozen=True)
class SoftmaxTree:
    """``parent[j]`` (-1 at the top), the groups as (offset, size) in class order, and
    each class's depth (for products along the parents)."""

    names: tuple[str, ...]
    parent: tuple[int, ...]
    group_offset: tuple[int, ...]
    group_size: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.parent)

    def group_index(self) -> list[int]:
        """The group of each class (its softmax)."""
        out = [0] * self.n
        for g, (offset, size) in enumerate(zip(self.group_offset, self.group_size)):
            out[offset: offset + size] = [g] * size
        return out

    def depth(self) -> list[int]:
        """Ancestors of each class (0 at the top)."""
        out: list[int] = []
        for p in self.parent:
            out.append(0 if p < 0 else out[p] + 1)
        return out


def parse_tree(text: str, name: str = "<tree>") -> SoftmaxTree:
    """A tree file's text; a parent that is not an earlier line is a one-line error."""
    names, parents = [], []
    offsets, sizes = [], []
    last_parent, size = -1, 0
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            parent = int(fields[1]) if len(fields) > 1 else -1
        except ValueError:
            raise CfgError(f"parent {fields[1]!r} is not a number", name, number) from None
        if parent >= len(names):
            raise CfgError(f"parent {parent} is not an earlier line", name, number)
        if parent != last_parent:  # a new group starts (read_tree)
            offsets.append(len(names) - size)
            sizes.append(size)
            size, last_parent = 0, parent
        names.append(fields[0])
        parents.append(parent)
        size += 1
    offsets.append(len(names) - size)
    sizes.append(size)
    return SoftmaxTree(tuple(names), tuple(parents), tuple(offsets), tuple(sizes))


def read_tree(value: str, cfg_path: str) -> SoftmaxTree:
    """The tree file ``value`` names, as Darknet opens it (from the working directory),
    else beside the cfg; missing, a one-line error."""
    for path in (Path(value), Path(cfg_path).parent / value):
        if path.is_file():
            return parse_tree(path.read_text(errors="replace"), str(path))
    raise FileNotFoundError(value)


def load_tree(section) -> SoftmaxTree | None:
    """The tree a section's ``tree=`` names (None without one), or its one-line error."""
    if not section.tree:
        return None
    try:
        return read_tree(section.tree, section.path)
    except FileNotFoundError:
        raise section.error(f"tree={section.tree}: no such file (Darknet opens it from the "
                            "working directory; darknet-py also looks beside the cfg)",
                            "tree") from None
