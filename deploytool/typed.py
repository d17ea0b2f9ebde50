"""Typed records: small frozen classes, and the reading of untrusted data (the spec, the manifest, the shard
lock) into them, checked field by field, every problem named by its path in the data, all at once.

Why not pydantic: importing it, discovering its plugins and building a core schema per model took 60-80 ms
of every command, several times the interpreter's own start, for a spec of twenty fields. The data needs
little: plain JSON/YAML values, no coercion (a quoted port is an error, not a guess), unknown keys refused,
a few range and pattern rules, and checks across fields. `json_schema` and the spec reference are generated
from the same declarations.

Why not dataclasses: importing them pulls in `inspect` (with ast, dis, tokenize) and each class compiles
five or six generated methods, ~10 ms and ~0.35 ms a class, paid by every command for ~40 classes. A
record compiles only its `__init__`, on first use; equality, hashing, repr and immutability are shared.
"""

from __future__ import annotations

import contextlib
import enum
import re
import types
import typing
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, NamedTuple, TypeVar, Union, get_args, get_origin


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a field without a default
R = TypeVar("R", bound="Record")
Path = tuple[str | int, ...]


class Rule(NamedTuple):
    """Constraints of one value, placed in `Annotated[...]` or given to `field(...)`."""

    ge: int | None = None
    le: int | None = None
    pattern: str | None = None
    min_length: int | None = None
    check: Callable[[Any], Any] | None = None  # raises ValueError with the message to show

    def problems(self, value: Any) -> Iterator[tuple[str, str]]:
        """(kind, message) for each rule `value` breaks; kind "value" (bad value) or "pattern"."""
        if self.ge is not None and value < self.ge:
            yield "value", f"must be >= {self.ge}"
        if self.le is not None and value > self.le:
            yield "value", f"must be <= {self.le}"
        if self.pattern is not None and not _compiled(self.pattern).search(value):
            yield "pattern", f"does not match the pattern {self.pattern!r}"
        if self.min_length is not None and len(value) < self.min_length:
            yield "value", f"must have at least {self.min_length} item(s)"
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as exc:
                yield "value", str(exc)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class Problem(NamedTuple):
    path: Path  # the data's own keys and list indexes
    kind: str  # unknown, missing, type, value, pattern, key
    message: str
    value: Any = None  # what was there (absent for unknown and missing)


class Invalid(ValueError):
    """The data does not fit the record; `problems` lists every place, sorted by path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: tuple(map(str, p.path)))
        first = self.problems[0]
        super().__init__(f"{dotted(first.path) or '(top level)'}: {first.message}")


def dotted(path: Path) -> str:
    return ".".join(str(step) for step in path)


class _Declared(NamedTuple):
    """What `field(...)` puts in the class body until `@record` collects it."""

    default: Any
    factory: Callable[[], Any] | None
    key: str | None
    doc: str
    rule: Rule | None
    compare: bool = True


def field(
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    key: str | None = None,
    doc: str = "",
    ge: int | None = None,
    le: int | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    check: Callable[[Any], Any] | None = None,
    compare: bool = True,
) -> Any:
    """A record field: its default, its key in the data (when not its name), its documentation and rules;
    `compare=False` leaves it out of equality, hashing and repr (data that travels along, not a value)."""
    rule = Rule(ge, le, pattern, min_length, check)
    return _Declared(default, factory, key, doc, rule if rule != Rule() else None, compare)


class FieldInfo(NamedTuple):
    name: str  # attribute name
    key: str  # key in the data
    annotation: Any  # the annotation's text until `fields_of` resolves it
    rule: Rule | None
    doc: str
    default: Any  # MISSING when required
    factory: Callable[[], Any] | None

    @property
    def required(self) -> bool:
        return self.default is MISSING and self.factory is None

    def default_value(self) -> Any:
        return self.factory() if self.factory is not None else self.default


class FrozenError(AttributeError):
    pass


class Record:
    """Base of the records: immutable, equal when of one class with equal fields, hashable when the fields
    are. Declare one with `@record` (keyword arguments) or `@record(kw_only=False)`. Two optional hooks for
    data read with `parse`:

    - `_prepare(data)` (classmethod) adjusts the raw mapping first (defaults that depend on another key);
    - `_check(self)` raises ValueError when fields that are each valid do not fit together."""

    __fields__: tuple[FieldInfo, ...] = ()
    __names__: tuple[str, ...] = ()  # every field
    __compared__: tuple[str, ...] = ()  # the fields equality, hashing and repr look at
    __kw_only__ = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        cls.__init__ = _compile_init(cls)  # type: ignore[method-assign]
        cls.__init__(self, *args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenError(f"cannot assign to field {name!r} of a {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"cannot delete field {name!r} of a {type(self).__name__}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__compared__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__compared__)
        return f"{type(self).__name__}({inner})"

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def _check(self) -> None:
        return None


def _compile_init(cls: type[Record]) -> Callable[..., None]:
    """`cls.__init__`, written for its fields (a generic loop would cost every plan value a few µs)."""
    names = {"_set": object.__setattr__, "MISSING": MISSING}
    params, body = [], []
    for index, info in enumerate(cls.__fields__):
        if info.factory is not None:
            names[f"_factory{index}"] = info.factory
            params.append(f"{info.name}=MISSING")
            body.append(f"_set(self, {info.name!r}, _factory{index}() if {info.name} is MISSING else {info.name})")
            continue
        if info.default is MISSING:
            params.append(info.name)
        else:
            names[f"_default{index}"] = info.default
            params.append(f"{info.name}=_default{index}")
        body.append(f"_set(self, {info.name!r}, {info.name})")
    star = ["*"] if cls.__kw_only__ and params else []
    source = f"def __init__(self, {', '.join([*star, *params])}):\n    " + ("\n    ".join(body) or "pass")
    exec(source, names)  # field names come from the class statement: identifiers, never data
    init: Callable[..., None] = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


@typing.dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
def record(cls: type[R] | None = None, /, *, kw_only: bool = True) -> Any:
    """Make `cls` a record: its annotated class attributes, in order, are its fields."""

    def make(cls: type[R]) -> type[R]:
        infos = list(getattr(cls, "__fields__", ()))
        uncompared = set(getattr(cls, "__names__", ())) - set(getattr(cls, "__compared__", ()))
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - inspect is what records avoid importing
        for name, annotation in own.items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            declared = cls.__dict__.get(name, MISSING)
            if not isinstance(declared, _Declared):
                declared = _Declared(declared, None, None, "", None)
            if declared.default is MISSING:
                if name in cls.__dict__:
                    delattr(cls, name)  # a field() without a default leaves nothing on the class
            else:
                setattr(cls, name, declared.default)
            infos = [i for i in infos if i.name != name]
            if not declared.compare:
                uncompared.add(name)
            key = declared.key or name
            infos.append(
                FieldInfo(name, key, annotation, declared.rule, declared.doc, declared.default, declared.factory)
            )
        if not kw_only:
            required = [i.required for i in infos]
            if False in required and True in required[required.index(False) :]:
                raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")
        cls.__fields__ = tuple(infos)
        cls.__names__ = tuple(i.name for i in infos)
        cls.__compared__ = tuple(i.name for i in infos if i.name not in uncompared)
        cls.__kw_only__ = kw_only
        return cls

    return make if cls is None else make(cls)


def replace(value: R, **changes: Any) -> R:
    """A copy of the record `value` with some fields changed."""
    return type(value)(**{**{name: getattr(value, name) for name in value.__names__}, **changes})


_RESOLVED: dict[type, tuple[FieldInfo, ...]] = {}


def fields_of(cls: type[Record]) -> tuple[FieldInfo, ...]:
    """A record's fields with their types resolved, in declaration order (worked out once per class)."""
    known = _RESOLVED.get(cls)
    if known is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        known = _RESOLVED[cls] = tuple(info._replace(annotation=hints[info.name]) for info in cls.__fields__)
    return known


def is_record(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Record)


# ---- parsing -------------------------------------------------------------------------------------


def parse(cls: type[R], data: Any) -> R:
    """`data` (from JSON or YAML) as a `cls`; Invalid listing every problem."""
    problems: list[Problem] = []
    result = _convert(cls, data, (), problems)
    if problems:
        raise Invalid(problems)
    return result  # type: ignore[no-any-return]


_NONE = object()  # the conversion failed (a problem was recorded)


def _kind(value: Any) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _convert(annotation: Any, value: Any, path: Path, problems: list[Problem]) -> Any:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extras = get_args(annotation)
        result = _convert(inner, value, path, problems)
        if result is not _NONE:
            for rule in extras:
                if isinstance(rule, Rule) and _apply(rule, result, path, problems):
                    return _NONE
        return result
    if origin in (Union, types.UnionType):
        return _convert_union(get_args(annotation), value, path, problems)
    if origin is typing.Literal:
        allowed = get_args(annotation)
        if any(type(value) is type(a) and value == a for a in allowed):
            return value
        return _fail(problems, path, "value", f"expected {_one_of(allowed)}", value)
    if origin is list:
        if not isinstance(value, list):
            return _fail(problems, path, "type", f"expected a list, got {_kind(value)}", value)
        (item_type,) = get_args(annotation)
        items = [_convert(item_type, item, (*path, i), problems) for i, item in enumerate(value)]
        return _NONE if any(item is _NONE for item in items) else items
    if origin is dict:
        return _convert_dict(get_args(annotation), value, path, problems)
    if is_record(annotation):
        return _convert_record(annotation, value, path, problems)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return annotation(value)  # by value; also finds members added later (`Target.add`)
        choices = [m.value for m in annotation]
        return _fail(problems, path, "value", f"expected {_one_of(choices)}", value)
    if annotation is type(None):
        return None if value is None else _fail(problems, path, "type", f"expected null, got {_kind(value)}", value)
    if annotation in (str, int, bool):
        # exact types: YAML's `port: "5002"` is a string and `true` is no number
        if type(value) is annotation:
            return value
        return _fail(problems, path, "type", f"expected {_kind(annotation())}, got {_kind(value)}", value)
    raise TypeError(f"typed: unsupported annotation {annotation!r}")


def _apply(rule: Rule, value: Any, path: Path, problems: list[Problem]) -> bool:
    found = False
    for kind, message in rule.problems(value):
        problems.append(Problem(path, kind, message, value))
        found = True
    return found


def _fail(problems: list[Problem], path: Path, kind: str, message: str, value: Any) -> Any:
    problems.append(Problem(path, kind, message, value))
    return _NONE


def _one_of(values: Any) -> str:
    return "one of " + ", ".join(repr(v) for v in values)


def _shape_fits(annotation: Any, value: Any) -> bool:
    """Whether `value` is the kind of thing a union branch takes (so errors name only the branch meant)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _shape_fits(get_args(annotation)[0], value)
    if origin is list:
        return isinstance(value, list)
    if origin is dict or is_record(annotation):
        return isinstance(value, dict)
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return any(type(value) is type(a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return isinstance(value, str)
    return isinstance(annotation, type) and type(value) is annotation


def _shape_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _shape_name(get_args(annotation)[0])
    if origin is list:
        return "list"
    if origin is dict or is_record(annotation):
        return "mapping"
    if origin is typing.Literal:
        return " or ".join(dict.fromkeys(_kind(choice) for choice in get_args(annotation)))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "string"
    return "null" if annotation is type(None) else _kind(annotation())


def _convert_union(branches: tuple[Any, ...], value: Any, path: Path, problems: list[Problem]) -> Any:
    fitting = [b for b in branches if _shape_fits(b, value)]
    if not fitting:
        names = " or ".join(dict.fromkeys(_shape_name(b) for b in branches))
        return _fail(problems, path, "type", f"expected {names}, got {_kind(value)}", value)
    return _convert(fitting[0], value, path, problems)


def _convert_dict(args: tuple[Any, ...], value: Any, path: Path, problems: list[Problem]) -> Any:
    if not isinstance(value, dict):
        return _fail(problems, path, "type", f"expected a mapping, got {_kind(value)}", value)
    key_type, value_type = args
    out = {}
    failed = False
    for key, item in value.items():
        here = (*path, key if isinstance(key, (str, int)) else str(key))
        key_problems: list[Problem] = []
        converted_key = _convert(key_type, key, here, key_problems)
        for problem in key_problems:
            problems.append(Problem(here, "key", f"key {key!r}: {problem.message}", key))
        converted = _convert(value_type, item, here, problems)
        if converted_key is _NONE or converted is _NONE:
            failed = True
        else:
            out[converted_key] = converted
    return _NONE if failed else out


def _convert_record(cls: type[Record], value: Any, path: Path, problems: list[Problem]) -> Any:
    if not isinstance(value, dict):
        return _fail(problems, path, "type", f"expected a mapping, got {_kind(value)}", value)
    data = cls._prepare(value)
    infos = fields_of(cls)
    known = {info.key for info in infos}
    before = len(problems)
    for key in data:
        if key not in known:
            problems.append(Problem((*path, str(key)), "unknown", f"unknown key {str(key)!r}"))
    kwargs = {}
    for info in infos:
        here = (*path, info.key)
        if info.key not in data:
            if info.required:
                problems.append(Problem(here, "missing", "required field is missing"))
            continue
        converted = _convert(info.annotation, data[info.key], here, problems)
        checkable = converted is not _NONE and converted is not None  # null skips the rules of `X | None`
        if checkable and info.rule is not None and _apply(info.rule, converted, here, problems):
            converted = _NONE
        kwargs[info.name] = converted
    if len(problems) > before:
        return _NONE
    result = cls(**kwargs)
    try:
        result._check()
    except ValueError as exc:
        return _fail(problems, path, "value", str(exc), None)
    return result


# ---- writing back --------------------------------------------------------------------------------


_PLAIN = frozenset({str, int, bool, float, type(None)})


def dump(value: Any) -> Any:
    """Plain data of a record (by its keys, in declaration order), enums by value: ready for json.dumps."""
    if isinstance(value, Record):
        cls = type(value)
        keys = [info.key for info in cls.__fields__]
        items = [getattr(value, name) for name in cls.__names__]
        return {key: item if type(item) in _PLAIN else dump(item) for key, item in zip(keys, items, strict=True)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {dump(k): v if type(v) in _PLAIN else dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _PLAIN else dump(v) for v in value]
    return value


# ---- description: type names and JSON Schema -----------------------------------------------------


def type_name(annotation: Any) -> str:
    """A reader's name for a type: `integer`, `list of string`, `mapping string → X`."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        parts = [type_name(a) for a in get_args(annotation) if a is not type(None)]
        nullable = type(None) in get_args(annotation)
        return " or ".join(parts) + (" or null" if nullable else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in get_args(annotation))
    if origin is list:
        return f"list of {type_name(get_args(annotation)[0])}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping {type_name(key)} → {type_name(value)}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if is_record(annotation):
        return "mapping (below)"
    return {str: "string", int: "integer", bool: "boolean"}.get(annotation, getattr(annotation, "__name__", "?"))


def json_schema(cls: type[Record]) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a record: the top level inline, nested records under `$defs`."""
    defs: dict[str, Any] = {}
    top = _record_schema(cls, defs)
    defs.pop(cls.__name__, None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **top, **({"$defs": defs} if defs else {})}


def _record_schema(cls: type[Record], defs: dict[str, Any]) -> dict[str, Any]:
    properties = {}
    required = []
    for info in fields_of(cls):
        prop = _schema(info.annotation, defs)
        if info.rule is not None:
            prop = {**prop, **_rule_schema(info.rule)}
        if info.doc:
            prop["description"] = info.doc
        if info.required:
            required.append(info.key)
        else:
            prop["default"] = dump(info.default_value())
        properties[info.key] = prop
    schema: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": properties}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _rule_schema(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.ge is not None:
        out["minimum"] = rule.ge
    if rule.le is not None:
        out["maximum"] = rule.le
    if rule.pattern is not None:
        out["pattern"] = rule.pattern
    if rule.min_length is not None:
        out["minItems"] = rule.min_length
    return out


def _schema(annotation: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extras = get_args(annotation)
        schema = _schema(inner, defs)
        for rule in extras:
            if isinstance(rule, Rule):
                schema = {**schema, **_rule_schema(rule)}
        return schema
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema(a, defs) for a in get_args(annotation)]}
    if origin is typing.Literal:
        return {"enum": list(get_args(annotation))}
    if origin is list:
        return {"type": "array", "items": _schema(get_args(annotation)[0], defs)}
    if origin is dict:
        key, value = get_args(annotation)
        return {"type": "object", "propertyNames": _schema(key, defs), "additionalProperties": _schema(value, defs)}
    if is_record(annotation):
        if annotation.__name__ not in defs:
            defs[annotation.__name__] = {}  # recursion guard
            defs[annotation.__name__] = _record_schema(annotation, defs)
        return {"$ref": f"#/$defs/{annotation.__name__}"}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"type": "string", "enum": [m.value for m in annotation]}
    if annotation is type(None):
        return {"type": "null"}
    return {"type": {str: "string", int: "integer", bool: "boolean"}[annotation]}
