"""HubSpot CRM v3 object API, spoken over ``httpx.AsyncClient``.

How each op maps onto HubSpot (the semantics are those of ``model.py``):

- ``contact.upsert``: ``POST /crm/v3/objects/contacts/batch/upsert``, one input per contact
  ``{idProperty, id, properties, objectWriteTraceId}``; the trace id is the command id, which is how a per-input
  error in a 207 answer is matched back to its command. ``None`` values are sent as ``""`` (HubSpot clears).
- ``contact.archive``: the same upsert (for the command's properties, and because it answers the HubSpot ids
  batch archive needs), then ``POST /crm/v3/objects/contacts/batch/archive`` by those ids. Two calls.
- ``contact.erase``: ``POST /crm/v3/objects/contacts/gdpr-delete`` ``{objectId, idProperty}``; HubSpot has no
  batch form, so :meth:`batch_limit` is 1 for it.
- ``activity.upsert``: the contact's HubSpot id (from a cache filled by every contact answer, else
  ``POST /crm/v3/objects/contacts/batch/read`` by ``idProperty``; HubSpot answers live contacts only, so the
  ones it did not find are asked again with ``?archived=true``: an archived contact refuses the activity with
  ``CONTACT_ARCHIVED``, its own dead-letter code, a missing one with ``CONTACT_NOT_FOUND``), then
  ``POST /crm/v3/objects/meetings/batch/upsert`` by the unique custom property ``switchyard_activity_id``, then
  ``POST /crm/v4/associations/meetings/contacts/batch/associate/default`` (the default meeting -> contact type).
  Batch upsert takes no associations, and a custom "contact id" property would not put the meeting on the
  contact's timeline, hence the association call, skipped for meetings this adapter already linked to that
  contact. A pair is linked when the answer's ``results`` list it; one that is missing there failed, whatever
  the answer's ``errors`` say (HubSpot's spec documents a 200 whose ``errors`` shape it leaves open). One to
  four calls per batch.
- ``activity.delete``: meeting ids (cached from upserts, else ``batch/read`` by ``switchyard_activity_id``), then
  ``POST /crm/v3/objects/meetings/batch/archive``.

Every request body is one HubSpot's API spec accepts: ``tests/integration/test_crm_hubspot_sdk.py`` reads each back
through the official SDK's request model (``batch/read`` needs ``propertiesWithHistory``, even empty).

Every request carries ``Idempotency-Key``: the command id for single-command calls, else a hash of the call's
endpoint and command ids, so a retried call is recognisable (the reference CRM answers a repeated key with its
first answer; HubSpot itself ignores the header and relies on upsert semantics, which are idempotent anyway).

The id caches assume this worker is the only writer of the contacts it syncs (an erase through this adapter
evicts, and the contact is known gone until an upsert re-creates it: no look-up for it); a contact erased behind
its back makes the association fail, which refuses the activity (404).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import orjson

from app.core.clock import Clock, utc_now
from app.core.errors import RetriableSinkError
from app.sinks.crm.base import (
    CONTACT_ARCHIVED,
    CONTACT_NOT_FOUND,
    CrmAdapter,
    Gate,
    ItemError,
    ItemResult,
    command_values,
    item_error,
    open_gate,
    parse_retry_after,
    raise_for_answer,
)
from app.sinks.crm.commands import CommandOp, CrmCommand
from app.sinks.crm.properties import (
    ACTIVITY_ID_PROPERTY,
    CONTACT_TYPES,
    MEETING_TYPES,
    contact_properties,
    meeting_properties,
    property_errors,
)

CONTACTS = "/crm/v3/objects/contacts"
MEETINGS = "/crm/v3/objects/meetings"
ASSOCIATE = "/crm/v4/associations/meetings/contacts/batch/associate/default"
IDEMPOTENCY_HEADER = "Idempotency-Key"

_NO_RESULT = ItemError(502, "NO_RESULT", "The CRM answered the batch without a result for this input")


def call_key(endpoint: str, command_ids: Iterable[str]) -> str:
    """The idempotency key of one batch call: same endpoint and commands -> same key."""
    h = hashlib.sha256(endpoint.encode())
    for cid in command_ids:
        h.update(b"\x00" + cid.encode())
    return h.hexdigest()


def _trace_ids(err: dict[str, Any], field: str) -> list[str]:
    ctx = err.get("context") or {}
    values = ctx.get(field) if isinstance(ctx, dict) else None
    return [str(v) for v in values] if isinstance(values, list) else []


class HubSpotAdapter(CrmAdapter):
    """The HubSpot adapter. ``client`` may be passed to share a connection pool (or a transport in tests)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.base_url = str(self._client.base_url).rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"}
        self._clock = clock
        self._contact_ids: dict[tuple[str, str], str] = {}
        self._archived: set[tuple[str, str]] = set()
        self._erased: set[tuple[str, str]] = set()
        self._meeting_ids: dict[str, str] = {}
        self._linked: set[tuple[str, str]] = set()

    def batch_limit(self, op: CommandOp) -> int:
        return 1 if op == "contact.erase" else self.max_batch_size

    @staticmethod
    def accepts_command(cmd: CrmCommand) -> bool:
        """Values of the types the account defines; what the CRM would refuse for sure is not coalesced."""
        if cmd.op.startswith("activity."):
            return not property_errors(MEETING_TYPES, meeting_properties(cmd.properties))
        return not property_errors(CONTACT_TYPES, contact_properties(cmd.properties))

    def accepts(self, cmd: CrmCommand) -> bool:
        return self.accepts_command(cmd)

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- HTTP ----------------------------------------------------------------------------------------------------
    async def _post(
        self,
        gate: Gate,
        op: str,
        path: str,
        body: dict[str, Any],
        key: str | None,
        cmds: Sequence[CrmCommand],
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST ``body``; ``key`` is the call's idempotency key, None for a look-up: a read is safe to repeat,
        and an answer replayed under the same key would be the CRM's state at the first asking."""
        headers = {**self._auth, "Content-Type": "application/json"}
        if key is not None:
            headers[IDEMPOTENCY_HEADER] = key
        async with gate(op, path) as record:
            try:
                resp = await self._client.post(
                    path, content=orjson.dumps(body), headers=headers, params=params
                )
            except httpx.TimeoutException as exc:
                raise RetriableSinkError(f"{op} {path}: CRM timed out", code="CRM-TIMEOUT") from exc
            except httpx.TransportError as exc:
                raise RetriableSinkError(
                    f"{op} {path}: CRM unreachable ({type(exc).__name__})", code="CRM-CONNECTION"
                ) from exc
            record.status = resp.status_code
        retry_after = parse_retry_after(resp.headers.get("retry-after"), self._clock())
        raise_for_answer(
            resp.status_code, resp.content, retry_after, what=f"{op} {path}", secrets=command_values(cmds)
        )
        if not resp.content:
            return {}
        try:
            parsed = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise RetriableSinkError(
                f"{op} {path}: CRM answered {resp.status_code} with no JSON", code="CRM-GARBLED"
            ) from exc
        return parsed if isinstance(parsed, dict) else {}

    def _errors_by(
        self, body: dict[str, Any], field: str, cmds: Sequence[CrmCommand]
    ) -> dict[str, ItemError]:
        out: dict[str, ItemError] = {}
        secrets = command_values(cmds)
        for err in body.get("errors") or ():
            if isinstance(err, dict):
                for ref in _trace_ids(err, field):
                    out[ref] = item_error(err, secrets)
        return out

    # --- contacts ------------------------------------------------------------------------------------------------
    async def _upsert(self, op: str, cmds: Sequence[CrmCommand], gate: Gate) -> list[ItemResult]:
        path = f"{CONTACTS}/batch/upsert"
        inputs = [
            {
                "idProperty": c.id_property,
                "id": c.contact_id,
                "properties": contact_properties(c.properties),
                "objectWriteTraceId": c.command_id,
            }
            for c in cmds
        ]
        key = cmds[0].command_id if len(cmds) == 1 else call_key(path, (c.command_id for c in cmds))
        body = await self._post(gate, op, path, {"inputs": inputs}, key, cmds)
        ids = {
            str(r.get("objectWriteTraceId")): str(r["id"])
            for r in body.get("results") or ()
            if isinstance(r, dict) and "id" in r
        }
        errors = self._errors_by(body, "objectWriteTraceId", cmds)
        out: list[ItemResult] = []
        for c in cmds:
            if c.command_id in errors:
                out.append(ItemResult(c.command_id, errors[c.command_id]))
            elif c.command_id in ids:
                self._contact_ids[(c.id_property, c.contact_id)] = ids[c.command_id]
                self._archived.discard((c.id_property, c.contact_id))
                self._erased.discard((c.id_property, c.contact_id))
                out.append(ItemResult(c.command_id, crm_id=ids[c.command_id]))
            else:
                out.append(ItemResult(c.command_id, _NO_RESULT))
        return out

    async def upsert_contacts(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        return await self._upsert("contact.upsert", cmds, gate)

    async def archive_contacts(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        results = await self._upsert("contact.archive", cmds, gate)
        ids = [r.crm_id for r in results if r.ok and r.crm_id]
        for c, r in zip(cmds, results, strict=True):
            if r.ok:
                self._contact_ids.pop((c.id_property, c.contact_id), None)
                self._archived.add((c.id_property, c.contact_id))
        if ids:
            path = f"{CONTACTS}/batch/archive"
            await self._post(
                gate,
                "contact.archive",
                path,
                {"inputs": [{"id": i} for i in ids]},
                call_key(path, (c.command_id for c in cmds)),
                cmds,
            )
        return results

    async def erase_contacts(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        out: list[ItemResult] = []
        for c in cmds:
            body = {"objectId": c.contact_id, "idProperty": c.id_property}
            await self._post(gate, "contact.erase", f"{CONTACTS}/gdpr-delete", body, c.command_id, [c])
            self._forget_contact(c)
            self._erased.add((c.id_property, c.contact_id))
            out.append(ItemResult(c.command_id))
        return out

    def _forget_contact(self, c: CrmCommand) -> None:
        """After an erase: drop what the cache knows about the contact (all of it when its id is unknown)."""
        self._archived.discard((c.id_property, c.contact_id))
        gone = self._contact_ids.pop((c.id_property, c.contact_id), None)
        if gone is None:
            self._contact_ids.clear()
            self._linked.clear()
            return
        self._contact_ids = {k: v for k, v in self._contact_ids.items() if v != gone}
        self._linked = {pair for pair in self._linked if pair[1] != gone}

    async def _resolve_contacts(self, cmds: Sequence[CrmCommand], gate: Gate, op: str) -> None:
        """Fill the contact id cache for ``cmds``' live contacts and the archived set for archived ones (asked
        only for those HubSpot did not find live); contacts the CRM does not know stay out of both."""
        for archived in (False, True):
            wanted: dict[str, list[CrmCommand]] = {}
            for c in cmds:
                ref = (c.id_property, c.contact_id)
                if ref not in self._contact_ids and ref not in self._archived and ref not in self._erased:
                    wanted.setdefault(c.id_property, []).append(c)
            for id_property, group in sorted(wanted.items()):
                path = f"{CONTACTS}/batch/read"
                values = sorted({c.contact_id for c in group})
                body = {
                    "idProperty": id_property,
                    "inputs": [{"id": v} for v in values],
                    "properties": [id_property],
                    "propertiesWithHistory": [],
                }
                params = {"archived": "true"} if archived else None
                answer = await self._post(gate, op, path, body, None, group, params)
                for r in answer.get("results") or ():
                    value = (r.get("properties") or {}).get(id_property) if isinstance(r, dict) else None
                    if value is None or "id" not in r:
                        continue
                    if archived:
                        self._archived.add((id_property, str(value)))
                    else:
                        self._contact_ids[(id_property, str(value))] = str(r["id"])

    # --- activities ----------------------------------------------------------------------------------------------
    async def upsert_activities(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        op = "activity.upsert"
        await self._resolve_contacts(cmds, gate, op)
        results: dict[str, ItemResult] = {}
        known = [c for c in cmds if (c.id_property, c.contact_id) in self._contact_ids]
        for c in cmds:
            if (c.id_property, c.contact_id) in self._archived:
                results[c.command_id] = ItemResult(c.command_id, CONTACT_ARCHIVED)
            elif (c.id_property, c.contact_id) not in self._contact_ids:
                results[c.command_id] = ItemResult(c.command_id, CONTACT_NOT_FOUND)
        if known:
            path = f"{MEETINGS}/batch/upsert"
            inputs = [
                {
                    "idProperty": ACTIVITY_ID_PROPERTY,
                    "id": c.activity_id,
                    "properties": meeting_properties(c.properties),
                    "objectWriteTraceId": c.command_id,
                }
                for c in known
            ]
            body = await self._post(
                gate, op, path, {"inputs": inputs}, call_key(path, (c.command_id for c in known)), known
            )
            errors = self._errors_by(body, "objectWriteTraceId", known)
            meeting_of = {
                str(r.get("objectWriteTraceId")): str(r["id"])
                for r in body.get("results") or ()
                if isinstance(r, dict) and "id" in r
            }
            pairs: list[tuple[CrmCommand, str, str]] = []
            for c in known:
                if c.command_id in errors:
                    results[c.command_id] = ItemResult(c.command_id, errors[c.command_id])
                elif c.command_id in meeting_of:
                    self._meeting_ids[c.activity_id or ""] = meeting_of[c.command_id]
                    pairs.append(
                        (c, meeting_of[c.command_id], self._contact_ids[(c.id_property, c.contact_id)])
                    )
                else:
                    results[c.command_id] = ItemResult(c.command_id, _NO_RESULT)
            for c, meeting, contact in pairs:
                if (meeting, contact) in self._linked:
                    results[c.command_id] = ItemResult(c.command_id, crm_id=meeting)
            pairs = [p for p in pairs if (p[1], p[2]) not in self._linked]
            if pairs:
                await self._associate(pairs, gate, results)
        return [results[c.command_id] for c in cmds]

    async def _associate(
        self, pairs: list[tuple[CrmCommand, str, str]], gate: Gate, results: dict[str, ItemResult]
    ) -> None:
        cmds = [c for c, _, _ in pairs]
        inputs = [{"from": {"id": m}, "to": {"id": k}} for _, m, k in pairs]
        body = await self._post(
            gate,
            "activity.upsert",
            ASSOCIATE,
            {"inputs": inputs},
            # The pair's ids are part of the request: a command replayed after its contact was created again
            # links another contact, which is another request, not a repeat of the first.
            call_key(ASSOCIATE, (f"{c.command_id}:{m}:{k}" for c, m, k in pairs)),
            cmds,
        )
        linked = {
            (str((r.get("from") or {}).get("id")), str((r.get("to") or {}).get("id")))
            for r in body.get("results") or ()
            if isinstance(r, dict)
        }
        for c, meeting, contact in pairs:
            if (meeting, contact) not in linked:
                self._contact_ids.pop((c.id_property, c.contact_id), None)
                results[c.command_id] = ItemResult(c.command_id, CONTACT_NOT_FOUND)
            else:
                self._linked.add((meeting, contact))
                results[c.command_id] = ItemResult(c.command_id, crm_id=meeting)

    async def delete_activities(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        op = "activity.delete"
        unknown = sorted({c.activity_id or "" for c in cmds} - self._meeting_ids.keys())
        if unknown:
            path = f"{MEETINGS}/batch/read"
            body = {
                "idProperty": ACTIVITY_ID_PROPERTY,
                "inputs": [{"id": a} for a in unknown],
                "properties": [ACTIVITY_ID_PROPERTY],
                "propertiesWithHistory": [],
            }
            answer = await self._post(gate, op, path, body, None, cmds)
            for r in answer.get("results") or ():
                aid = (r.get("properties") or {}).get(ACTIVITY_ID_PROPERTY) if isinstance(r, dict) else None
                if aid is not None and "id" in r:
                    self._meeting_ids[str(aid)] = str(r["id"])
        ids = sorted({self._meeting_ids[a] for c in cmds if (a := c.activity_id or "") in self._meeting_ids})
        if ids:
            path = f"{MEETINGS}/batch/archive"
            await self._post(
                gate,
                op,
                path,
                {"inputs": [{"id": i} for i in ids]},
                call_key(path, (c.command_id for c in cmds)),
                cmds,
            )
        for c in cmds:
            self._meeting_ids.pop(c.activity_id or "", None)
        self._linked = {pair for pair in self._linked if pair[0] not in ids}
        return [ItemResult(c.command_id) for c in cmds]
