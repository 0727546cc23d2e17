"""Twilio's message status names: the one definition (the webhook handler checks callbacks
against it; the store ranks and folds delivery statuses with it)."""

from __future__ import annotations

# An outbound message's progress. Each status at FINAL_RANK is final: nothing moves out of it,
# so a late "sent" never undoes "delivered".
DELIVERY_RANK: dict[str, int] = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}
FINAL_RANK = 3
# Twilio's other outbound statuses, folded into the ones above.
ALIASES: dict[str, str] = {
    "accepted": "queued",
    "scheduled": "queued",
    "read": "delivered",
    "canceled": "failed",
}
# Haven's own final status for a text whose send had an unknown outcome (a timeout, a
# connection lost after sending): it may have arrived, it is never resent, staff see it.
UNCERTAIN = "uncertain"
# How Twilio reports an inbound message in a status callback (nothing of ours to update).
INBOUND_STATUSES = frozenset({"receiving", "received"})
# Every status a callback may carry.
CALLBACK_STATUSES = frozenset(DELIVERY_RANK) | frozenset(ALIASES) | INBOUND_STATUSES
