from __future__ import annotations

from app.asyncapi import document
from app.core import deadletter as dl
from app.core.catalog import load_catalog


def test_every_catalog_topic_is_a_channel_with_an_operation_and_a_message() -> None:
    cat = load_catalog()
    doc = document(cat)
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == set(cat.topics)
    for cid, channel in doc["channels"].items():
        (ref,) = channel["messages"].values()
        assert ref["$ref"] == f"#/components/messages/{cid}"
        assert cid in doc["components"]["messages"]
    actions = {op["channel"]["$ref"].split("/")[-1]: op["action"] for op in doc["operations"].values()}
    assert actions["pismo_raw"] == "receive" and actions["audit_migration"] == "send"
    assert actions["crm_commands"] == "receive"
    dlq_headers = doc["components"]["messages"]["vome_deadletter"]["headers"]["properties"]
    assert set(dl.DLQ_HEADERS) <= set(dlq_headers)
