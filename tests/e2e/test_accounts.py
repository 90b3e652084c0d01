from __future__ import annotations

import pytest
from openapi_client.exceptions import ApiException

from tests.spec import assert_matches_spec


def test_get_accounts_through_sdk(sdk, account, http):
    result = sdk.Accounts.get_accounts()
    assert [a.id for a in result.data] == [account.id]
    assert result.data[0].attributes.public_api_key == account.id
    response = http.get("/api/accounts")
    assert response.status_code == 200
    assert_matches_spec("get_accounts", 200, response.json())


def test_get_account_and_sparse_fields(sdk, account, http):
    one = sdk.Accounts.get_account(account.id)
    assert one.data.id == account.id
    fields = {"fields[account]": "timezone,contact_information.default_sender_name"}
    response = http.get(f"/api/accounts/{account.id}", params=fields)
    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    assert set(attributes) == {"timezone", "contact_information"}
    assert list(attributes["contact_information"]) == ["default_sender_name"]


def test_other_account_is_not_found(sdk, other_account):
    with pytest.raises(ApiException) as err:
        sdk.Accounts.get_account(other_account.id)
    assert err.value.status == 404


def test_unknown_sparse_field_is_400(http):
    response = http.get("/api/accounts", params={"fields[account]": "nope"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "fields[account]"}
