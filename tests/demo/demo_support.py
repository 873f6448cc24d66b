"""Helpers of the demo tests: skipping (or failing in CI) without Gradio or a browser, and a
`vganzoo serve` subprocess with the network cut off (``offline_serve.py``)."""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUNDLED = "mocogan-rnn.digits"
SERVER_START_TIMEOUT = 300  # seconds: importing torch and Gradio on a busy 2-core box is slow


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``condition``; in CI (VGANZOO_REQUIRE_DEMO_TESTS=1) fail instead."""
    if condition:
        return
    if os.environ.get("VGANZOO_REQUIRE_DEMO_TESTS") == "1":
        pytest.fail(f"{reason} (VGANZOO_REQUIRE_DEMO_TESTS=1: CI must run this test)")
    pytest.skip(reason)


def require_gradio() -> None:
    missing = [m for m in ("gradio", "gradio_client") if importlib.util.find_spec(m) is None]
    require(not missing, f"{' and '.join(missing)} not installed: pip install -e '.[test]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `vganzoo serve` subprocess: ``url``, ``net_log`` (refused network accesses), ``output``."""

    def __init__(self, args: list[str], net_log: Path) -> None:
        self.net_log = net_log
        self.port = free_port()
        env = {
            **os.environ,
            "VGANZOO_NET_LOG": str(net_log),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "PYTHONUNBUFFERED": "1",
        }
        # The demo must keep itself offline: none of the switches tests/conftest.py sets for the suite.
        for switch in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
            env.pop(switch, None)
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "offline_serve.py"), "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.output: list[str] = []
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in self.process.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        self.url = None
        while self.url is None:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                self.stop()
                raise TimeoutError(
                    f"vganzoo serve did not start in {SERVER_START_TIMEOUT} s:\n{self.log()}"
                ) from None
            if line is None:
                raise RuntimeError(f"vganzoo serve exited with {self.process.wait()}:\n{self.log()}")
            if "serving http" in line:
                self.url = line.split("serving ", 1)[1].split()[0]

    def log(self) -> str:
        return "".join(self.output)

    def refused_network(self) -> list[str]:
        return self.net_log.read_text().splitlines() if self.net_log.exists() else []

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()
