import pytest

from services.common.errors import InvalidArgument
from services.dataset_svc.naming import check_create, safe_file_name, storage_key


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("data.jsonl", "data.jsonl"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\chat log.jsonl", "chat_log.jsonl"),
        ("..", ""),
        ("résumé\x00.jsonl", "resume_.jsonl"),
        ("line\nbreak\t\x7f.jsonl", "line_break_.jsonl"),
        (".../...", ""),
        (".hidden.jsonl", "hidden.jsonl"),
    ],
)
def test_file_names_are_reduced_to_a_safe_basename(given, safe):
    assert safe_file_name(given) == safe


def test_the_storage_key_is_built_by_the_service():
    assert storage_key("u", "d", "f.jsonl") == "u/d/f.jsonl"


def test_the_size_limit_is_500mb():
    assert check_create("n", "f.jsonl", 500 * 1024 * 1024, "", "") == "f.jsonl"
    with pytest.raises(InvalidArgument) as info:
        check_create("n", "f.jsonl", 500 * 1024 * 1024 + 1, "", "")
    assert info.value.details == {"file_size": ["Maximum file size is 500MB; split the file or remove unused records"]}


def test_every_bad_field_is_reported_together():
    with pytest.raises(InvalidArgument) as info:
        check_create("", "/", 0, "csv", "xyz")
    assert set(info.value.details) == {"name", "file_name", "file_size", "format", "sha256"}


def test_a_sha256_is_64_hex_digits_in_either_case():
    assert check_create("n", "f.jsonl", 1, "openai_chat", "AB" * 32) == "f.jsonl"
    with pytest.raises(InvalidArgument) as info:
        check_create("n", "f.jsonl", 1, "", "ab" * 31)
    assert set(info.value.details) == {"sha256"}


def test_a_name_of_only_spaces_or_over_200_characters_is_refused():
    for name in ("   ", "x" * 201):
        with pytest.raises(InvalidArgument) as info:
            check_create(name, "f.jsonl", 1, "", "")
        assert set(info.value.details) == {"name"}
    assert check_create("x" * 200, "f.jsonl", 1, "sharegpt", "") == "f.jsonl"


@pytest.mark.parametrize("name", ["chats\x00", "two\nlines", "tab\there", "bell\x07"])
def test_a_name_with_control_characters_is_refused_naming_the_field(name):
    with pytest.raises(InvalidArgument) as info:
        check_create(name, "f.jsonl", 10, "", "")
    assert list(info.value.details) == ["name"]
