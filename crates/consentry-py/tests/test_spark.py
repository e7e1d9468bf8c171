"""The gate on Apache Spark (``consentry.spark``), on a local session with two workers: the dataset a Spark job writes
has the manifest ``consentry gate`` writes on one machine (same counts, row and member commitments), whatever the
partitioning and row order, and ``consentry gate verify`` accepts it; bad input fails clearly and leaves nothing
that claims to be a dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, cli

pyspark = pytest.importorskip("pyspark")

import consentry  # noqa: E402
import consentry.spark  # noqa: E402

PURPOSES = ["train_ai_system.job_recommendations", "train_ai_system.reply_suggestions"]
# What a Spark-written dataset may differ in from a single-machine one: its data files and when it was made.
OWN = {"files", "created", "dataset_id"}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    s = (
        SparkSession.builder.master("local[2]")
        .appName("consentry-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.task.maxFailures", "1")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def shuffled(spark, snap, seed: int):
    """Every table the purpose uses, read from its declared files, in a random order over several partitions."""
    from pyspark.sql import functions as F

    return {
        t: spark.read.parquet(*map(str, snap.source_files(t))).orderBy(F.rand(seed)).repartition(3 + i)
        for i, t in enumerate(snap.tables)
    }


def single_machine(data: Path, purpose: str, position: int, out: Path) -> dict:
    cli(data, "gate", "--purpose", purpose, "--at", str(position), "--out", str(out))
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("purpose", PURPOSES)
def test_manifest_equals_the_single_machine_gate(spark, own_data_dir: Path, position: int, tmp_path: Path, purpose):
    session = consentry.open(own_data_dir)
    snap = session.gate_snapshot(purpose, at=position)
    work = tmp_path / "work"
    work.mkdir()
    out = work / "spark-ds"
    m = consentry.spark.write_dataset(spark, snap, out, tables=shuffled(spark, snap, 7))
    assert m["dataset_id"]
    expected = single_machine(own_data_dir, purpose, position, work / "cli-ds")
    for key in sorted(set(expected) | set(m)):
        if key not in OWN:
            assert m.get(key) == expected.get(key), key
    assert m["rows_out"] > 0 and m["members"]["count"] > 0
    assert sum(f["rows"] for f in m["files"]) == m["rows_out"]
    verify = cli(own_data_dir, "gate", "verify", str(out), check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # Nothing of the job is left beside the dataset.
    assert sorted(p.name for p in work.iterdir()) == ["cli-ds", "spark-ds"]


def test_transform_is_lazy_and_schema_correct(spark, session, position: int):
    from pyspark.sql.types import DecimalType

    snap = session.gate_snapshot(PURPOSES[0], at=position)
    table = "job_activity" if "job_activity" in snap.tables else snap.tables[0]
    df = spark.read.parquet(*map(str, snap.source_files(table)))
    gated = df.transform(consentry.spark.gate(table=table, purpose=PURPOSES[0], snapshot=snap))
    assert gated.columns == snap.output_columns(table)
    assert all(f.nullable for f in gated.schema.fields)
    # The engine's own types come back (Spark reads uint64 ids as decimal(20,0)).
    assert isinstance(gated.schema["member_id"].dataType, DecimalType)
    assert "mapinarrow" in gated._jdf.queryExecution().toString().lower()
    # The rows are those the gate keeps.
    snapshot = session.snapshot(PURPOSES[0], at=position).to_pydict()
    ok = {m for m, a in zip(snapshot["member_id"], snapshot["allowed"]) if a}
    rows = gated.select("member_id").collect()
    assert rows and all(int(r.member_id) in ok for r in rows)
    assert gated.count() == df.filter(df.member_id.isin(list(ok))).count()


def test_a_table_not_declared_is_refused(session, position: int):
    snap = session.gate_snapshot(PURPOSES[0], at=position)
    with pytest.raises(consentry.BadInput, match="no_such_table"):
        consentry.spark.gate(table="no_such_table", snapshot=snap)
    with pytest.raises(consentry.BadInput, match="purpose"):
        consentry.spark.gate(table=snap.tables[0], purpose=PURPOSES[1], snapshot=snap)


def test_a_column_of_another_type_is_refused(spark, session, position: int, tmp_path: Path):
    from pyspark.sql import functions as F

    snap = session.gate_snapshot(PURPOSES[0], at=position)
    t = snap.tables[0]
    tables = shuffled(spark, snap, 1)
    tables[t] = tables[t].withColumn("member_id", F.concat(F.lit("m"), F.col("member_id").cast("string")))
    out = tmp_path / "ds"
    with pytest.raises(consentry.BadInput, match="member_id"):
        consentry.spark.write_dataset(spark, snap, out, tables=tables)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_column_is_refused_before_any_task(spark, session, position: int, tmp_path: Path):
    snap = session.gate_snapshot(PURPOSES[0], at=position)
    t = snap.tables[0]
    df = spark.read.parquet(*map(str, snap.source_files(t))).drop("member_id")
    with pytest.raises(consentry.BadInput, match="member_id"):
        df.transform(consentry.spark.gate(table=t, snapshot=snap))
    with pytest.raises(consentry.BadInput, match="member_id"):
        consentry.spark.write_dataset(spark, snap, tmp_path / "ds", tables={t: df})
    assert list(tmp_path.iterdir()) == []


def test_a_partition_failing_midway_leaves_no_dataset(spark, session, position: int, tmp_path: Path):
    from pyspark.sql import functions as F

    snap = session.gate_snapshot(PURPOSES[0], at=position)
    t = snap.tables[0]
    tables = shuffled(spark, snap, 3)
    df = tables[t]
    tables[t] = df.withColumn(
        "member_id", F.when(F.spark_partition_id() == 1, F.raise_error(F.lit("disk on fire"))).otherwise(F.col("member_id"))
    )
    with pytest.raises(consentry.ConsentryError, match="nothing was written"):
        consentry.spark.write_dataset(spark, snap, tmp_path / "ds", tables=tables)
    assert list(tmp_path.iterdir()) == []


def test_rows_missing_from_the_input_are_refused(spark, session, position: int, tmp_path: Path):
    snap = session.gate_snapshot(PURPOSES[0], at=position)
    tables = shuffled(spark, snap, 5)
    t = snap.tables[0]
    tables[t] = tables[t].limit(10)
    with pytest.raises(consentry.BadInput, match="source rows"):
        consentry.spark.write_dataset(spark, snap, tmp_path / "ds", tables=tables)
    assert list(tmp_path.iterdir()) == []


def test_a_snapshot_from_another_ledger_is_refused(spark, session, position: int, tmp_path: Path):
    other = tmp_path / "other"
    cli(other, "synth", "--members", "200", "--seed", "99")
    cli(other, "ledger", "init")
    cli(other, "ledger", "import", "--choices", str(other / "network" / "consent_choices.parquet"))
    snap = session.gate_snapshot(PURPOSES[0], at=position)
    out = tmp_path / "ds"
    with pytest.raises(consentry.BadInput, match="different ledger"):
        consentry.spark.write_dataset(spark, snap, out, tables=shuffled(spark, snap, 2), session=consentry.open(other))
    assert not out.exists()


def test_an_edited_snapshot_blob_is_refused(session, position: int):
    snap = session.gate_snapshot(PURPOSES[0], at=position)
    blob = bytearray(snap.to_bytes())
    assert consentry.GateSnapshot.from_bytes(bytes(blob)).digest == snap.digest
    blob[len(blob) // 2] ^= 1
    with pytest.raises(consentry.ConsentryError):
        consentry.GateSnapshot.from_bytes(bytes(blob))


def test_an_existing_output_is_refused(spark, session, position: int, tmp_path: Path):
    snap = session.gate_snapshot(PURPOSES[0], at=position)
    (tmp_path / "ds").mkdir()
    with pytest.raises(consentry.ConsentryError, match="already exists"):
        consentry.spark.write_dataset(spark, snap, tmp_path / "ds")


CONNECT = r"""
import json, os, sys
os.environ["PYSPARK_PYTHON"] = sys.executable
from pyspark.sql import SparkSession
import consentry, consentry.spark
spark = SparkSession.builder.remote("local[2]").getOrCreate()
assert type(spark).__module__.startswith("pyspark.sql.connect"), type(spark)
data, purpose, position, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
session = consentry.open(data)
snap = session.gate_snapshot(purpose, at=position)
t = snap.tables[0]
n = spark.read.parquet(*map(str, snap.source_files(t))).transform(consentry.spark.gate(table=t, snapshot=snap)).count()
m = consentry.spark.write_dataset(spark, snap, out)
print(json.dumps({"table": t, "count": n, "manifest": m}))
spark.stop()
"""


def test_spark_connect(own_data_dir: Path, position: int, tmp_path: Path):
    """The same job through Spark Connect (a local Connect server), in its own process and JVM."""
    pytest.importorskip("grpc")
    purpose = PURPOSES[0]
    r = subprocess.run(
        [sys.executable, "-c", CONNECT, str(own_data_dir), purpose, str(position), str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    expected = single_machine(own_data_dir, purpose, position, tmp_path / "cli-ds")
    for key in sorted(set(expected) | set(got["manifest"])):
        if key not in OWN:
            assert got["manifest"].get(key) == expected.get(key), key
    assert got["count"] == expected["tables"][got["table"]]["rows_out"] > 0


def test_openlineage_events_of_a_spark_gate(spark, own_data_dir: Path, position: int, tmp_path: Path):
    events = tmp_path / "events.jsonl"
    session = consentry.open(own_data_dir, openlineage=str(events))
    snap = session.gate_snapshot(PURPOSES[0], at=position)
    out = tmp_path / "ds"
    m = consentry.spark.write_dataset(spark, snap, out)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["eventType"] for e in lines] == ["START", "COMPLETE"]
    assert lines[0]["run"]["runId"] == lines[1]["run"]["runId"]
    facet = lines[1]["outputs"][0]["facets"]["consentry_manifest"]
    assert facet["members"]["commitment"] == m["members"]["commitment"]
