"""An RDAP answer is outside data: only one plain address per contact becomes a notice's
recipient (a list, a display name or a line break could add recipients or headers), and
JSON nested past Python's recursion limit is a clean error."""

from __future__ import annotations

import pytest

from amparo.hotline.rdap import abuse_email, single_address


@pytest.mark.parametrize("text", ["abuse@host.example", " mailto:x.y+z@noc.host.example "])
def test_one_plain_address_is_kept(text: str) -> None:
    assert single_address(text.strip().removeprefix("mailto:")) == text.strip().removeprefix(
        "mailto:"
    )


@pytest.mark.parametrize(
    "text",
    [
        "abuse@evil.example, ceo@victim.example",
        "Abuse Desk <abuse@host.example>",
        "abuse@host.example\r\nBcc: ceo@victim.example",
        "abusé@host.example",
        "abuse@localhost",
        "abuse@.example",
        "abuse@host..example",
        "no-at-sign.example",
        "a" * 400 + "@host.example",
    ],
)
def test_anything_else_is_ignored(text: str) -> None:
    assert single_address(text) is None


def test_an_answer_listing_two_recipients_names_nobody() -> None:
    answer = {
        "entities": [
            {
                "roles": ["abuse"],
                "vcardArray": [
                    "vcard",
                    [["email", {}, "text", "abuse@evil.example, ceo@victim.example"]],
                ],
            }
        ]
    }
    assert abuse_email(answer) is None
