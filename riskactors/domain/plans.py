"""Plans (rule packs) as versioned data: an id, numbered versions, a draft → active → superseded lifecycle.

A plan version is a JSON document::

    {"id": "two_step_phase1", "name": "Two-step evaluation, phase 1", "description": "...",
     "source": "FTMO Trading Objectives ...",
     "rules": {"daily_loss_limit_fraction": 0.05, "max_loss_mode": "static", ...}}

``rules`` holds :class:`~riskactors.domain.limits.Limits` fields (amounts in account currency,
enums as their strings, ``null`` switches an optional rule off; an absent field takes the
``Limits`` default) and the fraction-of-initial-balance fields of
:data:`~riskactors.domain.limits.FRACTION_FIELDS`, turned into amounts when an account binds
(:meth:`PlanRegistry.resolve`). The rules are kept exactly as written.

Lifecycle: :meth:`PlanRegistry.create` adds a new **draft** version (1 for a new id, otherwise
latest + 1); :meth:`PlanRegistry.activate` makes a draft **active** and the previously active
version **superseded**. Only an active version can be bound (:meth:`PlanRegistry.bindable`).
An account keeps the version it was bound to when a newer one is activated; moving it is an
explicit rebind, recorded by the caller. Superseded versions are kept (accounts bound to them
still resolve, and the list of versions is the plan's history).

The shipped presets (``riskactors/data/plans.json``) load as active version 1 of each id.

Errors::

    DomainError (riskactors.domain.errors)
    ├── PlanNotFound   plan id or version unknown                    (HTTP 404)
    └── PlanConflict   lifecycle step not allowed in the plan's state  (HTTP 409)
    LimitsError (riskactors.domain.limits)
                       invalid plan document; ``field`` is a dotted path
                       such as ``id`` or ``rules.max_loss_limit_fraction``   (HTTP 422)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from .codes import PlanStatus
from .errors import PlanConflict, PlanNotFound
from .instruments import package_data
from .limits import FRACTION_FIELDS, LIMIT_FIELD_TYPES, LIMIT_FIELDS, Limits, LimitsError

__all__ = [
    "PLAN_ID_PATTERN",
    "PlanConflict",
    "PlanNotFound",
    "PlanRegistry",
    "PlanVersion",
    "default_plan_registry",
]

#: Allowed plan ids: 1–64 characters of letters, digits, ``_``, ``.`` and ``-``.
PLAN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

#: Top-level keys of a plan document.
_DOCUMENT_KEYS = ("id", "name", "description", "source", "rules")
#: Keys of a plan in the legacy file shape ``{"plans": {name: {"description", "limits"}}}``.
_LEGACY_KEYS = ("description", "limits")
#: Fraction field that is a level relative to the initial balance (may exceed 1).
_LEVEL_FRACTION = "max_loss_lock_fraction"
#: Initial balance (account currency) at which a plan's rules are validated when created.
_VALIDATION_BALANCE = 100_000.0
#: Longest name / description / source accepted, in characters.
_MAX_TEXT = {"name": 128, "description": 2000, "source": 2000}

_FIELD_TYPES = LIMIT_FIELD_TYPES
#: Limits fields that may be ``null`` (the rule is off).
_OPTIONAL_FIELDS = frozenset(name for name, t in _FIELD_TYPES.items() if "None" in t)
#: Limits fields holding plain strings (checked before ``Limits`` parses them).
_STRING_FIELDS = frozenset(name for name, t in _FIELD_TYPES.items() if t in ("str", "str | None"))
_AMOUNT_TO_FRACTION = {amount: frac for frac, amount in FRACTION_FIELDS.items()}


@dataclass(frozen=True)
class PlanVersion:
    """One version of a plan.

    Attributes
    ----------
    plan_id : str
        Plan id (matches :data:`PLAN_ID_PATTERN`).
    version : int
        Version number, ≥ 1, increasing by one per :meth:`PlanRegistry.create`.
    status : PlanStatus
        ``draft``, ``active`` or ``superseded``; at most one version per plan is active.
    name, description, source : str
        Display name; what the plan models; the firm rule or seed definition it follows.
    rules : dict
        The rules as written (``Limits`` fields and ``*_fraction`` fields). Treat as read-only.
    created_at : float
        Epoch seconds the version was created.
    activated_at, superseded_at : float or None
        Epoch seconds of the status changes; ``None`` until they happen.
    """

    plan_id: str
    version: int
    status: PlanStatus
    name: str
    description: str
    source: str
    rules: dict[str, Any]
    created_at: float
    activated_at: float | None = None
    superseded_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (status as a string, rules copied): ``plan_id, version, status, name,
        description, source, rules, created_at, activated_at, superseded_at``."""
        return {"plan_id": self.plan_id, "version": self.version, "status": str(self.status),
                "name": self.name, "description": self.description, "source": self.source,
                "rules": dict(self.rules), "created_at": self.created_at,
                "activated_at": self.activated_at, "superseded_at": self.superseded_at}


class PlanRegistry:
    """Every version of every plan, with their lifecycle; resolves a bound version to :class:`Limits`.

    Not thread-safe: one owner (the supervisor) changes it. Starts empty; see :meth:`from_json`
    and :meth:`from_documents` to load presets.
    """

    def __init__(self) -> None:
        self._versions: dict[str, list[PlanVersion]] = {}
        self._read_only = False

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_json(cls, path: str | Path, now: float = 0.0) -> PlanRegistry:
        """Load a plans file (``{"plans": [document, ...]}``), each plan as active version 1.

        The legacy shape ``{"plans": {name: {"description": str, "limits": {...}}}}`` is also read.

        Parameters
        ----------
        path : str or Path
            JSON file, UTF-8.
        now : float
            Epoch seconds recorded as the versions' creation and activation time.

        Raises
        ------
        LimitsError
            The file's shape or a plan is invalid (field named; the message names the plan).
        OSError, json.JSONDecodeError
            The file cannot be read or is not JSON.
        """
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict) or "plans" not in data:
            raise LimitsError("plans", "a plans file is a JSON object with a \"plans\" list")
        extra = sorted(set(data) - {"plans"})
        if extra:
            raise LimitsError(extra[0], f"unknown key(s) in the plans file: {', '.join(extra)}")
        return cls.from_documents(data["plans"], now)

    @classmethod
    def from_documents(cls, docs: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                       now: float) -> PlanRegistry:
        """A registry holding ``docs``, each created and activated as version 1 at ``now``.

        Parameters
        ----------
        docs : iterable of mapping, or mapping
            Plan documents (see :meth:`create`), or the legacy mapping
            ``{name: {"description": str, "limits": {...}}}``.
        now : float
            Epoch seconds.

        Raises
        ------
        LimitsError
            A document is invalid, or two share an id (field named; the message names the plan).
        """
        registry = cls()
        if isinstance(docs, Mapping):
            docs = [_from_legacy(name, spec) for name, spec in docs.items()]
        elif isinstance(docs, (str, bytes)) or not isinstance(docs, Iterable):
            raise LimitsError("plans", f"must be a list of plan documents, got {type(docs).__name__}")
        for i, doc in enumerate(docs):
            label = f"plan #{i}"
            if isinstance(doc, Mapping) and isinstance(doc.get("id"), str):
                label += f" ({doc['id']!r})"
                if doc["id"] in registry._versions:
                    raise LimitsError("id", f"{label}: duplicate plan id")
            try:
                created = registry.create(doc, now)
            except LimitsError as exc:
                raise LimitsError(exc.field, f"{label}: {exc.message}") from None
            registry.activate(created.plan_id, created.version, now=now)
        return registry

    # -- lifecycle -------------------------------------------------------------------------

    def create(self, doc: Mapping[str, Any], now: float) -> PlanVersion:
        """Add a new draft version of plan ``doc["id"]`` (version 1 of a new id, else latest + 1).

        Parameters
        ----------
        doc : mapping
            ``{"id": str, "name"?: str, "description"?: str, "source"?: str, "rules": {...}}``.
            ``name``, ``description`` and ``source`` default to the latest version's (for a
            new id: the id, ``""``, ``""``). ``rules`` keys are :class:`Limits` fields or
            :data:`FRACTION_FIELDS` keys. A fraction is in (0, 1] of the initial balance,
            except ``max_loss_lock_fraction``, a level relative to the initial balance
            (1.0 = the starting balance; any finite value > 0). A fraction and the amount it
            resolves to cannot both be given.
        now : float
            Epoch seconds (``created_at``).

        Returns
        -------
        PlanVersion
            The new draft. It is not bindable until :meth:`activate`.

        Raises
        ------
        LimitsError
            Invalid document: ``field`` is the offending key, dotted for rules
            (``rules.max_loss_limit_fraction``); every value is checked by building the
            ``Limits`` of an account of 100,000.
        RuntimeError
            The registry is read-only (:meth:`freeze`, e.g. :func:`default_plan_registry`).
        """
        self._check_writable()
        plan_id, texts, rules = _parse_document(doc)
        history = self._versions.get(plan_id, [])
        latest = history[-1] if history else None
        defaults = {"name": latest.name if latest else plan_id,
                    "description": latest.description if latest else "",
                    "source": latest.source if latest else ""}
        texts = {key: defaults[key] if texts.get(key) is None else texts[key] for key in defaults}
        created = PlanVersion(plan_id, latest.version + 1 if latest else 1, PlanStatus.DRAFT,
                              texts["name"], texts["description"], texts["source"], rules, float(now))
        self._versions.setdefault(plan_id, []).append(created)
        return created

    def activate(self, plan_id: str, version: int | None = None, *, now: float) -> PlanVersion:
        """Make a draft version the active one; the previously active version is superseded.

        Parameters
        ----------
        plan_id : str
            Plan id.
        version : int or None
            Version to activate; ``None``: the latest draft.
        now : float
            Epoch seconds (``activated_at``, and the old version's ``superseded_at``).

        Returns
        -------
        PlanVersion
            The active version. Activating the version that is already active changes nothing
            and returns it (idempotent).

        Raises
        ------
        PlanNotFound
            Unknown plan id or version.
        PlanConflict
            The version is superseded; no draft to activate; or the draft is older than the
            active version (create a new version instead, so the history stays linear).
        LimitsError
            ``version`` is not an integer ≥ 1.
        RuntimeError
            The registry is read-only (:meth:`freeze`).
        """
        self._check_writable()
        history = self._history(plan_id)
        current = self._active_in(history)
        if version is None:
            drafts = [v for v in history if v.status is PlanStatus.DRAFT]
            if not drafts:
                state = f"version {current.version} is active" if current else "no version is active"
                raise PlanConflict(plan_id, f"no draft version to activate ({state})")
            target = drafts[-1]
        else:
            target = self.get(plan_id, version)
        if target.status is PlanStatus.ACTIVE:
            return target
        if target.status is PlanStatus.SUPERSEDED:
            raise PlanConflict(plan_id, f"version {target.version} is superseded and cannot be activated again; "
                                        "create a new version with its rules")
        if current is not None and target.version < current.version:
            raise PlanConflict(plan_id, f"draft version {target.version} is older than the active version "
                                        f"{current.version}; create a new version instead")
        if current is not None:
            history[current.version - 1] = replace(current, status=PlanStatus.SUPERSEDED, superseded_at=float(now))
        activated = replace(target, status=PlanStatus.ACTIVE, activated_at=float(now))
        history[target.version - 1] = activated
        return activated

    # -- queries ---------------------------------------------------------------------------

    def __contains__(self, plan_id: object) -> bool:
        return plan_id in self._versions

    def ids(self) -> list[str]:
        """Plan ids, sorted."""
        return sorted(self._versions)

    def versions(self, plan_id: str) -> list[PlanVersion]:
        """Every version of ``plan_id``, oldest first.

        Raises
        ------
        PlanNotFound
            Unknown plan id.
        """
        return list(self._history(plan_id))

    def get(self, plan_id: str, version: int) -> PlanVersion:
        """Version ``version`` of ``plan_id``, whatever its status.

        Raises
        ------
        PlanNotFound
            Unknown plan id or version.
        LimitsError
            ``version`` is not an integer ≥ 1 (field ``version``).
        """
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise LimitsError("version", f"must be an integer ≥ 1, got {version!r}")
        history = self._history(plan_id)
        if version > len(history):
            raise PlanNotFound(plan_id, f"no version {version} (latest is {len(history)})")
        return history[version - 1]

    def latest(self, plan_id: str) -> PlanVersion:
        """The highest-numbered version of ``plan_id``, whatever its status.

        Raises
        ------
        PlanNotFound
            Unknown plan id.
        """
        return self._history(plan_id)[-1]

    def active(self, plan_id: str) -> PlanVersion | None:
        """The active version of ``plan_id``, or ``None`` if it has none yet (only drafts).

        Raises
        ------
        PlanNotFound
            Unknown plan id.
        """
        return self._active_in(self._history(plan_id))

    def bindable(self, plan_id: str, version: int | None = None) -> PlanVersion:
        """The version an account may bind to now: the active one.

        Parameters
        ----------
        plan_id : str
            Plan id.
        version : int or None
            ``None``: the active version; otherwise this version, which must be the active one.

        Raises
        ------
        PlanNotFound
            Unknown plan id or version.
        PlanConflict
            The plan has no active version, or ``version`` is a draft or superseded (the
            message says which, and names the active version).
        """
        history = self._history(plan_id)
        current = self._active_in(history)
        if version is None:
            if current is None:
                raise PlanConflict(plan_id, "no active version to bind to (only drafts)")
            return current
        target = self.get(plan_id, version)
        if target.status is not PlanStatus.ACTIVE:
            state = f"the active version is {current.version}" if current else "no version is active"
            raise PlanConflict(plan_id, f"version {version} is {target.status} and cannot be bound ({state})")
        return target

    def resolve(self, plan_id: str, version: int | None, initial_balance: float,
                overrides: Mapping[str, Any] | None = None) -> tuple[PlanVersion, Limits]:
        """The :class:`Limits` of a plan version for an account of ``initial_balance``.

        Fractions become amounts: ``<field>_fraction × initial_balance`` (no rounding), and
        ``max_loss_lock_fraction × initial_balance`` is the ``max_loss_lock`` level. Then
        ``overrides`` (per-account, field → value) replace single fields through
        :meth:`Limits.with_overrides`, winning over the plan's fractions.

        This does not check bindability: an account already bound to a version keeps
        resolving it after it is superseded (restart, replay). Call :meth:`bindable` first
        when binding an account.

        Parameters
        ----------
        plan_id : str
            Plan id.
        version : int or None
            Version to resolve; ``None``: the active one.
        initial_balance : float
            Account's initial balance, account currency, finite and > 0.
        overrides : mapping or None
            ``Limits`` field → value, with :meth:`Limits.with_overrides` semantics.

        Returns
        -------
        tuple of (PlanVersion, Limits)

        Raises
        ------
        PlanNotFound
            Unknown plan id or version.
        PlanConflict
            ``version`` is ``None`` and the plan has no active version.
        LimitsError
            ``initial_balance`` invalid, or an override unknown or invalid (bare field name).
        """
        plan = self.bindable(plan_id) if version is None else self.get(plan_id, version)
        ok = isinstance(initial_balance, (int, float)) and not isinstance(initial_balance, bool)
        if not ok or not math.isfinite(initial_balance) or initial_balance <= 0:
            raise LimitsError("initial_balance", f"must be a finite number > 0, got {initial_balance!r}")
        limits = _limits_for(plan.rules, float(initial_balance))
        return plan, limits.with_overrides(overrides)

    def list(self) -> list[dict[str, Any]]:
        """One summary per plan id, sorted by id.

        Returns
        -------
        list of dict
            ``{"id", "name" (active version's, else latest's), "active_version" (int or None),
            "latest_version", "statuses": [{"version": int, "status": str}, ...]}``.
        """
        out = []
        for plan_id in sorted(self._versions):
            history = self._versions[plan_id]
            current = self._active_in(history)
            out.append({"id": plan_id, "name": (current or history[-1]).name,
                        "active_version": current.version if current else None,
                        "latest_version": history[-1].version,
                        "statuses": [{"version": v.version, "status": str(v.status)} for v in history]})
        return out

    @property
    def read_only(self) -> bool:
        """True once :meth:`freeze` was called: :meth:`create` and :meth:`activate` then refuse."""
        return self._read_only

    def freeze(self) -> PlanRegistry:
        """Make this registry read-only for good (for shared defaults); returns it."""
        self._read_only = True
        return self

    # -- internals -------------------------------------------------------------------------

    def _history(self, plan_id: str) -> list[PlanVersion]:
        try:
            return self._versions[plan_id]
        except (KeyError, TypeError):
            raise PlanNotFound(str(plan_id), "unknown plan") from None

    @staticmethod
    def _active_in(history: list[PlanVersion]) -> PlanVersion | None:
        for v in reversed(history):
            if v.status is PlanStatus.ACTIVE:
                return v
        return None

    def _check_writable(self) -> None:
        if self._read_only:
            raise RuntimeError("this plan registry is read-only (a shared default); "
                               "load your own with PlanRegistry.from_json")


@cache
def default_plan_registry() -> PlanRegistry:
    """The presets shipped in ``riskactors/data/plans.json`` (loaded once, active version 1 each,
    timestamps 0). Shared and read-only: :meth:`PlanRegistry.create` and
    :meth:`PlanRegistry.activate` raise ``RuntimeError`` on it; a server that manages plans
    loads its own with :meth:`PlanRegistry.from_json`."""
    return PlanRegistry.from_json(package_data("plans.json")).freeze()


# -- document validation --------------------------------------------------------------------


def _from_legacy(name: Any, spec: Any) -> dict[str, Any]:
    """A plan document from the legacy ``{name: {"description", "limits"}}`` shape."""
    if not isinstance(spec, Mapping):
        raise LimitsError("plans", f"plan {name!r}: must be an object with \"description\" and \"limits\"")
    extra = sorted(set(spec) - set(_LEGACY_KEYS))
    if extra:
        raise LimitsError(extra[0], f"plan {name!r}: unknown key(s) {', '.join(map(str, extra))}; "
                                    f"allowed: {', '.join(_LEGACY_KEYS)}")
    return {"id": name, "description": spec.get("description"), "rules": spec.get("limits", {})}


def _parse_document(doc: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Validate a plan document → (id, {name, description, source} as given, rules copy)."""
    if not isinstance(doc, Mapping):
        raise LimitsError("plan", f"must be a JSON object, got {type(doc).__name__}")
    extra = sorted(map(str, set(doc) - set(_DOCUMENT_KEYS)))
    if extra:
        raise LimitsError(extra[0], f"unknown plan field(s) {', '.join(extra)}; allowed: {', '.join(_DOCUMENT_KEYS)}")
    plan_id = doc.get("id")
    if not isinstance(plan_id, str) or not PLAN_ID_PATTERN.match(plan_id):
        raise LimitsError("id", f"must be 1–64 letters, digits, '_', '.' or '-', got {plan_id!r}")
    texts = {}
    for key, longest in _MAX_TEXT.items():
        value = doc.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            raise LimitsError(key, f"must be a string of at most {longest} characters")
        texts[key] = value
    if "rules" not in doc:
        raise LimitsError("rules", "required: an object of limit fields")
    return plan_id, texts, _validate_rules(doc["rules"])


def _validate_rules(rules: Any) -> dict[str, Any]:
    """Check ``rules`` key by key, then build ``Limits`` at 100,000 to check every value."""
    if not isinstance(rules, Mapping):
        raise LimitsError("rules", f"must be an object of limit fields, got {type(rules).__name__}")
    for key, value in rules.items():
        if not isinstance(key, str) or (key not in LIMIT_FIELDS and key not in FRACTION_FIELDS):
            raise LimitsError(f"rules.{key}", "unknown rule; allowed: Limits fields and "
                                              f"{', '.join(sorted(FRACTION_FIELDS))}")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise LimitsError(f"rules.{key}", f"must be a string, number, boolean or null, got {type(value).__name__}")
        if key in FRACTION_FIELDS:
            amount = FRACTION_FIELDS[key]
            if amount in rules:
                raise LimitsError(f"rules.{key}", f"give either {key} or {amount}, not both")
            _check_fraction(key, value)
        elif value is None and key not in _OPTIONAL_FIELDS:
            raise LimitsError(f"rules.{key}", "cannot be null (this rule cannot be switched off)")
        elif key in _STRING_FIELDS and value is not None and not isinstance(value, str):
            raise LimitsError(f"rules.{key}", f"must be a string, got {value!r}")
    rules = dict(rules)
    try:
        _limits_for(rules, _VALIDATION_BALANCE)
    except LimitsError as exc:
        field = exc.field
        if field in _AMOUNT_TO_FRACTION and _AMOUNT_TO_FRACTION[field] in rules:
            field = _AMOUNT_TO_FRACTION[field]
        raise LimitsError(f"rules.{field}", exc.message) from None
    except (TypeError, AttributeError) as exc:  # a value of a shape Limits does not check for
        raise LimitsError("rules", str(exc)) from None
    return rules


def _check_fraction(key: str, value: Any) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if key == _LEVEL_FRACTION:
        if not ok or value <= 0:
            raise LimitsError(f"rules.{key}", "must be a finite number > 0 (a level relative to the initial "
                                              f"balance; 1.0 = the starting balance), got {value!r}")
    elif not ok or not 0 < value <= 1:
        raise LimitsError(f"rules.{key}", f"must be a fraction in (0, 1] of the initial balance, got {value!r}")


def _limits_for(rules: Mapping[str, Any], initial_balance: float) -> Limits:
    """``Limits`` from validated rules: fractions × ``initial_balance``; ``null`` → rule off."""
    values = {}
    for key, value in rules.items():
        if key in FRACTION_FIELDS:
            values[FRACTION_FIELDS[key]] = value * initial_balance
        else:
            values[key] = value
    return Limits.of(**values)
