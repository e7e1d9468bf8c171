"""consentry.Dataset: checked against its manifest before anything is read; withdrawals since the cut warned about."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

import consentry
from conftest import PURPOSE, cli


@pytest.fixture(scope="module")
def gated(data_dir: Path, position: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gated") / "ds"
    consentry.open(data_dir).gate(PURPOSE, out, at=position)
    return out


@pytest.fixture
def copy(gated: Path, tmp_path: Path) -> Path:
    """A private copy of the gated dataset, to alter."""
    c = tmp_path / "ds"
    shutil.copytree(gated, c)
    return c


def open_quietly(session, path) -> consentry.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error", consentry.ConsentWarning)
        return session.dataset(path)


def test_a_clean_dataset_opens_and_reads(session, gated):
    d = open_quietly(session, gated)
    m = d.manifest
    assert d.purpose == PURPOSE and d.withdrawn == 0 and d.past_deadline == 0
    assert d.members == m["members"]["count"] > 0
    assert len(d.manifest_hash) == 64
    assert d.tables == sorted({f["path"].split("/")[0] for f in m["files"]})
    assert all(os.path.isfile(f) for f in d.files) and len(d.files) == len(m["files"])
    for t in d.tables:
        table = d.to_table(t)
        assert isinstance(table, pa.Table)
        assert table.num_rows == m["tables"][t]["rows_out"]
        assert sum(b.num_rows for b in d.to_batches(t, batch_size=100)) == table.num_rows
        assert isinstance(d.to_pyarrow_dataset(t), pads.Dataset)
    members = d.to_table("members", columns=["member_id"])
    assert members.column_names == ["member_id"] and members.num_rows == d.members
    with pytest.raises(consentry.BadInput, match="say which one"):
        d.to_table()
    with pytest.raises(consentry.BadInput, match="no table"):
        d.to_table("posts")


def test_module_level_dataset_checks_files_and_warns_consent_was_not_checked(gated, data_dir, monkeypatch):
    monkeypatch.delenv("CONSENTRY_DATA", raising=False)
    with pytest.warns(consentry.ConsentWarning, match="NOT checked"):
        d = consentry.Dataset(gated)
    assert d.withdrawn is None
    monkeypatch.setenv("CONSENTRY_DATA", str(data_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("error", consentry.ConsentWarning)
        assert consentry.Dataset(gated).withdrawn == 0


def first_file(d: Path, table: str = "job_activity") -> Path:
    return sorted((d / table).iterdir())[0]


def test_a_changed_byte_is_an_integrity_error_naming_the_file(session, copy):
    f = first_file(copy)
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x01
    f.write_bytes(bytes(b))
    with pytest.raises(consentry.IntegrityError, match=f.name) as e:
        session.dataset(copy)
    assert e.value.kind == "integrity"


def test_an_added_or_removed_file_is_an_integrity_error(session, copy):
    extra = copy / "job_activity" / "extra.parquet"
    shutil.copy(first_file(copy), extra)
    with pytest.raises(consentry.IntegrityError, match="extra.parquet"):
        session.dataset(copy)
    extra.unlink()
    gone = first_file(copy, "jobs")
    gone.unlink()
    with pytest.raises(consentry.IntegrityError, match=gone.name):
        consentry.Dataset(copy, session=session)


def test_an_edited_member_bitmap_is_an_integrity_error(session, copy):
    f = copy / "members.roaring"
    b = bytearray(f.read_bytes())
    b[-1] ^= 0x01
    f.write_bytes(bytes(b))
    with pytest.raises(consentry.IntegrityError, match="members.roaring"):
        session.dataset(copy)


def test_withdrawals_since_the_cut_are_warned_with_counts(own_data_dir, tmp_path):
    s = consentry.open(own_data_dir)
    out = tmp_path / "ds"
    s.gate(PURPOSE, out)
    members = open_quietly(s, out).to_table("members", columns=["member_id"]).column(0).to_pylist()
    a, b, c = members[:3]
    now = int(time.time())
    cli(own_data_dir, "ledger", "append", "--member", str(a), "--purpose", PURPOSE, "--action", "withdraw")
    # Withdrawn three days ago (recorded now): past the 24 h unlearning deadline.
    cli(own_data_dir, "ledger", "append", "--member", str(b), "--purpose", PURPOSE, "--action", "withdraw",
        "--event-time", str(now - 3 * 86400))
    # Withdrawn and granted again: allowed, so not counted.
    cli(own_data_dir, "ledger", "append", "--member", str(c), "--purpose", PURPOSE, "--action", "withdraw")
    cli(own_data_dir, "ledger", "append", "--member", str(c), "--purpose", PURPOSE, "--action", "grant")
    with pytest.warns(consentry.ConsentWarning, match=r"2 of its \d+ members have WITHDRAWN") as w:
        d = s.dataset(out)
    assert (d.withdrawn, d.past_deadline) == (2, 1)
    warning = next(x.message for x in w if isinstance(x.message, consentry.ConsentWarning))
    assert (warning.withdrawn, warning.past_deadline) == (2, 1)
    assert "1 of them more than the 24 h unlearning deadline ago" in str(warning)


def test_a_dataset_from_another_ledger_is_refused(gated, tmp_path):
    other = tmp_path / "other"
    cli(other, "synth", "--members", "50", "--seed", "7")
    cli(other, "ledger", "init")
    net = other / "network"
    cli(other, "ledger", "import", "--choices", str(net / "consent_choices.parquet"), "--members", str(net / "members.parquet"))
    with pytest.raises(consentry.IntegrityError, match="not cut from the ledger"):
        consentry.open(other).dataset(gated)
