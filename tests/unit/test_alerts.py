"""The alert book (:mod:`riskactors.domain.alerts`): suppression, repetition, once-only rules,
acknowledgement, silences and groups, each at its boundary (just inside, just outside), and a
property: a key is never notified twice within the suppression window, and a once-only
alert is notified at most once."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskactors.domain.alerts import AlertBook, AlertPolicy, Silence

T0 = 1_800_000_000.0
EPS = 1e-3
POLICY = AlertPolicy(suppression_seconds=300.0, repeat_seconds=4 * 3600.0, group_wait_seconds=1.0)


def _warn(book: AlertBook, at: float, account: str = "acct-1", challenge: str = "c1"):
    return book.raise_alert(f"warning:{account}", "warning", "warning", at, f"{account} near its daily loss limit",
                            {"account_id": account, "challenge_id": challenge}, {"fraction": 0.8})


def test_a_key_raised_again_within_the_suppression_window_counts_and_notifies_nobody():
    book = AlertBook(POLICY)
    alert, notified = _warn(book, T0)
    assert notified and alert.count == 1 and alert.status == "firing" and alert.notified_at == T0
    again, notified = _warn(book, T0 + 300.0 - EPS)
    assert again is alert and not notified and alert.count == 2 and alert.last_at == T0 + 300.0 - EPS
    # past the suppression window a firing alert still waits for repeat_seconds
    _, notified = _warn(book, T0 + 300.0)
    assert not notified and alert.count == 3


def test_a_key_still_firing_is_notified_again_after_repeat_seconds():
    book = AlertBook(POLICY)
    alert, _ = _warn(book, T0)
    assert _warn(book, T0 + 4 * 3600.0 - EPS) == (alert, False)
    assert _warn(book, T0 + 4 * 3600.0) == (alert, True)
    assert alert.notified_at == T0 + 4 * 3600.0 and alert.count == 3


def test_a_resolved_key_raised_within_the_window_reopens_quietly_and_after_it_opens_a_new_alert():
    book = AlertBook(POLICY)
    first, _ = _warn(book, T0)
    assert book.resolve("warning:acct-1", T0 + 10).status == "resolved"
    assert book.resolve("warning:acct-1", T0 + 11) is None  # nothing active to resolve
    again, notified = _warn(book, T0 + 300.0 - EPS)
    assert again is first and not notified and first.status == "firing" and first.resolved_at is None
    book.resolve("warning:acct-1", T0 + 301)
    new, notified = _warn(book, T0 + 300.0 + 5)
    assert notified and new.id != first.id and new.count == 1 and first.status == "resolved"


def test_a_breach_is_notified_once_never_repeated_and_resolves_when_cleared():
    book = AlertBook(POLICY)
    breach = {"key": "breach:acct-1", "rule": "breach", "severity": "critical", "summary": "acct-1 broke its max loss",
                  "labels": {"account_id": "acct-1", "challenge_id": "c1"}}
    alert, notified = book.raise_alert(at=T0, **breach)
    assert notified
    for at in (T0 + 1, T0 + 4 * 3600.0, T0 + 48 * 3600.0):
        assert book.raise_alert(at=at, **breach) == (alert, False)
    assert alert.count == 4
    book.resolve("breach:acct-1", T0 + 49 * 3600.0)  # the account's kill switch released
    new, notified = book.raise_alert(at=T0 + 50 * 3600.0, **breach)
    assert notified and new.id != alert.id


def test_an_acknowledged_alert_is_not_repeated_and_a_resolved_one_cannot_be_acknowledged():
    book = AlertBook(POLICY)
    alert, _ = _warn(book, T0)
    assert book.acknowledge(alert.id, "ops-anna", "calling the trader").status == "acknowledged"
    assert _warn(book, T0 + 5 * 3600.0) == (alert, False)
    book.resolve("warning:acct-1", T0 + 5 * 3600.0 + 1)
    with pytest.raises(ValueError, match="status: alert a1 is resolved"):
        book.acknowledge(alert.id, "ops-anna", "late")
    with pytest.raises(KeyError):
        book.acknowledge("a99", "ops-anna", "no such alert")
    with pytest.raises(ValueError, match="by: who acknowledges"):
        book.acknowledge(_warn(book, T0 + 6 * 3600.0)[0].id, "", "anonymous")


def test_a_silence_mutes_matching_alerts_until_it_ends_and_others_still_notify():
    book = AlertBook(POLICY)
    book.silence(Silence("s1", {"challenge_id": "c1", "rule": "warning"}, T0, T0 + 600.0, "drill", "ops-anna"))
    muted, notified = _warn(book, T0 + 600.0 - EPS, "acct-1", "c1")
    assert not notified and muted.notified_at is None
    assert _warn(book, T0 + 1, "acct-2", "c2")[1]  # another challenge: not matched
    # the silence over (until excluded): the muted alert is notified when raised again
    assert _warn(book, T0 + 600.0, "acct-1", "c1") == (muted, True)
    with pytest.raises(ValueError, match="id: silence s1 exists"):
        book.silence(Silence("s1", {"account_id": "x"}, T0, T0 + 1, "again", "ops"))


@pytest.mark.parametrize(("matchers", "until", "message"), [
    ({}, T0 + 1, "matchers: at least one"),
    ({"desk": "fx"}, T0 + 1, r"matchers: \['desk'\] are not labels"),
    ({"rule": "warning"}, T0, "until: must be after starts_at"),
])
def test_a_bad_silence_is_refused_naming_the_field(matchers, until, message):
    with pytest.raises(ValueError, match=message):
        Silence("s1", matchers, T0, until, "r", "ops")


def test_notifications_are_grouped_by_rule_and_challenge_and_due_after_the_group_wait():
    book = AlertBook(POLICY)
    for i in range(1_000):  # one mark warns 1,000 accounts of c1 and one of c2
        _warn(book, T0 + i * 1e-4, f"acct-{i}", "c1")
    _warn(book, T0 + 0.5, "acct-x", "c2")
    book.raise_alert("margin_call:acct-0", "margin_call", "warning", T0 + 0.2, "margin level under 100 %",
                     {"account_id": "acct-0", "challenge_id": "c1"})
    assert book.due(T0 + 1.0 - EPS) == []
    due = book.due(T0 + 1.0)
    assert [(n.rule, n.challenge_id, n.due_at, len(n.alerts)) for n in due] == [("warning", "c1", T0 + 1.0, 1_000)]
    assert [a["labels"]["account_id"] for a in due[0].alerts][:3] == ["acct-0", "acct-1", "acct-2"]
    rest = book.due(T0 + 1.5)
    assert {(n.rule, n.challenge_id, len(n.alerts)) for n in rest} == {("margin_call", "c1", 1), ("warning", "c2", 1)}
    assert book.due(T0 + 100) == []


def test_bad_severity_and_bad_windows_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="severity: must be one of"):
        AlertBook(POLICY).raise_alert("k", "warning", "urgent", T0, "s")
    with pytest.raises(ValueError, match="group_wait_seconds: must be >= 0"):
        AlertPolicy(group_wait_seconds=-1)
    with pytest.raises(ValueError, match="repeat_seconds: must be >= suppression_seconds"):
        AlertPolicy(suppression_seconds=300, repeat_seconds=299)


def test_listed_filters_by_status_severity_and_labels_newest_first():
    book = AlertBook(POLICY)
    _warn(book, T0, "acct-1", "c1")
    _warn(book, T0 + 1, "acct-2", "c2")
    book.raise_alert("breach:acct-3", "breach", "critical", T0 + 2, "s", {"account_id": "acct-3", "challenge_id": "c1"})
    book.resolve("warning:acct-2", T0 + 3)
    assert [a.key for a in book.listed()] == ["warning:acct-2", "breach:acct-3", "warning:acct-1"]
    assert [a.key for a in book.listed(status="firing", challenge_id="c1")] == ["breach:acct-3", "warning:acct-1"]
    assert [a.key for a in book.listed(severity="critical")] == ["breach:acct-3"]


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.floats(0, 2_000, allow_nan=False), st.sampled_from(["raise", "resolve", "ack"])),
                      min_size=1, max_size=40),
       rule=st.sampled_from(["warning", "breach"]))
def test_property_no_key_is_notified_twice_within_the_window_and_once_rules_at_most_once(steps, rule):
    policy = AlertPolicy(suppression_seconds=300.0, repeat_seconds=900.0, group_wait_seconds=1.0)
    book, at, notified = AlertBook(policy), T0, []
    for gap, op in steps:
        at += gap
        if op == "raise":
            alert, sent = book.raise_alert("k", rule, "warning", at, "s")
            if sent:
                notified.append((at, alert.id))
        elif op == "resolve":
            book.resolve("k", at)
        else:
            active = [a for a in book.alerts.values() if a.status == "firing"]
            if active:
                book.acknowledge(active[0].id, "ops", "seen")
    times = [t for t, _ in notified]
    assert all(b - a >= policy.suppression_seconds for a, b in itertools.pairwise(times)), notified
    if rule in policy.once:
        ids = [i for _, i in notified]
        assert len(ids) == len(set(ids)), notified
    queued = sum(len(n.alerts) for n in book.due(at + 10))
    assert queued == len(notified)


def test_a_book_rebuilt_from_its_state_is_equal_and_goes_on_alike():
    book = AlertBook(POLICY)
    _warn(book, T0, "acct-1", "c1")
    _warn(book, T0 + 0.5, "acct-2", "c1")
    book.resolve("warning:acct-2", T0 + 2)
    _warn(book, T0 + 400, "acct-2", "c1")  # a second alert for that key
    book.silence(Silence("s1", {"account_id": "acct-9"}, T0, T0 + 900, "drill", "ops"))
    book.acknowledge("a1", "ops", "seen")
    state = book.to_state()
    copy = AlertBook.from_state(json.loads(json.dumps(state)), POLICY)  # plain data only
    assert copy.to_state() == state
    for b in (book, copy):  # the same next steps give the same answers
        assert _warn(b, T0 + 401, "acct-2", "c1")[1] is False
        assert b.raise_alert("warning:acct-9", "warning", "warning", T0 + 402, "s", {"account_id": "acct-9"})[1] is False
        assert [(n.rule, n.challenge_id, [a["id"] for a in n.alerts]) for n in b.due(T0 + 500)] == [
            ("warning", "c1", ["a1", "a2", "a3"])]  # the group waiting since T0, undelivered
    assert book.to_state() == copy.to_state()
