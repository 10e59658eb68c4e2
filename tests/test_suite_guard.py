"""The suite's own guard (tests/conftest.py): a run in which collected tests did not run
fails, and listing the tests without running them does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)


def test_a_parallel_run_that_drops_tests_fails_and_says_how_many():
    # xdist's file mode keys work by test id; schemathesis' operation tests share one.
    done = pytest_run("-n", "2", "--dist", "loadfile", "-k", "conforms",
                      "tests/api/test_schema.py")
    assert done.returncode == 1, done.stdout[-2000:]
    assert "tests were collected but only 1 ran" in done.stdout


def test_listing_the_tests_without_running_them_passes():
    done = pytest_run("--collect-only", "tests/unit/test_idranges.py")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "tests collected" in done.stdout
    assert "were collected but" not in done.stdout
