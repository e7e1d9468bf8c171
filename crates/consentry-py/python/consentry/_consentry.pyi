"""Type stubs of the native module ``consentry._consentry`` (Rust, PyO3); import from ``consentry`` instead."""

import datetime
import os
from typing import Any, final

import pyarrow

from ._dataset import Dataset

__version__: str

class ConsentryError(Exception):
    """Base class of every Consentry error."""

    kind: str
    """The app layer's error kind: ``bad_input``, ``not_found``, ``conflict``, ``integrity``, ``unavailable``, …"""

class BadInput(ConsentryError, ValueError):
    """The caller's input is wrong (an argument, a file, a purpose): fix it and retry."""

class NotFound(ConsentryError, LookupError):
    """What was asked for does not exist (a data directory, a ledger, a member, a dataset)."""

class Conflict(ConsentryError):
    """The request contradicts what is recorded (an output that exists, an idempotency key reused)."""

class IntegrityError(ConsentryError):
    """Evidence does not check out: a signature, a hash, a commitment, a dataset altered after gating."""

class Unavailable(ConsentryError):
    """A dependency is down or unreachable (PostgreSQL, the file system)."""

class Forbidden(ConsentryError):
    """The caller may not do this (or did not prove who they are)."""

At = int | str | datetime.datetime | datetime.date | None
"""A ledger position: a sequence number, an aware datetime, a date (midnight UTC), a string ``--at`` accepts
(RFC 3339, YYYY-MM-DD, Unix seconds), or ``None`` (now, the whole log)."""

Path = str | os.PathLike[str]

def open(data_dir: Path, database: str | None = None, openlineage: str | None = None) -> Session:
    """Opens a data directory and its ledger (SQLite inside it, or PostgreSQL at ``database``).

    Raises :class:`NotFound` when the directory does not exist or holds no ledger. ``openlineage`` (a ``.jsonl``
    file or an ``http://`` collector) sends OpenLineage run events for ``gate`` and the Spark gate.
    """

def verify_receipt(receipt: Path | bytes, public_key: Path | bytes) -> dict[str, Any]:
    """Verifies a consent receipt offline against the ledger's public key (paths, or contents as bytes).

    Returns the receipt as a dict; raises :class:`IntegrityError` naming the failed check.
    """

def _check_dataset_files(path: Path) -> dict[str, Any]: ...

@final
class Session:
    """A data directory and its ledger, opened once; safe to share between threads (the GIL is released during I/O)."""

    @property
    def data_dir(self) -> str:
        """The data directory."""

    def snapshot(self, purpose: str, at: At = None) -> pyarrow.Table:
        """Effective consent of every member for ``purpose`` at ``at``: ``member_id`` (uint64), ``allowed`` (bool),
        ``reason`` (string, null when allowed). The schema metadata carries ``consentry.purpose``,
        ``consentry.position``, ``consentry.at``, ``consentry.tree_root``, ``consentry.members`` and
        ``consentry.allowed``."""

    def lineage(self, member_id: int) -> dict[str, Any]:
        """Everything the registry knows about one member: datasets, model versions and shards, events, requests."""

    def gate(
        self,
        purpose: str,
        out: Path,
        at: At = None,
        sources: Path | None = None,
        shards: int = 8,
        base: Path | None = None,
        threads: int | None = None,
    ) -> dict[str, Any]:
        """Materialises ``purpose``'s training set into the new directory ``out`` and registers it, as
        ``consentry gate`` does. Returns the manifest as a dict, plus ``dataset_id``."""
    def gate_snapshot(
        self,
        purpose: str,
        at: At = None,
        sources: Path | None = None,
        redact: bool = True,
        shards: int = 8,
        base: Path | None = None,
    ) -> GateSnapshot:
        """Cuts the snapshot a Spark job gates by: every member's answer for ``purpose`` at ``at``, the policy's
        categories and the declared tables' plans, sealed for the workers (see ``consentry.spark``)."""
    def gate_staging(self, out: Path, job: str) -> Path:
        """Creates the directory a distributed gate's partitions write into (refused when ``out`` exists)."""
    def gate_finish(self, snapshot: GateSnapshot, partials: list[bytes], staging: Path, out: Path) -> dict[str, Any]:
        """Checks the snapshot against this ledger and that the partials cover every source row, assembles the
        dataset at ``out`` and registers it. Returns the manifest as a dict, plus ``dataset_id``."""

    def dataset(self, path: Path) -> Dataset:
        """Opens a gated dataset after checking it against its manifest and this ledger."""

    def _check_dataset(self, path: Path) -> dict[str, Any]: ...

@final
class Span:
    """One detection: ``kind`` (``EMAIL``, ``PERSON``, …), CHARACTER offsets ``start``/``end`` into the string
    (``text[start:end]``), the ``text`` and the detector's ``score``."""

    @property
    def kind(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def score(self) -> float: ...

@final
class Redactor:
    """Redacts PII with the gate's detector (plus ``member_names``); thread-safe, releases the GIL."""

    def __init__(self, member_names: list[str] | tuple[str, ...] = ()) -> None: ...
    def redact(self, text: str) -> str:
        """``text`` with each detection replaced by its typed placeholder, as the gate writes free text."""

    def spans(self, text: str) -> list[Span]:
        """Every detection in ``text``, in order, with character offsets."""

    def redact_array(self, array: pyarrow.Array) -> pyarrow.Array:
        """Redacts a string or large_string array on every core; same type and length, nulls kept."""


class GateSnapshot:
    """One purpose's gate cut from the ledger once (consent answers at one position, the policy's categories, the
    declared tables' plans); Spark ships it to the workers as sealed bytes."""

    @staticmethod
    def from_bytes(data: bytes) -> GateSnapshot: ...
    def to_bytes(self) -> bytes: ...
    @property
    def digest(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def at(self) -> int: ...
    @property
    def tree_root(self) -> str: ...
    @property
    def allowed(self) -> int: ...
    @property
    def members(self) -> int: ...
    @property
    def redact(self) -> bool: ...
    @property
    def declaration_hash(self) -> str: ...
    @property
    def tables(self) -> list[str]: ...
    @property
    def session(self) -> Session | None: ...
    def check_table(self, table: str) -> None: ...
    def output_columns(self, table: str) -> list[str]: ...
    def source_files(self, table: str) -> list[Path]: ...
    def check_sources(self, path: Path) -> None: ...

class PartitionGate:
    """The gate over one partition of one table (what each Spark task runs)."""

    def __init__(
        self, snapshot: GateSnapshot, table: str, write_dir: Path | None = None, part_name: str | None = None
    ) -> None: ...
    def push(self, batch: pyarrow.RecordBatch) -> pyarrow.RecordBatch:
        """Gates one batch; the kept rows, the purpose's columns only, in the input's (engine's) types."""
    def feed(self, batch: pyarrow.RecordBatch) -> int:
        """Gates one batch of a partition that only writes; returns the number of rows kept."""
    def finish(self) -> bytes:
        """Ends the partition (closes its file) and returns its partial for the driver."""
