"""Fixtures of the adoption tests: loopback sshd nodes configured by the reference tool."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from config.celery import app as celery_app
from tests.harness import testnodes

testnode_management_key = testnodes.testnode_management_key
testnode_cluster = testnodes.testnode_cluster


@pytest.fixture(autouse=True)
def adoption_settings(settings, tmp_path: Path):
    """No automatic syncs (the test syncs when it means to), eager tasks, fast SSH."""
    settings.OVERLAY_AUTO_SYNC = False
    settings.OVERLAY_LOCAL_ROOT = tmp_path / "node-files"
    settings.OVERLAY_SYNC_KEY_PREFIX = f"overlay-adopt-test:{uuid.uuid4().hex[:8]}"
    settings.OVERLAY_SYNC_DELAY = 0
    settings.OVERLAY_SSH_TIMEOUT = 5.0
    settings.OVERLAY_COMMAND_TIMEOUT = 20.0
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def ssh_transport(settings, testnode_management_key: Path) -> None:
    settings.OVERLAY_TRANSPORT = "ssh"
    settings.OVERLAY_SSH_PRIVATE_KEY = str(testnode_management_key)
