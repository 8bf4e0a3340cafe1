"""Consolidated risk over a set of account summaries (user, challenge or firm).

Input rows are :meth:`riskactors.domain.account.Account.summary` dicts. Money totals are given
per account currency (summing USD and JPY would be meaningless); exposure per instrument is
in lots and in notional of the instrument's quote currency, which is the same for every account.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

__all__ = ["consolidate"]


def consolidate(summaries: Iterable[dict[str, Any]], scope: str, scope_id: str | None,
                top_n: int = 10) -> dict[str, Any]:
    """Aggregate account summaries.

    Parameters
    ----------
    summaries : iterable of dict
        One per account.
    scope, scope_id : str
        ``user``/``challenge``/``firm`` and its id (``None`` for firm).
    top_n : int
        How many accounts closest to a breach to list.

    Returns
    -------
    dict
        ``accounts`` (count), ``accounts_by_status``, ``totals_by_currency`` (balance, equity,
        daily_pnl per account currency), ``exposure`` per instrument (net and gross lots,
        net and gross notional in quote currency), ``in_warning`` / ``breached`` / ``killed``
        counts, ``risk_score`` mean and max, ``closest_to_breach`` (the ``top_n`` active
        accounts with the least headroom; headroom = min over daily and max loss of
        (equity − floor) / limit, a fraction where 0 means at the floor).
    """
    rows = list(summaries)
    by_status = Counter(r["status"] for r in rows)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"balance": 0.0, "equity": 0.0, "daily_pnl": 0.0,
                                                                "accounts": 0})
    exposure: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = totals[r["currency"]]
        t["balance"] += r["balance"]
        t["equity"] += r["equity"]
        t["daily_pnl"] += r["daily_pnl"]
        t["accounts"] += 1
        for sym, e in r["exposure"].items():
            x = exposure.setdefault(sym, {"net_lots": 0.0, "gross_lots": 0.0, "net_notional": 0.0,
                                          "gross_notional": 0.0, "quote_currency": e["quote_currency"],
                                          "accounts": 0})
            x["net_lots"] += e["net_lots"]
            x["gross_lots"] += e["gross_lots"]
            x["net_notional"] += e["net_notional_quote"]
            x["gross_notional"] += e["gross_notional_quote"]
            x["accounts"] += 1
    scores = [r["risk_score"] for r in rows]
    active = [r for r in rows if r["status"] == "active"]
    closest = sorted(active, key=lambda r: (r["breach_headroom"], -r["risk_score"], r["account_id"]))[:top_n]
    return {
        "scope": scope,
        "id": scope_id,
        "accounts": len(rows),
        "accounts_by_status": {s: by_status.get(s, 0) for s in ("active", "passed", "failed", "disabled")},
        "totals_by_currency": {c: dict(v) for c, v in sorted(totals.items())},
        "exposure": dict(sorted(exposure.items())),
        "in_warning": sum(1 for r in rows if r["warnings"]),
        "breached": sum(1 for r in rows if r["breached"]),
        "killed": sum(1 for r in rows if r["killed"]),
        "risk_score": {"mean": (sum(scores) / len(scores)) if scores else 0.0, "max": max(scores, default=0.0)},
        "closest_to_breach": [
            {"account_id": r["account_id"], "user_id": r["user_id"], "challenge_id": r["challenge_id"],
             "breach_headroom": r["breach_headroom"], "risk_score": r["risk_score"], "equity": r["equity"],
             "currency": r["currency"]}
            for r in closest
        ],
    }
