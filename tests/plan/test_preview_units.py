"""The pre-shared keys file in a plan: parsed block by block, keys masked, changes named."""

from __future__ import annotations

from overlays.distribution.preview import key_changes, mask_keys, parse_preshared

OLD = """# generated, do not edit
# cn01-cn21
{
    localidtype IP
    localid 203.0.113.11
    remoteidtype IP
    remoteid 198.51.100.21
    key aaaa1111
}
# cn01-cn22
{
    localidtype IP
    localid 203.0.113.11
    remoteidtype IP
    remoteid 198.51.100.22
    key bbbb2222
}
"""


def test_blocks_are_read_by_remote_id_and_comments_ignored():
    assert parse_preshared(OLD + "# { remoteid 1.2.3.4 key cccc }\n") == {
        "198.51.100.21": "aaaa1111", "198.51.100.22": "bbbb2222"}


def test_changed_added_and_removed_keys_are_sentences_naming_the_peer():
    new = OLD.replace("aaaa1111", "dddd4444").replace("198.51.100.22", "198.51.100.23")
    peers = {"198.51.100.21": "cn21", "198.51.100.23": "cn23"}

    sentences = key_changes(OLD, new, peers)

    assert sentences == ("key for peer cn21 (198.51.100.21) changed",
                         "key for peer 198.51.100.22 removed",
                         "key for peer cn23 (198.51.100.23) added")
    assert not any(k in " ".join(sentences) for k in ("aaaa1111", "bbbb2222", "dddd4444"))


def test_masking_leaves_no_key_and_the_rest_of_the_file():
    masked = mask_keys(OLD)
    assert "aaaa1111" not in masked and "bbbb2222" not in masked
    assert masked.count("    key <redacted>\n") == 2
    assert mask_keys(OLD.replace("aaaa1111", "ffff")) == masked
    assert "remoteid 198.51.100.22" in masked
