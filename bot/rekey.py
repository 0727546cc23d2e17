"""Which key the data is under, and moving it to a new one.

Start-up (`check_key`) refuses a HAVEN_SECRET_KEY that cannot read the stored data: the
database records a key check (bot.crypto.Crypto.key_check), and a database from before the
check is judged by decrypting one stored value. Serving under the wrong key would give staff
500s and treat every returning texter as new.

`python -m bot rekey` (`rekey`) re-encrypts every protected field and re-computes every keyed
phone hash from the keys in HAVEN_PREVIOUS_SECRET_KEYS to HAVEN_SECRET_KEY, table by table in
batches, one transaction per batch. Each row is first tried with the new key and left alone
if it already reads, so an interrupted run is simply run again. Only when every row is under
the new key does it record the new key check, and start-up accepts the new key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.crypto import Crypto, DecryptionError
from bot.logs import get_logger
from bot.settings import Settings
from bot.store import Store, open_store
from bot.store.tx.operations import ENCRYPTED, KeyMissing

log = get_logger("haven.rekey")


class KeyRefused(RuntimeError):
    """The key cannot read the data; the message says what to do."""


def _refusal(settings: Settings, stored: str | None) -> str:
    previous = {Crypto(k).key_check() for k in settings.previous_secret_keys}
    if stored is not None and stored in previous:
        return (
            "the data is still under a key in HAVEN_PREVIOUS_SECRET_KEYS: run"
            " `python -m bot rekey` to move it to HAVEN_SECRET_KEY (it resumes if interrupted)"
        )
    return (
        "HAVEN_SECRET_KEY cannot read this database (it was written under another key): set"
        " the key it was written with, or put that key in HAVEN_PREVIOUS_SECRET_KEYS and run"
        " `python -m bot rekey`"
    )


async def check_key(store: Store, settings: Settings) -> None:
    """Refuse (KeyRefused) a key that cannot read the data; record the key at first start."""
    crypto = Crypto(settings.secret_key)
    async with store.transaction() as tx:
        stored = await tx.get_key_check()
        if stored == crypto.key_check():
            return
        if stored is not None:
            raise KeyRefused(_refusal(settings, stored))
        sample = await tx.sample_ciphertext()
        if sample is not None:
            try:
                crypto.decrypt(sample)
            except DecryptionError:
                raise KeyRefused(_refusal(settings, None)) from None
        await tx.set_key_check(crypto.key_check(), datetime.now(UTC))


async def rekey(
    settings: Settings, *, batch: int = 500, stop_after: int | None = None
) -> dict[str, Any]:
    """Move every protected field to settings.secret_key. `stop_after` (rows changed) stops
    early, as an interruption would; the summary says whether it completed."""
    new = Crypto(settings.secret_key)
    previous = [Crypto(k) for k in settings.previous_secret_keys]
    store = open_store(settings, new)
    await store.open()
    changed = seen = 0
    try:
        await store.migrate()
        for table in ENCRYPTED:
            after: Any = None
            while True:
                limit = batch if stop_after is None else min(batch, stop_after - changed)
                if limit <= 0:
                    return {"complete": False, "rows_changed": changed, "rows_seen": seen}
                async with store.transaction() as tx:
                    try:
                        after, moved, read = await tx.rekey_rows(table, after, limit, previous)
                    except KeyMissing as exc:
                        raise KeyRefused(
                            f"{exc}: put the key it was written with in HAVEN_PREVIOUS_SECRET_KEYS"
                        ) from None
                changed, seen = changed + moved, seen + read
                if read < limit:
                    break
            log.info("rekey_table_done", table=table, rows_changed=changed)
        async with store.transaction() as tx:
            await tx.set_key_check(new.key_check(), datetime.now(UTC))
    finally:
        await store.close()
    return {"complete": True, "rows_changed": changed, "rows_seen": seen}
