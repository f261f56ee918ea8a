"""The reference CRM and the HubSpot adapter held against HubSpot's official Python SDK (``hubspot-api-client``).

The SDK is a client nobody here wrote: its models are generated from HubSpot's OpenAPI specs and refuse an answer
that lacks a required field (``createdAt``, a ``StandardError``'s ``links`` ...). Every endpoint the sink uses is
called through it against the reference CRM, and every request the adapter sends is read back through the SDK's
request model of that endpoint: a key the model does not know, or a required key the adapter leaves out, fails.
The SDK is synchronous (urllib3); its calls run in a thread while the reference serves on this loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import ModuleType, SimpleNamespace
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from hubspot.crm import contacts as hc
from hubspot.crm.associations import v4 as ha
from hubspot.crm.objects import meetings as hm

from app.core.errors import PermanentSinkError
from app.sinks.crm.base import CONTACT_ARCHIVED, CONTACT_NOT_FOUND
from app.sinks.crm.benchmark import TOKEN
from app.sinks.crm.commands import CrmCommand
from app.sinks.crm.hubspot import HubSpotAdapter
from app.sinks.crm.reference import ReferenceCrm

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def client(module: ModuleType, url: str = "http://127.0.0.1:9") -> Any:
    """An SDK client of ``module`` with its client-side validation on (the SDK ships it off)."""
    config = module.Configuration(host=url)
    config.access_token = TOKEN
    config.client_side_validation = True
    return module.ApiClient(config)


def validated(value: T) -> T:
    """``value`` (an SDK model, or lists/dicts of them) checked by the SDK's own rules. Its deserializer only
    sets the fields an answer has; every field is set again here through the model's setter, which refuses
    ``None`` for a required field (and a value outside an enumeration), as ``client_side_validation`` does."""
    if isinstance(value, list):
        for item in value:
            validated(item)
    elif isinstance(value, dict):
        for item in value.values():
            validated(item)
    elif hasattr(value, "openapi_types"):
        for attr in value.openapi_types:
            current = getattr(value, attr)
            setattr(value, attr, current)
            validated(current)
    return value


async def sdk(call: Callable[[], T]) -> T:
    """An SDK call (blocking) in a thread, its answer validated by the SDK's models."""
    return validated(await asyncio.to_thread(call))


def parse(module: ModuleType, data: Any, model: str) -> Any:
    """``data`` through the SDK's deserializer into ``model``, validated: a required field missing raises."""
    return validated(client(module).deserialize(SimpleNamespace(data=json.dumps(data)), model))


@pytest.fixture
async def crm() -> AsyncIterator[ReferenceCrm]:
    async with ReferenceCrm(limit=1000, window=1.0) as server:
        yield server


def upsert_input(value: str, trace: str, **props: str) -> Any:
    return hc.SimplePublicObjectBatchInputUpsert(
        id_property="vome_user_id", id=value, object_write_trace_id=trace, properties=props
    )


async def test_contact_upsert_answers_parse_with_timestamps_default_properties_and_standard_errors(
    crm: ReferenceCrm,
) -> None:
    batch = hc.BatchApi(client(hc, crm.url))
    body = hc.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[upsert_input("u1", "t1", firstname="Jana"), upsert_input("u2", "t2", email="not-an-address")]
    )
    answer = await sdk(lambda: batch.upsert(body))
    assert isinstance(answer, hc.BatchResponseSimplePublicUpsertObjectWithErrors)  # the 207 model
    [made] = answer.results
    assert isinstance(made.created_at, datetime) and isinstance(made.updated_at, datetime)
    assert made.new is True and made.archived is False and made.object_write_trace_id == "t1"
    assert made.properties["hs_object_id"] == made.id and made.properties["firstname"] == "Jana"
    assert {"createdate", "lastmodifieddate"} <= set(made.properties)
    [error] = answer.errors
    assert isinstance(error, hc.StandardError)
    assert (error.status, error.category, error.links) == ("error", "VALIDATION_ERROR", {})
    assert error.context == {"objectWriteTraceId": ["t2"]}
    assert [(e.code, e._in) for e in error.errors] == [("INVALID_EMAIL", "email")]
    again = await sdk(lambda: batch.upsert(hc.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[upsert_input("u1", "t3", lastname="Nováková")]
    )))  # fmt: skip
    assert isinstance(again, hc.BatchResponseSimplePublicUpsertObject)  # the 200 model
    assert again.results[0].new is False and again.results[0].id == made.id


async def test_batch_read_answers_live_contacts_unless_archived_is_asked(crm: ReferenceCrm) -> None:
    batch = hc.BatchApi(client(hc, crm.url))
    upserted = await sdk(lambda: batch.upsert(hc.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[upsert_input("live", "t1"), upsert_input("gone", "t2")]
    )))  # fmt: skip
    ids = {r.properties["vome_user_id"]: r.id for r in upserted.results}
    archived = await sdk(lambda: batch.archive(hc.BatchInputSimplePublicObjectId(
        inputs=[hc.SimplePublicObjectId(id=ids["gone"])]
    )))  # fmt: skip
    assert archived is None  # 204

    def read(archived: bool) -> Any:
        body = hc.BatchReadInputSimplePublicObjectId(
            id_property="vome_user_id",
            inputs=[hc.SimplePublicObjectId(id="live"), hc.SimplePublicObjectId(id="gone")],
            properties=["vome_user_id"],
            properties_with_history=[],
        )
        return batch.read(body, archived=archived)

    live = await sdk(lambda: read(False))
    assert [r.properties["vome_user_id"] for r in live.results] == ["live"]
    assert [r.archived for r in live.results] == [False]
    assert [(e.category, e.context) for e in live.errors] == [("OBJECT_NOT_FOUND", {"ids": ["gone"]})]
    bin_ = await sdk(lambda: read(True))
    [hidden] = bin_.results
    assert (hidden.id, hidden.archived) == (ids["gone"], True) and isinstance(hidden.archived_at, datetime)
    assert [e.context for e in bin_.errors] == [{"ids": ["live"]}]


async def test_gdpr_delete_meetings_and_associations_parse_through_the_sdk(crm: ReferenceCrm) -> None:
    contacts = hc.BatchApi(client(hc, crm.url))
    made = await sdk(lambda: contacts.upsert(hc.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[upsert_input("u1", "t1"), upsert_input("u2", "t2"), upsert_input("u3", "t3")]
    )))  # fmt: skip
    ids = {r.properties["vome_user_id"]: r.id for r in made.results}
    await sdk(
        lambda: contacts.archive(
            hc.BatchInputSimplePublicObjectId(inputs=[hc.SimplePublicObjectId(id=ids["u3"])])
        )
    )
    meetings = hm.BatchApi(client(hm, crm.url))
    upsert = hm.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            hm.SimplePublicObjectBatchInputUpsert(
                id_property="switchyard_activity_id",
                id="b1",
                object_write_trace_id="m1",
                properties={"hs_meeting_title": "Shift", "hs_timestamp": "2026-03-01T09:00:00Z"},
            )
        ]
    )
    [meeting] = (await sdk(lambda: meetings.upsert(upsert))).results
    assert isinstance(meeting.created_at, datetime) and meeting.properties["hs_object_id"] == meeting.id
    read = hm.BatchReadInputSimplePublicObjectId(
        id_property="switchyard_activity_id",
        inputs=[hm.SimplePublicObjectId(id="b1")],
        properties=["switchyard_activity_id"],
        properties_with_history=[],
    )
    assert [m.id for m in (await sdk(lambda: meetings.read(read))).results] == [meeting.id]

    assoc = ha.BatchApi(client(ha, crm.url))

    def link(*contact_ids: str) -> Any:
        inputs = [
            ha.PublicDefaultAssociationMultiPost(
                _from=ha.PublicObjectId(id=meeting.id), to=ha.PublicObjectId(id=c)
            )
            for c in contact_ids
        ]
        return assoc.create_default(
            "meetings", "contacts", ha.BatchInputPublicDefaultAssociationMultiPost(inputs=inputs)
        )

    # u2 is erased (GDPR) before the link, u3 is archived: only u1 is linked; the answer says so by its results
    assert await sdk(lambda: hc.BasicApi(client(hc, crm.url)).purge(
        hc.PublicGdprDeleteInput(object_id="u2", id_property="vome_user_id")
    )) is None  # fmt: skip
    answer = await sdk(lambda: link(ids["u1"], ids["u2"], ids["u3"]))
    assert isinstance(answer, ha.BatchResponsePublicDefaultAssociation)
    assert [(r._from.id, r.to.id, r.association_spec.association_type_id) for r in answer.results] == [
        (meeting.id, ids["u1"], 200)
    ]
    assert answer.num_errors == 2
    assert all(isinstance(e, ha.StandardError) and e.links == {} for e in answer.errors)
    await sdk(
        lambda: meetings.archive(
            hm.BatchInputSimplePublicObjectId(inputs=[hm.SimplePublicObjectId(id=meeting.id)])
        )
    )
    assert crm.state()["meetings"] == []


async def test_429_carries_hubspots_body_headers_and_retry_after() -> None:
    async with ReferenceCrm(limit=2, window=10.0) as crm:
        batch = hc.BatchApi(client(hc, crm.url))
        body = hc.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[upsert_input("u1", "t1")])
        ok = await sdk(lambda: batch.upsert_with_http_info(body))
        headers = ok[2]
        assert (headers["X-HubSpot-RateLimit-Max"], headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) == (
            "2",
            "10000",
        )
        assert headers["X-HubSpot-RateLimit-Remaining"] == "1"
        await sdk(lambda: batch.upsert(body))
        with pytest.raises(hc.ApiException) as refused:
            await sdk(lambda: batch.upsert(body))
    err = refused.value
    assert err.status == 429
    assert int(err.headers["Retry-After"]) >= 1 and err.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    doc = json.loads(err.body)
    assert (doc["status"], doc["errorType"], doc["policyName"]) == (
        "error",
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert doc["correlationId"] and doc["message"]


async def test_several_windows_the_tightest_one_answers() -> None:
    from app.sinks.crm.limiter import parse_windows

    async with (
        ReferenceCrm(windows=parse_windows("3/10s,2/60s")) as crm,
        httpx.AsyncClient(base_url=crm.url) as http,
    ):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        body: dict[str, Any] = {"inputs": []}
        statuses = [
            (await http.post("/crm/v3/objects/contacts/batch/upsert", json=body, headers=auth))
            for _ in range(3)
        ]
    assert [r.status_code for r in statuses] == [200, 200, 429]  # the 60 s window of 2 is the one spent
    assert statuses[2].json()["policyName"] == "ROLLING_60_SECONDS"
    assert statuses[1].headers["X-HubSpot-RateLimit-Max"] == "2"
    assert crm.stats()["windows"] == ["3/10s", "2/60s"]


async def test_refusals_and_unknown_paths_answer_hubspots_json_error(crm: ReferenceCrm) -> None:
    batch = hc.BatchApi(client(hc, crm.url))
    body = hc.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[upsert_input("u1", "t1", no_such_property="x")]
    )
    with pytest.raises(hc.ApiException) as refused:
        await sdk(lambda: batch.upsert(body))
    assert refused.value.status == 400
    error = parse(hc, json.loads(refused.value.body), "Error")
    assert error.category == "VALIDATION_ERROR" and error.correlation_id
    assert [d.code for d in error.errors] == ["PROPERTY_DOESNT_EXIST"]
    async with httpx.AsyncClient(base_url=crm.url) as http:
        for method, path in (
            ("GET", "/crm/v3/objects/nothing"),
            ("POST", "/crm/v3/nothing/batch/read"),
            ("GET", UPSERT),
        ):
            answer = await http.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code in (404, 405) and answer.headers["content-type"].startswith(
                "application/json"
            )
            assert parse(hc, answer.json(), "Error").message


UPSERT = "/crm/v3/objects/contacts/batch/upsert"


class Recorder:
    """Every request the adapter sends, as (method, path with query, JSON body)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    async def __call__(self, request: httpx.Request) -> None:
        query = f"?{request.url.query.decode()}" if request.url.query else ""
        self.seen.append((request.method, request.url.path + query, orjson.loads(request.content)))


def sdk_request(api: Any, method_name: str, *args: Any, **kw: Any) -> tuple[str, str, str]:
    """(HTTP method, path with query, request model class) of one SDK operation, read from the SDK without a
    server: its ``call_api`` is replaced by a recorder."""
    seen: dict[str, Any] = {}

    def record(
        resource_path: str,
        method: str,
        path_params: Any = None,
        query_params: Any = None,
        *rest: Any,
        **more: Any,
    ) -> None:
        for k, v in (path_params or {}).items():
            resource_path = resource_path.replace("{" + k + "}", str(v))
        query = "&".join(f"{k}={str(v).lower()}" for k, v in query_params or ())
        seen.update(path=resource_path + (f"?{query}" if query else ""), method=method, body=more.get("body"))

    api.api_client.call_api = record
    getattr(api, method_name)(*args, **kw)
    return seen["method"], seen["path"], type(seen["body"]).__name__


def command(i: int, op: str, contact: str, props: dict[str, Any] | None = None, **kw: Any) -> CrmCommand:
    return CrmCommand(
        command_id=f"sdk-{i:06d}",
        op=op,
        contact_id=contact,
        properties=props or {},
        source="test",
        source_event_id=f"ev-{i}",
        issued_at=NOW,
        **kw,
    )


async def test_every_request_of_the_adapter_is_one_the_sdk_would_send(crm: ReferenceCrm) -> None:
    recorder = Recorder()
    http = httpx.AsyncClient(base_url=crm.url, event_hooks={"request": [recorder]})
    adapter = HubSpotAdapter(crm.url, TOKEN, client=http)
    fresh = HubSpotAdapter(crm.url, TOKEN, client=http)  # knows no ids: has to read them
    assert all(
        r.ok for r in await adapter.upsert_contacts([command(1, "contact.upsert", "u1", {"firstname": "A"})])
    )
    assert all(
        r.ok
        for r in await adapter.archive_contacts(
            [command(2, "contact.archive", "u2", {"vome_status": "archived"})]
        )
    )
    booked = await fresh.upsert_activities(
        [
            command(
                3,
                "activity.upsert",
                "u1",
                {"title": "Shift", "start": "2026-03-01T09:00:00Z"},
                activity_id="b1",
            ),
            command(4, "activity.upsert", "u2", {"title": "Shift"}, activity_id="b2"),
            command(5, "activity.upsert", "nobody", {"title": "Shift"}, activity_id="b3"),
        ]
    )
    assert [r.error for r in booked] == [None, CONTACT_ARCHIVED, CONTACT_NOT_FOUND]
    assert all(r.ok for r in await HubSpotAdapter(crm.url, TOKEN, client=http).delete_activities(
        [command(6, "activity.delete", "u1", activity_id="b1")]
    ))  # fmt: skip
    assert all(r.ok for r in await adapter.erase_contacts([command(7, "contact.erase", "u1")]))
    await http.aclose()

    c, m, a = (client(hc, crm.url), client(hm, crm.url), client(ha, crm.url))
    expected = {
        sdk_request(hc.BatchApi(c), "upsert", hc.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[])),
        sdk_request(hc.BatchApi(c), "archive", hc.BatchInputSimplePublicObjectId(inputs=[])),
        sdk_request(hc.BatchApi(c), "read", hc.BatchReadInputSimplePublicObjectId(inputs=[], properties=[], properties_with_history=[])),
        sdk_request(hc.BatchApi(c), "read", hc.BatchReadInputSimplePublicObjectId(inputs=[], properties=[], properties_with_history=[]), archived=True),
        sdk_request(hc.BasicApi(c), "purge", hc.PublicGdprDeleteInput(object_id="x")),
        sdk_request(hm.BatchApi(m), "upsert", hm.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[])),
        sdk_request(hm.BatchApi(m), "read", hm.BatchReadInputSimplePublicObjectId(inputs=[], properties=[], properties_with_history=[])),
        sdk_request(hm.BatchApi(m), "archive", hm.BatchInputSimplePublicObjectId(inputs=[])),
        sdk_request(ha.BatchApi(a), "create_default", "meetings", "contacts", ha.BatchInputPublicDefaultAssociationMultiPost(inputs=[])),
    }  # fmt: skip
    by_path = {(method, path): model for method, path, model in expected}
    modules = {"/crm/v3/objects/contacts": hc, "/crm/v3/objects/meetings": hm, "/crm/v4/associations": ha}
    sent = {(method, path) for method, path, _ in recorder.seen}
    assert sent == set(by_path), (
        "the adapter used an endpoint the SDK does not have, or missed one it should use"
    )
    for method, path, body in recorder.seen:
        model = by_path[(method, path)]
        module = next(mod for prefix, mod in modules.items() if path.startswith(prefix))
        parsed = parse(module, body, model)  # a required key missing raises here
        again = client(module).sanitize_for_serialization(parsed)
        assert again == body, f"{method} {path}: keys the SDK's {model} does not know"


async def test_the_sink_dead_letters_a_booking_for_an_archived_contact_with_its_own_code(
    crm: ReferenceCrm,
) -> None:
    from app.sinks.crm.limiter import RateLimiter
    from app.sinks.crm.sink import CrmSink

    sink = CrmSink(HubSpotAdapter(crm.url, TOKEN), RateLimiter(1000, 1.0))
    dead = await sink.write(
        [
            command(1, "contact.archive", "u1", {"vome_status": "archived"}),
            command(2, "activity.upsert", "u1", {"title": "Shift"}, activity_id="b1"),
            command(3, "contact.upsert", "u1", {"vome_status": "active"}),
            command(4, "activity.upsert", "u1", {"title": "Shift"}, activity_id="b2"),
        ]
    )
    await sink.adapter.aclose()
    assert [(d.command.command_id, d.code, d.status) for d in dead] == [
        ("sdk-000002", "CRM-CONTACT-ARCHIVED", 409)
    ]
    assert "CONTACT_ARCHIVED" in dead[0].body
    [meeting] = crm.state()["meetings"]
    assert meeting["properties"]["switchyard_activity_id"] == "b2" and meeting["contacts"]


async def test_crm_setup_creates_every_custom_property_once_and_reports_drift() -> None:
    from hubspot.crm import properties as hp

    from app.sinks.crm.properties import CUSTOM_PROPERTIES, PROPERTY_GROUP
    from app.sinks.crm.setup import setup_portal

    async with ReferenceCrm(setup=False) as crm:
        # a bare portal, as a real one before setup: the sink's first write is refused
        adapter = HubSpotAdapter(crm.url, TOKEN)
        with pytest.raises(PermanentSinkError, match="400") as refused:
            await adapter.upsert_contacts([command(1, "contact.upsert", "u1", {"vome_status": "active"})])
        assert "CRM-400" in str(getattr(refused.value, "code", "")) or "400" in str(refused.value)
        first = await setup_portal(crm.url, TOKEN)
        assert sorted((s.object_type, s.name) for s in first if s.status == "created") == sorted(
            [(p.object_type, p.name) for p in CUSTOM_PROPERTIES]
            + [("contacts", f"groups/{PROPERTY_GROUP}"), ("meetings", f"groups/{PROPERTY_GROUP}")]
        )
        second = await setup_portal(crm.url, TOKEN)
        assert {s.status for s in second} == {"exists"} and len(second) == len(first)
        assert all(
            r.ok
            for r in await adapter.upsert_contacts(
                [command(2, "contact.upsert", "u1", {"vome_status": "active"})]
            )
        )
        await adapter.aclose()

        # what setup made reads back through the SDK's Property model; a unique id property is unique
        core = hp.CoreApi(client(hp, crm.url))
        made = await sdk(lambda: core.get_by_name("contacts", "vome_user_id"))
        assert (made.type, made.field_type, made.has_unique_value, made.group_name) == (
            "string",
            "text",
            True,
            PROPERTY_GROUP,
        )
        group = await sdk(lambda: hp.GroupsApi(client(hp, crm.url)).get_by_name("meetings", PROPERTY_GROUP))
        assert group.name == PROPERTY_GROUP
        builtin = await sdk(lambda: core.get_by_name("contacts", "hs_language"))
        assert builtin.hubspot_defined is True  # HubSpot's own language property; the sink writes none

    async with ReferenceCrm(setup=False) as crm, httpx.AsyncClient(base_url=crm.url) as http:
        # someone made switchyard_hours_approved a string before us: reported, left alone
        auth = {"Authorization": f"Bearer {TOKEN}"}
        await http.post(
            "/crm/v3/properties/meetings/groups", json={"name": "other", "label": "Other"}, headers=auth
        )
        taken = {
            "name": "switchyard_hours_approved",
            "label": "Hours",
            "type": "string",
            "fieldType": "text",
            "groupName": "other",
        }
        assert (await http.post("/crm/v3/properties/meetings", json=taken, headers=auth)).status_code == 201
        steps = await setup_portal(crm.url, TOKEN)
        [drift] = [s for s in steps if s.status == "drift"]
        assert (drift.object_type, drift.name) == ("meetings", "switchyard_hours_approved")
        assert "type is 'string', the sink needs 'number'" in drift.detail
        still = (await http.get("/crm/v3/properties/meetings/switchyard_hours_approved", headers=auth)).json()
        assert still["type"] == "string"
