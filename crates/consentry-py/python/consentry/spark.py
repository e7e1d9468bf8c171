"""The consent gate on Apache Spark: the same rules as ``consentry gate``, applied inside ``mapInArrow``.

Two entry points:

* :func:`gate` — a DataFrame transform (``df.transform(consentry.spark.gate(...))``): lazy and
  schema-correct, nothing is collected to the driver. Each partition runs the gate's own Rust code
  on Arrow batches: every party must allow the purpose (droppable parties are nulled instead),
  only the purpose's categories pass, undeclared columns never pass, free text is redacted.
* :func:`write_dataset` — the job that writes a verifiable dataset: each partition writes its gated
  rows as Parquet with the gate's writer and returns its partial counts and row commitment (a few
  hundred bytes); the driver checks that the partials cover every source row, assembles the manifest
  (equal to the one ``consentry gate`` writes on one machine for the same sources and ledger
  position), renames the dataset into place and registers it. ``consentry gate verify`` accepts it.

The consent snapshot travels inside the gate's specification, which Spark ships to the executors
once per job (large task closures are broadcast); each Python worker parses it and builds the
redaction detector once, whatever the number of partitions it runs.

Works with a classic session and with Spark Connect (no RDD API is used). On Databricks, install the
``consentry`` wheel on the cluster (a cluster library or ``%pip install``) and give ``out`` on a path
every executor can write (a Unity Catalog volume, ``/Volumes/...``, or ``/dbfs/...``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import pyarrow as pa

from ._consentry import BadInput, ConsentryError, GateSnapshot, PartitionGate

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["gate", "write_dataset", "GateSnapshot"]

# Per Python worker process: parsed specifications by digest (each holds its redaction detector).
_SPECS: dict[str, GateSnapshot] = {}


def _spec(blob: bytes, digest: str) -> GateSnapshot:
    spec = _SPECS.get(digest)
    if spec is None:
        spec = GateSnapshot.from_bytes(blob)
        _SPECS.clear()  # one job's specification at a time: a worker never holds two snapshots
        _SPECS[digest] = spec
    return spec


def _resolve(snapshot, purpose: str | None, sources) -> GateSnapshot:
    if not isinstance(snapshot, GateSnapshot):
        raise BadInput(
            "snapshot must be what Session.gate_snapshot(purpose, at=..., sources=...) returns, "
            f"not {type(snapshot).__name__}"
        )
    if purpose is not None and purpose != snapshot.purpose:
        raise BadInput(f"purpose `{purpose}` differs from the snapshot's purpose `{snapshot.purpose}`")
    if sources is not None:
        snapshot.check_sources(os.fspath(sources))
    return snapshot


def _output_schema(df: "DataFrame", spec: GateSnapshot, table: str):
    from pyspark.sql.types import StructField, StructType

    columns = spec.output_columns(table)
    fields = {f.name: f for f in df.schema.fields}
    missing = [c for c in columns if c not in fields]
    if missing:
        raise BadInput(
            f"table `{table}`: the DataFrame has no column {', '.join('`' + c + '`' for c in missing)} "
            f"(declared in the sources); its columns are {', '.join(df.columns)}"
        )
    return StructType([StructField(c, fields[c].dataType, True) for c in columns])


def gate(
    table: str,
    purpose: str | None = None,
    snapshot=None,
    sources: str | os.PathLike | None = None,
) -> Callable[["DataFrame"], "DataFrame"]:
    """A DataFrame transform that keeps only what the purpose may use of ``table``.

    ``snapshot`` is ``Session.gate_snapshot(purpose, at=..., sources=...)``: the ledger state every
    partition is judged by, with the declaration it was cut with (``sources``, when given, must be that
    same declaration; ``purpose``, when given, the snapshot's).
    The result has the declared columns the purpose allows, in the gate's order, all nullable; rows
    are kept only where every party allowed the purpose; free text is redacted.
    """
    if snapshot is None:
        raise BadInput("gate() needs snapshot=Session.gate_snapshot(purpose, at=..., sources=...)")
    spec = _resolve(snapshot, purpose, sources)
    spec.check_table(table)
    blob, digest = spec.to_bytes(), spec.digest

    def transform(df: "DataFrame") -> "DataFrame":
        schema = _output_schema(df, spec, table)

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            pg = PartitionGate(_spec(blob, digest), table)
            for b in batches:
                out = pg.push(b)
                if out.num_rows:
                    yield out

        # Only the columns the gate reads cross to the Python workers.
        return df.select(*spec.output_columns(table)).mapInArrow(run, schema)

    return transform


def write_dataset(
    spark: "SparkSession",
    snapshot,
    out: str | os.PathLike,
    tables: Mapping[str, "DataFrame"] | None = None,
    *,
    sources: str | os.PathLike | None = None,
    session=None,
) -> dict:
    """Gates every table the purpose uses into a dataset at ``out``, with its manifest; returns the manifest.

    ``tables`` maps table names to DataFrames; a table not given is read from its declared files.
    ``session`` (default: the snapshot's) must hold the ledger the snapshot was cut from: the driver
    recomputes the snapshot there and refuses one from a different ledger. Nothing appears at ``out``
    unless every partition of every table succeeded and the partials cover every source row.
    """
    spec = _resolve(snapshot, None, sources)
    session = session if session is not None else spec.session
    if session is None:
        raise BadInput("write_dataset() needs session= for a snapshot rebuilt from bytes")
    tables = dict(tables or {})
    for name in tables:
        spec.check_table(name)
    out = os.path.abspath(os.fspath(out))
    staging = os.fspath(session.gate_staging(out, f"spark-{uuid.uuid4().hex[:12]}"))
    blob, digest = spec.to_bytes(), spec.digest
    partials: list[bytes] = []
    try:
        for name in spec.tables:
            df = tables.get(name)
            if df is None:
                df = spark.read.parquet(*map(str, spec.source_files(name)))
            _output_schema(df, spec, name)  # a missing column fails here, before any task runs
            df = df.select(*spec.output_columns(name))

            def run(batches, name=name):
                from pyspark import TaskContext

                ctx = TaskContext.get()
                part = ctx.partitionId() if ctx is not None else 0
                pg = PartitionGate(_spec(blob, digest), name, write_dir=staging, part_name=f"part-{part:05}")
                for b in batches:
                    pg.feed(b)
                yield pa.record_batch({"partial": pa.array([pg.finish()], pa.binary())})

            partials.extend(r["partial"] for r in df.mapInArrow(run, "partial binary").collect())
        return session.gate_finish(spec, partials, staging, out)
    except BaseException as e:
        _remove(staging)
        if isinstance(e, ConsentryError) or not type(e).__module__.startswith(("pyspark", "py4j")):
            raise
        raise _from_worker(e, out) from e


def _remove(staging: str) -> None:
    """Removes the staging directory of a failed job. Tasks of the aborted job may still be finishing a part file
    (they never recreate the directory itself), so removal is retried until it stays gone."""
    for _ in range(50):
        shutil.rmtree(staging, ignore_errors=True)
        if not os.path.exists(staging):
            time.sleep(0.1)
            if not os.path.exists(staging):
                return
        time.sleep(0.1)


# `consentry.BadInput: message` (or `_consentry.…`) in a worker's traceback, as Spark relays it.
_WORKER_ERROR = re.compile(r"(?:consentry\.)?(?:_consentry\.)?(BadInput|NotFound|Conflict|IntegrityError|Unavailable|Forbidden|ConsentryError): (.+)")


def _from_worker(e: BaseException, out: str) -> ConsentryError:
    """The consentry error a worker raised (Spark relays it as text), or a ConsentryError saying the job failed."""
    from . import _consentry

    found = _WORKER_ERROR.findall(str(e))
    if found:
        kind, message = found[-1]
        return getattr(_consentry, kind)(f"{message.strip()} (in a Spark task; nothing was written to {out})")
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ConsentryError(f"the Spark job gating into {out} failed, so nothing was written: {first}")
