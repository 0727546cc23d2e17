"""How many SMS segments a text costs (3GPP TS 23.038 alphabets, TS 23.040 concatenation).

A text that uses only the GSM 7-bit default alphabet is sent in septets: a basic-table
character is 1 septet, an extension-table character (€ [ ] { } ^ ~ | \\ form feed) is 2 (an
escape plus the character). One segment holds 160 septets; a concatenated message spends
7 septets of each part on its header, leaving 153. Any other character makes the whole
text UCS-2: 70 UTF-16 code units in one segment, 67 per part when concatenated (an emoji
outside the BMP is a surrogate pair, 2 units). Phones and carriers never split an escape
sequence or a surrogate pair across parts, so a part may end up to one unit short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# The GSM 03.38 default alphabet, in table order (0x00-0x7F); \x1b is the escape slot.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class Count:
    """A text's encoding, its length in that encoding's units, and its segments."""

    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def non_gsm7(text: str) -> list[str]:
    """The characters of `text` that GSM-7 cannot carry, in order, each once."""
    seen: dict[str, None] = {}
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION:
            seen.setdefault(char)
    return list(seen)


def count(text: str) -> Count:
    """Encoding, units and segment count of one outbound text (an empty text is 0)."""
    if non_gsm7(text):
        sizes = [len(char.encode("utf-16-le")) // 2 for char in text]
        return Count("UCS-2", sum(sizes), _segments(sizes, UCS2_SINGLE, UCS2_PART))
    sizes = [2 if char in GSM7_EXTENSION else 1 for char in text]
    return Count("GSM-7", sum(sizes), _segments(sizes, GSM7_SINGLE, GSM7_PART))


def segments(text: str) -> int:
    """How many SMS segments `text` is sent as."""
    return count(text).segments


def _segments(sizes: list[int], single: int, part: int) -> int:
    total = sum(sizes)
    if total <= single:
        return 1 if total else 0
    # Pack greedily: a 2-unit character that would straddle a boundary starts the next part.
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts
