"""The HubSpot adapter and CrmSink against the reference CRM, over HTTP on 127.0.0.1 (no Kafka).

The yardstick is ``model.expected_state``: the commands applied one by one, in order. Rate-limit claims are
checked from the server's side (``/__admin/stats``), which counts every call that arrived.
"""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.core.errors import RetriableSinkError
from app.sinks.crm.benchmark import TOKEN, drain, generate_commands, run_backlog_async
from app.sinks.crm.commands import CrmCommand
from app.sinks.crm.hubspot import IDEMPOTENCY_HEADER, HubSpotAdapter
from app.sinks.crm.model import expected_state, normalize_state
from app.sinks.crm.reference import ReferenceCrm
from app.sinks.crm.setup import setup_portal

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def command(i: int, op: str, contact: str, props: dict[str, Any] | None = None, **kw: Any) -> CrmCommand:
    return CrmCommand(
        command_id=f"it-{i:06d}",
        op=op,
        contact_id=contact,
        properties=props or {},
        source="test",
        source_event_id=f"ev-{i}",
        issued_at=NOW,
        **kw,
    )


def contact_input(value: str, **props: Any) -> dict[str, Any]:
    return {
        "idProperty": "vome_user_id",
        "id": value,
        "properties": props,
        "objectWriteTraceId": f"t-{value}",
    }


@pytest.fixture
async def crm() -> AsyncIterator[ReferenceCrm]:
    async with ReferenceCrm(limit=1000, window=1.0) as server:
        yield server


@pytest.fixture
async def http(crm: ReferenceCrm) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=crm.url, headers=AUTH, timeout=5.0) as client:
        yield client


# --- the sink end to end --------------------------------------------------------------------------------------
async def test_a_backlog_is_synced_exactly_within_the_limit_and_near_the_minimum_of_calls() -> None:
    result = await run_backlog_async(5000, 500, limit=100, window=1.0)
    assert result["state_matches"] is True
    assert result["max_calls_in_window"] <= 100
    # 50 calls carry 5,000 commands at 100 per call; the rest is what the API cannot batch: the archive after
    # its upsert, the meeting -> contact associations, and one call per GDPR erasure.
    assert result["calls"] <= math.ceil(5000 / 100) + 15
    # The contact calls carry most of what they could: 500 contacts, each upserted ~6 times, coalesce into
    # nearly full batches between the order's barriers (38 per contact call measured; archives and erasures,
    # two calls and one call each, pull it down).
    assert result["contacts_per_call"] >= 30


async def test_a_tight_budget_makes_the_sink_wait_never_overrun() -> None:
    commands = generate_commands(1200, 150, seed=3)
    async with ReferenceCrm(limit=8, window=0.25) as server:
        dead = await drain(server.url, commands, 8, 0.25, chunk=300)
        stats = server.stats()
        state = normalize_state(server.state())
    want, refused = expected_state(commands)
    assert state == want and {d.command.command_id for d in dead} == set(refused)
    assert stats["max_calls_in_window"] <= 8
    assert stats["rate_limited"] == 0
    assert stats["calls"] > 8


async def test_outage_then_429_bursts_then_lost_answers_lose_nothing_and_duplicate_nothing() -> None:
    commands = generate_commands(2000, 200, seed=11)
    async with ReferenceCrm(limit=50, window=0.5) as server:
        server.inject("outage", seconds=0.6)
        server.inject("429", count=4, delay=0.2)
        server.inject("5xx", count=3)
        server.inject("timeout", count=2, delay=0.5)
        server.inject("slow", count=3, delay=0.05)
        dead = await drain(server.url, commands, 50, 0.5, chunk=250, timeout=0.3)
        stats = server.stats()
        state = normalize_state(server.state())
        raw = server.state()
    want, refused = expected_state(commands)
    assert state == want
    assert {d.command.command_id for d in dead} == set(refused)
    assert stats["calls_by_status"].get("503", 0) >= 4 and stats["calls_by_status"].get("429", 0) >= 4
    assert stats["idempotent_replays"] >= 1
    assert stats["max_calls_in_window"] <= 50
    activity_ids = [m["properties"]["switchyard_activity_id"] for m in raw["meetings"]]
    assert len(activity_ids) == len(set(activity_ids))
    contact_ids = [c["properties"]["vome_user_id"] for c in raw["contacts"]]
    assert len(contact_ids) == len(set(contact_ids))


async def test_a_contact_erased_midway_keeps_its_order_and_leaves_only_an_id_in_the_log() -> None:
    commands = [
        command(1, "contact.upsert", "u1", {"email": "ana@example.org", "firstname": "Ana"}),
        command(
            2, "activity.upsert", "u1", {"title": "Shift", "start": "2026-03-02T10:00:00Z"}, activity_id="b1"
        ),
        command(3, "contact.erase", "u1"),
        command(4, "activity.upsert", "u1", {"title": "Late"}, activity_id="b2"),
        command(5, "contact.upsert", "u1", {"firstname": "Ana"}),
        command(6, "contact.archive", "u1", {"vome_status": "archived"}),
    ]
    async with ReferenceCrm(limit=100, window=1.0) as server:
        dead = await drain(server.url, commands, 100, 1.0)
        raw = server.state()
    want, refused = expected_state(commands)
    assert normalize_state(raw) == want
    assert [d.command.command_id for d in dead] == list(refused) == ["it-000004"]
    assert dead[0].status == 404
    assert raw["contacts"] == [
        {
            "id": raw["contacts"][0]["id"],
            "properties": {"vome_user_id": "u1", "firstname": "Ana", "vome_status": "archived"},
            "archived": True,
        }
    ]
    assert [m["contacts"] for m in raw["meetings"]] == [[]]
    [erasure] = raw["erasures"]
    assert set(erasure) == {"objectId", "erasedAt"} and "ana" not in orjson.dumps(raw["erasures"]).decode()


async def test_a_value_the_crm_refuses_is_dead_lettered_alone_without_the_value() -> None:
    commands = [command(i, "contact.upsert", f"u{i}", {"firstname": f"n{i}"}) for i in range(5)]
    commands.insert(2, command(99, "contact.upsert", "u1", {"email": "ana-at-example"}))
    async with ReferenceCrm(limit=100, window=1.0) as server:
        dead = await drain(server.url, commands, 100, 1.0)
        state = normalize_state(server.state())
    assert [d.command.command_id for d in dead] == ["it-000099"]
    assert dead[0].status == 400 and "ana-at-example" not in dead[0].body
    assert orjson.loads(dead[0].body)["codes"] == ["INVALID_EMAIL@email"]
    assert state == expected_state(commands)[0]


# --- the adapter's transport errors --------------------------------------------------------------------------
async def test_a_refused_connection_and_a_timeout_are_retriable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = HubSpotAdapter(f"http://127.0.0.1:{port}", TOKEN, timeout=1.0)
    with pytest.raises(RetriableSinkError) as info:
        await closed.upsert_contacts([command(1, "contact.upsert", "u1")])
    assert info.value.code == "CRM-CONNECTION"
    await closed.aclose()
    async with ReferenceCrm() as server:
        server.inject("timeout", count=1, delay=1.0)
        adapter = HubSpotAdapter(server.url, TOKEN, timeout=0.2)
        with pytest.raises(RetriableSinkError) as info:
            await adapter.upsert_contacts([command(1, "contact.upsert", "u1")])
        assert info.value.code == "CRM-TIMEOUT"
        [result] = await adapter.upsert_contacts([command(1, "contact.upsert", "u1")])
        assert result.ok and server.stats()["idempotent_replays"] == 1
        await adapter.aclose()


async def test_a_fresh_adapter_looks_contacts_and_meetings_up_before_using_them() -> None:
    async with ReferenceCrm() as server:
        first = HubSpotAdapter(server.url, TOKEN)
        [made] = await first.upsert_contacts([command(1, "contact.upsert", "u1", {"firstname": "Ana"})])
        await first.aclose()
        second = HubSpotAdapter(server.url, TOKEN)
        results = await second.upsert_activities(
            [
                command(2, "activity.upsert", "u1", {"title": "Shift"}, activity_id="b1"),
                command(3, "activity.upsert", "nobody", {"title": "Shift"}, activity_id="b2"),
            ]
        )
        assert [r.ok for r in results] == [True, False]
        assert results[1].error is not None and results[1].error.status == 404
        again = await second.upsert_activities(
            [command(4, "activity.upsert", "u1", {"status": "COMPLETED"}, activity_id="b1")]
        )
        assert again[0].ok
        await second.aclose()
        third = HubSpotAdapter(server.url, TOKEN)
        assert all(
            r.ok
            for r in await third.delete_activities([command(5, "activity.delete", "u1", activity_id="b1")])
        )
        assert all(
            r.ok
            for r in await third.delete_activities([command(6, "activity.delete", "u1", activity_id="never")])
        )
        await third.aclose()
        endpoints = server.stats()["calls_by_endpoint"]
        state = server.state()
    # one look-up of live contacts, and one of archived ones for "nobody", whom the first did not find
    assert endpoints["/crm/v3/objects/contacts/batch/read"] == 2
    assert endpoints["/crm/v4/associations/meetings/contacts/batch/associate/default"] == 1
    assert endpoints["/crm/v3/objects/meetings/batch/read"] == 2
    assert endpoints["/crm/v3/objects/meetings/batch/archive"] == 1
    assert state["meetings"] == [] and state["contacts"][0]["id"] == made.crm_id


async def test_a_contact_erased_and_created_again_is_looked_up_afresh() -> None:
    """The reliability suite's CRM-404: a look-up carried an idempotency key made of the contact ids alone, so
    after an erase and a re-create the CRM replayed the first look-up's answer (the erased contact's id) and a
    valid activity of the new contact was refused. Erasing a contact the adapter never cached clears its whole
    cache, which is what sends it back to the look-up."""
    async with ReferenceCrm() as server:
        adapter = HubSpotAdapter(server.url, TOKEN)
        [first] = await adapter.upsert_contacts([command(1, "contact.upsert", "u1", {"firstname": "Ana"})])
        await adapter.erase_contacts([command(2, "contact.erase", "stranger")])  # the cache is cleared
        [linked] = await adapter.upsert_activities(
            [command(3, "activity.upsert", "u1", {"title": "Shift"}, activity_id="b1")]
        )
        assert linked.ok
        await adapter.erase_contacts([command(4, "contact.erase", "u1")])
        [second] = await adapter.upsert_contacts([command(5, "contact.upsert", "u1", {"firstname": "Ana"})])
        assert second.crm_id != first.crm_id
        await adapter.erase_contacts([command(6, "contact.erase", "another-stranger")])
        [again] = await adapter.upsert_activities(
            [command(7, "activity.upsert", "u1", {"title": "Late shift"}, activity_id="b2")]
        )
        await adapter.aclose()
        state = server.state()
    assert again.ok, again.error
    [meeting] = [m for m in state["meetings"] if m["properties"].get("hs_meeting_title") == "Late shift"]
    assert meeting["contacts"] == [second.crm_id]


# --- the reference CRM as an API ------------------------------------------------------------------------------
async def test_unknown_properties_are_refused_with_a_hubspot_shaped_body(http: httpx.AsyncClient) -> None:
    resp = await http.post(UPSERT, json={"inputs": [contact_input("u1", shoe_size="44")]})
    assert resp.status_code == 400
    body = resp.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST" and "correlationId" in body


async def test_more_than_100_inputs_or_duplicate_ids_are_refused(http: httpx.AsyncClient) -> None:
    many = await http.post(UPSERT, json={"inputs": [contact_input(f"u{i}") for i in range(101)]})
    assert many.status_code == 400 and many.json()["errors"][0]["code"] == "TOO_MANY_INPUTS"
    dup = await http.post(UPSERT, json={"inputs": [contact_input("u1"), contact_input("u1", city="Brno")]})
    assert dup.status_code == 400 and dup.json()["message"] == "Duplicate IDs found in batch input"
    full = await http.post(UPSERT, json={"inputs": [contact_input(f"u{i}") for i in range(100)]})
    assert full.status_code == 200 and len(full.json()["results"]) == 100


async def test_a_bad_value_fails_only_its_input_with_its_trace_id(http: httpx.AsyncClient) -> None:
    resp = await http.post(UPSERT, json={"inputs": [contact_input("u1", email="nope"), contact_input("u2")]})
    assert resp.status_code == 207
    body = resp.json()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["t-u2"]
    [err] = body["errors"]
    assert err["context"]["objectWriteTraceId"] == ["t-u1"] and err["errors"][0]["code"] == "INVALID_EMAIL"
    assert "nope" not in resp.text


async def test_the_rate_limit_answers_429_with_retry_after_per_token() -> None:
    async with ReferenceCrm(limit=3, window=30.0) as server, httpx.AsyncClient(base_url=server.url) as client:
        answers = [
            (await client.post(UPSERT, json={"inputs": []}, headers=AUTH)).status_code for _ in range(4)
        ]
        assert answers == [200, 200, 200, 429]
        last = await client.post(UPSERT, json={"inputs": []}, headers=AUTH)
        assert 1 <= int(last.headers["Retry-After"]) <= 30
        other = await client.post(UPSERT, json={"inputs": []}, headers={"Authorization": "Bearer other"})
        assert other.status_code == 200
        no_token = await client.post(UPSERT, json={"inputs": []})
        assert no_token.status_code == 401
        stats = (await client.get("/__admin/stats")).json()
        assert stats["rate_limited"] == 2 and stats["max_calls_in_window"] == 5


async def test_a_repeated_idempotency_key_gets_the_first_answer(http: httpx.AsyncClient) -> None:
    first = await http.post(
        UPSERT, json={"inputs": [contact_input("u1", city="Brno")]}, headers={IDEMPOTENCY_HEADER: "k1"}
    )
    await http.post(UPSERT, json={"inputs": [contact_input("u1", city="Oslo")]})
    again = await http.post(
        UPSERT, json={"inputs": [contact_input("u1", city="Brno")]}, headers={IDEMPOTENCY_HEADER: "k1"}
    )
    assert again.status_code == first.status_code and again.content == first.content
    state = (await http.get("/__admin/state")).json()
    assert state["contacts"][0]["properties"]["city"] == "Oslo"
    reused = await http.post(
        UPSERT, json={"inputs": [contact_input("u2")]}, headers={IDEMPOTENCY_HEADER: "k1"}
    )
    assert reused.status_code == 400 and reused.json()["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_faults_are_switched_on_over_http(http: httpx.AsyncClient) -> None:
    assert (await http.post("/__admin/faults", json={"mode": "5xx", "count": 2})).status_code == 200
    assert (await http.post("/__admin/faults", json={"mode": "flood"})).status_code == 400
    statuses = [(await http.post(UPSERT, json={"inputs": []})).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    await http.post("/__admin/faults", json={"mode": "429", "count": 1, "delay": 7})
    limited = await http.post(UPSERT, json={"inputs": []})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    await http.post("/__admin/faults", json={"mode": "outage", "seconds": 30})
    assert (await http.post(UPSERT, json={"inputs": []})).status_code == 503
    await http.delete("/__admin/faults")
    assert (await http.post(UPSERT, json={"inputs": []})).status_code == 200
    stats = (await http.get("/__admin/stats")).json()
    assert stats["calls_by_status"] == {"200": 2, "429": 1, "503": 3}


async def test_the_module_runs_as_a_server_with_state_in_a_file(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "crm" / "state.sqlite3"
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; reads and waits go through to_thread
        [
            sys.executable,
            "-m",
            "app.sinks.crm.reference",
            "--port",
            str(port),
            "--db",
            str(db),
            "--limit",
            "50",
            "--window",
            "60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=30)
        # room for `crm setup`'s 17 calls: at 5 a minute it waited out the limit for three minutes
        assert f"127.0.0.1:{port}" in banner and "limits 50/60s" in banner
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as client:
            await setup_portal(f"http://127.0.0.1:{port}", TOKEN)  # no vome_user_id before `crm setup`
            resp = await client.post(UPSERT, json={"inputs": [contact_input("u1", city="Brno")]})
            assert resp.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert db.exists() and db.stat().st_size > 0
