"""Fixtures: one small data directory made by the real CLI (synthetic network, ledger, import), shared by the session;
tests that change a ledger work on their own copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("CONSENTRY_BIN", REPO / "target" / "debug" / "consentry"))
PURPOSE = "train_ai_system.job_recommendations"
MEMBERS = 600


def cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs the consentry binary on `data`; fails the test with its stderr when it fails and `check`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    r = subprocess.run([str(BIN), "--data", str(data), "-q", *args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        pytest.fail(f"consentry {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def cli_json(data: Path, *args: str) -> dict:
    """Runs the binary with --json and parses its output."""
    return json.loads(cli(data, "--json", *args).stdout)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a synthetic network of MEMBERS members and their consent in the ledger."""
    if not BIN.is_file():
        pytest.fail(f"no consentry binary at {BIN}: run `cargo build -p consentry` or set CONSENTRY_BIN")
    data = tmp_path_factory.mktemp("data") / "consentry-data"
    cli(data, "synth", "--members", str(MEMBERS))
    cli(data, "ledger", "init")
    net = data / "network"
    cli(data, "ledger", "import", "--choices", str(net / "consent_choices.parquet"), "--members", str(net / "members.parquet"))
    return data


@pytest.fixture(scope="session")
def position(data_dir: Path) -> int:
    """A ledger position inside the log, so results do not depend on what tests append later."""
    import consentry

    s = consentry.open(data_dir)
    return int(s.snapshot(PURPOSE).schema.metadata[b"consentry.position"]) - 3


@pytest.fixture
def session(data_dir: Path):
    import consentry

    return consentry.open(data_dir)


@pytest.fixture
def own_data_dir(data_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the data directory, for tests that append to the ledger."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    return copy
