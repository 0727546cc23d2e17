"""SMS segment counting (flows/sms_segments.py) against known GSM-7 and UCS-2 cases."""

from __future__ import annotations

import pytest

from flows.sms_segments import count, non_gsm7, segments


@pytest.mark.parametrize("text", ["é", "ñ", "¿¡", "ü", "Ñ", "à", "Español: responde ESPAÑOL"])
def test_spanish_letters_gsm7_carries(text: str) -> None:
    """é, ñ, ü, ¿, ¡ (and à) are in the GSM-7 basic table: 1 septet each."""
    assert count(text) == count(text).__class__("GSM-7", len(text), 1)
    assert non_gsm7(text) == []


@pytest.mark.parametrize("char", ["á", "í", "ó", "ú", "Á", "ç", "’", "“"])
def test_accents_outside_gsm7_force_ucs2(char: str) -> None:
    """á í ó ú (and curly quotes) are not GSM-7: one of them makes the whole text UCS-2."""
    result = count("Si estás en peligro" + char)
    assert result.encoding == "UCS-2"
    assert char in non_gsm7("abc" + char)


def test_extension_characters_cost_two_septets() -> None:
    """€ [ ] { } ^ ~ | \\ are escape + character: 2 septets, still GSM-7."""
    assert count("€") == count("€").__class__("GSM-7", 2, 1)
    assert count("[]{}^~|\\").units == 16


def test_emoji_is_ucs2_and_two_code_units() -> None:
    """An emoji outside the BMP is UCS-2 and a surrogate pair: 2 UTF-16 code units."""
    assert count("😀") == count("😀").__class__("UCS-2", 2, 1)


def test_gsm7_single_and_concatenated_limits() -> None:
    """160 septets fit one segment; 161 need two; concatenated parts hold 153 each."""
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("a" * 306) == 2
    assert segments("a" * 307) == 3
    assert segments("€" * 80) == 1  # 160 septets
    assert segments("€" * 80 + "a") == 2


def test_ucs2_single_and_concatenated_limits() -> None:
    """70 code units fit one segment; 71 need two; concatenated parts hold 67 each."""
    assert segments("á" * 70) == 1
    assert segments("á" * 71) == 2
    assert segments("á" * 134) == 2
    assert segments("á" * 135) == 3
    assert segments("😀" * 35) == 1  # 70 code units


def test_escapes_and_surrogate_pairs_are_never_split_across_parts() -> None:
    """A 2-unit character that would straddle a part boundary moves to the next part,
    so a text can need one more segment than its raw length suggests."""
    assert segments("a" * 152 + "€" + "a" * 152) == 3  # 306 septets, but € can't split
    assert segments("a" * 153 + "€" + "a" * 151) == 2
    assert segments("😀" * 67) == 3  # 134 units, but 33 pairs per 67-unit part
    assert segments("😀" * 66) == 2


def test_empty_text_is_no_segment() -> None:
    """Nothing to send costs nothing."""
    assert segments("") == 0
