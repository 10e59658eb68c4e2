"""Id-range lists such as ``"100-199, 250"`` (vdc.idranges)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdc.idranges import VLAN_MAX, VLAN_MIN, VXLAN_MAX, VXLAN_MIN, IdRangeError, IdRanges


def vxlan(text):
    return IdRanges.parse(text, minimum=VXLAN_MIN, maximum=VXLAN_MAX, label="VXLAN")


def vlan(text):
    return IdRanges.parse(text, minimum=VLAN_MIN, maximum=VLAN_MAX, label="VLAN")


def small(text):
    return IdRanges.parse(text, minimum=0, maximum=SMALL_MAX)


SMALL_MAX = 60


# --------------------------------------------------------------------- parsing


def test_ids_and_ranges_parse_to_sorted_spans():
    assert vxlan("250, 100-199").spans == ((100, 199), (250, 250))


def test_blanks_around_items_and_dashes_are_allowed():
    assert str(vxlan("  100 - 199 , 250  ")) == "100-199,250"


def test_normalised_text_has_no_spaces_and_single_ids_have_no_dash():
    assert str(vxlan("100-199,250-250, 7")) == "7,100-199,250"


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_or_blank_text_allows_nothing(text):
    ranges = vxlan(text)
    assert ranges.is_empty()
    assert ranges.count() == 0
    assert 1 not in ranges
    assert str(ranges) == ""


def test_adjacent_items_are_accepted_and_merged():
    assert str(vxlan("1-5,6-9")) == "1-9"
    assert str(vxlan("6-9,1-5,10")) == "1-10"


def test_the_bounds_themselves_are_allowed():
    assert str(vxlan(f"{VXLAN_MIN},{VXLAN_MAX}")) == "1,16777215"
    assert str(vlan(f"{VLAN_MIN}-{VLAN_MAX}")) == "0-4095"


@pytest.mark.parametrize("item", ["abc", "1-", "-5", "1--3", "1-2-3", "5a", "+5", "1.5", "1 2"])
def test_garbage_is_rejected_naming_the_item(item):
    with pytest.raises(IdRangeError, match=re.escape(f"'{item}' is not a valid VXLAN id or range")):
        vxlan(f"10,{item}")


def test_non_ascii_digits_are_rejected():
    with pytest.raises(IdRangeError, match="is not a valid"):
        vxlan("١٢٣")  # Arabic-Indic digits


@pytest.mark.parametrize(("text", "position"), [("1,,2", 2), (",1", 1), ("1,", 2), ("1, ,2", 2)])
def test_empty_item_between_commas_is_rejected_with_its_position(text, position):
    with pytest.raises(IdRangeError, match=f"Item {position} of the VXLAN id list is empty"):
        vxlan(text)


def test_reversed_range_is_rejected_with_both_ends_named():
    with pytest.raises(IdRangeError, match="200-100 is reversed; write 100-200"):
        vxlan("200-100")


def test_vxlan_id_zero_is_out_of_range_and_the_message_uses_the_label():
    with pytest.raises(IdRangeError, match="VXLAN id 0 is out of range 1-16777215"):
        vxlan("0")


def test_vlan_id_above_4095_is_out_of_range():
    with pytest.raises(IdRangeError, match="VLAN id 4096 is out of range 0-4095"):
        vlan("4096")


def test_range_reaching_past_a_bound_is_rejected_naming_the_range():
    with pytest.raises(IdRangeError, match="VLAN id range 4000-5000 is out of range 0-4095"):
        vlan("10,4000-5000")


def test_absurdly_long_number_is_reported_as_out_of_range():
    with pytest.raises(IdRangeError, match="out of range 1-16777215"):
        vxlan("9" * 5000)


def test_default_label_says_id():
    with pytest.raises(IdRangeError, match="^Id 99 is out of range 0-60"):
        small("99")


def test_item_inside_another_is_an_overlap_naming_both():
    with pytest.raises(IdRangeError, match="150 overlaps 100-199"):
        vxlan("100-199,150")


def test_overlap_is_reported_in_the_order_written():
    with pytest.raises(IdRangeError, match="100-199 overlaps 150-300"):
        vxlan("150-300,100-199")


def test_overlap_is_found_whatever_the_order_of_the_other_items():
    with pytest.raises(IdRangeError, match="50 overlaps 1-100"):
        vxlan("300,1-100,200,50")


def test_duplicated_single_id_is_rejected():
    with pytest.raises(IdRangeError, match="5 is listed twice"):
        vxlan("5,5")


def test_non_string_input_is_a_type_error():
    with pytest.raises(TypeError):
        vxlan(None)


# --------------------------------------------------------------------- queries


def test_membership_checks_each_span():
    ranges = vxlan("100-199,250")
    assert 99 not in ranges
    assert 100 in ranges
    assert 199 in ranges
    assert 200 not in ranges
    assert 250 in ranges
    assert 251 not in ranges


def test_membership_of_non_integers_is_false():
    ranges = vxlan("1-10")
    assert "5" not in ranges
    assert 5.0 not in ranges
    assert True not in ranges


def test_count_adds_up_every_span():
    assert vxlan("100-199,250").count() == 101
    assert vxlan(f"{VXLAN_MIN}-{VXLAN_MAX}").count() == VXLAN_MAX


def test_overlaps_gives_the_intersection():
    a = vxlan("1-10,20-30,40")
    b = vxlan("5-25,40-50")
    assert str(a.overlaps(b)) == "5-10,20-25,40"


def test_disjoint_lists_have_an_empty_overlap():
    overlap = vxlan("1-10").overlaps(vxlan("11-20"))
    assert overlap.is_empty()
    assert overlap == IdRanges()


def test_first_free_skips_used_ids_and_crosses_into_the_next_span():
    ranges = vxlan("100-102,250")
    assert ranges.first_free([]) == 100
    assert ranges.first_free([100, 102]) == 101
    assert ranges.first_free([100, 101, 102, 7, 9999]) == 250
    assert ranges.first_free(range(100, 103)) == 250
    assert ranges.first_free([100, 101, 102, 250]) is None


def test_first_free_of_empty_ranges_is_none():
    assert vxlan("").first_free([]) is None


def test_free_count_ignores_used_ids_outside_and_duplicates():
    ranges = vxlan("100-199,250")
    assert ranges.free_count([]) == 101
    assert ranges.free_count([100, 100, 250, 5, 300]) == 99


def test_first_free_accepts_a_generator():
    assert vxlan("1-3").first_free(i for i in (1, 2)) == 3


def test_direct_construction_sorts_and_merges_spans():
    assert IdRanges(((5, 9), (1, 4), (20, 20))).spans == ((1, 9), (20, 20))


def test_direct_construction_rejects_a_reversed_span():
    with pytest.raises(ValueError, match="reversed"):
        IdRanges(((9, 5),))


def test_ranges_are_hashable_and_compare_by_content():
    assert {vxlan("1-5,6-9"), vxlan("1-9")} == {vxlan("1 - 9")}


# ---------------------------------------------------------- property-based tests


@st.composite
def span_lists(draw, minimum=VXLAN_MIN, maximum=VXLAN_MAX, max_spans=8):
    """Sorted, disjoint, non-adjacent spans inside the bounds (a normalised list)."""
    cuts = draw(
        st.lists(
            st.integers(min_value=minimum, max_value=maximum),
            unique=True,
            max_size=2 * max_spans,
        )
    )
    cuts.sort()
    spans = []
    for lo, hi in zip(cuts[::2], cuts[1::2], strict=False):
        if spans and lo <= spans[-1][1] + 1:
            continue  # would be adjacent to the previous span: not normalised
        spans.append((lo, hi))
    single = draw(st.booleans())
    if single and spans:
        spans[-1] = (spans[-1][0], spans[-1][0])
    return tuple(spans)


def members(ranges):
    return {i for lo, hi in ranges.spans for i in range(lo, hi + 1)}


small_ranges = span_lists(minimum=0, maximum=SMALL_MAX).map(IdRanges)


@settings(max_examples=150, deadline=None)
@given(span_lists())
def test_normalised_text_parses_back_to_the_same_spans(spans):
    ranges = IdRanges(spans)
    assert ranges.spans == spans
    text = str(ranges)
    again = vxlan(text)
    assert again == ranges
    assert str(again) == text


@settings(max_examples=100, deadline=None)
@given(span_lists(), st.randoms(use_true_random=False))
def test_shuffled_and_spaced_items_normalise_idempotently(spans, rnd):
    items = [f"{lo} - {hi}" if lo != hi else str(lo) for lo, hi in spans]
    rnd.shuffle(items)
    once = str(vxlan(" , ".join(items)))
    assert once == str(IdRanges(spans))
    assert str(vxlan(once)) == once


@settings(max_examples=100, deadline=None)
@given(span_lists(minimum=0, maximum=SMALL_MAX), st.data())
def test_splitting_a_span_into_adjacent_pieces_parses_to_the_same_ranges(spans, data):
    items = []
    for lo, hi in spans:
        start = lo
        while start <= hi:
            end = data.draw(st.integers(min_value=start, max_value=hi))
            items.append(f"{start}-{end}")
            start = end + 1
    assert small(",".join(items)) == IdRanges(spans)


@settings(max_examples=100, deadline=None)
@given(small_ranges)
def test_membership_agrees_with_brute_force(ranges):
    expected = members(ranges)
    for value in range(-2, SMALL_MAX + 3):
        assert (value in ranges) == (value in expected)
    assert ranges.count() == len(expected)
    assert ranges.is_empty() == (not expected)


@settings(max_examples=100, deadline=None)
@given(small_ranges, small_ranges)
def test_overlaps_is_symmetric_and_equals_set_intersection(a, b):
    assert a.overlaps(b) == b.overlaps(a)
    assert members(a.overlaps(b)) == members(a) & members(b)
    assert a.overlaps(a) == a


@settings(max_examples=100, deadline=None)
@given(small_ranges, st.sets(st.integers(min_value=-5, max_value=SMALL_MAX + 5)))
def test_first_free_and_free_count_agree_with_brute_force(ranges, used):
    free = sorted(members(ranges) - used)
    assert ranges.first_free(used) == (free[0] if free else None)
    assert ranges.free_count(used) == len(free)


@settings(max_examples=100, deadline=None)
@given(small_ranges, small_ranges)
def test_lists_sharing_an_id_are_rejected_as_overlapping(a, b):
    text = ",".join(filter(None, [str(a), str(b)]))
    if members(a) & members(b):
        with pytest.raises(IdRangeError, match="overlaps|listed twice"):
            small(text)
    else:
        assert members(small(text)) == members(a) | members(b)
