"""One options mechanism for everything a user configures with ``KEY=VALUE``: backends (``-M``),
methods (``-O``), embedders (``-E``), and the request with its scoring options and the option
groups of plugins.

A thing's options are a frozen dataclass deriving from :class:`Options`: the fields are the
option names, their annotations the types and their defaults the defaults. ``parse`` turns what
a user typed into an instance: strings from the command line are coerced to the field's type
(``bool``, ``int``, ``float``, ``str``, a ``Literal`` of choices, ``X | None``, ``tuple[str, ...]``
from a comma-separated list), and an unknown key is an error that lists the known ones.

``identity()`` is what goes into cache and embedding keys: every field, except those declared
with ``option(..., key=False)`` (settings that cannot change a number, such as a thread count).
Keys therefore follow the options object; a new field is in them without anyone remembering to
add it. A field added later with ``key="set"`` is in them only when it differs from its default,
so what was stored before it existed (embeddings that take minutes each) keeps its keys.

A field may also say how it is set on the command line, ``option(..., flag=Flag(...))``: its
flag names, help text and the commands that take it. ``promptsel.cli`` makes a typer option of
each, with the field's type (a ``Literal`` gives the choices), default and bounds, and the
environment variable ``PROMPTSEL_<NAME>``; :func:`from_flags` turns the parsed values back into
field values. So an option is declared once, here, for the library and the command line alike.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar

from .errors import UsageError

T = TypeVar("T", bound="Options")
#: Who is being parsed, for error messages (set by ``Options.parse`` around construction).
_OWNER = threading.local()


#: The environment variable of a flag is this prefix and the flag's name (``PROMPTSEL_LIMIT``).
ENV_PREFIX = "PROMPTSEL_"
#: The commands that take a flag unless it names its own.
MODEL_COMMANDS = ("select", "lock", "embed")


class Flag:
    """How an option is set on the command line.

    ``names``: the long name first, then any short one (``"--limit", "-n"``). The flag's type,
    default and bounds are the field's, unless ``type`` and ``default`` say otherwise for a flag
    whose value ``convert`` turns into the field's (repeated ``KEY=VALUE`` pairs into a dict). A
    flag left at its default sets nothing: the field keeps its own. ``model``: the flag says how
    the model runs or the data loads, which means nothing when the scores come from a file.
    """

    def __init__(self, *names: str, help: str, commands: tuple[str, ...] = MODEL_COMMANDS, env: str | None = None,
                 type: Any = None, default: Any = dataclasses.MISSING, convert: Callable[[Any], Any] | None = None,
                 model: bool = False) -> None:
        self.names, self.help, self.commands, self.model = names, help, commands, model
        self.type, self.default, self.convert = type, default, convert
        #: The typer parameter's name: the long name in snake case (``--max-chars``: ``max_chars``).
        self.param = names[0].lstrip("-").replace("-", "_")
        self.envvar = ENV_PREFIX + (env or self.param.upper())


class FieldFlag(NamedTuple):
    """A field's flag with what the command line needs of the field: its type, default, bounds."""

    field: str
    flag: Flag
    type: Any
    default: Any
    minimum: float | None
    maximum: float | None


def option(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, key: bool | str = True,
           minimum: float | None = None, maximum: float | None = None, flag: Flag | None = None) -> Any:
    """A field with metadata: ``key=False`` keeps it out of :meth:`Options.identity`,
    ``key="set"`` keeps it out while it has its default;
    ``minimum`` and ``maximum`` bound a number; ``flag`` sets it from the command line;
    ``factory`` makes a mutable default (a dict) per instance."""
    metadata = {"key": key, "minimum": minimum, "maximum": maximum, "flag": flag}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Options:
    """Base class of every options dataclass (subclasses add ``@dataclass(frozen=True)``)."""

    #: How errors name the owner, e.g. "method 'locale'" (``parse`` may say it for one call).
    owner: ClassVar[str] = ""

    @classmethod
    def parse(cls: type[T], given: Mapping[str, Any] | None = None, *, owner: str | None = None) -> T:
        """An instance from user input: unknown keys refused, values coerced and checked."""
        given = dict(given or {})
        owner = owner or cls.owner
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            raise UsageError(f"{owner or 'This'} has no option {', '.join(unknown)} (its options: {names}).")
        try:
            _OWNER.owner = owner
            return cls(**given)
        finally:
            _OWNER.owner = None

    def __post_init__(self) -> None:
        # Every instance is checked, also one built in code or from a hand-edited lock: a value
        # of the wrong type or out of bounds is refused, never scored.
        owner = getattr(_OWNER, "owner", None) or type(self).owner
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            what = f"{owner} option {f.name}".strip()
            value = coerce(getattr(self, f.name), hints[f.name], what)
            minimum, maximum = f.metadata.get("minimum"), f.metadata.get("maximum")
            if minimum is not None and value is not None and value < minimum:
                raise UsageError(f"{what} must be at least {_bound(minimum)}, got {value!r}.")
            if maximum is not None and value is not None and value > maximum:
                raise UsageError(f"{what} must be at most {_bound(maximum)}, got {value!r}.")
            object.__setattr__(self, f.name, value)

    def identity(self) -> dict[str, Any]:
        """The options that can change a number: part of cache and embedding keys."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("key", True) is True or (f.metadata.get("key") == "set" and getattr(self, f.name) != f.default)}

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def changed(self) -> dict[str, Any]:
        """Only the options that differ from their defaults (what a user set)."""
        default = type(self)()
        return {k: v for k, v in self.as_dict().items() if getattr(default, k) != v}


@dataclasses.dataclass(frozen=True)
class OptionGroup(Options):
    """Settings that a family of methods shares and a plugin registers with
    ``register_option_groups`` (FUTE's corpus, surrogate and training sizes): its fields'
    flags join those of the commands that build a request, the request carries the parsed group
    (``request.group(cls)``), and a lock records what differs from the defaults under
    ``group_id``."""

    group_id: ClassVar[str]

    def adjust(self, request: Any, given: frozenset[str]) -> Any:
        """The request as this group's settings leave it: a switch that sets other options (a
        compatibility preset) returns a changed copy. ``given`` names the options the user set,
        as ``scoring.spell_text``, so that those win over a preset. Default: unchanged."""
        return request


@dataclasses.dataclass(frozen=True)
class PassthroughOptions(Options):
    """Options handed on to another library (vLLM's engine arguments): keys a subclass does not
    declare are kept in ``extra`` as given instead of refused, and the library judges them. Only
    declared fields are in :meth:`identity`; declare the ones that change numbers."""

    extra: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"key": False})

    @classmethod
    def parse(cls: type[T], given: Mapping[str, Any] | None = None, *, owner: str | None = None) -> T:
        given = dict(given or {})
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        extra = {k: given.pop(k) for k in list(given) if k not in known}
        return super().parse({**given, "extra": extra}, owner=owner)  # type: ignore[misc]


def _bound(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"  # 4294967295, not 4.29497e+09


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_flags(cls: type[Options], command: str | None = None) -> list[FieldFlag]:
    """The fields of ``cls`` that have a flag (taken by ``command``, when given), in field order."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        flag = f.metadata.get("flag")
        if flag is None or (command is not None and command not in flag.commands):
            continue
        if flag.default is not dataclasses.MISSING:
            default = flag.default
        else:
            default = None if f.default is dataclasses.MISSING else f.default
        out.append(FieldFlag(f.name, flag, flag.type or hints[f.name], default, f.metadata.get("minimum"),
                             f.metadata.get("maximum")))
    return out


def from_flags(cls: type[Options], values: Mapping[str, Any]) -> dict[str, Any]:
    """The field values of ``cls`` that command-line ``values`` (by flag parameter name) set;
    a flag that is absent or left at its default sets nothing."""
    out = {}
    for spec in field_flags(cls):
        value = values.get(spec.flag.param, spec.default)
        if value != spec.default:
            out[spec.field] = spec.flag.convert(value) if spec.flag.convert else value
    return out


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def coerce(value: Any, kind: Any, what: str) -> Any:
    """``value`` as type ``kind`` (an annotation), or a :class:`UsageError` naming ``what``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        empty = value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null"))
        if empty and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, what)
            except UsageError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        raise UsageError(f"{what} must be one of {', '.join(map(str, args))}, got {value!r}.")
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise UsageError(f"{what} must be a comma-separated list, got {value!r}.")
        return tuple(coerce(v.strip() if isinstance(v, str) else v, args[0], what) for v in items if v != "")
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise UsageError(f"{what} must be true or false, got {value!r}.")
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise UsageError(f"{what} must be a number, got {value!r}.")
        try:
            number = kind(value.strip()) if isinstance(value, str) else value
            if kind is int and (isinstance(number, float) and not number.is_integer()):
                raise ValueError
            return kind(number)
        except ValueError:
            raise UsageError(f"{what} must be {'an integer' if kind is int else 'a number'}, got {value!r}.") from None
    if kind is str:
        if isinstance(value, (dict, list)):
            raise UsageError(f"{what} must be a text, got {value!r}.")
        return str(value)
    return value  # Any, dicts and other structured options: as given


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; anything without ``=`` is a usage error naming the flag."""
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}.")
        out[key.strip()] = value
    return out


def scoped_pairs(values: list[str] | None, flag: str, example: str) -> dict[str, dict[str, str]]:
    """``["ID.KEY=VALUE", ...]`` grouped by ID: ``{"locale": {"negate": "true"}}``."""
    out: dict[str, dict[str, str]] = {}
    for key, value in pairs(values, flag).items():
        owner, dot, name = key.partition(".")
        if not dot or not owner or not name:
            raise UsageError(f"{flag} expects ID.KEY=VALUE (e.g. {example}), got {key}={value}.")
        out.setdefault(owner, {})[name] = value
    return out
