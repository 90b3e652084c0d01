"""Each request is answered in the shapes of its `revision`: before 2024-10-15 (is_add_utm tracking
options), before 2025-04-15 (messages without `definition`, wrapped send strategies, as data
connectors still send), the current shapes, and 2026-10-15 (campaign `definition`, audiences and
messages as resources; the official SDK 25). One campaign reads the same in all of them."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e import campaign_fixtures as cf
from tests.sdk25 import run_sdk25
from tests.spec import OLD_SPEC, assert_matches_spec


@pytest.fixture
def at(server, account):
    clients: list[httpx.Client] = []

    def client(revision: str) -> httpx.Client:
        made = httpx.Client(base_url=server.url, timeout=30, headers={
            "Authorization": f"Klaviyo-API-Key {account.key}", "revision": revision,
            "Content-Type": "application/vnd.api+json"})
        clients.append(made)
        return made

    yield client
    for made in clients:
        made.close()


def legacy_body(name: str, list_id: str) -> dict:
    return {"data": {"type": "campaign", "attributes": {
        "name": name, "audiences": {"included": [list_id], "excluded": []},
        "send_strategy": {"method": "static", "options_static": {"datetime": "2030-06-01T15:00:00+00:00",
                                                                 "is_local": True,
                                                                 "send_past_recipients_immediately": True}},
        "send_options": {"use_smart_sending": False},
        "tracking_options": {"add_tracking_params": True,
                             "custom_tracking_params": [{"type": "static", "value": "x", "name": "src"}]},
        "campaign-messages": {"data": [{"type": "campaign-message", "attributes": {
            "channel": "email", "label": "Legacy label",
            "content": {"subject": "Old school", "from_email": "old@example.com", "preview_text": "p"}}}]}}}}


def test_revision_2024_10_15_shapes(http, at):
    old = at("2024-10-15")
    list_id = cf.new_list(http)
    created = old.post("/api/campaigns", json=legacy_body("Legacy", list_id))
    assert created.status_code == 201, created.text
    assert_matches_spec("create_campaign", 201, created.json(), spec=OLD_SPEC)
    attributes = created.json()["data"]["attributes"]
    assert attributes["send_strategy"] == {
        "method": "static", "options_static": {"datetime": "2030-06-01T15:00:00+00:00", "is_local": True,
                                               "send_past_recipients_immediately": True},
        "options_throttled": None, "options_sto": None}
    campaign_id = created.json()["data"]["id"]

    # The same campaign, read at the current revision.
    current = http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]
    assert current["send_strategy"] == {"method": "static", "datetime": "2030-06-01T15:00:00+00:00",
                                        "options": {"is_local": True, "send_past_recipients_immediately": True}}
    message_id = cf.message_id_of(http, campaign_id)
    assert http.get(f"/api/campaign-messages/{message_id}").json()["data"]["attributes"]["definition"]["label"] \
        == "Legacy label"

    got = old.get(f"/api/campaigns/{campaign_id}", params={"include": "campaign-messages"})
    assert_matches_spec("get_campaign", 200, got.json(), spec=OLD_SPEC)
    message = old.get(f"/api/campaign-messages/{message_id}").json()
    assert_matches_spec("get_campaign_message", 200, message, spec=OLD_SPEC)
    legacy = message["data"]["attributes"]
    assert legacy["channel"] == "email" and legacy["label"] == "Legacy label"
    assert legacy["content"]["subject"] == "Old school"
    assert legacy["send_times"] == [{"datetime": "2030-06-01T15:00:00+00:00", "is_local": True}]
    assert "definition" not in legacy

    updated = old.patch(f"/api/campaign-messages/{message_id}", json={"data": {
        "type": "campaign-message", "id": message_id,
        "attributes": {"label": "Relabelled", "content": {"subject": "Newer"}}}})
    assert updated.status_code == 200, updated.text
    assert_matches_spec("update_campaign_message", 200, updated.json(), spec=OLD_SPEC)
    assert updated.json()["data"]["attributes"]["content"]["from_email"] == "old@example.com"
    throttled = old.patch(f"/api/campaigns/{campaign_id}", json={"data": {"type": "campaign", "id": campaign_id,
                                                                          "attributes": {"send_strategy": {
        "method": "throttled", "options_throttled": {"datetime": "2030-06-02T10:00:00Z", "throttle_percentage": 20}}}}})
    assert throttled.status_code == 200, throttled.text
    assert_matches_spec("update_campaign", 200, throttled.json(), spec=OLD_SPEC)
    assert http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]["send_strategy"] == {
        "method": "throttled", "datetime": "2030-06-02T10:00:00+00:00", "throttle_percentage": 20}
    template_id = cf.template(http)
    assigned = old.post("/api/campaign-message-assign-template", json={"data": {
        "type": "campaign-message", "id": message_id,
        "relationships": {"template": {"data": {"type": "template", "id": template_id}}}}})
    assert assigned.status_code == 201  # 2024-10-15 answered 201 Created
    assert_matches_spec("assign_template_to_campaign_message", 201, assigned.json(), spec=OLD_SPEC)
    listed = old.get("/api/campaigns", params={"filter": "equals(messages.channel,'email')"})
    assert_matches_spec("get_campaigns", 200, listed.json(), spec=OLD_SPEC)
    # A current-revision body is not what 2024-10-15 accepts.
    wrong = old.post("/api/campaigns", json=cf.email_campaign_body("Mixed", [list_id]))
    assert wrong.status_code == 400


def test_revision_before_2024_10_15_tracking_options(http, at):
    older = at("2024-07-15")
    list_id = cf.new_list(http)
    body = legacy_body("UTM", list_id)
    body["data"]["attributes"]["tracking_options"] = {"is_add_utm": True, "utm_params": [{"name": "src",
                                                                                          "value": "mail"}],
                                                      "is_tracking_clicks": False}
    created = older.post("/api/campaigns", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["attributes"]["tracking_options"] == {
        "is_add_utm": True, "utm_params": [{"name": "src", "value": "mail"}], "is_tracking_clicks": False,
        "is_tracking_opens": True}
    current = http.get(f"/api/campaigns/{created.json()['data']['id']}").json()["data"]["attributes"]
    assert current["tracking_options"]["add_tracking_params"] is True
    assert current["tracking_options"]["custom_tracking_params"] == [{"type": "static", "name": "src",
                                                                     "value": "mail"}]


def test_sdk25_campaigns(server, account, http):
    list_id = cf.new_list(http, members=[cf.profile(http, "omni@example.com")])
    result = run_sdk25(account.key, server.url, f"""
        body = {{"data": {{"type": "campaign", "attributes": {{
            "definition": {{"name": "Omni", "description": "multi", "color": "ff5733"}},
            "audiences": [{{"temporary_id": "a1", "name": "Everyone", "included": ["{list_id}"]}}],
            "messages": [{{"audience_temporary_id": "a1", "name": "First",
                           "variations": [{{"definition": {{"name": "Email", "details": {{
                               "channel": "email", "subject": "Hi", "from_email": "shop@example.com"}}}}}}]}}]}}}}}}
        created = klaviyo.Campaigns.create_campaign(body)
        cid = created.data.id
        got = klaviyo.Campaigns.get_campaign(cid, include=["campaign-audiences", "campaign-messages"])
        message_id = got.data.relationships.campaign_messages.data[0].id
        message = klaviyo.Campaigns.get_campaign_message(message_id)
        updated = klaviyo.Campaigns.update_campaign(cid, {{"data": {{"type": "campaign", "id": cid, "attributes": {{
            "definition": {{"name": "Omni 2", "archived": True}}}}}}}})
        clone = klaviyo.Campaigns.clone_campaign({{"data": {{"type": "campaign", "id": cid,
                                                            "attributes": {{"name": "Omni copy"}}}}}})
        messages = klaviyo.Campaigns.get_messages_for_campaign(cid)
        out({{"created": created.to_dict(), "got": got.to_dict(), "message": message.to_dict(),
             "updated": updated.to_dict(), "clone": clone.to_dict(), "messages": messages.to_dict()}})
    """)
    created = result["created"]["data"]
    assert created["attributes"]["definition"]["name"] == "Omni"
    assert created["attributes"]["definition"]["description"] == "multi"
    got = result["got"]
    audience = next(i for i in got["included"] if i["type"] == "campaign-audience")
    assert audience["attributes"]["definition"]["included"] == [list_id]
    assert audience["attributes"]["definition"]["name"] == "Everyone"
    assert result["message"]["data"]["attributes"]["definition"]["name"] == "First"
    assert result["updated"]["data"]["attributes"]["definition"]["archived"] is True
    assert result["clone"]["data"]["attributes"]["definition"]["name"] == "Omni copy"
    assert len(result["messages"]["data"]) == 1
    # The same campaign at the current revision.
    current = http.get(f"/api/campaigns/{created['id']}").json()["data"]["attributes"]
    assert current["name"] == "Omni 2" and current["archived"] is True
    assert current["audiences"]["included"] == [list_id]
    message = http.get(f"/api/campaign-messages/{result['message']['data']['id']}").json()["data"]["attributes"]
    assert message["definition"]["content"]["subject"] == "Hi"
