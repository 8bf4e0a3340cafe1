"""Alerts with deduplication: the firing, suppression, repetition, silencing and grouping of
alerts raised by the server's events (issue 12 §2), as plain state with time passed in.

The model is Prometheus Alertmanager's (https://prometheus.io/docs/alerting/latest/alertmanager/):
alerts are grouped, a repeated alert is suppressed for a while, a long-firing one is notified
again after ``repeat_seconds``, and silences mute matching alerts until they end. What differs:

- An alert is identified by its ``key``: the rule and the id of what it is about (an account, a
  shard), e.g. ``"breach:acct-7"``. One alert per key is *active* (``firing`` or
  ``acknowledged``) at a time.
- **Suppression.** A key raised again within ``suppression_seconds`` (default 300) of its last
  notification notifies nobody: the active alert's ``count`` goes up (a resolved one is
  reopened). After that window a raise of a firing alert still waits for ``repeat_seconds``
  (default 4 h) since its last notification; a raise of a resolved key opens a new alert, which
  is notified.
- **Once only.** Rules in ``once`` (``breach``) are notified when they first fire and never
  repeated; such an alert resolves when the condition clears (for a breach: the account's kill
  switch is released), by :meth:`AlertBook.resolve`.
- **Acknowledged** alerts are not notified again until they resolve.
- **Silences** mute every alert whose labels equal all of a silence's matchers, from its start
  to its ``until`` (exclusive); a muted notification is dropped (the alert still counts).
- **Groups.** A notification joins the group of its rule and challenge; a group is due
  ``group_wait_seconds`` (default 1 s) after its first notification and is delivered as one
  (:meth:`AlertBook.due`): one mark that warns 100,000 accounts of one challenge is one
  delivery.

Every window follows the instants passed in (the deployment clock), so a replay raises and
notifies what the live run did. Delivery retries are the notifier's business, not this module's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Alert", "AlertBook", "AlertPolicy", "Notification", "Silence"]

SEVERITIES = ("info", "warning", "critical")
#: the labels an alert carries and a silence may match on
LABELS = ("rule", "severity", "account_id", "user_id", "challenge_id", "shard_id")


@dataclass(frozen=True)
class AlertPolicy:
    """Deduplication windows, in seconds of the deployment clock.

    Parameters
    ----------
    suppression_seconds : float
        A key raised again within this long of its last notification notifies nobody.
    repeat_seconds : float
        A key still firing this long after its last notification is notified again.
    group_wait_seconds : float
        A notification group is delivered this long after its first notification.
    once : tuple of str
        Rules notified once and never repeated (default ``("breach",)``).

    Raises
    ------
    ValueError
        A window that is negative, or ``repeat_seconds`` shorter than ``suppression_seconds``.
    """

    suppression_seconds: float = 300.0
    repeat_seconds: float = 4 * 3600.0
    group_wait_seconds: float = 1.0
    once: tuple[str, ...] = ("breach",)

    def __post_init__(self) -> None:
        for name in ("suppression_seconds", "repeat_seconds", "group_wait_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.repeat_seconds < self.suppression_seconds:
            raise ValueError(f"repeat_seconds: must be >= suppression_seconds ({self.suppression_seconds}), "
                             f"got {self.repeat_seconds}")


@dataclass
class Alert:
    """One alert (issue 12 §2): ``numbers`` are the figures of its latest raise (account
    currency or fractions, as the raising event gives them)."""

    id: str
    key: str
    rule: str
    severity: str
    status: str
    first_at: float
    last_at: float
    count: int
    summary: str
    labels: dict[str, str]
    numbers: dict[str, float] = field(default_factory=dict)
    notified_at: float | None = None
    resolved_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Silence:
    """Mutes the alerts whose labels equal every one of ``matchers`` from ``starts_at`` to
    ``until`` (epoch seconds, ``until`` excluded).

    Raises
    ------
    ValueError
        No matchers, a matcher on a label alerts do not carry, or ``until`` not after
        ``starts_at``.
    """

    id: str
    matchers: dict[str, str]
    starts_at: float
    until: float
    reason: str
    by: str

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("matchers: at least one is needed (a silence of everything is not allowed)")
        unknown = sorted(set(self.matchers) - set(LABELS))
        if unknown:
            raise ValueError(f"matchers: {unknown} are not labels of an alert (labels: {list(LABELS)})")
        if self.until <= self.starts_at:
            raise ValueError(f"until: must be after starts_at ({self.starts_at}), got {self.until}")

    def mutes(self, alert: Alert, at: float) -> bool:
        return self.starts_at <= at < self.until and all(
            alert.labels.get(k) == v for k, v in self.matchers.items())


@dataclass(frozen=True)
class Notification:
    """A group's delivery: its rule and challenge, when it became due, and its alerts (as dicts,
    in the order they were notified)."""

    rule: str
    challenge_id: str | None
    due_at: float
    alerts: tuple[dict[str, Any], ...]


class AlertBook:
    """The alerts of a deployment, their silences and the notifications waiting in groups.

    Parameters
    ----------
    policy : AlertPolicy
        The windows.

    Notes
    -----
    Calls must come in non-decreasing time (the deployment clock never goes back); ids are
    ``a<n>`` in the order alerts open.
    """

    def __init__(self, policy: AlertPolicy | None = None):
        self.policy = policy or AlertPolicy()
        self.alerts: dict[str, Alert] = {}  # id -> alert
        self._by_key: dict[str, str] = {}  # key -> id of its newest alert
        self.silences: dict[str, Silence] = {}
        self._groups: dict[tuple[str, str | None], tuple[float, list[str]]] = {}  # -> (first at, alert ids)
        self._opened = 0

    # ------------------------------------------------------------------ raising
    def raise_alert(self, key: str, rule: str, severity: str, at: float, summary: str,
                    labels: dict[str, str] | None = None, numbers: dict[str, float] | None = None) -> tuple[Alert, bool]:
        """Raise ``key`` at ``at``; returns ``(alert, notified)``: the alert it opened or counted
        on, and whether a notification was queued (module notes: suppression, repeat, once,
        acknowledged, silences).

        Raises
        ------
        ValueError
            ``severity`` not one of info, warning, critical.
        """
        if severity not in SEVERITIES:
            raise ValueError(f"severity: must be one of {list(SEVERITIES)}, got {severity!r}")
        policy = self.policy
        alert = self.alerts.get(self._by_key.get(key, ""))
        since = None if alert is None or alert.notified_at is None else at - alert.notified_at
        if alert is not None and (alert.status != "resolved" or (since is not None and since < policy.suppression_seconds)):
            alert.count += 1
            alert.last_at = at
            alert.numbers = dict(numbers or alert.numbers)
            if alert.status == "resolved":  # raised again within the suppression window: reopened, quiet
                alert.status, alert.resolved_at = "firing", None
                return alert, False
            notify = (alert.status == "firing" and rule not in policy.once
                      and (since is None or since >= policy.repeat_seconds))
            return alert, notify and self._queue(alert, at)
        self._opened += 1
        alert = Alert(id=f"a{self._opened}", key=key, rule=rule, severity=severity, status="firing", first_at=at,
                      last_at=at, count=1, summary=summary,
                      labels={**(labels or {}), "rule": rule, "severity": severity}, numbers=dict(numbers or {}))
        self.alerts[alert.id] = alert
        self._by_key[key] = alert.id
        return alert, self._queue(alert, at)

    def _queue(self, alert: Alert, at: float) -> bool:
        if any(s.mutes(alert, at) for s in self.silences.values()):
            return False
        alert.notified_at = at
        group = (alert.rule, alert.labels.get("challenge_id"))
        self._groups.setdefault(group, (at, []))[1].append(alert.id)
        return True

    # ------------------------------------------------------------------ ops
    def resolve(self, key: str, at: float) -> Alert | None:
        """The condition of ``key`` cleared at ``at``: its active alert resolves (``None`` when
        it has none)."""
        alert = self.alerts.get(self._by_key.get(key, ""))
        if alert is None or alert.status == "resolved":
            return None
        alert.status, alert.resolved_at, alert.last_at = "resolved", at, max(alert.last_at, at)
        return alert

    def acknowledge(self, alert_id: str, by: str, reason: str) -> Alert:
        """Ops took ``alert_id`` in hand: it is not notified again until it resolves.

        Raises
        ------
        KeyError
            No alert has that id.
        ValueError
            The alert is resolved (nothing to acknowledge), or ``by`` is empty.
        """
        alert = self.alerts[alert_id]
        if not by:
            raise ValueError("by: who acknowledges is required")
        if alert.status == "resolved":
            raise ValueError(f"status: alert {alert_id} is resolved")
        alert.status, alert.acknowledged_by, alert.acknowledged_reason = "acknowledged", by, reason
        return alert

    def silence(self, silence: Silence) -> Silence:
        """Add ``silence`` (its id unique). Raises ``ValueError`` if the id is taken."""
        if silence.id in self.silences:
            raise ValueError(f"id: silence {silence.id} exists")
        self.silences[silence.id] = silence
        return silence

    # ------------------------------------------------------------------ delivery
    def due(self, at: float) -> list[Notification]:
        """The groups due by ``at`` (``group_wait_seconds`` after their first notification),
        removed from the queue, oldest first."""
        wait = self.policy.group_wait_seconds
        ready = sorted((first, group) for group, (first, _) in self._groups.items() if at - first >= wait)
        out = []
        for first, group in ready:
            _, ids = self._groups.pop(group)
            out.append(Notification(group[0], group[1], first + wait, tuple(self.alerts[i].to_dict() for i in ids)))
        return out

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Plain data (journal- and snapshot-safe) from which :meth:`from_state` rebuilds an
        equal book: alerts, silences, the groups waiting and the id counter."""
        return {"alerts": [a.to_dict() for a in self.alerts.values()],
                "silences": [asdict(x) for x in self.silences.values()],
                "groups": [[rule, challenge, first, list(ids)] for (rule, challenge), (first, ids) in self._groups.items()],
                "opened": self._opened}

    @classmethod
    def from_state(cls, state: dict[str, Any], policy: AlertPolicy | None = None) -> AlertBook:
        """The book :meth:`to_state` described (newest alert per key, as it was)."""
        book = cls(policy)
        for a in state["alerts"]:
            alert = Alert(**a)
            book.alerts[alert.id] = alert
            book._by_key[alert.key] = alert.id  # listed oldest first: the newest per key wins
        book.silences = {x["id"]: Silence(**x) for x in state["silences"]}
        book._groups = {(rule, challenge): (first, list(ids)) for rule, challenge, first, ids in state["groups"]}
        book._opened = int(state["opened"])
        return book

    def listed(self, status: str | None = None, severity: str | None = None, **labels: str) -> list[Alert]:
        """Alerts, newest first, filtered by status, severity and label values."""
        out = [a for a in self.alerts.values() if (status is None or a.status == status)
               and (severity is None or a.severity == severity)
               and all(a.labels.get(k) == v for k, v in labels.items() if v is not None)]
        return sorted(out, key=lambda a: (a.last_at, int(a.id[1:])), reverse=True)
