"""Journal frames, segments, fsync policies, torn frames and snapshots (no Ray)."""

from __future__ import annotations

import os

import msgpack
import pytest

from riskactors.persistence import Journal, JournalCorrupt, Storage, decode_frames, encode_frame
from riskactors.persistence.frames import HEADER
from riskactors.persistence.snapshots import prune_snapshots, read_latest_snapshot, write_snapshot


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _journal(tmp_path, fsync="batch", appendable=None, clock=None) -> Journal:
    storage = Storage(str(tmp_path), appendable=appendable)
    return Journal(storage, storage.path("j"), fsync, 1.0, **({"clock": clock} if clock else {}))


def _segment_files(tmp_path) -> list[str]:
    return sorted(os.listdir(tmp_path / "j"))


def test_frame_round_trip_and_header_layout():
    record = ["fill", [{"fill_id": "f1", "price": 1.23456789012345, "quantity": 0.1}, 1.5e9]]
    frame = encode_frame(record)
    magic, length, _ = HEADER.unpack_from(frame)
    assert magic == b"RA" and length == len(frame) - HEADER.size
    records, end, error = decode_frames(frame + frame)
    assert records == [record, record] and end == 2 * len(frame) and error is None


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size, HEADER.size + 3])
def test_torn_frame_is_reported_at_the_last_valid_offset(cut):
    good, torn = encode_frame(["a", [1]]), encode_frame(["b", [2]])[:cut]
    records, end, error = decode_frames(good + torn)
    assert records == [["a", [1]]] and end == len(good) and error is not None


def test_flipped_payload_byte_fails_the_checksum():
    frame = bytearray(encode_frame(["a", [1, 2, 3]]))
    frame[-1] ^= 0xFF
    records, end, error = decode_frames(bytes(frame))
    assert records == [] and end == 0 and "checksum" in str(error)


def test_records_come_back_in_order_after_reopen(tmp_path):
    j = _journal(tmp_path)
    for i in range(5):
        assert j.append(["op", [i]]) == i + 1
    j.commit()
    j.close()
    again = _journal(tmp_path)
    assert again.recover() == [(i + 1, ["op", [i]]) for i in range(5)]
    assert again.seq == 5
    assert again.append(["op", [5]]) == 6  # continues the sequence in a new segment
    again.commit()
    assert len(_segment_files(tmp_path)) == 2


def test_uncommitted_records_under_batch_are_not_on_disk(tmp_path):
    j = _journal(tmp_path)
    j.append(["op", [1]])
    assert _journal(tmp_path).recover() == []  # nothing acknowledged, nothing written
    j.commit()
    assert _journal(tmp_path).recover() == [(1, ["op", [1]])]


def test_always_writes_each_frame_as_it_is_appended(tmp_path):
    j = _journal(tmp_path, "always")
    j.append(["op", [1]])
    assert _journal(tmp_path).recover() == [(1, ["op", [1]])]


def test_interval_writes_to_the_os_per_commit_and_forces_when_due(tmp_path, monkeypatch):
    clock = FakeClock()
    j = _journal(tmp_path, "interval", clock=clock)
    syncs = []
    j.append(["op", [1]])
    j.commit()  # opens the segment, writes; not yet due
    monkeypatch.setattr(j._appender, "sync", lambda: syncs.append(clock.t))
    j.append(["op", [2]])
    j.commit()
    assert syncs == [] and len(_journal(tmp_path).recover()) == 2  # written (survives a process kill)
    clock.t = 1.0
    j.append(["op", [3]])
    j.commit()
    assert syncs == [1.0]


def test_torn_last_frame_is_dropped_and_the_file_truncated(tmp_path, caplog):
    j = _journal(tmp_path)
    for i in range(3):
        j.append(["op", [i]])
    j.commit()
    path = tmp_path / "j" / _segment_files(tmp_path)[0]
    valid = path.stat().st_size
    with open(path, "ab") as f:
        f.write(encode_frame(["op", [99]])[:7])  # a crash in the middle of a write
    again = _journal(tmp_path)
    assert [r for _, r in again.recover()] == [["op", [0]], ["op", [1]], ["op", [2]]]
    assert again.torn_frames_dropped == 1 and path.stat().st_size == valid
    assert "torn last frame" in caplog.text
    again.append(["op", [3]])
    again.commit()
    assert [s for s, _ in _journal(tmp_path).recover()] == [1, 2, 3, 4]


def test_corrupt_frame_in_an_earlier_segment_refuses_to_start(tmp_path):
    j = _journal(tmp_path)
    j.append(["op", [1]])
    j.rotate()
    j.append(["op", [2]])
    j.commit()
    first = tmp_path / "j" / _segment_files(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="not the last segment"):
        _journal(tmp_path).recover()


def test_missing_records_after_a_snapshot_refuse_to_start(tmp_path):
    j = _journal(tmp_path)
    for i in range(4):
        j.append(["op", [i]])
        j.rotate()
    os.remove(tmp_path / "j" / _segment_files(tmp_path)[1])  # records 2 lost
    with pytest.raises(JournalCorrupt):
        _journal(tmp_path).recover(after_seq=1)


def test_compaction_deletes_only_segments_wholly_covered(tmp_path):
    j = _journal(tmp_path)
    for i in range(6):
        j.append(["op", [i]])
        if i % 2 == 1:
            j.rotate()  # segments start at 1, 3, 5
    assert j.compact(3) == 1  # [1,2] goes; [3,4] holds seq 4 > 3
    assert j.compact(4) == 1
    assert [s for s, _ in _journal(tmp_path).recover(after_seq=4)] == [5, 6]


def test_segment_per_commit_when_the_filesystem_cannot_append(tmp_path):
    j = _journal(tmp_path, appendable=False)
    j.append(["op", [1]])
    j.append(["op", [2]])
    j.commit()
    j.append(["op", [3]])
    j.commit()
    assert len(_segment_files(tmp_path)) == 2
    assert [s for s, _ in _journal(tmp_path, appendable=False).recover()] == [1, 2, 3]


def test_unknown_fsync_policy_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fsync"):
        _journal(tmp_path, "sometimes")


def _state(account_id: str, balance: float) -> dict:
    return {"account_id": account_id, "user_id": "u", "challenge_id": "c", "currency": "USD", "status": "active",
            "balance": balance, "positions": [], "reservations": [], "nested": {"x": [1, 2.5, None]}}


def test_snapshot_round_trip_with_readable_columns(tmp_path):
    import pyarrow as pa

    storage = Storage(str(tmp_path))
    path = write_snapshot(storage, storage.path("s"), 42, [_state("a", 1.5), _state("b", 2.0)],
                          {"marks": [["EURUSD", 1.1, 1.2, 3.0]], "news": []})
    snap = read_latest_snapshot(storage, storage.path("s"))
    assert snap.seq == 42 and snap.accounts == [_state("a", 1.5), _state("b", 2.0)]
    assert snap.host == {"marks": [["EURUSD", 1.1, 1.2, 3.0]], "news": []}
    table = pa.ipc.open_file(path).read_all()
    assert table.column("account_id").to_pylist() == ["a", "b"]
    assert table.column("balance").to_pylist() == [1.5, 2.0]
    assert msgpack.unpackb(table.column("state")[0].as_py()) == _state("a", 1.5)


def test_damaged_newest_snapshot_falls_back_to_the_previous(tmp_path):
    storage = Storage(str(tmp_path))
    d = storage.path("s")
    write_snapshot(storage, d, 10, [_state("a", 1.0)], {"marks": [], "news": []})
    newest = write_snapshot(storage, d, 20, [_state("a", 2.0)], {"marks": [], "news": []})
    with open(newest, "r+b") as f:
        f.truncate(40)
    snap = read_latest_snapshot(storage, d)
    assert snap.seq == 10 and snap.accounts[0]["balance"] == 1.0


def test_prune_keeps_the_two_newest_and_reports_the_older(tmp_path):
    storage = Storage(str(tmp_path))
    d = storage.path("s")
    for seq in (5, 10, 15):
        write_snapshot(storage, d, seq, [], {"marks": [], "news": []})
    assert prune_snapshots(storage, d) == 10
    assert sorted(os.listdir(tmp_path / "s")) == [f"{10:020d}.arrow", f"{15:020d}.arrow"]


def test_file_uri_root_is_local_storage(tmp_path):
    storage = Storage(f"file://{tmp_path}")
    assert storage.local and storage.appendable
    j = Journal(storage, storage.path("j"))
    j.append(["op", [1]])
    j.commit()
    assert (tmp_path / "j").is_dir()
