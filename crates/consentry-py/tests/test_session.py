"""Session: snapshots as Arrow tables, the gate, lineage, receipts and the error mapping, against the CLI."""

from __future__ import annotations

import datetime as dt
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import consentry
from conftest import PURPOSE, cli, cli_json

META = ["purpose", "position", "at", "tree_root", "members", "allowed"]


def meta(t: pa.Table) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}


def test_snapshot_is_typed_arrow_with_its_provenance(session, position):
    t = session.snapshot(PURPOSE, at=position)
    assert t.schema.field("member_id").type == pa.uint64()
    assert t.schema.field("allowed").type == pa.bool_()
    assert t.schema.field("reason").type == pa.string()
    m = meta(t)
    assert sorted(m) == sorted(f"consentry.{k}" for k in META)
    assert m["consentry.purpose"] == PURPOSE
    assert int(m["consentry.position"]) == position
    assert len(m["consentry.tree_root"]) == 64
    assert int(m["consentry.members"]) == t.num_rows > 0
    allowed = t.column("allowed").to_pylist()
    assert int(m["consentry.allowed"]) == sum(allowed) > 0
    # A reason exactly where a member is not allowed.
    reasons = t.column("reason").to_pylist()
    assert all((r is None) == a for r, a in zip(reasons, allowed))


def test_snapshot_equals_export_snapshot(session, data_dir, position, tmp_path):
    out = tmp_path / "snap.parquet"
    cli(data_dir, "ledger", "export-snapshot", "--purpose", PURPOSE, "--at", str(position), "--out", str(out))
    theirs = pq.read_table(out)
    ours = session.snapshot(PURPOSE, at=position)
    assert ours.select(["member_id", "allowed", "reason"]).equals(theirs.select(["member_id", "allowed", "reason"]))
    kv = {k.decode(): v.decode() for k, v in pq.ParquetFile(out).metadata.metadata.items()}
    for k in ["purpose", "position", "at", "tree_root"]:
        assert meta(ours)[f"consentry.{k}"] == kv[f"consentry.{k}"], k


def test_at_accepts_positions_times_and_strings(session, position):
    by_seq = session.snapshot(PURPOSE, at=position)
    assert meta(session.snapshot(PURPOSE, at=str(position))) == meta(by_seq)
    now = dt.datetime.now(dt.timezone.utc)
    latest = meta(session.snapshot(PURPOSE))
    assert meta(session.snapshot(PURPOSE, at=now))["consentry.position"] == latest["consentry.position"]
    assert meta(session.snapshot(PURPOSE, at=now.isoformat()))["consentry.position"] == latest["consentry.position"]
    with pytest.raises(consentry.BadInput, match="naive datetime"):
        session.snapshot(PURPOSE, at=dt.datetime.now())
    for bad in [True, -1, 3.5, "next tuesday"]:
        with pytest.raises(consentry.BadInput):
            session.snapshot(PURPOSE, at=bad)


def test_gate_manifest_equals_the_cli(session, data_dir, position, tmp_path):
    cli_out, py_out = tmp_path / "cli", tmp_path / "py"
    cli(data_dir, "gate", "--purpose", PURPOSE, "--at", str(position), "--out", str(cli_out))
    ours = session.gate(PURPOSE, py_out, at=position)
    theirs = json.loads((cli_out / "manifest.json").read_text())
    assert len(ours.pop("dataset_id")) == 64
    assert ours == json.loads((py_out / "manifest.json").read_text())
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        if key != "created":
            assert ours[key] == theirs[key], key
    assert ours["rows_out"] > 0 and ours["ledger"]["position"] == position


def test_gate_refuses_an_existing_output(session, position, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(consentry.ConsentryError) as e:
        session.gate(PURPOSE, tmp_path / "taken", at=position)
    assert e.value.kind in {"conflict", "bad_input"}
    assert "taken" in str(e.value)


def test_lineage_names_the_dataset_a_member_entered(session, position, tmp_path):
    m = session.gate(PURPOSE, tmp_path / "ds", at=position)
    member = session.dataset(tmp_path / "ds").to_table("members", columns=["member_id"]).column(0)[0].as_py()
    lineage = session.lineage(member)
    assert lineage["member"] == member
    assert m["dataset_id"] in [d["dataset"] for d in lineage["datasets"]]


def test_receipt_verifies_and_a_tampered_one_does_not(data_dir, position, tmp_path):
    receipt = tmp_path / "receipt.json"
    cli(data_dir, "ledger", "receipt", "--event", str(position), "--out", str(receipt))
    key = data_dir / "ledger.pub"
    ok = consentry.verify_receipt(receipt, key)
    assert isinstance(ok, dict) and ok
    assert consentry.verify_receipt(receipt.read_bytes(), key.read_bytes()) == ok
    text = receipt.read_text()
    # The controller's name is signed: change one letter.
    tampered = text.replace('"pii_controller": "E', '"pii_controller": "X', 1)
    assert tampered != text
    with pytest.raises(consentry.IntegrityError) as e:
        consentry.verify_receipt(tampered.encode(), key)
    assert e.value.kind == "integrity"
    with pytest.raises(consentry.BadInput):
        consentry.verify_receipt(b"not json", key)


def test_errors_map_to_exception_classes(data_dir, tmp_path):
    with pytest.raises(consentry.NotFound, match="does not exist") as e:
        consentry.open(tmp_path / "missing")
    assert isinstance(e.value, LookupError) and e.value.kind == "not_found"
    (tmp_path / "empty").mkdir()
    with pytest.raises(consentry.NotFound, match="no ledger"):
        consentry.open(tmp_path / "empty")
    s = consentry.open(data_dir)
    with pytest.raises(consentry.BadInput, match="unknown purpose") as e:
        s.snapshot("train_ai_system.nope")
    assert isinstance(e.value, ValueError) and isinstance(e.value, consentry.ConsentryError)
    assert e.value.kind == "bad_input"
    for cls in [consentry.Conflict, consentry.IntegrityError, consentry.Unavailable, consentry.Forbidden]:
        assert issubclass(cls, consentry.ConsentryError)


def test_a_session_serves_many_threads(session, position):
    expected = session.snapshot(PURPOSE, at=position)
    with ThreadPoolExecutor(4) as pool:
        tables = list(pool.map(lambda _: session.snapshot(PURPOSE, at=position), range(8)))
    assert all(t.equals(expected) for t in tables)
    assert threading.active_count() >= 1
