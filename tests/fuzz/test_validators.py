"""Fuzz the rules themselves, without a database: what the model layer accepts, the generators
render; the API's fields and the models refuse the same JSON types; the JSON reader raises
nothing but its own error."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from core.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from core.jsondoc import MAX_JSON_DEPTH, JsonDocumentError, json_depth, parse_json
from core.validators import (
    JSON_TYPE_MESSAGES,
    json_type_error,
    parse_ssh_public_key,
    validate_hostname,
)
from overlays.generators.usbkey import apply_managed_keys
from overlays.models import OverlayRule
from overlays.rulestring import RuleParams, parse_rule_args, render_rule_args, render_rule_line
from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import ARP, anything, json_values

ARP_FIELD = OverlayRule._meta.get_field("arp_file")
NAME_FIELD = OverlayRule._meta.get_field("name")

# Characters that matter to paths, shells and the rule string, and some that do not.
path_text = st.text(alphabet="az09._-/ $`'\"\\,=\n\t\x00é~*?", max_size=40)
json_names = st.from_regex(r"[A-Za-z0-9$`.][A-Za-z0-9._\-$` ]{0,10}\.json\n?", fullmatch=True)
arp_paths = st.one_of(path_text, path_text.map(lambda text: f"{ARP}/{text}"),
                      json_names.map(lambda name: f"{ARP}/{name}"),
                      st.sampled_from([f"{ARP}/x.json", "/usbkey/config", f"{ARP}/",
                                       f"{ARP}/.json", f"{ARP}/a.json\n"]))


def _model_accepts(field, value: str) -> bool:
    """The field's own checks, as ``full_clean`` runs them (an empty ARP file is defaulted)."""
    if not value and field.blank:
        return False
    try:
        field.clean(value, None)
    except ValidationError:
        return False
    return True


@FUZZ
@given(path=arp_paths)
def test_every_arp_file_the_model_accepts_renders_and_reads_back(path):
    if not _model_accepts(ARP_FIELD, path):
        return
    params = RuleParams(listen_ip="0.0.0.0", port=4790, arp_file=path, mtu=1400)
    args = render_rule_args(params)  # raises RuleStringError if the generator disagrees
    assert parse_rule_args(args) == params
    assert path.startswith(f"{ARP}/") and path.endswith(".json") and path.count("/") == 4


@FUZZ
@given(name=st.text(alphabet="azAZ09_-.\n é", max_size=22))
def test_every_rule_name_the_model_accepts_makes_a_usbkey_line(name):
    if not _model_accepts(NAME_FIELD, name):
        return
    params = RuleParams(listen_ip="0.0.0.0", port=4790, arp_file=f"{ARP}/x.json", mtu=1400)
    line = render_rule_line(name, params)
    key, _, value = line.partition("=")
    assert apply_managed_keys("", {key: value.strip('"')}) == line + "\n"


@FUZZ
@given(name=st.text(alphabet="az09-.\n_", max_size=12))
def test_a_host_name_never_ends_in_a_newline(name):
    try:
        validate_hostname(name)
    except ValidationError:
        return
    assert name == name.strip() and "\n" not in name


FIELDS = {"integer": StrictIntegerField, "boolean": StrictBooleanField, "text": StrictCharField}


@FUZZ
@given(kind=st.sampled_from(sorted(FIELDS)), value=json_values)
def test_the_api_refuses_the_json_types_the_models_refuse_in_the_same_words(kind, value):
    message = json_type_error(kind, value)
    field = FIELDS[kind](allow_null=True)
    try:
        field.run_validation(value)
    except serializers.ValidationError as exc:
        if message is not None:
            assert exc.detail == [message]
        return
    assert message is None
    assert message is None or message in JSON_TYPE_MESSAGES.values()


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200),
                      json_values.map(json.dumps),
                      st.integers(0, 80).map(lambda n: "[" * n + "]" * n)))
def test_the_json_reader_raises_only_its_own_error(data):
    try:
        document = parse_json(data)
    except JsonDocumentError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert json_depth(document) <= MAX_JSON_DEPTH


@FUZZ
@given(text=st.one_of(st.text(max_size=80), anything.map(str),
                      st.sampled_from(["ssh-ed25519 ", "ssh-rsa AAAA", "x ssh-ed25519 AAAA"])
                      .flatmap(lambda prefix: st.text(max_size=60).map(prefix.__add__))))
def test_the_host_key_check_raises_only_a_validation_error(text):
    try:
        key_type, blob = parse_ssh_public_key(text)
    except ValidationError as exc:
        assert exc.messages
        return
    pytest.fail(f"accepted {text!r} as a {key_type} key")  # random text is never a key
