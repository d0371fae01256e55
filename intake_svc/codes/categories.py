"""Content category table (信访事项内容分类), a versioned code table.

``categories.yaml`` beside this file holds the 17 classic first-level
categories (一级分类, codes ``"01"``..``"17"``) with their second-level entries
(二级分类, 4-digit codes = parent code + 2 digits), and the names of the newer
department-style lists (新版分类名称: 自然资源, 生态环境, 卫生健康, 市场监管…),
each folded into one classic first-level code so statistics stay comparable.

``CategoryTable.load(path=None)`` reads and validates the file (a broken
table raises :class:`CategoryTableError` at load); the caller caches the
instance.  Nothing happens at import time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

DATA_FILE = Path(__file__).with_name("categories.yaml")

_CODE1 = re.compile(r"^\d{2}$")
_CODE2 = re.compile(r"^\d{4}$")


class CategoryTableError(ValueError):
    """The category YAML is malformed or inconsistent."""


@dataclass(frozen=True)
class Category:
    """One content category.

    ``classic_code``/``classic_name`` are the classic first-level category the
    entry folds into (itself for a first-level category, the parent for a
    second-level one).  A newer name (``newer=True``, e.g. 住房城乡建设) has the
    code of its classic category, level 1 and its own ``name``.
    """

    code: str
    name: str
    level: Literal[1, 2]
    parent_code: str | None
    classic_code: str
    classic_name: str
    newer: bool = False

    @property
    def label(self) -> str:
        """``城乡建设/物业管理`` for a second-level entry, the name otherwise."""
        return f"{self.classic_name}/{self.name}" if self.level == 2 else self.name


class CategoryTable:
    """The loaded, validated category table."""

    def __init__(self, version: str, categories: list[Category], newer: list[Category]) -> None:
        self.version = version
        self._all = tuple(sorted(categories, key=lambda c: c.code))  # "01" < "0101" < "02"
        self._newer = tuple(newer)
        self._by_code = {c.code: c for c in categories}
        self._first_by_name = {c.name: c for c in categories if c.level == 1}
        self._newer_by_name = {c.name: c for c in newer}
        leaves: dict[str, list[Category]] = {}
        for c in categories:
            if c.level == 2:
                leaves.setdefault(c.name, []).append(c)
        self._leaves = leaves

    @classmethod
    def load(cls, path: Path | str | None = None) -> CategoryTable:
        """Read and validate ``categories.yaml`` (or ``path``)."""
        path = Path(path) if path is not None else DATA_FILE
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CategoryTableError(f"{path}: not valid YAML: {exc}") from exc
        try:
            return cls._build(data)
        except CategoryTableError as exc:
            raise CategoryTableError(f"{path}: {exc}") from None

    @classmethod
    def _build(cls, data: Any) -> CategoryTable:
        if not isinstance(data, dict):
            raise CategoryTableError("top level must be a mapping")
        version = data.get("version")
        if not isinstance(version, str) or not version.strip():
            raise CategoryTableError("'version' must be a non-empty string")
        classic = data.get("classic")
        if not isinstance(classic, list) or not classic:
            raise CategoryTableError("'classic' must be a non-empty list")
        categories: list[Category] = []
        codes: set[str] = set()
        names: dict[str, str] = {}  # every unqualified name → code, for ambiguity checks

        def claim_code(code: Any, pattern: re.Pattern[str], where: str) -> str:
            if not isinstance(code, str) or not pattern.match(code):
                raise CategoryTableError(f"{where}: bad code {code!r}")
            if code in codes:
                raise CategoryTableError(f"{where}: duplicate code {code!r}")
            codes.add(code)
            return code

        def entry(item: Any, where: str) -> tuple[Any, str]:
            if not isinstance(item, dict):
                raise CategoryTableError(f"{where}: entry must be a mapping")
            name = item.get("name")
            if not isinstance(name, str) or not name.strip() or "/" in name:
                raise CategoryTableError(f"{where}: bad name {name!r}")
            return item.get("code"), name.strip()

        first_names: set[str] = set()
        for i, item in enumerate(classic):
            code, name = entry(item, f"classic[{i}]")
            code = claim_code(code, _CODE1, f"classic[{i}] {name}")
            if name in first_names:
                raise CategoryTableError(f"classic[{i}]: duplicate first-level name {name!r}")
            first_names.add(name)
            names[name] = code
            categories.append(Category(code, name, 1, None, code, name))
            children = item.get("children") or []
            if not isinstance(children, list):
                raise CategoryTableError(f"{name}: 'children' must be a list")
            seen: set[str] = set()
            for j, child in enumerate(children):
                ccode, cname = entry(child, f"{name}.children[{j}]")
                ccode = claim_code(ccode, _CODE2, f"{name}/{cname}")
                if ccode[:2] != code:
                    raise CategoryTableError(f"{name}/{cname}: code {ccode} is not under parent {code}")
                if cname in seen:
                    raise CategoryTableError(f"{name}: duplicate second-level name {cname!r}")
                seen.add(cname)
                categories.append(Category(ccode, cname, 2, code, code, name))
        for c in categories:
            if c.level == 2 and c.name in first_names:
                raise CategoryTableError(f"{c.label}: second-level name clashes with a first-level name")
        by_code = {c.code: c for c in categories}
        leaf_names = {c.name for c in categories if c.level == 2}
        newer: list[Category] = []
        for i, item in enumerate(data.get("newer_names") or []):
            _, name = entry(item, f"newer_names[{i}]")
            target = item.get("classic")
            if name in names or name in leaf_names:
                raise CategoryTableError(f"newer name {name!r} duplicates another name in the table")
            parent = by_code.get(target) if isinstance(target, str) else None
            if parent is None or parent.level != 1:
                raise CategoryTableError(f"newer name {name!r}: mapping target {target!r} is not a first-level code")
            names[name] = parent.code
            newer.append(Category(parent.code, name, 1, None, parent.code, parent.name, newer=True))
        return cls(version.strip(), categories, newer)

    # -- queries -----------------------------------------------------------

    def resolve(self, value: str) -> Category | None:
        """Category for a code (``03``, ``0301``), a classic name (城乡建设), a
        second-level name (``城乡建设/物业管理``, or ``物业管理`` when unique; the
        part before ``/`` may be a newer name) or a newer name (住房城乡建设).
        None when unknown or ambiguous."""
        if not isinstance(value, str):
            return None
        value = value.strip().replace("／", "/")
        if value.isdigit():
            return self._by_code.get(value)
        if "/" in value:
            head, _, tail = value.partition("/")
            parent = self._first_by_name.get(head.strip()) or self._newer_by_name.get(head.strip())
            if parent is None:
                return None
            return next((c for c in self.children(parent.classic_code) if c.name == tail.strip()), None)
        found = self._first_by_name.get(value) or self._newer_by_name.get(value)
        if found is not None:
            return found
        leaves = self._leaves.get(value, [])
        return leaves[0] if len(leaves) == 1 else None

    def get(self, code: str) -> Category | None:
        return self._by_code.get(code)

    def first_level(self) -> tuple[Category, ...]:
        return tuple(c for c in self._all if c.level == 1)

    def children(self, code: str) -> tuple[Category, ...]:
        return tuple(c for c in self._all if c.parent_code == code)

    def all(self) -> tuple[Category, ...]:
        """Every classic category, first level followed by its children, in code order."""
        return self._all

    def newer_names(self) -> tuple[Category, ...]:
        return self._newer
