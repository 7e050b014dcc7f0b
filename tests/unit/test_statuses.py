"""``parse_status``: the spellings of a status that the CLI's ``--status`` and the API's ``?status=`` accept."""

from __future__ import annotations

import pytest

from autolog.statuses import Status, parse_status


@pytest.mark.parametrize(("text", "status"), [
    ("7 - Avid Description", Status.AVID_DESCRIPTION),
    ("7", Status.AVID_DESCRIPTION),
    ("0", Status.PENDING_FILE_INFO),
    ("avid description", Status.AVID_DESCRIPTION),
    ("Avid", Status.AVID_DESCRIPTION),
    ("Awaiting", Status.AWAITING_USER_INPUT),
    (" awaiting user input ", Status.AWAITING_USER_INPUT),
    ("3 - creat", Status.CREATING_FRAMES),
    ("thumb", Status.THUMBNAILS_COMPLETE),
])
def test_a_value_number_label_or_unambiguous_prefix_names_its_status(text: str, status: Status) -> None:
    assert parse_status(text) is status


def test_a_prefix_naming_several_statuses_is_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="'A' could be 'Awaiting User Input' or '7 - Avid Description'"):
        parse_status("A")


@pytest.mark.parametrize("text", ["4", "nope", "", "9 - Avid"])
def test_text_naming_no_status_is_refused_listing_them(text: str) -> None:
    with pytest.raises(ValueError, match="expected a status's value, number or label"):
        parse_status(text)
