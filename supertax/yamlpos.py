"""YAML loading that remembers where every value came from, within safe limits.

Validation messages must point at ``file:line:col`` so users can jump to the
problem. PyYAML's composer keeps marks on nodes; this module turns the node
tree into plain Python values (``Map`` / ``Seq`` / scalars) that carry their
1-based positions.

Taxonomy files come from users, so reading one is bounded in size, time and
memory. Each limit below is a module constant (the default) and a field of
``YamlLimits`` (to override it per call); crossing one raises ``YamlLimitError``
naming the file (and the position where there is one):

* ``MAX_YAML_BYTES`` (2 MiB): the file size, checked before reading; at most
  that many bytes (plus one) are ever read. Only regular files are read: a
  device, FIFO or socket given as a path (``/dev/zero``) is refused unread, as
  are symlink loops and broken symlinks.
* ``MAX_YAML_NODES`` (100,000): values in the document, every use of an alias
  counted with everything under its anchor. Stops "billion laughs" alias
  bombs; each anchored node is converted once and the result shared, so
  aliases never cost more than their bookkeeping.
* ``MAX_YAML_DEPTH`` (100): nesting of mappings and sequences, aliases
  expanded. Deep nesting would otherwise end in a ``RecursionError``.

An alias inside the node it refers to (``a: &a [*a]``, a recursive structure)
is refused with the alias's position. Errors are raised as ``YamlSyntaxError``
(bad syntax, encoding, unreadable file) or its subclass ``YamlLimitError``;
both derive from ``taxdet.core.errors.InputError``.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taxdet.core.errors import ConfigError, InputError

MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 100


@dataclass(frozen=True)
class YamlLimits:
    """Per-call limits; each defaults to the module constant of the same name at creation."""

    max_bytes: int = field(default_factory=lambda: MAX_YAML_BYTES)
    max_nodes: int = field(default_factory=lambda: MAX_YAML_NODES)
    max_depth: int = field(default_factory=lambda: MAX_YAML_DEPTH)

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_nodes", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"YamlLimits.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Pos:
    """A 1-based position in a file."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Map(dict[Any, Any]):
    """A YAML mapping: ``pos`` is its own position, ``key_pos[k]`` / ``value_pos[k]`` its entries'.

    A mapping reached through several aliases is one shared object: treat it as read-only.
    """

    pos: Pos
    key_pos: dict[Any, Pos]
    value_pos: dict[Any, Pos]
    duplicate_keys: list[tuple[Any, Pos]]

    def at(self, key: str) -> Pos:
        """Position of the value under ``key`` or, if absent, of the mapping itself."""
        return self.value_pos.get(key, self.pos)


class Seq(list[Any]):
    """A YAML sequence; ``item_pos[i]`` is the position of item ``i``."""

    pos: Pos
    item_pos: list[Pos]


class YamlSyntaxError(InputError):
    """A YAML file that does not parse or cannot be read; ``pos`` is where the problem is."""

    def __init__(self, pos: Pos, message: str):
        super().__init__(f"{pos}: {message}")
        self.pos = pos
        self.message = message


class YamlLimitError(YamlSyntaxError):
    """A YAML file over one of the limits (size, values, nesting) or with a recursive alias."""


def _pos(file: str, node: yaml.Node | yaml.Event) -> Pos:
    return Pos(file, node.start_mark.line + 1,  # type: ignore[union-attr]
               node.start_mark.column + 1)  # type: ignore[union-attr]


class _Loader(yaml.SafeLoader):
    """A ``SafeLoader`` whose composer counts nodes, caps nesting and refuses recursive aliases.

    Composing is recursive in PyYAML, so the depth check must happen here, before
    the Python stack runs out; aliases are not expanded here (they share one node).
    """

    def __init__(self, text: str, file: str, limits: YamlLimits):
        super().__init__(text)
        self.file, self.limits = file, limits
        self.depth, self.composed = 0, 0
        self.open_anchors: dict[str, Pos] = {}
        self.alias_pos: dict[tuple[int, int], Pos] = {}  # (id(parent), item) -> alias position

    def compose_node(self, parent: yaml.Node | None, index: int | yaml.Node | None
                     ) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.open_anchors:
                line = self.open_anchors[event.anchor].line
                raise YamlLimitError(_pos(self.file, event), f"alias *{event.anchor} is inside "
                                     f"the node it refers to (anchor &{event.anchor} at line "
                                     f"{line}): recursive YAML structures are not allowed")
            if parent is not None and index is not None:  # where the alias is, for errors
                self.alias_pos[id(parent), _index_key(index)] = _pos(self.file, event)
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        self.composed += 1
        if self.composed > self.limits.max_nodes:
            raise _too_many(_pos(self.file, event), self.limits)
        if self.depth >= self.limits.max_depth:
            raise _too_deep(_pos(self.file, event), self.limits)
        if event.anchor is not None:
            self.open_anchors[event.anchor] = _pos(self.file, event)
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self.depth -= 1
            self.open_anchors.pop(event.anchor, None)


def _index_key(index: int | yaml.Node) -> int:
    """A sequence item's index, or a mapping value's key node, as a hashable key."""
    return index if isinstance(index, int) else id(index)


def _too_many(pos: Pos, limits: YamlLimits) -> YamlLimitError:
    return YamlLimitError(pos, f"more than {limits.max_nodes} YAML values (each use of an alias "
                          "counts everything under its anchor; an alias bomb?); the limit is "
                          "MAX_YAML_NODES")


def _too_deep(pos: Pos, limits: YamlLimits) -> YamlLimitError:
    return YamlLimitError(pos, f"nested more than {limits.max_depth} levels deep (aliases "
                          "expanded); the limit is MAX_YAML_DEPTH")


class _Converter:
    """Node tree -> positioned values. Each node is converted once and the result shared.

    ``spent`` counts values with alias expansions (a shared node costs its whole
    size at every use); ``convert`` returns ``(value, size, height)``.
    """

    def __init__(self, file: str, loader: _Loader, limits: YamlLimits):
        self.file, self.loader, self.limits = file, loader, limits
        self.memo: dict[int, tuple[Any, int, int]] = {}
        self.spent = 0

    def spend(self, n: int, where: Pos) -> None:
        self.spent += n
        if self.spent > self.limits.max_nodes:
            raise _too_many(where, self.limits)

    def convert(self, node: yaml.Node, depth: int = 1,
                use: Pos | None = None) -> tuple[Any, int, int]:
        """``use``: where an alias to ``node`` stands (for errors), if it is one."""
        done = self.memo.get(id(node))
        if done is not None:
            where = use or _pos(self.file, node)
            self.spend(done[1], where)
            if depth + done[2] - 1 > self.limits.max_depth:
                raise _too_deep(where, self.limits)
            return done
        if depth > self.limits.max_depth:  # also ends any cycle the composer let through
            raise _too_deep(_pos(self.file, node), self.limits)
        self.spend(1, _pos(self.file, node))
        if isinstance(node, yaml.MappingNode):
            done = self.mapping(node, depth)
        elif isinstance(node, yaml.SequenceNode):
            done = self.sequence(node, depth)
        else:
            done = (self.scalar(node), 1, 1)
        self.memo[id(node)] = done
        return done

    def alias(self, parent: yaml.Node, index: int) -> Pos | None:
        return self.loader.alias_pos.get((id(parent), index))

    def mapping(self, node: yaml.MappingNode, depth: int) -> tuple[Map, int, int]:
        out = Map()
        out.pos, out.key_pos, out.value_pos, out.duplicate_keys = _pos(self.file, node), {}, {}, []
        size, height = 1, 1
        for key_node, value_node in node.value:
            key, key_size, key_height = self.convert(key_node, depth + 1)
            value, value_size, value_height = self.convert(value_node, depth + 1,
                                                           self.alias(node, id(key_node)))
            size += key_size + value_size
            height = max(height, 1 + key_height, 1 + value_height)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            if key in out:
                out.duplicate_keys.append((key, _pos(self.file, key_node)))
            out[key] = value
            out.key_pos[key] = _pos(self.file, key_node)
            out.value_pos[key] = _pos(self.file, value_node)
        return out, size, height

    def sequence(self, node: yaml.SequenceNode, depth: int) -> tuple[Seq, int, int]:
        seq, size, height = Seq(), 1, 1
        for i, item in enumerate(node.value):
            value, item_size, item_height = self.convert(item, depth + 1, self.alias(node, i))
            seq.append(value)
            size, height = size + item_size, max(height, 1 + item_height)
        seq.pos, seq.item_pos = _pos(self.file, node), [_pos(self.file, n) for n in node.value]
        return seq, size, height

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
            raise YamlSyntaxError(_pos(self.file, node), f"cannot read value: {exc}") from None


def load_yaml(path: Path | str, limits: YamlLimits | None = None) -> tuple[Any, Pos]:
    """Parse one YAML file into positioned values, within ``limits`` (default ``YamlLimits()``).

    Raises ``YamlSyntaxError`` (with the position of the problem) for bad UTF-8,
    characters YAML forbids, bad YAML syntax, a file holding more than one
    document, or a path that is not a readable regular file (at 1:1);
    ``YamlLimitError`` for a file over a limit or with a recursive alias; and
    ``IsADirectoryError`` for a folder. Returns ``(value, pos_of_document)``;
    an empty file gives ``None``.
    """
    file, limits = str(path), limits or YamlLimits()
    text = _decode(file, read_limited(path, limits.max_bytes))
    loader = None
    try:
        loader = _Loader(text, file, limits)  # checks for forbidden characters already
        node = loader.get_single_node()
        if node is None:
            return None, Pos(file, 1, 1)
        return _Converter(file, loader, limits).convert(node)[0], _pos(file, node)
    except yaml.MarkedYAMLError as exc:
        raise YamlSyntaxError(_mark_pos(file, exc.problem_mark or exc.context_mark),
                              f"YAML syntax error: {_describe(exc)}")
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(_offset_pos(file, text, exc.position),
                              f"character #x{exc.character:04x} is not allowed in YAML")
    finally:
        if loader is not None:
            loader.dispose()


def read_limited(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; never reads more than one byte past.

    Raises ``YamlLimitError`` for a bigger file, ``YamlSyntaxError`` for a path
    that is not a regular file (device, FIFO, socket), a symlink loop, a broken
    symlink or a file that cannot be opened, and ``IsADirectoryError`` for a folder.
    """
    where = Pos(str(path), 1, 1)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise YamlSyntaxError(where, _unreadable(path, exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise YamlSyntaxError(where, f"not a regular file ({_file_type(info.st_mode)}); "
                                     "only regular files are read")
    if info.st_size > max_bytes:
        raise YamlLimitError(where, _too_big(info.st_size, max_bytes))
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise YamlSyntaxError(where, _unreadable(path, exc)) from None
    if len(raw) > max_bytes:  # the file grew since stat
        raise YamlLimitError(where, _too_big(len(raw), max_bytes))
    return raw


def _too_big(size: int, max_bytes: int) -> str:
    return (f"file too large: {size} bytes or more, the limit is {max_bytes} bytes "
            "(MAX_YAML_BYTES)")


def _unreadable(path: Path | str, exc: OSError) -> str:
    if os.path.islink(path) and not os.path.exists(path):
        target = os.readlink(path)
        if exc.errno == errno.ELOOP:
            return f"symlink loop (-> {target}): cannot be read"
        return f"broken symlink (-> {target}): its target does not exist"
    return f"cannot read file: {exc.strerror or exc}"


def _file_type(mode: int) -> str:
    kinds = [(stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


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
