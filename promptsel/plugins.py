"""Plugin loading and the registries the plugins fill.

Bundled plugins (``promptsel_builtin.*``) and third-party ones are found the same way: through
the entry-point group ``promptsel``. A plugin that fails to import is reported as a warning and
skipped (``PROMPTSEL_STRICT_PLUGINS=1`` makes it an error, for plugin authors).

Environment switches:

* ``PROMPTSEL_LOAD_PLUGINS``: comma-separated entry-point or distribution names to load; only
  those load (the empty string loads none).
* ``PROMPTSEL_DISABLE_PLUGINS``: comma-separated names never to load.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import UsageError
from .registry import Entry, Registry

if TYPE_CHECKING:
    from .options import OptionGroup
    from .selector import Selector

GROUP = "promptsel"
SELF_DIST = "promptsel"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; promptsel goes on without it."""


@dataclass
class PluginInfo:
    name: str
    dist: str | None
    version: str | None
    module: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False


@dataclass
class Registries:
    backends: Registry[Any]
    selectors: Registry[Any]
    embedders: Registry[Any]
    datasets: Registry[Any]


_state: dict[str, Any] = {}


def _split_env(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _running_tests() -> bool:
    return bool(getattr(sys, "_called_from_test", False))


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created and loaded on first use."""
    if "pm" not in _state:
        pm = pluggy.PluginManager(GROUP)
        pm.add_hookspecs(hookspecs)
        _state["infos"] = _load_entrypoints(pm)
        _state["pm"] = pm
    return _state["pm"]


def plugin_infos() -> list[PluginInfo]:
    get_plugin_manager()
    return list(_state["infos"])


def _load_entrypoints(pm: pluggy.PluginManager) -> list[PluginInfo]:
    allow = _split_env("PROMPTSEL_LOAD_PLUGINS")
    deny = _split_env("PROMPTSEL_DISABLE_PLUGINS") or set()
    strict = os.environ.get("PROMPTSEL_STRICT_PLUGINS", "") not in ("", "0")
    infos: list[PluginInfo] = []
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else None
        # Under tests only our own bundled plugins load, never whatever is installed.
        if _running_tests() and dist != SELF_DIST and allow is None:
            continue
        names = {ep.name, dist or ""}
        if allow is not None and not names & allow:
            continue
        if names & deny or ep.name in seen:
            continue
        seen.add(ep.name)
        info = PluginInfo(
            name=ep.name,
            dist=dist,
            version=ep.dist.version if ep.dist is not None else None,
            module=ep.value,
            builtin=dist == SELF_DIST,
        )
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
            info.hooks = sorted(impl_names(pm, ep.name))
        except Exception as exc:
            if strict:
                raise UsageError(f"Plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
            info.error = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"promptsel plugin {ep.name!r} failed to load and is skipped: {info.error}",
                PluginLoadWarning,
                stacklevel=2,
            )
        infos.append(info)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if strict:
            raise UsageError(f"A plugin implements an unknown hook: {exc}") from exc
        warnings.warn(f"promptsel: {exc}", PluginLoadWarning, stacklevel=2)
    return infos


def impl_names(pm: pluggy.PluginManager, plugin_name: str) -> list[str]:
    plugin = pm.get_plugin(plugin_name)
    return [caller.name for caller in pm.get_hookcallers(plugin) or []]


def registries() -> Registries:
    """The backends, selectors, embedders and datasets of every loaded plugin."""
    if "registries" not in _state:
        pm = get_plugin_manager()
        regs = Registries(
            backends=Registry("backend"),
            selectors=Registry("method"),
            embedders=Registry("embedder"),
            datasets=Registry("dataset"),
        )
        _collect(pm, "register_backends", regs.backends, "backend_id")
        _collect(pm, "register_embedders", regs.embedders, "embedder_id")
        _collect(pm, "register_selectors", regs.selectors, "selector_id", embedders=regs.embedders)
        _collect(pm, "register_datasets", regs.datasets, "name")
        _state["registries"] = regs
    return _state["registries"]


def get_selector(name: str) -> type[Selector]:
    """The registered method class called ``name`` (an error that lists the names otherwise)."""
    return registries().selectors.get(name)


def option_groups() -> list[type[OptionGroup]]:
    """The option groups of every loaded plugin. Only their hook runs, not the others: the
    command line asks for them before ``--help`` returns."""
    if "groups" not in _state:
        groups: Registry[Any] = Registry("option group")
        _collect(get_plugin_manager(), "register_option_groups", groups, "group_id")
        _state["groups"] = _without_flag_clashes(groups)
    return [entry.target for entry in _state["groups"]]


def _without_flag_clashes(groups: Registry[Any]) -> list[Entry[type[OptionGroup]]]:
    """The groups whose flags are all new: a flag a core option or an earlier group already
    has would break every command (typer refuses two parameters of one name), so that group is
    left out with a warning, like a plugin that fails to load."""
    from .model.request import ScoringOptions, SelectRequest
    from .options import field_flags

    def spelled(cls: type) -> set[str]:
        return {name for spec in field_flags(cls) for name in (*spec.flag.names, spec.flag.param)}

    taken = spelled(SelectRequest) | spelled(ScoringOptions)
    kept = []
    for entry in groups:
        clash = sorted(spelled(entry.target) & taken)
        if clash:
            warnings.warn(f"promptsel: plugin {entry.plugin!r}: option group {entry.target.group_id!r} was left out: "
                          f"{', '.join(clash)} is already an option.", PluginLoadWarning, stacklevel=2)
            continue
        taken |= spelled(entry.target)
        kept.append(entry)
    return kept


def report_sections() -> dict[str, type[Selector]]:
    """Report section name -> the first registered method that adds it (``report_section``)."""
    out: dict[str, type[Selector]] = {}
    for entry in registries().selectors:
        name = getattr(entry.target, "report_section", None)
        if name:
            out.setdefault(name, entry.target)
    return out


def _collect(pm: pluggy.PluginManager, hook: str, registry: Registry[Any], id_attr: str, **extra: Any) -> None:
    # Each implementation gets its own callback so the registry knows which plugin added what.
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):

        def register(target: Any, aliases: tuple[str, ...] | list[str] = (), *, _plugin: str = impl.plugin_name) -> None:
            # Aliases may also be declared on the thing itself (a DatasetSpec's ``aliases``).
            declared = tuple(getattr(target, "aliases", ()) or ())
            registry.add(getattr(target, id_attr), target, plugin=_plugin, aliases=tuple(dict.fromkeys((*declared, *aliases))))

        kwargs = {"register": register, **extra}
        try:
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        except UsageError:
            raise
        except Exception as exc:  # a broken plugin costs its own entries, nothing else
            if os.environ.get("PROMPTSEL_STRICT_PLUGINS", "") not in ("", "0"):
                raise
            for info in _state.get("infos", []):
                if info.name == impl.plugin_name:
                    info.error = f"{hook}: {type(exc).__name__}: {exc}"
            warnings.warn(
                f"promptsel plugin {impl.plugin_name!r} failed in {hook}: {type(exc).__name__}: {exc}",
                PluginLoadWarning,
                stacklevel=2,
            )


def grammar_extensions() -> list[tuple[str, Any]]:
    """(plugin name, grammar table) of every ``register_prompt_grammar`` call, in registration
    order; a plugin that fails in the hook is a warning and adds nothing."""
    pm = get_plugin_manager()
    out: list[tuple[str, Any]] = []
    for impl in reversed(pm.hook.register_prompt_grammar.get_hookimpls()):
        tables: list[Any] = []
        try:
            impl.function(register=tables.append)
        except Exception as exc:
            if os.environ.get("PROMPTSEL_STRICT_PLUGINS", "") not in ("", "0"):
                raise
            warnings.warn(f"promptsel plugin {impl.plugin_name!r} failed in register_prompt_grammar: {type(exc).__name__}: {exc}",
                          PluginLoadWarning, stacklevel=2)
            continue
        out += [(impl.plugin_name, table) for table in tables]
    return out


def register_commands(cli: Any) -> None:
    pm = get_plugin_manager()
    pm.hook.register_commands(cli=cli)


def reset() -> None:
    """Forget the plugin manager and registries (tests use this between cases)."""
    _state.clear()


def add_plugin(plugin: object, name: str) -> None:
    """Register an in-process plugin (tests, notebooks) and rebuild the registries."""
    get_plugin_manager().register(plugin, name=name)
    _forget_registries()


def remove_plugin(name: str) -> None:
    get_plugin_manager().unregister(name=name)
    _forget_registries()


def _forget_registries() -> None:
    _state.pop("registries", None)
    _state.pop("groups", None)


#: ``promptsel list`` kinds -> the registry that holds them.
LIST_KINDS = ("methods", "backends", "datasets", "embedders")


def registry_rows(kind: str) -> list[tuple[str, tuple[str, ...], str]]:
    """(name, aliases, one-line detail) of everything registered of ``kind``."""
    regs = registries()
    reg = {"methods": regs.selectors, "backends": regs.backends, "datasets": regs.datasets, "embedders": regs.embedders}[kind]
    rows = []
    for entry in reg:
        target = entry.target
        if kind == "datasets":
            detail = f"{target.task}; classes {', '.join(target.classes)}; eval {target.eval_split}, train {target.train_split}"
        else:
            detail = getattr(target, "description", "") or ", ".join(sorted(getattr(target, "capabilities", ())))
        rows.append((entry.name, entry.aliases, detail))
    return rows


def plugin_rows(include_builtin: bool = True) -> list[dict[str, Any]]:
    """``promptsel plugins``: every loaded (or failed) plugin and what it registered."""
    regs = registries()
    provided: dict[str, list[str]] = {}
    option_groups()
    kinds = (("backend", regs.backends), ("method", regs.selectors), ("embedder", regs.embedders), ("dataset", regs.datasets),
             ("options", _state["groups"]))
    for kind, reg in kinds:
        for entry in reg:
            provided.setdefault(entry.plugin, []).append(f"{kind}:{entry.name}")
    return [
        {"name": i.name, "distribution": i.dist, "version": i.version, "module": i.module, "builtin": i.builtin,
         "hooks": i.hooks, "provides": provided.get(i.name, []), "error": i.error}
        for i in plugin_infos() if include_builtin or not i.builtin
    ]
