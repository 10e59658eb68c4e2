"""The periodic key rotation is in celery beat's schedule only when OVERLAY_KEY_MAX_AGE_DAYS
is set above 0 (off by default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = ("import django, json; django.setup(); from config.celery import app; "
          "print(json.dumps({k: [v['task'], v['schedule']] "
          "for k, v in app.conf.beat_schedule.items()}))")


def beat_schedule(**env: str) -> dict:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("OVERLAY_KEY_")}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    output = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=environment,
                            capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {}),
    ({"OVERLAY_KEY_MAX_AGE_DAYS": "0"}, {}),
    ({"OVERLAY_KEY_MAX_AGE_DAYS": "90", "OVERLAY_KEY_ROTATION_CHECK_INTERVAL": "600"},
     {"rotate old IPSec keys": ["overlays.rotate_old_keys", 600.0]}),
])
def test_the_periodic_rotation_is_scheduled_only_when_a_maximum_age_is_set(env, expected):
    assert beat_schedule(**env) == expected
