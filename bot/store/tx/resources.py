"""The local resource directory and the referrals given from it. Directory rows are public
information (Open Referral HSDS), stored in the clear and replaced whole by each import.
A referral copies the service's name, so a conversation's history still reads after a
re-import; referrals go with their conversation (cascade, and `purge_conversation`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.store.base import NotFound, Referral, ResourceSite
from bot.store.tx.core import Row, SqlTxBase, check

_SITE_COLUMNS = (
    "id",
    "service_id",
    "name",
    "organization",
    "phone",
    "address",
    "postal_code",
    "latitude",
    "longitude",
    "needs",
    "timezone",
    "schedule",
    "imported_at",
)
# Rows per INSERT: far under SQLite's 32766 parameters, and few round trips to PostgreSQL.
_BATCH = 200


def _needs_text(needs: Sequence[str]) -> str:
    """ ",shelter,hotline,": one `LIKE '%,need,%'` finds a need in either dialect."""
    for need in needs:
        check(bool(need) and "," not in need and "%" not in need, f"bad need {need!r}")
    return "," + "".join(f"{need}," for need in needs)


class ResourceTx(SqlTxBase):
    def _site(self, r: Row) -> ResourceSite:
        return ResourceSite(
            id=r["id"],
            service_id=r["service_id"],
            name=r["name"],
            organization=r["organization"],
            phone=r["phone"],
            address=r["address"],
            postal_code=r["postal_code"],
            latitude=r["latitude"],
            longitude=r["longitude"],
            needs=[n for n in r["needs"].split(",") if n],
            timezone=r["timezone"],
            schedule=r["schedule"],
        )

    async def replace_resources(self, sites: Sequence[ResourceSite], now: datetime) -> int:
        at = self._at(now)
        ids = [s.id for s in sites]
        check(len(set(ids)) == len(ids), "two directory sites share an id")
        for s in sites:
            check(bool(s.id and s.service_id and s.name), "a site needs an id, service and name")
            check(
                (s.latitude is None) == (s.longitude is None),
                f"site {s.id}: latitude and longitude go together",
            )
        await self._execute("DELETE FROM resource_sites")
        row_marks = "(" + ", ".join("?" * len(_SITE_COLUMNS)) + ")"
        for start in range(0, len(sites), _BATCH):
            batch = sites[start : start + _BATCH]
            args: list[Any] = []
            for s in batch:
                args += [
                    s.id,
                    s.service_id,
                    s.name,
                    s.organization,
                    s.phone,
                    s.address,
                    s.postal_code,
                    s.latitude,
                    s.longitude,
                    _needs_text(s.needs),
                    s.timezone,
                    s.schedule,
                    at,
                ]
            await self._execute(
                f"INSERT INTO resource_sites ({', '.join(_SITE_COLUMNS)}) VALUES "
                + ", ".join([row_marks] * len(batch)),
                *args,
            )
        return len(sites)

    async def resource_sites_in_box(
        self,
        south: float,
        north: float,
        west: float,
        east: float,
        need: str | None = None,
    ) -> list[ResourceSite]:
        where = ""
        args: list[Any] = [float(south), float(north), float(west), float(east)]
        if need is not None:
            where = " AND needs LIKE ?"
            args.append(f"%{_needs_text([need])}%")
        rows = await self._fetch(
            "SELECT * FROM resource_sites WHERE latitude IS NOT NULL"
            " AND latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ?"
            f"{where} ORDER BY id",
            *args,
        )
        return [self._site(r) for r in rows]

    async def count_resource_sites(self) -> int:
        r = await self._returning("SELECT COUNT(*) AS n FROM resource_sites")
        return int(r["n"])

    async def record_referral(
        self, conversation_id: int, service_id: str, user_id: int | None, now: datetime
    ) -> Referral:
        site = await self._one(
            "SELECT name FROM resource_sites WHERE service_id = ? ORDER BY id LIMIT 1",
            service_id,
        )
        if site is None:
            raise NotFound(f"no service {service_id!r} in the resource directory")
        await self._require("conversations", conversation_id)
        r = await self._returning(
            "INSERT INTO referrals (conversation_id, service_id, name, user_id, created_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING *",
            conversation_id,
            service_id,
            site["name"],
            user_id,
            self._at(now),
        )
        return self._referral(r)

    async def list_referrals(self, conversation_id: int) -> list[Referral]:
        rows = await self._fetch(
            "SELECT * FROM referrals WHERE conversation_id = ? ORDER BY id", conversation_id
        )
        return [self._referral(r) for r in rows]

    def _referral(self, r: Row) -> Referral:
        return Referral(
            id=r["id"],
            conversation_id=r["conversation_id"],
            service_id=r["service_id"],
            name=r["name"],
            user_id=r["user_id"],
            created_at=self._dt(r["created_at"]),
        )
