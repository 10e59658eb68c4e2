"""Bodies and files that are not documents this application reads: one clear refusal each.

Through the API a 400 (413 for size) in the error shape, ``{"detail": ..., "errors":
{"non_field_errors": [...]}}``; through ``overlay import`` one error line, never a
traceback; nothing changed either way.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from overlays.statefile import import_state
from tests.input.helpers import import_problems

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000  # RecursionError in Python's json module
NESTED_40 = '{"name": "x", "description": ' + "[" * 40 + "]" * 40 + "}"  # parses, too deep

BAD_BODIES = {
    "deeply nested": (DEEP, "nest more than 32 levels deep"),
    "nested beyond the limit": (NESTED_40, "nest more than 32 levels deep"),
    "not UTF-8": (b'{"name": "\xff\xfe"}', "not UTF-8 text (byte 10 is 0xff)"),
    "a byte-order mark": ("\ufeff{}".encode(), "Unexpected UTF-8 BOM"),
    "not JSON": ('{"name": ', "Expecting value"),
    "NaN": ('{"name": "x", "port": NaN}', "NaN is not valid JSON"),
    "infinity": ('{"name": "x", "port": 1e999}', "the number 1e999 is too large"),
    "an integer of 5000 digits": ('{"name": "x", "port": ' + "9" * 5000 + "}",
                                  "a number has too many digits"),
}


def _refused_as_a_whole(response, status: int, words: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert words in body["detail"]
    assert body["errors"] == {"non_field_errors": [body["detail"]]}


@pytest.mark.parametrize("path", ["/api/v1/overlay-rules/", "/api/v1/state/import/"])
@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_a_body_that_is_not_a_json_document_is_a_400_in_the_error_shape(su, unchanged, kind,
                                                                        path):
    body, words = BAD_BODIES[kind]

    response = su.generic("POST", path, body, content_type="application/json")

    _refused_as_a_whole(response, 400, words)
    assert "JSON parse error" in response.json()["detail"]
    unchanged()


@pytest.mark.parametrize("login", ["token", "session"])
def test_a_body_over_the_size_limit_is_a_413_in_the_error_shape(client_for, users, unchanged,
                                                                settings, login):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = client_for("superuser")
    if login == "session":
        client.force_authenticate(None)
        client.force_login(users["superuser"])
    body = json.dumps({"name": "big", "description": "x" * 2000})

    response = client.generic("POST", "/api/v1/overlay-rules/", body,
                              content_type="application/json")

    _refused_as_a_whole(response, 413, "larger than 1000 bytes")
    unchanged()


def test_a_body_within_the_size_limit_is_read(su, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = su.post("/api/v1/overlay-rules/", {"name": "small"}, format="json")

    assert response.status_code == 201, response.content


def test_the_limit_of_a_deployment_takes_a_large_state_file():
    """A state file of 20,000 vNICs (about 3 MB) goes through the API's import."""
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE >= 5 * 1024 * 1024


def test_a_form_body_is_refused_as_an_unsupported_media_type(su, unchanged):
    response = su.post("/api/v1/overlay-rules/", {"name": "form"})  # multipart

    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    unchanged()


def test_an_import_of_a_document_too_deep_to_walk_is_one_problem(demo_cluster, unchanged):
    doc: dict = {"nodes": []}
    inner = doc["nodes"]
    for _ in range(5000):  # built without recursion; json.dumps of it would fail
        inner.append([])
        inner = inner[0]

    problems = import_problems(doc)

    assert problems == {"$": ["lists and objects nest more than 32 levels deep."]}
    unchanged()


# --- the command line ---------------------------------------------------------------------

BAD_FILES = {
    "not UTF-8": (b'{"nodes": [{"hostname": "cn\xe9"}]}', "is not valid JSON: not UTF-8 text"),
    "deeply nested": (DEEP.encode(), "is not valid JSON: lists and objects nest more than 32"),
    "not JSON": (b"{nodes: []}", "is not valid JSON: Expecting property name"),
    "NaN": (b'{"version": NaN}', "is not valid JSON: NaN is not valid JSON"),
    "empty": (b"", "is not valid JSON: Expecting value at line 1, column 1"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_overlay_import_of_a_file_that_is_not_a_json_document_is_one_line(
        demo_cluster, unchanged, tmp_path, kind):
    data, words = BAD_FILES[kind]
    path = tmp_path / "cluster.json"
    path.write_bytes(data)

    with pytest.raises(CommandError) as refused:
        call_command("overlay", "import", str(path), stdout=io.StringIO(),
                     stderr=io.StringIO())

    message = str(refused.value)
    assert message.startswith(f"{path} {words}")
    assert "\n" not in message
    unchanged()


def test_overlay_import_reads_standard_input_with_the_same_rules(demo_cluster, unchanged,
                                                                 monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(b'{"nodes": "\xff"}'))
    monkeypatch.setattr(sys, "stdin", stdin)

    with pytest.raises(CommandError, match=r"^- is not valid JSON: not UTF-8 text"):
        call_command("overlay", "import", "-", stdout=io.StringIO(), stderr=io.StringIO())
    unchanged()


def test_overlay_import_prints_no_traceback_in_a_real_process(tmp_path):
    for kind in ("not UTF-8", "deeply nested"):
        path = tmp_path / "cluster.json"
        path.write_bytes(BAD_FILES[kind][0])

        result = subprocess.run(
            [sys.executable, "manage.py", "overlay", "import", str(path)],
            cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=120)

        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert BAD_FILES[kind][1] in result.stderr


def test_a_state_document_is_checked_before_anything_is_written(demo_cluster, unchanged):
    """A Python caller gets the same refusal for a value no JSON file can hold."""
    problems = import_problems({"version": 2, "nodes": [
        {"hostname": "cn79.prague", "pdc": "prague", "ssh_port": float("inf")}]})

    assert problems == {"nodes[0].ssh_port": ["A valid integer is required."]}
    unchanged()


def test_a_good_file_still_imports_from_the_command_line(db, demo_state, tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(demo_state), encoding="utf-8")
    out = io.StringIO()

    call_command("overlay", "import", str(path), stdout=out, stderr=io.StringIO())

    assert "create node cn01.prague" in out.getvalue()
    assert import_state(demo_state).changes == []
