"""Read the spec files, deep-merge the overlay, validate, and name the place of every error."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from deploytool.errors import UserError
from deploytool.redact import is_secret_name
from deploytool.safeio import read_text
from deploytool.spec.model import ServiceKind, Spec

ENV_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

PathKey = tuple[str, ...]


@dataclass(frozen=True)
class Origin:
    file: str
    line: int  # 0: not a file line (a `--set` argument)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class LoadedSpec:
    spec: Spec
    env_name: str
    root: Path  # folder of deploytool.yaml: service sources and outputs are relative to it
    files: tuple[Path, ...]
    origins: dict[PathKey, Origin] = dataclass_field(default_factory=dict, compare=False, repr=False)
    # what was applied over the committed spec: the untracked local overlay and each `--set` (its key only)
    overrides: tuple[str, ...] = ()

    def locate(self, dotted: str) -> str:
        """`file:line` of a spec field (the overlay when it set the field), or the spec file."""
        origin = _nearest_origin(tuple(dotted.split(".")), self.origins)
        return origin.where if origin else display(self.files[0])


def environments_dir(spec_path: Path) -> Path:
    return spec_path.parent / "environments"


def available_environments(spec_path: Path) -> list[str]:
    folder = environments_dir(spec_path)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if ENV_NAME_PATTERN.match(p.stem))


def check_env_name(env_name: str) -> str:
    """UserError unless `env_name` is a plain environment name (it becomes part of file paths)."""
    if not ENV_NAME_PATTERN.match(env_name):
        raise UserError(f"environment name {env_name!r} is invalid (expected {ENV_NAME_PATTERN.pattern})")
    return env_name


def load_spec(spec_path: Path, env_name: str, sets: Sequence[str] = (), local: bool = True) -> LoadedSpec:
    """Load base spec + overlay for `env_name` (+ the local overlay unless `local` is false, + each
    `--set PATH=VALUE`); raise UserError naming file, field and line (or the `--set` argument)."""
    check_env_name(env_name)
    # the spec file is the one the caller named (or found): a link to it is theirs; overlays are never links
    base_text = _read_spec_file(spec_path, follow=True)
    if base_text is None:
        raise UserError(f"{display(spec_path)}: spec file not found (pass --spec PATH)")
    overlay_path = environments_dir(spec_path) / f"{env_name}.yaml"
    overlay_text = _read_spec_file(overlay_path)
    if overlay_text is None:
        known = ", ".join(available_environments(spec_path)) or "none"
        raise UserError(f"{display(overlay_path)}: no such environment {env_name!r} (known: {known})")

    base, base_origins = read_yaml(spec_path, base_text)
    overlay, overlay_origins = read_yaml(overlay_path, overlay_text)
    merged, origins = merge(base, base_origins, overlay, overlay_origins)
    merged, origins, overrides = apply_overrides(spec_path, env_name, merged, origins, sets, local)
    try:
        spec = Spec.model_validate(merged)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, merged, origins, display(spec_path))) from None
    _check_service_kinds(spec, origins, display(spec_path))
    local_path = local_overlay_path(spec_path, env_name)
    return LoadedSpec(
        spec=spec,
        env_name=env_name,
        root=spec_path.parent,
        files=(spec_path, overlay_path, *((local_path,) if display(local_path) in overrides else ())),
        origins=origins,
        overrides=overrides,
    )


# --- finding the spec, per-run overrides ----------------------------------------------------------

SPEC_FILE = "deploytool.yaml"
LOCAL_SUFFIX = ".local.yaml"  # environments/<env>.local.yaml: this checkout only, git-ignored


def find_spec(start: Path) -> Path | None:
    """The nearest `deploytool.yaml` in `start` or a folder above it (as git and Compose look), else None."""
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / SPEC_FILE
        if candidate.is_file():
            return candidate
    return None


def local_overlay_path(spec_path: Path, env_name: str) -> Path:
    return environments_dir(spec_path) / f"{env_name}{LOCAL_SUFFIX}"


def apply_overrides(
    spec_path: Path,
    env_name: str,
    merged: dict[str, Any],
    origins: dict[PathKey, Origin],
    sets: Sequence[str],
    local: bool = True,
) -> tuple[dict[str, Any], dict[PathKey, Origin], tuple[str, ...]]:
    """Merge the local overlay (if the file exists), then each `--set`, in order, over the merged spec.

    Both follow the overlay rules (mappings merge, a list or scalar replaces, `null` removes), and every
    field they set keeps its origin: `environments/dev.local.yaml:3`, or `--set services.web.port`."""
    applied: list[str] = []
    path = local_overlay_path(spec_path, env_name)
    local_text = _read_spec_file(path) if local else None
    if local_text is not None:
        data, data_origins = read_yaml(path, local_text)
        merged, origins = merge(merged, origins, data, data_origins)
        applied.append(display(path))
    for text in sets:
        data, data_origins = parse_set(text)
        merged, origins = merge(merged, origins, data, data_origins)
        applied.append(next(iter(data_origins.values())).file)
    return merged, origins, tuple(applied)


_SET_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def parse_set(text: str) -> tuple[dict[str, Any], dict[PathKey, Origin]]:
    """`services.web.port=5202` -> ({services: {web: {port: 5202}}}, origins naming `--set services.web.port`).

    The value is YAML (`5202` is a number, `'5202'` a string, `[1, 2]` a list, `null` removes the key), read
    by the spec's own loader. Origins name the key, never the value: it may be a secret."""
    key, sep, value_text = text.partition("=")
    key = key.strip()
    if not sep or not _SET_KEY.match(key):
        shown = key if key.isprintable() and len(key) <= 80 else repr(key[:80])
        raise UserError(
            f"--set {shown}: expected PATH=VALUE, a dotted path of spec keys and a YAML value "
            "(e.g. --set services.web.port=5202)"
        )
    name = f"--set {key}"
    try:  # as read_yaml reads a file: depth, recursion, alias expansion and integers are bounded here too
        _check_depth(value_text, name)
        loader = _SpecLoader(value_text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, name, lines=False)
            value = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except _IntegerTooLong as exc:
        raise UserError(
            f"{name}: an integer of {exc.length:,} characters; a spec's numbers have at most {MAX_INT_CHARS}"
        ) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not a YAML value"
        raise UserError(f"{name}: invalid YAML value: {problem}") from None
    path = tuple(key.split("."))
    data: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        data = {part: data}
    origin = Origin(name, 0)
    origins = {path[:cut]: origin for cut in range(len(path) + 1)}
    stack: list[tuple[Any, PathKey]] = [(value, path)]
    while stack:  # every key inside a mapping or list value names the same argument
        node, at = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for child_key, child in children:
            origins[at + (str(child_key),)] = origin
            stack.append((child, at + (str(child_key),)))
    return data, origins


def _check_service_kinds(spec: Spec, origins: dict[PathKey, Origin], base_name: str) -> None:
    """Exactly one web app and one WhatsApp server, pointing at the file and line that broke the rule."""
    for kind, hint in (
        (ServiceKind.flask, "another process of the app's image is `kind: worker`"),
        (ServiceKind.whatsapp, "tenants share or shard one WhatsApp server through `topology`"),
    ):
        names = [name for name, svc in spec.services.items() if svc.kind is kind]
        if len(names) == 1:
            continue
        # the one an overlay added, if any, else the last one; none at all: the `services` key
        placed = [(origins.get(("services", n)), n) for n in names]
        overlay = [(o, n) for o, n in placed if o is not None and o.file != base_name]
        origin, name = (overlay or placed or [(origins.get(("services",)), "")])[-1]
        where = origin.where if origin else base_name
        field = f"services.{name}" if name else "services"
        found = ", ".join(names) or "none"
        raise UserError(
            f"{where}: {field}: exactly one service of kind '{kind.value}' is allowed and required, found {found} "
            f"({hint})"
        )


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- YAML with positions -------------------------------------------------------------------------


# Aliases may repeat a subtree; past this many extra nodes (after expansion) a spec is an alias bomb
# (9 levels x 9 aliases is 387 million nodes from a 1 kB file). Plain specs of any size are unaffected.
MAX_ALIAS_EXPANSION = 100_000
# A spec of 100,000 tenants written one per line is a few MB (a 50 MB one still loads); larger is not a spec.
MAX_SPEC_BYTES = 128 * 1024 * 1024
# Nesting deeper than this is never a spec, and the YAML composer and the merge are recursive.
MAX_DEPTH = 64


def _read_spec_file(path: Path, follow: bool = False) -> str | None:
    """The text of a spec file or overlay, None when there is none; a link (unless `follow`), a FIFO, a folder
    or a file too large for a spec is a UserError naming the file, never a hang."""
    return read_text(Path(display(path)), "reads the spec", follow=follow, limit=MAX_SPEC_BYTES)


def read_yaml(path: Path, text: str | None = None) -> tuple[dict[str, Any], dict[PathKey, Origin]]:
    name = display(path)
    if text is None:
        text = _read_spec_file(path)
        if text is None:
            raise UserError(f"{name}: not found")
    try:
        _check_depth(text, name)
        loader = _SpecLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, name)
                _check_duplicate_keys(node, name)  # before construction flattens merge keys (`<<`) in place
            data = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
    except _IntegerTooLong as exc:
        raise UserError(
            f"{name}:{exc.line}: an integer of {exc.length:,} characters; a spec's numbers have at most "
            f"{MAX_INT_CHARS} (tenant ids, ports, counts)"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{name}{where}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{name}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{name}:1: the top level must be a mapping of keys, not {type(data).__name__}")
    origins: dict[PathKey, Origin] = {}
    if node is not None:
        _record_positions(node, name, origins)
    return data, origins


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a 50 MB spec loads in seconds

# No number in a spec needs more (a tenant id has at most 64 characters); Python refuses to print an int of
# more than 4,300 digits, and converting one costs quadratic time.
MAX_INT_CHARS = 100
MERGE_TAG = "tag:yaml.org,2002:merge"


class _IntegerTooLong(Exception):
    def __init__(self, line: int, length: int) -> None:
        super().__init__(line, length)
        self.line = line
        self.length = length


class _SpecLoader(_Loader):  # type: ignore[misc]
    """The safe loader, refusing integers too long for anything a spec holds before converting them."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Merge keys as YAML defines them: the mapping's own keys win, then the merged mappings in the order
        written (`<<: [*a, *b]`: a key in both comes from a). PyYAML 6.0.4 dedups the merged keys by the
        identity of their text, so a key of more than one character came from the last mapping instead."""
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        seen: set[object] = set()
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                if key_node.tag == "tag:yaml.org,2002:value":
                    key_node.tag = "tag:yaml.org,2002:str"
                own.append((key_node, value_node))
                continue
            if isinstance(value_node, yaml.MappingNode):
                sources = [value_node]
            elif isinstance(value_node, yaml.SequenceNode):
                sources = list(value_node.value)
            else:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"expected a mapping or list of mappings for merging, but found {value_node.id}",
                    value_node.start_mark,
                )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping for merging, but found {source.id}",
                        source.start_mark,
                    )
                self.flatten_mapping(source)
                for pair in source.value:
                    key = _merge_key(pair[0])
                    if key not in seen:
                        seen.add(key)
                        merged.append(pair)
        if merged:
            # the merged pairs first: the mapping is built in order, so its own keys (later) override them
            node.value = merged + own

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_CHARS:
            raise _IntegerTooLong(node.start_mark.line + 1, len(node.value))
        value: int = super().construct_yaml_int(node)
        return value


_SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoader.construct_yaml_int)


def _merge_key(node: yaml.Node) -> object:
    """What makes two merged keys the same key: a scalar's tag and text (`1` and `"1"` differ), else the node."""
    return (node.tag, node.value) if isinstance(node, yaml.ScalarNode) else id(node)


def _check_depth(text: str, name: str) -> None:
    """Refuse nesting past MAX_DEPTH from the event stream (iterative), before anything recursive runs."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise UserError(f"{name}:{line}: nested more than {MAX_DEPTH} levels deep; a spec never is")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_expansion(root: yaml.Node, name: str, lines: bool = True) -> None:
    """Refuse a document whose aliases refer to a node that contains them (`x: &a [*a]`: infinite once expanded,
    and every walk over it would never end) or expand to more than MAX_ALIAS_EXPANSION extra nodes."""

    def where(node: yaml.Node) -> str:
        return f"{name}:{node.start_mark.line + 1}" if lines else name

    sizes: dict[int, int] = {}  # expanded size of each distinct node, computed once (post-order, no recursion)
    open_nodes: set[int] = set()  # on the current path from the root: an alias to one of them is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if id(node) in sizes:
            continue
        children = _children(node)
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise UserError(
                    f"{where(node)}: an alias refers to the anchored value that contains it (recursive, e.g. "
                    "`x: &a [*a]`); a spec value is never infinite: write it out"
                )
            if id(child) not in sizes:
                stack.append((child, False))
    extra = sizes[id(root)] - len(sizes)
    if extra > MAX_ALIAS_EXPANSION:
        raise UserError(
            f"{where(root)}: aliases expand this file by {extra:,} nodes "
            f"(at most {MAX_ALIAS_EXPANSION:,}); write the values out or use fewer anchors"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_duplicate_keys(root: yaml.Node, name: str) -> None:
    """A key written twice in one mapping is an error (PyYAML would keep the last one silently). Keys a merge
    (`<<: *base`) brings in are not written there: a key after the merge overrides them, as YAML says."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    stack.append((value_node, path))
                    continue
                key = str(key_node.value)
                if key in keys:
                    raise UserError(f"{name}:{key_node.start_mark.line + 1}: {_dotted(path + (key,))}: duplicate key")
                keys.add(key)
                stack.append((value_node, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + (str(index),)) for index, item in enumerate(node.value))


def _record_positions(root: yaml.Node, name: str, out: dict[PathKey, Origin]) -> None:
    """Where each path was written, from the constructed tree (merge keys flattened: the key that won)."""
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        out[path] = Origin(name, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            effective: dict[str, tuple[yaml.Node, yaml.Node]] = {}
            for key_node, value_node in node.value:
                effective[str(key_node.value)] = (key_node, value_node)  # the last one wins, as in the data
            for key, (key_node, value_node) in effective.items():
                stack.append((value_node, path + (key,)))
                out.setdefault(path + (key,), Origin(name, key_node.start_mark.line + 1))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append((item, path + (str(index),)))


# --- overlay merge -------------------------------------------------------------------------------


def merge(
    base: dict[str, Any],
    base_origins: dict[PathKey, Origin],
    overlay: dict[str, Any],
    overlay_origins: dict[PathKey, Origin],
) -> tuple[dict[str, Any], dict[PathKey, Origin]]:
    """Deep-merge mappings; a list or scalar in the overlay replaces; `null` removes the key."""
    origins = dict(base_origins)
    merged = _merge_into(dict(base), overlay, (), origins, overlay_origins)
    return merged, origins


def _merge_into(
    base: dict[str, Any],
    overlay: dict[str, Any],
    path: PathKey,
    origins: dict[PathKey, Origin],
    overlay_origins: dict[PathKey, Origin],
) -> dict[str, Any]:
    for key, value in overlay.items():
        here = path + (str(key),)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge_into(dict(base[key]), value, here, origins, overlay_origins)
            continue
        for stale in [p for p in origins if p[: len(here)] == here]:
            del origins[stale]
        if value is None:
            base.pop(key, None)
            continue
        base[key] = value
        origins.update({p: o for p, o in overlay_origins.items() if p[: len(here)] == here})
    return base


# --- readable validation errors ------------------------------------------------------------------


def describe_validation_error(
    exc: ValidationError, data: dict[str, Any], origins: dict[PathKey, Origin], base_name: str
) -> str:
    lines: dict[str, tuple[Any, ...]] = {}
    for error in exc.errors(include_url=False):
        path = _real_path(data, error["loc"])
        origin = _nearest_origin(path, origins)
        where = origin.where if origin else base_name
        field = _dotted(path) or "(top level)"
        # in file order, then by path with list indexes as numbers (services.x.10 after services.x.2)
        order = (origin.file, origin.line) if origin else (base_name, 0)
        steps = tuple((0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p) for p in path)
        lines[f"{where}: {field}: {_explain(error, path)}"] = (*order, steps)
    return "\n".join(sorted(lines, key=lambda line: (lines[line], line)))


def _real_path(data: Any, loc: tuple[int | str, ...]) -> PathKey:
    """pydantic's loc also names union branches and key markers: keep only steps that exist in data."""
    path: list[str] = []
    current = data
    for step in loc:
        in_dict = isinstance(current, dict) and step in current
        in_list = isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current)
        if in_dict or in_list:
            path.append(str(step))
            current = current[step]
        elif (
            isinstance(current, dict) and step not in ("[key]",) and isinstance(step, str) and not _is_branch_tag(step)
        ):
            path.append(step)  # a missing required key: name it
            current = None
    return tuple(path)


def _is_branch_tag(step: str) -> bool:
    return step in ("list", "range") or "[" in step


def _nearest_origin(path: PathKey, origins: dict[PathKey, Origin]) -> Origin | None:
    for cut in range(len(path), -1, -1):
        origin = origins.get(path[:cut])
        if origin is not None:
            return origin
    return None


def _dotted(path: PathKey) -> str:
    # keys come from the user's file: a newline or control character in one must not forge output lines
    return ".".join(part if part.isprintable() else repr(part) for part in path)


def _explain(error: Any, path: PathKey) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1])
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {path[-1]!r}{hint}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    got = error.get("input")
    containers = ("model_type", "dict_type", "list_type")
    if kind not in containers and _may_hold_a_secret(path):
        pass  # never echo what was written where a secret may sit (a value under `env`, a *_KEY field)
    elif kind not in containers and isinstance(got, (str, int, float, bool)):
        text = repr(got)
        message += f" (got {text[:60]}{'…' if len(text) > 60 else ''})"
    elif kind in ("model_type", "dict_type", "list_type"):
        message += f" (got {type(got).__name__})"
    return message


def _may_hold_a_secret(path: PathKey) -> bool:
    return "env" in path or "public_urls" in path or any(is_secret_name(part.upper()) for part in path)


def _allowed_keys(path: PathKey) -> list[str]:
    """Field names of the model that sits at `path`, for 'unknown key' hints."""
    model: Any = Spec
    steps = list(path)
    while steps:
        step = steps.pop(0)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(step)
        if field is None:
            return []
        model = _unwrap(field.annotation)
        if get_origin(model) is dict and steps:
            steps.pop(0)  # the dict key (e.g. a service name)
            model = _unwrap(get_args(model)[1])
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(f.alias or name for name, f in model.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    for arg in _walk_annotation(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        if get_origin(arg) is dict:
            return arg
    return annotation


def _walk_annotation(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in get_args(annotation):
        yield from _walk_annotation(arg)
