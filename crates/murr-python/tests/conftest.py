"""Fixtures: murr three ways with one set of expectations.

- ``embedded``: the engine in this process (``Murr.start_local``).
- ``http`` and ``flight``: the real ``murr`` server binary, started on free ports over a fresh
  folder, reached with ``Murr.connect``. ``MURRDB_SERVER_BIN`` names the binary (``cargo xtask
  test`` sets it); the default is the workspace's ``target/debug/murr``.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from murr.sync import Murr

WORKSPACE = Path(__file__).resolve().parents[3]


def server_binary() -> Path:
    path = Path(os.environ.get("MURRDB_SERVER_BIN", WORKSPACE / "target" / "debug" / "murr"))
    if not path.exists():
        pytest.fail(
            f"the murr server binary {path} does not exist: run the tests with `cargo xtask test`, "
            "or build it (cargo build -p murr-server) and set MURRDB_SERVER_BIN"
        )
    return path


class Server:
    """A running ``murr`` binary on free ports; ``stop()`` ends it."""

    LISTENING = re.compile(r"murr listening http=(\S+) grpc=(\S+)")

    def __init__(self, data_dir: Path, args: tuple[str, ...] = ()) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MURR_")}
        env["RUST_LOG"] = "info"
        self.proc = subprocess.Popen(
            [
                str(server_binary()),
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                "--grpc-port",
                "0",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        found: dict[str, str] = {}
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                m = self.LISTENING.search(line)
                if m:
                    found["http"], found["grpc"] = m.group(1), m.group(2)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or "http" not in found:
            self.stop()
            pytest.fail("murr did not start:\n" + "".join(self.lines))
        self.http_url = f"http://{found['http']}"
        self.grpc_url = f"grpc://{found['grpc']}"

    @classmethod
    def with_config(cls, tmp_path: Path, yaml: str) -> "Server":
        """A server started with ``yaml`` as its config file (written into ``tmp_path``)."""
        config = tmp_path / "murr.yaml"
        config.write_text(yaml)
        return cls(tmp_path / "server", ("--config", str(config)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path: Path):
    s = Server(tmp_path / "server")
    yield s
    s.stop()


@pytest.fixture(params=["embedded", "http", "flight"])
def db(request, tmp_path: Path):
    """A murr to test against: embedded, or the real server over HTTP or Flight."""
    if request.param == "embedded":
        m = Murr.start_local(tmp_path / "embedded")
        yield m
        m.close()
        return
    s = Server(tmp_path / "server")
    m = Murr.connect(s.http_url if request.param == "http" else s.grpc_url)
    yield m
    m.close()
    s.stop()


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
