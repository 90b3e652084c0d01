"""Campaigns end to end: every operation through the official SDK and raw HTTP, bodies against
Klaviyo's spec, filters, sorts, pages, includes, sparse fieldsets and errors, on SQLite and
PostgreSQL. Sending itself is covered in test_campaigns_sending.py."""

from __future__ import annotations

import httpx
import pytest
from openapi_client.exceptions import ApiException

from tests.conftest import REVISION, sdk_for
from tests.e2e import campaign_fixtures as cf
from tests.e2e.paging import walk
from tests.spec import assert_matches_spec

EMAIL = "equals(messages.channel,'email')"


def error_of(response: httpx.Response, status: int, operation: str = "get_campaign") -> dict:
    assert response.status_code == status, response.text
    assert_matches_spec(operation, status, response.json())
    return response.json()["errors"][0]


def test_create_get_update_delete(sdk, http):
    list_id = cf.new_list(http)
    segment_free = cf.new_list(http, "Excluded")
    body = cf.email_campaign_body("Spring", [list_id], [segment_free],
                                  strategy={"method": "static", "datetime": "2030-03-01T10:00:00+02:00"},
                                  send_options={"use_smart_sending": False},
                                  tracking={"is_tracking_opens": False,
                                            "custom_tracking_params": [
                                                {"type": "static", "value": "spring", "name": "utm_campaign"}]})
    response = http.post("/api/campaigns", json=body)
    assert response.status_code == 201, response.text
    assert_matches_spec("create_campaign", 201, response.json())
    data = response.json()["data"]
    campaign_id = data["id"]
    assert len(campaign_id) == 26
    attributes = data["attributes"]
    assert attributes["status"] == "Draft" and attributes["archived"] is False
    assert attributes["audiences"] == {"included": [list_id], "excluded": [segment_free]}
    # Datetimes are answered in UTC.
    assert attributes["send_strategy"] == {"method": "static", "datetime": "2030-03-01T08:00:00+00:00",
                                           "options": None}
    assert attributes["send_options"] == {"use_smart_sending": False}
    tracking = attributes["tracking_options"]
    assert tracking["is_tracking_opens"] is False and tracking["is_tracking_clicks"] is True
    # Left unset: the account's tracking settings decide (auto-add off by default).
    assert tracking["add_tracking_params"] is False
    assert tracking["custom_tracking_params"] == [{"type": "static", "value": "spring", "name": "utm_campaign"}]
    assert data["links"]["self"].endswith(f"/api/campaigns/{campaign_id}/")
    assert set(data["relationships"]) == {"campaign-messages", "tags"}

    got = sdk.Campaigns.get_campaign(campaign_id)
    assert got.data.attributes.name == "Spring"

    updated = sdk.Campaigns.update_campaign(campaign_id, {"data": {"type": "campaign", "id": campaign_id,
                                                                   "attributes": {
        "name": "Spring 2", "audiences": {"excluded": []},
        "send_strategy": {"method": "throttled", "datetime": "2030-03-02T09:00:00Z", "throttle_percentage": 25}}}})
    assert updated.data.attributes.name == "Spring 2"
    raw = http.get(f"/api/campaigns/{campaign_id}").json()
    assert_matches_spec("get_campaign", 200, raw)
    assert raw["data"]["attributes"]["audiences"] == {"included": [list_id], "excluded": []}
    assert raw["data"]["attributes"]["send_strategy"] == {
        "method": "throttled", "datetime": "2030-03-02T09:00:00+00:00", "throttle_percentage": 25}
    patched = http.patch(f"/api/campaigns/{campaign_id}", json={"data": {"type": "campaign", "id": campaign_id,
                                                                          "attributes": {"name": "Spring 3"}}})
    assert_matches_spec("update_campaign", 200, patched.json())

    sdk.Campaigns.delete_campaign(campaign_id)
    error_of(http.get(f"/api/campaigns/{campaign_id}"), 404)


def test_listing_filters_sorts_pages_includes_and_fields(sdk, http):
    list_id = cf.new_list(http)
    ids = [cf.create_campaign(http, cf.email_campaign_body(f"Camp {i}", [list_id]))["id"] for i in range(5)]
    sms_id = cf.create_campaign(http, cf.sms_campaign_body("Text", [list_id]))["id"]

    # Klaviyo requires a channel filter.
    err = error_of(http.get("/api/campaigns"), 400, "get_campaigns")
    assert err["source"] == {"parameter": "filter"}
    error_of(http.get("/api/campaigns", params={"filter": "equals(status,'Draft')"}), 400, "get_campaigns")

    everything = walk(http, "/api/campaigns", {"filter": EMAIL, "page[size]": "2"})
    assert [c["id"] for c in everything] == ids  # default order: by id (ULIDs: creation order)
    sms = http.get("/api/campaigns", params={"filter": "equals(messages.channel,'sms')"}).json()
    assert [c["id"] for c in sms["data"]] == [sms_id]

    named = sdk.Campaigns.get_campaigns(filter=f"{EMAIL},contains(name,'p 3')")
    assert [c.id for c in named.data] == [ids[3]]
    by_status = http.get("/api/campaigns", params={"filter": f"{EMAIL},any(status,['Draft','Sent'])"}).json()
    assert len(by_status["data"]) == 5
    error_of(http.get("/api/campaigns", params={"filter": f"{EMAIL},equals(status,'Bogus')"}), 400, "get_campaigns")
    by_id = http.get("/api/campaigns", params={"filter": f"{EMAIL},any(id,['{ids[1]}','{ids[2]}'])"}).json()
    assert {c["id"] for c in by_id["data"]} == {ids[1], ids[2]}
    created = by_id["data"][0]["attributes"]["created_at"]
    later = http.get("/api/campaigns", params={"filter": f"{EMAIL},greater-or-equal(created_at,{created})"})
    assert later.status_code == 200, later.text

    desc = http.get("/api/campaigns", params={"filter": EMAIL, "sort": "-name"}).json()
    assert [c["attributes"]["name"] for c in desc["data"]] == [f"Camp {i}" for i in reversed(range(5))]
    scheduled = walk(http, "/api/campaigns", {"filter": EMAIL, "sort": "-scheduled_at", "page[size]": "2"})
    assert len(scheduled) == 5
    error_of(http.get("/api/campaigns", params={"filter": EMAIL, "sort": "status"}), 400, "get_campaigns")

    tag = http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": "promo"}}}).json()["data"]
    tagged = http.post(f"/api/tags/{tag['id']}/relationships/campaigns",
                       json={"data": [{"type": "campaign", "id": ids[0]}]})
    assert tagged.status_code == 204, tagged.text
    page = http.get("/api/campaigns", params={"filter": f"{EMAIL},equals(id,'{ids[0]}')".replace(
        "equals(id", "any(id").replace(f"'{ids[0]}')", f"['{ids[0]}'])"), "include": "campaign-messages,tags",
        "fields[campaign]": "name,send_strategy.method", "fields[campaign-message]": "definition.content.subject",
        "fields[tag]": "name"})
    assert page.status_code == 200, page.text
    body = page.json()  # sparse fieldsets leave out required fields: not validated against the spec
    item = body["data"][0]
    assert item["attributes"] == {"name": "Camp 0", "send_strategy": {"method": "immediate"}}
    assert item["relationships"]["tags"]["data"] == [{"type": "tag", "id": tag["id"]}]
    kinds = sorted(i["type"] for i in body["included"])
    assert kinds == ["campaign-message", "tag"]
    message = next(i for i in body["included"] if i["type"] == "campaign-message")
    assert message["attributes"] == {"definition": {"content": {"subject": "Summer sale, {{ first_name }}"}}}
    full = http.get("/api/campaigns", params={"filter": EMAIL, "include": "campaign-messages,tags"}).json()
    assert_matches_spec("get_campaigns", 200, full)
    error_of(http.get("/api/campaigns", params={"filter": EMAIL, "include": "template"}), 400, "get_campaigns")
    error_of(http.get("/api/campaigns", params={"filter": EMAIL, "fields[campaign]": "bogus"}), 400,
             "get_campaigns")


def test_messages_templates_and_relationships(sdk, http):
    list_id = cf.new_list(http)
    campaign_id = cf.create_campaign(http, cf.email_campaign_body("Msgs", [list_id]))["id"]
    ids = sdk.Campaigns.get_message_ids_for_campaign(campaign_id)
    message_id = ids.data[0].id
    raw_ids = http.get(f"/api/campaigns/{campaign_id}/relationships/campaign-messages").json()
    assert_matches_spec("get_message_ids_for_campaign", 200, raw_ids)

    message = http.get(f"/api/campaign-messages/{message_id}").json()
    assert_matches_spec("get_campaign_message", 200, message)
    definition = message["data"]["attributes"]["definition"]
    assert definition["channel"] == "email" and definition["label"] == "Main"
    assert definition["content"]["from_email"] == "shop@example.com"
    assert definition["content"]["cc_email"] is None
    assert message["data"]["attributes"]["send_times"] == []
    sdk.Campaigns.get_campaign_message(message_id)

    # No template yet.
    assert http.get(f"/api/campaign-messages/{message_id}/relationships/template").json()["data"] is None

    template_id = cf.template(http)
    assigned = http.post("/api/campaign-message-assign-template", json={"data": {
        "type": "campaign-message", "id": message_id,
        "relationships": {"template": {"data": {"type": "template", "id": template_id}}}}})
    assert assigned.status_code == 200, assigned.text
    assert_matches_spec("assign_template_to_campaign_message", 200, assigned.json())
    copy_id = assigned.json()["data"]["relationships"]["template"]["data"]["id"]
    # A non-reusable copy: not the template itself, and not among the account's templates.
    assert copy_id != template_id
    listed = http.get("/api/templates").json()["data"]
    assert [t["id"] for t in listed] == [template_id]
    sdk.Campaigns.assign_template_to_campaign_message({"data": {
        "type": "campaign-message", "id": message_id,
        "relationships": {"template": {"data": {"type": "template", "id": template_id}}}}})

    template = http.get(f"/api/campaign-messages/{message_id}/template").json()
    assert_matches_spec("get_template_for_campaign_message", 200, template)
    assert template["data"]["attributes"]["html"] == cf.TEMPLATE_HTML
    template_ref = sdk.Campaigns.get_template_id_for_campaign_message(message_id)
    assert template_ref.data.id == template["data"]["id"]
    sdk.Campaigns.get_template_for_campaign_message(message_id)
    # Editing the original later does not change the message's copy.
    http.patch(f"/api/templates/{template_id}", json={"data": {"type": "template", "id": template_id,
                                                               "attributes": {"html": "<p>changed</p>"}}})
    assert http.get(f"/api/campaign-messages/{message_id}/template").json()["data"]["attributes"]["html"] \
        == cf.TEMPLATE_HTML

    included = http.get(f"/api/campaign-messages/{message_id}", params={"include": "campaign,template"}).json()
    assert_matches_spec("get_campaign_message", 200, included)
    assert sorted(i["type"] for i in included["included"]) == ["campaign", "template"]
    campaign = http.get(f"/api/campaign-messages/{message_id}/campaign").json()
    assert_matches_spec("get_campaign_for_campaign_message", 200, campaign)
    assert campaign["data"]["id"] == campaign_id
    ref = http.get(f"/api/campaign-messages/{message_id}/relationships/campaign").json()
    assert_matches_spec("get_campaign_id_for_campaign_message", 200, ref)
    assert sdk.Campaigns.get_campaign_id_for_campaign_message(message_id).data.id == campaign_id
    assert sdk.Campaigns.get_campaign_for_campaign_message(message_id).data.id == campaign_id

    listed_messages = http.get(f"/api/campaigns/{campaign_id}/campaign-messages",
                               params={"include": "template"}).json()
    assert_matches_spec("get_messages_for_campaign", 200, listed_messages)
    assert listed_messages["data"][0]["relationships"]["template"]["data"]["type"] == "template"
    sdk.Campaigns.get_messages_for_campaign(campaign_id)

    # Updates merge content; the channel cannot change.
    updated = http.patch(f"/api/campaign-messages/{message_id}", json={"data": {
        "type": "campaign-message", "id": message_id,
        "attributes": {"definition": {"channel": "email", "content": {"subject": "New subject"}}}}})
    assert updated.status_code == 200, updated.text
    assert_matches_spec("update_campaign_message", 200, updated.json())
    content = updated.json()["data"]["attributes"]["definition"]["content"]
    assert content["subject"] == "New subject" and content["from_email"] == "shop@example.com"
    sdk.Campaigns.update_campaign_message(message_id, {"data": {
        "type": "campaign-message", "id": message_id,
        "attributes": {"definition": {"channel": "email", "label": "Renamed"}}}})
    bad = http.patch(f"/api/campaign-messages/{message_id}", json={"data": {
        "type": "campaign-message", "id": message_id,
        "attributes": {"definition": {"channel": "sms", "content": {"body": "x"}}}}})
    assert error_of(bad, 400, "update_campaign_message")["source"] == {"pointer": "/data/attributes/definition/channel"}
    bad = http.patch(f"/api/campaign-messages/{message_id}", json={"data": {
        "type": "campaign-message", "id": message_id,
        "attributes": {"definition": {"channel": "email", "content": {"from_email": "not-an-address"}}}}})
    assert error_of(bad, 400, "update_campaign_message")["source"] == {
        "pointer": "/data/attributes/definition/content/from_email"}
    missing = http.post("/api/campaign-message-assign-template", json={"data": {
        "type": "campaign-message", "id": message_id,
        "relationships": {"template": {"data": {"type": "template", "id": "nope00"}}}}})
    assert error_of(missing, 404, "assign_template_to_campaign_message")["source"] == {
        "pointer": "/data/relationships/template/data/id"}


def test_images_on_sms_messages(sdk, http):
    list_id = cf.new_list(http)
    campaign_id = cf.create_campaign(http, cf.sms_campaign_body("Text", [list_id]))["id"]
    message_id = cf.message_id_of(http, campaign_id)
    message = http.get(f"/api/campaign-messages/{message_id}").json()
    assert_matches_spec("get_campaign_message", 200, message)
    definition = message["data"]["attributes"]["definition"]
    assert definition["content"] == {"body": "Hi {{ first_name }}, sale today!", "media_url": None}
    # Klaviyo's render option defaults.
    assert definition["render_options"] == {"shorten_links": True, "add_org_prefix": True, "add_info_link": True,
                                            "add_opt_out_language": False}
    assert http.get(f"/api/campaign-messages/{message_id}/image").json()["data"] is None

    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
           b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND"
           b"\xaeB`\x82")
    import base64
    uploaded = http.post("/api/images", json={"data": {"type": "image", "attributes": {
        "name": "pixel", "import_from_url": "data:image/png;base64," + base64.b64encode(png).decode()}}})
    assert uploaded.status_code == 201, uploaded.text
    image_id = uploaded.json()["data"]["id"]

    changed = http.patch(f"/api/campaign-messages/{message_id}/relationships/image",
                         json={"data": {"type": "image", "id": image_id}})
    assert changed.status_code == 204, changed.text
    sdk.Campaigns.update_image_for_campaign_message(message_id, {"data": {"type": "image", "id": image_id}})
    image = http.get(f"/api/campaign-messages/{message_id}/image").json()
    assert_matches_spec("get_image_for_campaign_message", 200, image)
    assert image["data"]["id"] == image_id
    ref = http.get(f"/api/campaign-messages/{message_id}/relationships/image").json()
    assert_matches_spec("get_image_id_for_campaign_message", 200, ref)
    assert sdk.Campaigns.get_image_id_for_campaign_message(message_id).data.id == image_id
    assert sdk.Campaigns.get_image_for_campaign_message(message_id).data.id == image_id

    error_of(http.patch(f"/api/campaign-messages/{message_id}/relationships/image",
                        json={"data": {"type": "image", "id": "999999"}}), 404, "update_image_for_campaign_message")
    email_id = cf.create_campaign(http, cf.email_campaign_body("Mail", [list_id]))["id"]
    email_message = cf.message_id_of(http, email_id)
    error_of(http.patch(f"/api/campaign-messages/{email_message}/relationships/image",
                        json={"data": {"type": "image", "id": image_id}}), 400, "update_image_for_campaign_message")


def test_tags_of_a_campaign(sdk, http):
    list_id = cf.new_list(http)
    campaign_id = cf.create_campaign(http, cf.email_campaign_body("Tagged", [list_id]))["id"]
    assert http.get(f"/api/campaigns/{campaign_id}/tags").json()["data"] == []
    names = ["vip", "summer"]
    tag_ids = []
    for name in names:
        tag = http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": name}}}).json()["data"]
        tag_ids.append(tag["id"])
        sdk.Tags.tag_campaigns(tag["id"], {"data": [{"type": "campaign", "id": campaign_id}]})
    tags = http.get(f"/api/campaigns/{campaign_id}/tags").json()
    assert_matches_spec("get_tags_for_campaign", 200, tags)
    assert sorted(t["attributes"]["name"] for t in tags["data"]) == sorted(names)
    ids = http.get(f"/api/campaigns/{campaign_id}/relationships/tags").json()
    assert_matches_spec("get_tag_ids_for_campaign", 200, ids)
    assert sorted(i["id"] for i in ids["data"]) == sorted(tag_ids)
    assert len(sdk.Campaigns.get_tags_for_campaign(campaign_id).data) == 2
    assert len(sdk.Campaigns.get_tag_ids_for_campaign(campaign_id).data) == 2
    # Tagging an unknown campaign is a 404 from the Tags side; deleting the campaign drops its tags.
    unknown = http.post(f"/api/tags/{tag_ids[0]}/relationships/campaigns",
                        json={"data": [{"type": "campaign", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}]})
    assert unknown.status_code == 404
    http.delete(f"/api/campaigns/{campaign_id}")
    assert http.get(f"/api/tags/{tag_ids[0]}/relationships/campaigns").json()["data"] == []


def test_clone(sdk, http):
    list_id = cf.new_list(http)
    campaign_id, message_id = cf.ready_email_campaign(http, [list_id], name="Original")
    clone = http.post("/api/campaign-clone", json={"data": {"type": "campaign", "id": campaign_id,
                                                            "attributes": {"new_name": "Copy"}}})
    assert clone.status_code == 201, clone.text
    assert_matches_spec("create_campaign_clone", 201, clone.json())
    data = clone.json()["data"]
    assert data["id"] != campaign_id and data["attributes"]["name"] == "Copy"
    assert data["attributes"]["status"] == "Draft"
    assert data["attributes"]["audiences"]["included"] == [list_id]
    clone_message = cf.message_id_of(http, data["id"])
    assert clone_message != message_id
    original_template = http.get(f"/api/campaign-messages/{message_id}/relationships/template").json()["data"]
    clone_template = http.get(f"/api/campaign-messages/{clone_message}/relationships/template").json()["data"]
    assert clone_template is not None and clone_template["id"] != original_template["id"]
    default_name = sdk.Campaigns.create_campaign_clone({"data": {"type": "campaign", "id": campaign_id,
                                                                 "attributes": {}}})
    assert default_name.data.attributes.name == "Original (Clone)"
    error_of(http.post("/api/campaign-clone", json={"data": {"type": "campaign", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}}),
             404, "create_campaign_clone")


def test_estimation_jobs(sdk, http):
    subscribed = [cf.profile(http, f"e{i}@example.com") for i in range(4)]
    no_email = cf.profile(http, phone_number="+15005550006")
    list_id = cf.new_list(http, members=[*subscribed, no_email])
    excluded = cf.new_list(http, "Out", members=[subscribed[0]])
    campaign_id = cf.create_campaign(http, cf.email_campaign_body("Count", [list_id], [excluded]))["id"]
    started = http.post("/api/campaign-recipient-estimation-jobs",
                        json={"data": {"type": "campaign-recipient-estimation-job", "id": campaign_id}})
    assert started.status_code == 202, started.text
    assert_matches_spec("refresh_campaign_recipient_estimation", 202, started.json())
    assert started.json()["data"]["attributes"]["status"] == "queued"
    cf.wait_for(lambda: http.get(f"/api/campaign-recipient-estimation-jobs/{campaign_id}").json()
                ["data"]["attributes"]["status"] == "complete")
    job = http.get(f"/api/campaign-recipient-estimation-jobs/{campaign_id}").json()
    assert_matches_spec("get_campaign_recipient_estimation_job", 200, job)
    estimate = http.get(f"/api/campaign-recipient-estimations/{campaign_id}").json()
    assert_matches_spec("get_campaign_recipient_estimation", 200, estimate)
    # Four members with an address, minus the excluded one; the profile without email is not counted.
    assert estimate["data"]["attributes"]["estimated_recipient_count"] == 3
    assert sdk.Campaigns.get_campaign_recipient_estimation(campaign_id).data.attributes \
        .estimated_recipient_count == 3
    sdk.Campaigns.refresh_campaign_recipient_estimation({"data": {"type": "campaign-recipient-estimation-job",
                                                                  "id": campaign_id}})
    sdk.Campaigns.get_campaign_recipient_estimation_job(campaign_id)
    error_of(http.post("/api/campaign-recipient-estimation-jobs", json={"data": {
        "type": "campaign-recipient-estimation-job", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}}), 404,
        "refresh_campaign_recipient_estimation")


def test_send_jobs_send_cancel_and_revert(sdk, http):
    people = [cf.profile(http, f"s{i}@example.com") for i in range(2)]
    list_id = cf.new_list(http, members=people)
    campaign_id, _ = cf.ready_email_campaign(
        http, [list_id], strategy={"method": "static", "datetime": "2099-01-01T10:00:00+00:00"})
    sent = sdk.Campaigns.send_campaign({"data": {"type": "campaign-send-job", "id": campaign_id}})
    assert sent.data.attributes.status == "queued"
    job = http.get(f"/api/campaign-send-jobs/{campaign_id}").json()
    assert_matches_spec("get_campaign_send_job", 200, job)
    assert sdk.Campaigns.get_campaign_send_job(campaign_id).data.attributes.status == "queued"
    campaign = http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]
    assert campaign["status"] == "Scheduled" and campaign["scheduled_at"] is not None
    assert campaign["send_time"] == "2099-01-01T10:00:00+00:00"
    # Only drafts change, and a scheduled campaign is not sent twice.
    error_of(http.patch(f"/api/campaigns/{campaign_id}", json={"data": {"type": "campaign", "id": campaign_id,
                                                                         "attributes": {"name": "x"}}}), 400,
             "update_campaign")
    error_of(cf.send(http, campaign_id), 400, "send_campaign")

    reverted = http.patch(f"/api/campaign-send-jobs/{campaign_id}", json={"data": {
        "type": "campaign-send-job", "id": campaign_id, "attributes": {"action": "revert"}}})
    assert reverted.status_code == 204, reverted.text
    assert http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]["status"] == "Draft"
    # Scheduled again, then cancelled for good.
    assert cf.send(http, campaign_id).status_code == 202
    sdk.Campaigns.cancel_campaign_send(campaign_id, {"data": {"type": "campaign-send-job", "id": campaign_id,
                                                              "attributes": {"action": "cancel"}}})
    assert http.get(f"/api/campaigns/{campaign_id}").json()["data"]["attributes"]["status"] == "Cancelled"
    assert cf.job_status(http, campaign_id) == "cancelled"
    error_of(http.patch(f"/api/campaign-send-jobs/{campaign_id}", json={"data": {
        "type": "campaign-send-job", "id": campaign_id, "attributes": {"action": "cancel"}}}), 400,
        "cancel_campaign_send")
    error_of(http.patch(f"/api/campaign-send-jobs/{campaign_id}", json={"data": {
        "type": "campaign-send-job", "id": campaign_id, "attributes": {"action": "pause"}}}), 400,
        "cancel_campaign_send")


def test_send_refuses_campaigns_that_are_not_ready(http):
    list_id = cf.new_list(http)
    no_template = cf.create_campaign(http, cf.email_campaign_body("No template", [list_id]))["id"]
    assert "template" in error_of(cf.send(http, no_template), 400, "send_campaign")["detail"]
    no_audience, _ = cf.ready_email_campaign(http, [])
    assert "audience" in error_of(cf.send(http, no_audience), 400, "send_campaign")["detail"]
    past, _ = cf.ready_email_campaign(http, [list_id], strategy={"method": "static",
                                                                 "datetime": "2001-01-01T00:00:00+00:00"})
    assert error_of(cf.send(http, past), 400, "send_campaign")["source"] == {
        "pointer": "/data/attributes/send_strategy/datetime"}
    push = cf.create_campaign(http, {"data": {"type": "campaign", "attributes": {
        "name": "Push", "audiences": {"included": [list_id]},
        "campaign-messages": {"data": [{"type": "campaign-message", "attributes": {"definition": {
            "channel": "mobile_push", "notification_type": "standard",
            "content": {"title": "Hi", "body": "Sale"}}}}]}}}})
    assert push["attributes"]["tracking_options"] is None
    message = http.get(f"/api/campaign-messages/{cf.message_id_of(http, push['id'])}").json()
    assert_matches_spec("get_campaign_message", 200, message)
    assert "Channel not configured" in error_of(cf.send(http, push["id"]), 400, "send_campaign")["detail"]
    error_of(cf.send(http, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "send_campaign")


@pytest.mark.parametrize("body, pointer", [
    ({"data": {"type": "campaign", "attributes": {"audiences": {"included": []},
                                                  "campaign-messages": {"data": []}}}}, "/data/attributes/name"),
    ({"data": {"type": "campaign", "attributes": {"name": "x", "audiences": {"included": []},
                                                  "campaign-messages": {"data": []}}}},
     "/data/attributes/campaign-messages/data"),
    ({"data": {"type": "campaign", "attributes": {"name": " ", "audiences": {"included": []},
                                                  "campaign-messages": {"data": []}}}}, "/data/attributes/name"),
    ({"data": {"type": "list", "attributes": {"name": "x", "audiences": {"included": []},
                                              "campaign-messages": {"data": []}}}}, "/data/type"),
])
def test_create_validation(http, body, pointer):
    response = http.post("/api/campaigns", json=body)
    # JSON:API: a resource object of the wrong type is a 409 Conflict.
    err = error_of(response, 409 if pointer == "/data/type" else 400, "create_campaign")
    assert err["source"] == {"pointer": pointer}


def test_create_validation_of_nested_fields(http):
    list_id = cf.new_list(http)
    cases = [
        ({"send_strategy": {"method": "static"}}, "/data/attributes/send_strategy/datetime"),
        ({"send_strategy": {"method": "throttled", "datetime": "2030-01-01T00:00:00Z", "throttle_percentage": 7}},
         "/data/attributes/send_strategy/throttle_percentage"),
        ({"send_strategy": {"method": "weekly"}}, "/data/attributes/send_strategy/method"),
        ({"send_strategy": {"method": "static", "datetime": "tomorrow"}}, "/data/attributes/send_strategy/datetime"),
        ({"send_strategy": {"method": "smart_send_time", "date": "2030-13-01"}},
         "/data/attributes/send_strategy/date"),
        ({"send_options": {"use_smart_sending": "yes"}}, "/data/attributes/send_options/use_smart_sending"),
        ({"tracking_options": {"custom_tracking_params": [{"type": "dynamic", "value": "bogus", "name": "u"}]}},
         "/data/attributes/tracking_options/custom_tracking_params/0/value"),
    ]
    for extra, pointer in cases:
        body = cf.email_campaign_body("Bad", [list_id])
        body["data"]["attributes"].update(extra)
        err = error_of(http.post("/api/campaigns", json=body), 400, "create_campaign")
        assert err["source"] == {"pointer": pointer}, (extra, err)
    unknown = cf.email_campaign_body("Bad", ["nolist"])
    err = error_of(http.post("/api/campaigns", json=unknown), 404, "create_campaign")
    assert err["source"] == {"pointer": "/data/attributes/audiences/included/0"}
    both = cf.email_campaign_body("Bad", [list_id], [list_id])
    err = error_of(http.post("/api/campaigns", json=both), 400, "create_campaign")
    assert err["source"] == {"pointer": "/data/attributes/audiences/excluded/0"}
    wrong_content = cf.email_campaign_body("Bad", [list_id])
    wrong_content["data"]["attributes"]["campaign-messages"]["data"][0]["attributes"]["definition"]["content"] = {
        "body": "sms text"}
    err = error_of(http.post("/api/campaigns", json=wrong_content), 400, "create_campaign")
    assert err["source"]["pointer"].endswith("/definition/content/body")


def test_other_accounts_campaigns_are_not_found(server, http, other_account):
    list_id = cf.new_list(http)
    campaign_id, message_id = cf.ready_email_campaign(http, [list_id])
    other = httpx.Client(base_url=server.url, headers={
        "Authorization": f"Klaviyo-API-Key {other_account.key}", "revision": REVISION})
    for path in (f"/api/campaigns/{campaign_id}", f"/api/campaign-messages/{message_id}",
                 f"/api/campaigns/{campaign_id}/tags", f"/api/campaign-messages/{message_id}/template",
                 f"/api/campaign-recipient-estimations/{campaign_id}"):
        assert other.get(path).status_code == 404, path
    assert other.delete(f"/api/campaigns/{campaign_id}").status_code == 404
    assert other.post("/api/campaign-send-jobs", json={"data": {"type": "campaign-send-job",
                                                                "id": campaign_id}}).status_code == 404
    listed = other.get("/api/campaigns", params={"filter": EMAIL}).json()
    assert listed["data"] == []
    # The other account cannot aim a campaign at this account's list either.
    assert other.post("/api/campaigns", json=cf.email_campaign_body("Steal", [list_id])).status_code == 404
    with pytest.raises(ApiException) as err:
        sdk_for(server, other_account.key).Campaigns.get_campaign(campaign_id)
    assert err.value.status == 404
