"""The replay report: what a replay did and what the server decided, and how it prints."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["ReplayReport"]

#: Tolerance, account currency, when comparing the server's P&L of a close with the file's.
PNL_TOLERANCE = 0.01
#: Rows of the top-users / top-challenges tables.
TOP_N = 10
#: Breached accounts listed one by one in the report.
BREACHES_LISTED = 20

OVERLAP_CATEGORY = "netting: another trade of the account on this symbol was open (average price differs)"
CONVERSION_CATEGORY = ("quote→account conversion from the latest marks (no broker rate in the file) "
                       "differs from the broker's rate")
UNEXPLAINED_CATEGORY = "unexplained by the row's fields (e.g. partial closes at the broker)"


@dataclass
class ReplayReport:
    """What a replay did and what the server decided.

    ``breaches`` holds every breach event the server returned, in order; ``first_breach``
    the first one per account, with its ``trading_day`` (ISO date) and ``final_status`` (the
    account's status after the replay). ``closed_trades`` lists the closed trades the server
    returned with the fills (``FillResult.closed_trade``), in order; in hedging mode
    ``position_id`` is the trade id. ``challenges`` maps a challenge id to its accounts by
    status; ``analytics`` holds ``firm``, ``users`` / ``challenges`` (id → analytics) and,
    for a single-account file, ``account``.
    """

    fmt: str
    position_mode: str = "hedging"
    trades: int = 0
    accounts_registered: int = 0
    accounts_existing: int = 0
    decisions: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    fills: int = 0
    fill_errors: Counter = field(default_factory=Counter)
    marks_posted: int = 0
    breaches: list[dict[str, Any]] = field(default_factory=list)
    first_breach: dict[str, dict[str, Any]] = field(default_factory=dict)
    pnl_compared: int = 0
    pnl_equal: int = 0
    pnl_complete_compared: int = 0
    pnl_complete_equal: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    closed_trades: list[dict[str, Any]] = field(default_factory=list)
    firm: dict[str, Any] = field(default_factory=dict)
    challenges: dict[str, dict[str, int]] = field(default_factory=dict)
    analytics: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    sample_account: str | None = None
    #: checks priced on a mark or a conversion rate older than the maximum mark age (300 s)
    stale_checks: int = 0
    #: breaches a server's marks answers counted but did not list (its RISKACTORS_MAX_BREACHES_LISTED)
    breaches_unlisted: int = 0
    #: ``--max-mark-age``: ``None`` when rule ``STALE_PRICE`` only warned
    max_mark_age: float | None = None

    def render(self) -> str:
        """Human-readable report."""
        lines = [f"replay report ({self.fmt})",
                 f"  position mode          {self.position_mode}",
                 f"  trades replayed        {self.trades}",
                 f"  accounts registered    {self.accounts_registered} (already known: {self.accounts_existing})",
                 f"  marks posted           {self.marks_posted}",
                 "  decisions              " + ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items())),
                 "  reject reasons         " + (", ".join(f"{k} {v}" for k, v in self.reasons.most_common()) or "none"),
                 "  warnings               " + (", ".join(f"{k} {v}" for k, v in self.warnings.most_common()) or "none"),
                 f"  stale prices           {self.stale_checks} checks on a mark or rate older than "
                 + (f"{self.max_mark_age:g} s (rejected, STALE_PRICE)" if self.max_mark_age is not None
                    else "the instruments' maximum, 300 s (rule off: --max-mark-age S applies it)"),
                 f"  fills applied          {self.fills}"
                 + (f" (errors: {dict(self.fill_errors)})" if self.fill_errors else ""),
                 f"  closed trades          {len(self.closed_trades)}"]
        lines += self._render_breaches()
        if self.skipped:
            lines.append(f"  rows skipped           {len(self.skipped)}: " + "; ".join(self.skipped[:5]))
        lines.append(f"  realized P&L = file profit (±{PNL_TOLERANCE}): {self.pnl_equal} of {self.pnl_compared} "
                     f"closing fills; rows with complete fields: {self.pnl_complete_equal} of "
                     f"{self.pnl_complete_compared}")
        for cat, items in sorted(self.mismatches.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"    differ — {cat}: {len(items)}" + (f" (e.g. {'; '.join(items[:3])})" if items else ""))
        f = self.firm
        if f:
            lines.append(f"  firm view: {f['accounts']} accounts, by status {f['accounts_by_status']}, "
                         f"killed {f['killed']}, breached {f['breached']}, in warning {f['in_warning']}, "
                         f"risk score mean {f['risk_score']['mean']:.1f} max {f['risk_score']['max']:.1f}")
            for ccy, t in f["totals_by_currency"].items():
                lines.append(f"    {ccy}: balance {t['balance']:,.2f} equity {t['equity']:,.2f} "
                             f"day P&L {t['daily_pnl']:,.2f}")
        if self.challenges:
            lines.append("  challenge status (accounts)")
            for cid, by_status in sorted(self.challenges.items()):
                counts = ", ".join(f"{s} {by_status.get(s, 0)}" for s in ("active", "passed", "failed"))
                others = ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())
                                   if s not in ("active", "passed", "failed"))
                lines.append(f"    {cid}: {counts}" + (f", {others}" if others else ""))
        lines += self._render_analytics()
        return "\n".join(lines)

    def _render_breaches(self) -> list[str]:
        firsts = sorted(self.first_breach.values(), key=lambda b: (b["at"], b["account_id"]))
        hard = [b for b in firsts if not b.get("soft")]
        head = (f"  breaches               {len(self.breaches)} events; accounts breached {len(firsts)} "
                f"(hard {len(hard)}, soft only {len(firsts) - len(hard)})")
        lines = [head]
        if self.breaches_unlisted:
            lines.append(f"    (and {self.breaches_unlisted} more that the server counted but did not list: raise its "
                         f"RISKACTORS_MAX_BREACHES_LISTED, or read GET /v1/audit?action=breach)")
        for b in firsts[:BREACHES_LISTED]:
            day = b.get("trading_day") or "unknown day"
            kind = " (soft)" if b.get("soft") else ""
            lines.append(f"    {b['account_id']}: trading day {day}, at {iso_utc(b['at'])}: {b['code']}{kind} — "
                         f"{b['message']}; final status {b.get('final_status') or 'unknown'}")
        if len(firsts) > BREACHES_LISTED:
            lines.append(f"    … {len(firsts) - BREACHES_LISTED} more")
        return lines

    def _render_analytics(self) -> list[str]:
        a = self.analytics
        if not a:
            return []
        lines = []
        firm = a.get("firm")
        if firm:
            ccy = "/".join(firm.get("currencies") or []) or "-"
            lines.append(f"  analytics — firm ({firm.get('accounts', 0)} accounts, {ccy}; "
                         f"score 0–100, higher is riskier)")
            lines += _metric_lines(firm["all"], "    ")
        for scope, title in (("users", "user"), ("challenges", "challenge")):
            rows = a.get(scope) or {}
            if not rows:
                continue
            lines.append(f"  analytics — top {min(TOP_N, len(rows))} of {len(rows)} {scope} by behaviour score")
            lines.append(f"    {title:<24} {'accounts':>8} {'trades':>7} {'score':>6}  flags")
            for sid, r in _top(rows):
                lines.append(f"    {sid:<24} {r.get('accounts', 1):>8} {r['all']['trades']:>7} "
                             f"{r['all']['score']:>6.1f}  {', '.join(r['all']['flags']) or '-'}")
        account = a.get("account")
        if account:
            lines.append(f"  analytics — account {account['account_id']} ({account['currency']}), all trades")
            lines += _metric_lines(account["all"], "    ")
            lines.append(f"  analytics — account {account['account_id']}, last {account['window_size']} trades")
            lines += _metric_lines(account["window"], "    ")
        return lines


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100.0 * x:.2f} %"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _hold(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 3600:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h ({seconds:.0f} s)"


def _metric_lines(m: dict[str, Any], indent: str) -> list[str]:
    """The metrics of one analytics block (``all`` or ``window``)."""
    share = m.get("best_day_share")
    trades = (f"trades {m['trades']} (wins {m['wins']}, losses {m['losses']}), win ratio {_pct(m['win_ratio'])}, "
              f"profit factor {_num(m['profit_factor'])}, net P&L {m['net_pnl']:,.2f}")
    drawdown = (f"max relative drawdown {_pct(m['max_relative_drawdown'])} (amount {m['max_drawdown_amount']:,.2f}), "
                f"SL used {_pct(m['stop_loss_used'])}, TP used {_pct(m['take_profit_used'])}")
    style = (f"HFT count {m['hft_count']}, max layering {m['max_layering']}, avg hold "
             f"{_hold(m['avg_hold_seconds'])}, longest losing streak {m['longest_losing_streak']}")
    best = (f"best day {m['best_day'] or 'n/a'} ({_num(m['best_day_pnl'], ',.2f')}), best-day share "
            f"{_pct(share)}")
    score = f"behaviour score {m['score']:.1f}, flags: {', '.join(m['flags']) or 'none'}"
    return [indent + line for line in (trades, drawdown, style, best, score)]


def _top(rows: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The ``TOP_N`` rows by score (desc), then trades (desc), then id."""
    return sorted(rows.items(), key=lambda kv: (-kv[1]["all"]["score"], -kv[1]["all"]["trades"], kv[0]))[:TOP_N]
