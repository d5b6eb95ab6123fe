"""Business placeholders: the pluggable resolver behind ``{{ biz.<name> }}`` in alert templates.

Placeholders are resolved in two phases:

1. **business** ones first. Before anything is rendered, the activity collects the ``biz.*`` names
   the group's templates use (by parsing them) and asks the configured :class:`BusinessResolver` for
   their values, given the run (:class:`BusinessContext`). What it answers becomes the ``biz``
   mapping of the template context.
2. then Porpoise's **own** ones: project, definition, instance, state, times, duration, failed tasks,
   nodes, log links, the Temporal UI link (see docs/alerts.md).

Business values are *data*, never template code: a value that contains ``{{ ... }}`` is printed as
it is, so a start parameter or a database row cannot inject a template. A name the resolver does not
know renders as ``[unknown: biz.name]`` at send time; at save time the resolver's :meth:`validate`
decides whether a name is an error (an open-ended resolver, such as the start-parameter one, accepts
any).

Plugging one in: a class or factory named ``module:attribute`` in ``PORPOISE_ALERT_RESOLVER`` (see
:func:`load_resolver`); a factory may take the :class:`~core.settings.Settings`. The default is
:class:`StartParamsResolver`. A resolver is trusted code running on the worker (and in the API for
previews); it is called with a time bound, and whatever it raises is logged and ends in the
``[unknown: ...]`` fallback, never in a failed alert.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from core.contracts import InstanceStatus
    from core.settings import Settings

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


@dataclass(frozen=True)
class BusinessContext:
    """What a resolver may look at: the run, its start parameters, the alert kind and task."""

    kind: str  # WORKFLOW_END | TASK_TIMEOUT | TASK_FAILURE
    status: InstanceStatus
    start_params: Mapping[str, str] = field(default_factory=dict)
    project_name: str = ""
    task_code: int | None = None

    @property
    def var_pool(self) -> dict[str, str]:
        """The run's OUT parameters so far (DS varPool), by name."""
        return {p.prop: "" if p.value is None else str(p.value) for p in self.status.var_pool}


@runtime_checkable
class BusinessResolver(Protocol):
    """Supplies ``biz.*`` values. Three methods; all must be thread-safe.

    * ``validate(names)``: at save time, the ``biz`` names a template uses; answer the bad ones with a
      reason (``{}``: all fine). Only names you *know* to be wrong: the run's data is not known yet.
    * ``sample(names)``: at save time and for previews without a run, a plausible value per name.
    * ``resolve(names, ctx)``: at send time (and for previews of a real run), the values. ``names``
      is the set the templates use, or ``None`` when a template uses ``biz`` dynamically (``biz[x]``,
      ``biz.items()``): then return what you are willing to show. Values are JSON data (strings,
      numbers, booleans, lists, mappings). Missing names render as ``[unknown: biz.name]``.
    """

    def validate(self, names: Set[str]) -> dict[str, str]: ...

    def sample(self, names: Set[str]) -> dict[str, Any]: ...

    def resolve(self, names: Set[str] | None, ctx: BusinessContext) -> Mapping[str, Any]: ...


class StartParamsResolver:
    """The example resolver: business values from the run's own parameters.

    ``biz.owner`` is the run's varPool value ``owner`` (an OUT parameter some task exported), else its
    start parameter ``owner`` (``startParams`` of the start command), else ``defaults["owner"]``.
    ``aliases`` maps a business name to a differently named parameter (``{"owner": "biz_owner"}``).

    With ``known`` set, only those names (plus aliases and defaults) are accepted at save time;
    without it any well-formed name is, since start parameters are only known when a run starts.
    Dynamic use of ``biz`` (``biz.items()``) shows the known names only, unless ``expose_all`` is set:
    start parameters may hold things that should not be mailed around.
    """

    def __init__(self, *, aliases: Mapping[str, str] | None = None, defaults: Mapping[str, str] | None = None,
                 known: Iterable[str] | None = None, use_var_pool: bool = True, expose_all: bool = False) -> None:
        self.aliases = dict(aliases or {})
        self.defaults = dict(defaults or {})
        self.known = None if known is None else set(known) | set(self.aliases) | set(self.defaults)
        self.use_var_pool = use_var_pool
        self.expose_all = expose_all

    def validate(self, names: Set[str]) -> dict[str, str]:
        bad: dict[str, str] = {}
        for name in sorted(names):
            if not NAME.match(name):
                bad[name] = f"'biz.{name}' is not a valid business placeholder name"
            elif self.known is not None and name not in self.known:
                bad[name] = (f"unknown business placeholder 'biz.{name}'; known: "
                             + (", ".join(f"biz.{k}" for k in sorted(self.known)) or "none"))
        return bad

    def sample(self, names: Set[str]) -> dict[str, Any]:
        return {n: self.defaults.get(n, f"<{n}>") for n in names}

    def resolve(self, names: Set[str] | None, ctx: BusinessContext) -> Mapping[str, Any]:
        pool = ctx.var_pool if self.use_var_pool else {}
        params = dict(ctx.start_params)
        if names is None:
            names = set(self.known) if self.known is not None else set(self.aliases) | set(self.defaults)
            if self.expose_all:
                names |= set(params) | set(pool)
        out: dict[str, Any] = {}
        for name in names:
            param = self.aliases.get(name, name)
            if param in pool:
                out[name] = pool[param]
            elif param in params:
                out[name] = params[param]
            elif name in self.defaults:
                out[name] = self.defaults[name]
        return out


class ChainResolver:
    """Several resolvers: the first that has a value wins; a name is bad only if every one rejects it."""

    def __init__(self, resolvers: Sequence[BusinessResolver]) -> None:
        self.resolvers = list(resolvers)

    def validate(self, names: Set[str]) -> dict[str, str]:
        verdicts = [r.validate(names) for r in self.resolvers]
        return {n: verdicts[0][n] for n in names if verdicts and all(n in v for v in verdicts)}

    def sample(self, names: Set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in reversed(self.resolvers):
            out.update(r.sample(names))
        return out

    def resolve(self, names: Set[str] | None, ctx: BusinessContext) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        for r in self.resolvers:
            for k, v in r.resolve(names, ctx).items():
                out.setdefault(k, v)
        return out


class ResolverConfigError(ValueError):
    pass


def load_resolver(spec: str | None, settings: Settings | None = None) -> BusinessResolver:
    """The resolver named ``module:attribute`` (an instance, a class or a factory that may take the
    settings); the default :class:`StartParamsResolver` when ``spec`` is empty."""
    if not spec or not spec.strip():
        return StartParamsResolver()
    module_name, _, attr = spec.strip().partition(":")
    if not module_name or not attr:
        raise ResolverConfigError(f"alert resolver {spec!r}: expected 'module:attribute'")
    try:
        obj: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ResolverConfigError(f"alert resolver {spec!r} cannot be loaded: {e}") from e
    if inspect.isclass(obj) or (callable(obj) and not isinstance(obj, BusinessResolver)):
        factory: Any = obj
        try:
            positional = [p for p in inspect.signature(factory).parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            takes_settings = bool(positional)
        except (TypeError, ValueError):
            takes_settings = False
        obj = factory(settings) if takes_settings else factory()
    if not isinstance(obj, BusinessResolver):
        raise ResolverConfigError(f"alert resolver {spec!r} has no validate/sample/resolve methods")
    return obj


def configured_resolver(settings: Settings) -> BusinessResolver:
    """The resolver named by ``PORPOISE_ALERT_RESOLVER`` (``alert_resolver``), else the default."""
    return load_resolver(settings.alert_resolver, settings)
