"""A gated dataset, opened only after it checks out against its manifest (the check ``consentry train`` makes) and
read with pyarrow, so pandas, Polars, PyTorch or scikit-learn pipelines take it from there."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import _consentry

if TYPE_CHECKING:
    import pyarrow
    import pyarrow.dataset


class ConsentWarning(UserWarning):
    """Members of a dataset have withdrawn consent for its purpose since it was cut (or consent could not be checked).

    ``withdrawn`` and ``past_deadline`` carry the counts (``None`` when consent was not checked).
    """

    def __init__(self, message: str, withdrawn: int | None = None, past_deadline: int | None = None) -> None:
        super().__init__(message)
        self.withdrawn = withdrawn
        self.past_deadline = past_deadline


# Loud: shown every time a dataset is opened, not once per call site (a caller may still filter it after import).
warnings.filterwarnings("always", category=ConsentWarning)


def _hours(secs: int) -> str:
    return f"{secs // 3600} h" if secs % 3600 == 0 else f"{secs} s"


class Dataset:
    """A dataset ``consentry gate`` wrote, checked before anything is read.

    Opening checks every data file's size, BLAKE3, rows and row commitment and the member bitmap against
    ``manifest.json`` (a dataset edited after gating raises :class:`consentry.IntegrityError` naming the file), and,
    with a session (``session=`` or ``CONSENTRY_DATA`` in the environment), that it was cut from that ledger and how
    many of its members have withdrawn consent for its purpose since — a :class:`ConsentWarning` names the counts, and
    how many are past the unlearning deadline. Without a session consent is not checked, and that is warned about too.

    The files are checked when the dataset is opened; read it soon after, and open it again after any change.
    """

    def __init__(self, path: str | os.PathLike[str], session: _consentry.Session | None = None) -> None:
        path = os.fspath(path)
        if session is None and os.environ.get("CONSENTRY_DATA"):
            session = _consentry.open(os.environ["CONSENTRY_DATA"], os.environ.get("CONSENTRY_DATABASE") or None)
        self._session = session
        if session is None:
            info = _consentry._check_dataset_files(path)
        else:
            info = session._check_dataset(path)
        self._dir: str = os.fspath(info["dir"])
        self._manifest: dict[str, Any] = info["manifest"]
        self._manifest_hash: str = info["manifest_hash"]
        self._members: int = info["members"]
        self._withdrawn: int | None = info.get("withdrawn")
        self._past_deadline: int | None = info.get("past_deadline")
        purpose = self.purpose
        if session is None:
            warnings.warn(
                ConsentWarning(
                    f"dataset {path} ({purpose}): its files match its manifest, but consent since it was cut was NOT "
                    "checked; pass session=consentry.open(DATA) (or set CONSENTRY_DATA) to count members who have "
                    "withdrawn since"
                ),
                stacklevel=2,
            )
        elif self._withdrawn:
            past = self._past_deadline or 0
            deadline = _hours(int(info["deadline_secs"]))
            warnings.warn(
                ConsentWarning(
                    f"dataset {path} ({purpose}, cut at ledger position {self._manifest['ledger']['position']}): "
                    f"{self._withdrawn} of its {self._members} members have WITHDRAWN consent for {purpose} since, "
                    f"{past} of them more than the {deadline} unlearning deadline ago; their data must not be used "
                    "— gate a fresh dataset (Session.gate) and train on that",
                    withdrawn=self._withdrawn,
                    past_deadline=past,
                ),
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return f"consentry.Dataset({self._dir!r}, purpose={self.purpose!r}, members={self._members})"

    @property
    def path(self) -> str:
        """The dataset's directory."""
        return self._dir

    @property
    def manifest(self) -> dict[str, Any]:
        """``manifest.json`` as checked: purpose, ledger position and tree root, tables, counts, commitments, files."""
        return self._manifest

    @property
    def manifest_hash(self) -> str:
        """BLAKE3 of ``manifest.json``: the dataset's id in the lineage registry, what a model names as its input."""
        return self._manifest_hash

    @property
    def purpose(self) -> str:
        """The purpose the dataset was gated for; use it for nothing else."""
        return str(self._manifest["purpose"])

    @property
    def members(self) -> int:
        """How many members the dataset holds data of."""
        return self._members

    @property
    def withdrawn(self) -> int | None:
        """Members who have withdrawn consent for the purpose since the cut (``None``: not checked, no session)."""
        return self._withdrawn

    @property
    def past_deadline(self) -> int | None:
        """Of :attr:`withdrawn`, those past the unlearning deadline (``None``: not checked)."""
        return self._past_deadline

    @property
    def tables(self) -> list[str]:
        """The tables that have data files, sorted."""
        return sorted({f["path"].split("/", 1)[0] for f in self._manifest["files"]})

    @property
    def files(self) -> list[str]:
        """Every checked data file, absolute paths in manifest order."""
        return [os.path.join(self._dir, f["path"]) for f in self._manifest["files"]]

    def table_files(self, table: str | None = None) -> list[str]:
        """The checked data files of one table (``None``: the only table)."""
        table = self._table(table)
        prefix = table + "/"
        return [os.path.join(self._dir, f["path"]) for f in self._manifest["files"] if f["path"].startswith(prefix)]

    def _table(self, table: str | None) -> str:
        tables = self.tables
        if table is None:
            if len(tables) == 1:
                return tables[0]
            raise _consentry.BadInput(f"dataset {self._dir} has tables {', '.join(tables)}: say which one (table=…)")
        if table not in tables:
            raise _consentry.BadInput(
                f"dataset {self._dir} has no table {table!r}; it has {', '.join(tables) or 'none'}"
            )
        return table

    def to_pyarrow_dataset(self, table: str | None = None) -> pyarrow.dataset.Dataset:
        """A ``pyarrow.dataset`` over exactly the checked Parquet files of ``table`` (filter and project lazily)."""
        import pyarrow.dataset as ds

        return ds.dataset(self.table_files(table), format="parquet")

    def to_table(self, table: str | None = None, columns: Sequence[str] | None = None) -> pyarrow.Table:
        """``table`` (``None``: the only one) as a ``pyarrow.Table``, all columns or ``columns``."""
        return self.to_pyarrow_dataset(table).to_table(columns=list(columns) if columns is not None else None)

    def to_batches(
        self, table: str | None = None, columns: Sequence[str] | None = None, batch_size: int = 65_536
    ) -> Iterator[pyarrow.RecordBatch]:
        """``table`` as a stream of record batches of at most ``batch_size`` rows, for data larger than memory."""
        cols = list(columns) if columns is not None else None
        yield from self.to_pyarrow_dataset(table).to_batches(columns=cols, batch_size=batch_size)
