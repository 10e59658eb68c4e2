"""Overlay rule argument strings and /usbkey/config rule lines (overlays.rulestring)."""

import pickle
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overlays.rulestring import (
    DEFAULT_LISTEN_IP,
    DEFAULT_MTU,
    MTU_MAX,
    MTU_MIN,
    RULE_NAME_MAX,
    RULE_NAME_RE,
    RuleParams,
    RuleStringError,
    default_arp_file,
    parse_rule_args,
    parse_rule_line,
    render_rule_args,
    render_rule_line,
    validate_rule_name,
)

ARP = "/opt/custom/networking/customers_overlay.json"
CANONICAL = (
    "-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4790 -s files "
    f"-p files/config={ARP} -p mtu=1400"
)
PARAMS = RuleParams(listen_ip="0.0.0.0", port=4790, arp_file=ARP, mtu=1400)
BASE = f"-e vxlan -s files -p files/config={ARP}"


def rejects(text, field, pattern):
    with pytest.raises(RuleStringError, match=pattern) as caught:
        parse_rule_args(text)
    assert caught.value.field == field
    return caught.value


# ------------------------------------------------------------------ rendering


def test_canonical_string_is_rendered_from_params():
    assert render_rule_args(PARAMS) == CANONICAL


def test_rule_line_wraps_the_arguments_in_double_quotes():
    assert render_rule_line("customers", PARAMS) == f'overlay_rule_customers="{CANONICAL}"'


def test_default_arp_file_follows_the_convention():
    assert default_arp_file("customers") == ARP


def test_rendering_without_a_port_is_refused():
    with pytest.raises(RuleStringError, match="listen_port") as caught:
        render_rule_args(replace(PARAMS, port=None))
    assert caught.value.field == "port"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"listen_ip": "300.1.1.1"}, "listen_ip"),
        ({"listen_ip": "::1"}, "listen_ip"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": True}, "port"),
        ({"mtu": MTU_MIN - 1}, "mtu"),
        ({"mtu": MTU_MAX + 1}, "mtu"),
        ({"mtu": "1400"}, "mtu"),
        ({"arp_file": "relative.json"}, "arp_file"),
        ({"arp_file": "/with space.json"}, "arp_file"),
        ({"arp_file": "/a,b.json"}, "arp_file"),
        ({"arp_file": '/a"b.json'}, "arp_file"),
        ({"arp_file": "/$HOME/a.json"}, "arp_file"),
        ({"arp_file": "/opt/é.json"}, "arp_file"),
        ({"arp_file": "/opt/a\x00.json"}, "arp_file"),
    ],
)
def test_rendering_invalid_params_is_refused_naming_the_field(change, field):
    with pytest.raises(RuleStringError) as caught:
        render_rule_args(replace(PARAMS, **change))
    assert caught.value.field == field


def test_rendering_a_line_checks_the_name():
    with pytest.raises(RuleStringError) as caught:
        render_rule_line("bad-name", PARAMS)
    assert caught.value.field == "name"


# -------------------------------------------------------------------- parsing


def test_canonical_string_parses_to_its_params():
    assert parse_rule_args(CANONICAL) == PARAMS


def test_repeated_p_options_in_any_order_parse_to_the_same_params():
    text = (
        "-p mtu=1300 -p vxlan/listen_port=4793 -s files -p vxlan/listen_ip=0.0.0.0 "
        f"-e vxlan -p files/config={ARP}"
    )
    assert parse_rule_args(text) == RuleParams("0.0.0.0", 4793, ARP, 1300)


def test_extra_blanks_between_tokens_are_ignored():
    assert parse_rule_args("  " + CANONICAL.replace(" ", " \t ") + " ") == PARAMS


def test_absent_port_parses_as_none_and_other_defaults_are_filled_in():
    assert parse_rule_args(BASE) == RuleParams(DEFAULT_LISTEN_IP, None, ARP, DEFAULT_MTU)


def test_rule_line_parses_to_name_and_params():
    assert parse_rule_line(f'overlay_rule_customers="{CANONICAL}"\n') == ("customers", PARAMS)


def test_rule_line_in_single_quotes_is_accepted():
    assert parse_rule_line(f"overlay_rule_customers='{CANONICAL}'") == ("customers", PARAMS)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_rule_string_is_rejected(text):
    rejects(text, "rule", "empty")


@pytest.mark.parametrize("char", ["'", '"', "\\"])
def test_quotes_and_backslashes_anywhere_are_rejected(char):
    error = rejects(CANONICAL.replace("mtu=1400", f"mtu=14{char}00"), "rule", re.escape(char))
    assert "quotes and backslashes are not allowed" in str(error)
    assert "shell-evaluates and re-quotes" in str(error)


@pytest.mark.parametrize("char", ["$", "`"])
def test_shell_expansion_characters_are_rejected(char):
    rejects(CANONICAL.replace(ARP, f"/opt/{char}x"), "rule", "dollar signs and backquotes")


def test_control_characters_are_rejected():
    rejects(CANONICAL + "\n-p mtu=1300", "rule", "printable ASCII")


def test_missing_encapsulation_is_rejected():
    rejects("-s files -p files/config=/a.json", "rule", "lacks -e vxlan")


def test_other_encapsulations_are_rejected():
    rejects(BASE.replace("vxlan", "geneve"), "rule", "Encapsulation 'geneve' is not supported")


def test_missing_search_plugin_is_rejected():
    rejects("-e vxlan -p files/config=/a.json", "rule", "lacks -s files")


def test_other_search_plugins_are_rejected():
    rejects(BASE.replace("-s files", "-s direct"), "rule", "Search plugin 'direct'")


def test_encapsulation_given_twice_is_rejected():
    rejects(BASE + " -e vxlan", "rule", "-e is given twice")


def test_search_plugin_given_twice_is_rejected():
    rejects(BASE + " -s files", "rule", "-s is given twice")


def test_vxlan_id_option_is_rejected_with_the_reason():
    error = rejects(BASE + " -v 2", "rule", "-v is not allowed")
    assert "VXLAN id must not be part of a rule" in str(error)


def test_vni_property_is_rejected_with_the_reason():
    rejects(BASE + " -p vxlan/vni=2", "rule", "VXLAN id is not part of a rule")


def test_unknown_option_is_rejected_naming_it():
    rejects(BASE + " -x 1", "rule", "Unknown option '-x'")


def test_long_options_are_rejected():
    rejects(BASE + " --prop mtu=1400", "rule", "Unknown option '--prop'")


def test_stray_word_is_rejected_naming_it():
    rejects(BASE + " myoverlay", "rule", "Unexpected 'myoverlay'")


@pytest.mark.parametrize("flag", ["-e", "-s", "-p"])
def test_option_without_a_value_is_rejected(flag):
    rejects(f"{BASE} {flag}", "rule", f"Option {flag} has no value")


def test_option_followed_by_another_option_has_no_value():
    rejects("-e -s files -p files/config=/a.json", "rule", "Option -e has no value")


def test_unknown_property_is_rejected_naming_it():
    rejects(BASE + " -p vxlan/color=blue", "rule", "Unknown property 'vxlan/color'")


def test_empty_item_in_a_property_list_is_rejected():
    rejects(BASE + " -p mtu=1400,,vxlan/listen_port=4790", "rule", "empty item")


@pytest.mark.parametrize(
    ("prop", "field"),
    [
        ("vxlan/listen_ip", "listen_ip"),
        ("vxlan/listen_port", "port"),
        ("mtu", "mtu"),
    ],
)
@pytest.mark.parametrize("suffix", ["", "="])
def test_property_without_a_value_is_rejected_naming_the_field(prop, field, suffix):
    rejects(f"{BASE} -p {prop}{suffix}", field, f"Property {prop} has no value")


def test_files_config_without_a_value_is_rejected():
    rejects("-e vxlan -s files -p files/config=", "arp_file", "files/config has no value")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("-p mtu=1400 -p mtu=1300", "mtu"),
        ("-p mtu=1400,mtu=1400", "mtu"),
        ("-p vxlan/listen_port=1 -p vxlan/listen_port=2", "port"),
        ("-p vxlan/listen_ip=0.0.0.0,vxlan/listen_ip=10.0.0.1", "listen_ip"),
        ("-p files/config=/b.json", "arp_file"),
    ],
)
def test_property_given_twice_is_rejected_naming_the_field(extra, field):
    rejects(f"{BASE} {extra}", field, "given twice")


def test_missing_arp_file_is_rejected():
    rejects("-e vxlan -s files -p mtu=1400", "arp_file", "lacks -p files/config")


@pytest.mark.parametrize("value", ["10.0.0", "10.0.0.256", "fe80::1", "010.0.0.1", "host"])
def test_listen_ip_must_be_ipv4(value):
    rejects(f"{BASE} -p vxlan/listen_ip={value}", "listen_ip", re.escape(repr(value)))


def test_specific_listen_ip_is_kept():
    assert parse_rule_args(f"{BASE} -p vxlan/listen_ip=10.1.2.3").listen_ip == "10.1.2.3"


@pytest.mark.parametrize("value", ["abc", "-1", "47.9", "0x12b5", "4790a", "+4790"])
def test_non_integer_port_is_rejected(value):
    rejects(f"{BASE} -p vxlan/listen_port={value}", "port", "vxlan/listen_port")


@pytest.mark.parametrize("value", ["0", "65536", "99999999999999999999"])
def test_port_out_of_range_is_rejected(value):
    rejects(f"{BASE} -p vxlan/listen_port={value}", "port", "out of range 1-65535")


def test_port_with_a_leading_zero_is_rejected_with_the_plain_spelling():
    rejects(f"{BASE} -p vxlan/listen_port=04790", "port", "leading zero; write 4790")


@pytest.mark.parametrize("value", ["abc", "1400.0", ""])
def test_non_integer_mtu_is_rejected(value):
    rejects(f"{BASE} -p mtu={value}x", "mtu", "mtu")


@pytest.mark.parametrize("value", ["575", "8901"])
def test_mtu_out_of_range_is_rejected(value):
    rejects(f"{BASE} -p mtu={value}", "mtu", f"mtu {value} is out of range 576-8900")


@pytest.mark.parametrize("value", ["576", "8900"])
def test_mtu_bounds_are_allowed(value):
    assert parse_rule_args(f"{BASE} -p mtu={value}").mtu == int(value)


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("relative/a.json", "absolute path"),
        ("/opt/custom/", "names a directory"),
        ("/", "names a directory"),
        ("/opt/../etc/shadow", r"without '\.', '\.\.' or '//'"),
        ("/opt/./a.json", "plain absolute path"),
        ("//opt/a.json", "plain absolute path"),
        ("/opt//a.json", "plain absolute path"),
    ],
)
def test_bad_arp_file_paths_are_rejected(path, pattern):
    rejects(f"-e vxlan -s files -p files/config={path}", "arp_file", pattern)


def test_over_long_arp_file_path_is_rejected():
    rejects(f"-e vxlan -s files -p files/config=/{'a' * 1100}", "arp_file", "limit is 1023")


def test_non_string_rule_is_a_type_error():
    with pytest.raises(TypeError):
        parse_rule_args(None)


def test_error_carries_field_and_survives_pickling():
    error = rejects(f"{BASE} -p mtu=1", "mtu", "out of range")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, str(copy)) == ("mtu", str(error))


# ----------------------------------------------------------------- rule lines


@pytest.mark.parametrize(
    "line",
    [
        f"overlay_rule_customers={CANONICAL}",
        f"overlay_rule_customers=\"{CANONICAL}'",
        f"rule_customers={CANONICAL!r}",
        "overlay_rule_customers",
    ],
)
def test_malformed_rule_lines_are_rejected(line):
    with pytest.raises(RuleStringError) as caught:
        parse_rule_line(line)
    assert caught.value.field == "rule"


def test_rule_line_with_a_bad_name_is_rejected_naming_the_name():
    with pytest.raises(RuleStringError, match="must not end in a digit") as caught:
        parse_rule_line(f'overlay_rule_net1="{CANONICAL}"')
    assert caught.value.field == "name"


def test_rule_line_reports_errors_in_the_arguments():
    with pytest.raises(RuleStringError) as caught:
        parse_rule_line(f'overlay_rule_customers="{CANONICAL} -v 2"')
    assert caught.value.field == "rule"


# ------------------------------------------------------------------ rule names


@pytest.mark.parametrize("name", ["a", "_", "customers", "admin_overlay", "x9y", "A" * 19])
def test_valid_rule_names_pass(name):
    validate_rule_name(name)


def test_empty_rule_name_is_rejected():
    with pytest.raises(RuleStringError, match="empty") as caught:
        validate_rule_name("")
    assert caught.value.field == "name"


def test_rule_name_of_twenty_characters_is_rejected_saying_the_limit():
    with pytest.raises(RuleStringError, match="under 20 characters") as caught:
        validate_rule_name("a" * 20)
    assert caught.value.field == "name"


def test_rule_name_ending_in_a_digit_is_rejected_saying_why():
    with pytest.raises(RuleStringError, match="VXLAN id is appended") as caught:
        validate_rule_name("net1")
    assert caught.value.field == "name"
    assert "'net12'" in str(caught.value)


@pytest.mark.parametrize(("name", "char"), [("a-b", "-"), ("a b", " "), ("né", "é"), ("a.b", ".")])
def test_rule_name_with_bad_characters_is_rejected_naming_them(name, char):
    with pytest.raises(RuleStringError, match=re.escape(repr(char))) as caught:
        validate_rule_name(name)
    assert caught.value.field == "name"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=25))
def test_name_validation_agrees_with_the_documented_pattern(name):
    expected = bool(RULE_NAME_RE.match(name)) and len(name) <= RULE_NAME_MAX
    try:
        validate_rule_name(name)
    except RuleStringError:
        assert not expected
    else:
        assert expected


# -------------------------------------------------------- property-based tests

path_segments = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.+@%:",
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))

valid_params = st.builds(
    RuleParams,
    listen_ip=st.ip_addresses(v=4).map(str),
    port=st.integers(min_value=1, max_value=65535),
    arp_file=st.lists(path_segments, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    mtu=st.integers(min_value=MTU_MIN, max_value=MTU_MAX),
)

names = st.from_regex(RULE_NAME_RE, fullmatch=True).filter(lambda n: len(n) <= RULE_NAME_MAX)


@settings(max_examples=150, deadline=None)
@given(valid_params)
def test_rendered_params_parse_back_to_the_same_params(params):
    text = render_rule_args(params)
    assert parse_rule_args(text) == params
    assert render_rule_args(parse_rule_args(text)) == text


@settings(max_examples=100, deadline=None)
@given(names, valid_params)
def test_rendered_lines_parse_back_to_name_and_params(name, params):
    assert parse_rule_line(render_rule_line(name, params)) == (name, params)


@settings(max_examples=150, deadline=None)
@given(valid_params, st.data())
def test_resplit_and_shuffled_properties_parse_to_the_same_params(params, data):
    props = [
        ("vxlan/listen_ip", params.listen_ip),
        ("vxlan/listen_port", str(params.port)),
        ("files/config", params.arp_file),
        ("mtu", str(params.mtu)),
    ]
    # Properties that equal their default may be left out.
    if params.listen_ip == DEFAULT_LISTEN_IP and data.draw(st.booleans(), label="omit ip"):
        props.pop(0)
    if params.mtu == DEFAULT_MTU and data.draw(st.booleans(), label="omit mtu"):
        props.pop()
    props = data.draw(st.permutations(props), label="order")
    # Cut the property list into groups: each group becomes one comma-joined -p.
    groups, current = [], []
    for prop in props:
        current.append(f"{prop[0]}={prop[1]}")
        if data.draw(st.booleans(), label="end group"):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    options = [["-p", ",".join(group)] for group in groups] + [["-e", "vxlan"], ["-s", "files"]]
    options = data.draw(st.permutations(options), label="option order")
    separator = data.draw(st.sampled_from([" ", "  ", "\t", " \t "]), label="separator")
    text = separator.join(token for option in options for token in option)
    assert parse_rule_args(text) == params


@settings(max_examples=100, deadline=None)
@given(valid_params, st.sampled_from(["'", '"', "\\", "$", "`"]), st.data())
def test_a_shell_character_anywhere_is_rejected(params, char, data):
    text = render_rule_args(params)
    at = data.draw(st.integers(min_value=0, max_value=len(text)), label="position")
    with pytest.raises(RuleStringError) as caught:
        parse_rule_args(text[:at] + char + text[at:])
    assert caught.value.field == "rule"
