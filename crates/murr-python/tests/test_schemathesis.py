"""Schemathesis against the real server's ``/openapi.json``: every operation with generated valid
and invalid inputs (examples, coverage, fuzzing, and the stateful phase, which follows the links
from a created table to the calls on it). No answer may be a 5xx or contradict the document.

``positive_data_acceptance`` is left out: a schema-valid body can still be refused for what a
schema cannot say (a table needs a key column; a write's columns must be the table's).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server

ADMIN = "schemathesis-admin-0123456789"


def schemathesis(url: str, *extra: str) -> None:
    st = Path(sys.executable).parent / "st"
    out = subprocess.run(
        [
            str(st),
            "run",
            url + "/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "40",
            "--seed",
            "7",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-2000:]
    assert "API Links" in out.stdout, out.stdout[-4000:]


def test_every_operation_conforms_open(server) -> None:
    schemathesis(server.http_url)


@pytest.fixture
def guarded(tmp_path: Path):
    s = Server.with_config(
        tmp_path,
        "server:\n  auth:\n    tokens:\n"
        f'      - {{name: ops, token: "{ADMIN}", scopes: [read, write, admin]}}\n',
    )
    yield s
    s.stop()


def test_every_operation_conforms_with_a_token(guarded) -> None:
    schemathesis(guarded.http_url, "--header", f"Authorization: Bearer {ADMIN}")


def test_every_operation_conforms_without_the_token(guarded) -> None:
    # Every protected route answers 401, as documented.
    schemathesis(guarded.http_url)
