"""Tracking Settings category end to end: the three operations through the official SDK, bodies against
Klaviyo's spec, partial updates, validation errors with pointers, sparse fieldsets, other accounts."""

from __future__ import annotations

import httpx
import pytest
from openapi_client.exceptions import ApiException

from tests.conftest import REVISION
from tests.spec import assert_matches_spec


def patch_body(account_id: str, **attributes: object) -> dict:
    return {"data": {"type": "tracking-setting", "id": account_id, "attributes": attributes}}


def error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["errors"][0]


def test_defaults_through_the_sdk(sdk, account, http):
    listed = sdk.Tracking_Settings.get_tracking_settings()
    assert [item.id for item in listed.data] == [account.id]
    one = sdk.Tracking_Settings.get_tracking_setting(account.id)
    attributes = one.data.attributes
    assert attributes.auto_add_parameters is False
    raw = http.get(f"/api/tracking-settings/{account.id}").json()
    assert_matches_spec("get_tracking_setting", 200, raw)
    assert_matches_spec("get_tracking_settings", 200, http.get("/api/tracking-settings").json())
    attrs = raw["data"]["attributes"]
    assert attrs["utm_source"] == {"campaign": {"type": "static", "value": "Klaviyo"},
                                   "flow": {"type": "static", "value": "Klaviyo"}}
    assert attrs["utm_medium"]["campaign"] == {"type": "dynamic", "value": "message_type"}
    assert attrs["utm_id"] is None and attrs["custom_parameters"] is None
    assert raw["data"]["links"]["self"].rstrip("/").endswith(f"/api/tracking-settings/{account.id}")


def test_update_is_partial_and_persists(sdk, account, http):
    body = patch_body(account.id, auto_add_parameters=True,
                      utm_campaign={"campaign": {"type": "dynamic", "value": "campaign_name_id"}},
                      utm_id={"campaign": {"type": "dynamic", "value": "campaign_id"},
                              "flow": {"type": "dynamic", "value": "flow_id"}},
                      custom_parameters=[{"name": "src", "campaign": {"type": "static", "value": "newsletter"},
                                          "flow": {"type": "static", "value": "automation"}}])
    updated = sdk.Tracking_Settings.update_tracking_setting(account.id, body)
    assert updated.data.attributes.auto_add_parameters is True
    raw = http.patch(f"/api/tracking-settings/{account.id}", json=patch_body(account.id, utm_term={
        "campaign": {"type": "dynamic", "value": "link_alt_text"}})).json()
    assert_matches_spec("update_tracking_setting", 200, raw)
    attrs = raw["data"]["attributes"]
    # Earlier changes stay; a parameter object keeps the context it does not name.
    assert attrs["auto_add_parameters"] is True
    assert attrs["utm_campaign"] == {"campaign": {"type": "dynamic", "value": "campaign_name_id"},
                                     "flow": {"type": "dynamic", "value": "message_name"}}
    assert attrs["utm_id"]["flow"] == {"type": "dynamic", "value": "flow_id"}
    assert attrs["utm_term"] == {"campaign": {"type": "dynamic", "value": "link_alt_text"}, "flow": None}
    assert attrs["custom_parameters"][0]["name"] == "src"
    # null switches an optional parameter off
    attrs = http.patch(f"/api/tracking-settings/{account.id}",
                       json=patch_body(account.id, utm_id=None)).json()["data"]["attributes"]
    assert attrs["utm_id"] is None
    assert http.get(f"/api/tracking-settings/{account.id}").json()["data"]["attributes"] == attrs


def test_sparse_fieldsets(http, account):
    url = f"/api/tracking-settings/{account.id}?fields[tracking-setting]=auto_add_parameters,utm_source.campaign"
    attrs = http.get(url).json()["data"]["attributes"]
    assert attrs == {"auto_add_parameters": False, "utm_source": {"campaign": {"type": "static", "value": "Klaviyo"}}}
    bad = http.get("/api/tracking-settings?fields[tracking-setting]=nope")
    assert error(bad, 400)["source"]["parameter"] == "fields[tracking-setting]"
    assert error(http.get("/api/tracking-settings?page[size]=2"), 400)["source"]["parameter"] == "page[size]"


@pytest.mark.parametrize(("attributes", "pointer"), [
    ({"auto_add_parameters": "yes"}, "/data/attributes/auto_add_parameters"),
    ({"utm_source": {"campaign": {"type": "dynamic", "value": "flow_id"}}},
     "/data/attributes/utm_source/campaign/value"),
    ({"utm_source": {"flow": {"type": "dynamic", "value": "campaign_name"}}},
     "/data/attributes/utm_source/flow/value"),
    ({"utm_medium": {"campaign": {"type": "other", "value": "x"}}}, "/data/attributes/utm_medium/campaign/type"),
    ({"utm_medium": {"campaign": {"type": "static", "value": ""}}}, "/data/attributes/utm_medium/campaign/value"),
    ({"custom_parameters": [{"campaign": {"type": "static", "value": "x"}}]},
     "/data/attributes/custom_parameters/0/name"),
    ({"custom_parameters": [{"name": f"p{i}"} for i in range(6)]}, "/data/attributes/custom_parameters"),
    ({"custom_parameters": [{"name": "a"}, {"name": "A"}]}, "/data/attributes/custom_parameters"),
    ({"custom_parameters": [{"name": "utm_source"}]}, "/data/attributes/custom_parameters/0/name"),
    ({"colour": "blue"}, "/data/attributes/colour"),
])
def test_invalid_updates_are_rejected_with_a_pointer(http, account, attributes, pointer):
    before = http.get(f"/api/tracking-settings/{account.id}").json()
    err = error(http.patch(f"/api/tracking-settings/{account.id}", json=patch_body(account.id, **attributes)), 400)
    assert err["source"]["pointer"] == pointer
    assert http.get(f"/api/tracking-settings/{account.id}").json() == before  # nothing written


def test_type_id_and_other_accounts(http, account, other_account, server):
    wrong_type = {"data": {"type": "tag", "id": account.id, "attributes": {}}}
    assert error(http.patch(f"/api/tracking-settings/{account.id}", json=wrong_type), 409)["source"]["pointer"] == \
        "/data/type"
    wrong_id = patch_body("XXXXXX", auto_add_parameters=True)
    assert error(http.patch(f"/api/tracking-settings/{account.id}", json=wrong_id), 409)["source"]["pointer"] == \
        "/data/id"
    assert error(http.get(f"/api/tracking-settings/{other_account.id}"), 404)
    assert error(http.patch(f"/api/tracking-settings/{other_account.id}",
                            json=patch_body(other_account.id, auto_add_parameters=True)), 404)
    missing = http.patch(f"/api/tracking-settings/{account.id}", json={"data": {"type": "tracking-setting",
                                                                              "id": account.id}})
    assert error(missing, 400)["source"]["pointer"] == "/data/attributes"
    # The other account's setting is untouched by this account's update.
    http.patch(f"/api/tracking-settings/{account.id}", json=patch_body(account.id, auto_add_parameters=True))
    headers = {"Authorization": f"Klaviyo-API-Key {other_account.key}", "revision": REVISION}
    other = httpx.get(f"{server.url}/api/tracking-settings/{other_account.id}", headers=headers).json()
    assert other["data"]["attributes"]["auto_add_parameters"] is False


def test_sdk_errors_surface(sdk, other_account):
    with pytest.raises(ApiException) as caught:
        sdk.Tracking_Settings.get_tracking_setting(other_account.id)
    assert caught.value.status == 404
