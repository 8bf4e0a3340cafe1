"""The moves ``riskactors rebalance`` makes: even spread, nodes that joined get their share, a
drained node is emptied, and a balanced layout moves nothing (pure; no Ray)."""

from __future__ import annotations

from collections import Counter

import pytest

pytest.importorskip("ray")
from riskactors.actors.ray_runtime import plan_moves


def _layout(**per_node: int) -> dict[str, str]:
    out, i = {}, 0
    for node, n in per_node.items():
        for _ in range(n):
            out[f"shard-{i}"] = node
            i += 1
    return out


def _apply(layout: dict[str, str], moves: list[tuple[str, str]]) -> Counter:
    after = dict(layout)
    for shard, node in moves:
        after[shard] = node
    return Counter(after.values())


def test_a_node_that_joined_gets_its_share_with_the_fewest_moves():
    layout = _layout(a=4, b=4)  # 8 shards on 2 nodes, then c joins
    moves = plan_moves(layout, ["a", "b", "c"])
    assert sorted(_apply(layout, moves).values()) == [2, 3, 3]
    assert len(moves) == 2 and {node for _, node in moves} == {"c"}


def test_draining_a_node_moves_only_its_shards():
    layout = _layout(a=3, b=3, c=2)
    moves = plan_moves(layout, ["a", "b"])  # c leaves
    assert {shard for shard, _ in moves} == {s for s, n in layout.items() if n == "c"}
    assert _apply(layout, moves) == Counter({"a": 4, "b": 4})


def test_a_balanced_layout_moves_nothing_and_the_plan_is_deterministic():
    layout = _layout(a=3, b=3, c=2)
    assert plan_moves(layout, ["a", "b", "c"]) == []
    skewed = _layout(a=8)
    first = plan_moves(skewed, ["a", "b", "c", "d"])
    assert first == plan_moves(skewed, ["a", "b", "c", "d"])
    assert _apply(skewed, first) == Counter({"a": 2, "b": 2, "c": 2, "d": 2})
