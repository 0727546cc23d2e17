"""The local resource directory: Open Referral HSDS import (hsds), ZIP geography (geo),
needs (needs), opening hours (schedule), and search (search). The engine and dashboard
use `near`, `nearest_open_24h` and `as_text` inside their own store transaction."""

from bot.resources.needs import NEEDS
from bot.resources.search import Resource, UnknownZip, as_text, near, nearest_open_24h

__all__ = ["NEEDS", "Resource", "UnknownZip", "as_text", "near", "nearest_open_24h"]
