"""Consentry for Python: train on member data only where each member explicitly allowed it, and prove it.

``consentry.open(data_dir)`` opens a data directory and its consent ledger as a :class:`Session`:
``snapshot(purpose)`` is effective consent of every member as a ``pyarrow.Table``, ``gate(purpose, out)``
materialises a purpose's training set exactly as ``consentry gate`` does, ``lineage(member_id)`` says where a
member's data went, and ``dataset(path)`` opens a gated dataset only after checking it against its manifest.
:class:`Redactor` redacts PII as the gate does, from strings or whole Arrow arrays. Errors are
:class:`ConsentryError` subclasses, one per kind of failure. ``consentry.spark`` runs the gate on Apache Spark
(``Session.gate_snapshot`` cuts the snapshot its workers judge by).
"""

from ._consentry import (
    BadInput,
    Conflict,
    ConsentryError,
    Forbidden,
    GateSnapshot,
    IntegrityError,
    NotFound,
    PartitionGate,
    Redactor,
    Session,
    Span,
    Unavailable,
    __version__,
    open,
    verify_receipt,
)
from ._dataset import ConsentWarning, Dataset

__all__ = [
    "BadInput",
    "Conflict",
    "ConsentWarning",
    "ConsentryError",
    "Dataset",
    "Forbidden",
    "GateSnapshot",
    "IntegrityError",
    "NotFound",
    "PartitionGate",
    "Redactor",
    "Session",
    "Span",
    "Unavailable",
    "__version__",
    "open",
    "verify_receipt",
]
