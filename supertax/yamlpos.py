"""YAML loading that remembers where every value came from.

Validation messages must point at ``file:line:col`` so users can jump to the
problem. PyYAML's composer keeps marks on nodes; this module turns the node
tree into plain Python values (``Map`` / ``Seq`` / scalars) that carry their
1-based positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from supertax.errors import InputError


@dataclass(frozen=True)
class Pos:
    """A 1-based position in a file."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Map(dict):
    """A YAML mapping: ``pos`` is its own position, ``key_pos[k]`` / ``value_pos[k]`` its entries'.
    """

    pos: Pos
    key_pos: dict
    value_pos: dict
    duplicate_keys: list

    def at(self, key: str) -> Pos:
        """Position of the value under ``key`` or, if absent, of the mapping itself."""
        return self.value_pos.get(key, self.pos)


class Seq(list):
    """A YAML sequence; ``item_pos[i]`` is the position of item ``i``."""

    pos: Pos
    item_pos: list


class YamlSyntaxError(InputError):
    """A YAML file that does not parse; ``pos`` is where the problem is."""

    def __init__(self, pos: Pos, message: str):
        super().__init__(f"{pos}: {message}")
        self.pos = pos
        self.message = message


def _pos(file: str, node: yaml.Node) -> Pos:
    return Pos(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(file: str, node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = Map()
        out.pos, out.key_pos, out.value_pos, out.duplicate_keys = _pos(file, node), {}, {}, []
        for key_node, value_node in node.value:
            key = _convert(file, key_node, loader)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            if key in out:
                out.duplicate_keys.append((key, _pos(file, key_node)))
            out[key] = _convert(file, value_node, loader)
            out.key_pos[key] = _pos(file, key_node)
            out.value_pos[key] = _pos(file, value_node)
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = Seq(_convert(file, item, loader) for item in node.value)
        seq.pos, seq.item_pos = _pos(file, node), [_pos(file, item) for item in node.value]
        return seq
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path | str) -> tuple[Any, Pos]:
    """Parse one YAML file into positioned values.

    Raises ``YamlSyntaxError`` (with the position of the problem) for bad UTF-8,
    characters YAML forbids, bad YAML syntax, or a file holding more than one
    document; ``OSError`` when the file cannot be read. Returns
    ``(value, pos_of_document)``; an empty file gives ``None``.
    """
    file = str(path)
    text = _decode(file, Path(path).read_bytes())
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks for forbidden characters already
        node = loader.get_single_node()
        if node is None:
            return None, Pos(file, 1, 1)
        return _convert(file, node, loader), _pos(file, node)
    except yaml.MarkedYAMLError as exc:
        raise YamlSyntaxError(_mark_pos(file, exc.problem_mark or exc.context_mark),
                              f"YAML syntax error: {_describe(exc)}")
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(_offset_pos(file, text, exc.position),
                              f"character #x{exc.character:04x} is not allowed in YAML")
    finally:
        if loader is not None:
            loader.dispose()


def _decode(file: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw[: exc.start].count(b"\n") + 1
        col = len(raw[start: exc.start].decode("utf-8", errors="replace")) + 1
        byte = raw[exc.start]
        raise YamlSyntaxError(Pos(file, line, col),
                              f"not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8")


def _mark_pos(file: str, mark: yaml.Mark | None) -> Pos:
    return Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file, 1, 1)


def _offset_pos(file: str, text: str, offset: int) -> Pos:
    line_start = text.rfind("\n", 0, offset) + 1
    return Pos(file, text.count("\n", 0, offset) + 1, offset - line_start + 1)


def _describe(exc: yaml.MarkedYAMLError) -> str:
    """``problem`` first, then what the parser was doing and where that started."""
    if not (exc.problem and exc.context):
        return exc.problem or exc.context or "unknown problem"
    mark = exc.context_mark
    context = exc.context + (f" at line {mark.line + 1}, col {mark.column + 1}" if mark else "")
    if exc.problem.startswith("but "):  # e.g. "expected a single document ..., but found another"
        return f"{context}, {exc.problem}"
    return f"{exc.problem} ({context})"
