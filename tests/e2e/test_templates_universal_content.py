"""Universal content: CRUD through the SDK, filters, and blocks referenced from hybrid templates."""

from __future__ import annotations

import pytest
from openapi_client.exceptions import ApiException

from tests.e2e.template_fixtures import create_body, text_block
from tests.spec import assert_matches_spec

UC = "template-universal-content"


def _body(name, block):
    return {"data": {"type": UC, "attributes": {"name": name, "definition": block}}}


def test_universal_content_lifecycle_through_sdk(sdk):
    created = sdk.Templates.create_universal_content(_body("Footer", text_block("<p>{{ organization.name }}</p>")))
    content_id = created.data.id
    assert len(content_id) == 26
    assert created.data.attributes.name == "Footer"
    fetched = sdk.Templates.get_universal_content(content_id)
    assert fetched.data.attributes.screenshot_status == "never_generated"
    sdk.Templates.update_universal_content(content_id, {"data": {"type": UC, "id": content_id,
                                                                 "attributes": {"name": "Footer v2"}}})
    listed = sdk.Templates.get_all_universal_content(filter="equals(name,'Footer v2')")
    assert [c.id for c in listed.data] == [content_id]
    sdk.Templates.delete_universal_content(content_id)
    with pytest.raises(ApiException) as err:
        sdk.Templates.get_universal_content(content_id)
    assert err.value.status == 404


def test_universal_content_responses_match_the_spec(http):
    button = {"content_type": "block", "type": "button", "data": {
        "content": "Shop now", "properties": {"href": "https://example.com"}, "display_options": {},
        "styles": {"background_color": "#000000", "color": "#ffffff", "border_radius": 4}}}
    created = http.post(f"/api/{UC}", json=_body("Button", button))
    assert created.status_code == 201, created.text
    assert_matches_spec("create_universal_content", 201, created.json())
    content_id = created.json()["data"]["id"]
    assert_matches_spec("get_universal_content", 200, http.get(f"/api/{UC}/{content_id}").json())
    assert_matches_spec("get_all_universal_content", 200, http.get(f"/api/{UC}").json())
    patched = http.patch(f"/api/{UC}/{content_id}", json={"data": {"type": UC, "id": content_id, "attributes": {
        "definition": text_block("<p>now text</p>")}}})
    assert patched.status_code == 200
    assert_matches_spec("update_universal_content", 200, patched.json())
    assert patched.json()["data"]["attributes"]["definition"]["type"] == "text"
    assert http.delete(f"/api/{UC}/{content_id}").status_code == 204
    assert http.delete(f"/api/{UC}/{content_id}").status_code == 404


def test_filters_sorts_and_sparse_fields(http):
    spacer = {"content_type": "block", "type": "spacer", "data": {"display_options": {}, "styles": {"height": 30}}}
    ids = {}
    for name, block in (("b-text", text_block("<p>x</p>")), ("a-spacer", spacer), ("c-text", text_block("y"))):
        ids[name] = http.post(f"/api/{UC}", json=_body(name, block)).json()["data"]["id"]
    texts = http.get(f"/api/{UC}", params={"filter": "equals(definition.type,'text')", "sort": "name"}).json()
    assert [c["attributes"]["name"] for c in texts["data"]] == ["b-text", "c-text"]
    blocks = http.get(f"/api/{UC}", params={"filter": "equals(definition.content_type,'block')"}).json()
    assert len(blocks["data"]) == 3
    some = http.get(f"/api/{UC}", params={"filter": f"any(id,['{ids['a-spacer']}'])",
                                          "fields[template-universal-content]": "name,definition.type"}).json()
    assert some["data"][0]["attributes"] == {"name": "a-spacer", "definition": {"type": "spacer"}}
    paged = http.get(f"/api/{UC}", params={"page[size]": "2", "sort": "-name"}).json()
    assert [c["attributes"]["name"] for c in paged["data"]] == ["c-text", "b-text"]
    assert [c["attributes"]["name"] for c in http.get(paged["links"]["next"]).json()["data"]] == ["a-spacer"]
    bad = http.get(f"/api/{UC}", params={"filter": "equals(definition.type,'carousel')"})
    assert bad.status_code == 400


@pytest.mark.parametrize(("definition", "pointer"), [
    ({"content_type": "block", "type": "product", "data": {}}, "/data/attributes/definition/type"),
    ({"content_type": "section", "type": "section"}, "/data/attributes/definition/content_type"),
    ({"content_type": "block", "type": "text", "data": {"display_options": {}}},
     "/data/attributes/definition/data/content"),
    ({"content_type": "block", "type": "text", "data": {"content": "{% if %}", "display_options": {}}},
     "/data/attributes/definition"),
    ("text", "/data/attributes/definition"),
])
def test_invalid_universal_content(http, definition, pointer):
    response = http.post(f"/api/{UC}", json=_body("x", definition))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer


def test_hybrid_template_renders_referenced_universal_blocks(http, other_account):
    block = http.post(f"/api/{UC}", json=_body("Promo", text_block("<p>Promo for {{ first_name }}</p>")))
    block_id = block.json()["data"]["id"]
    html = ("<table><tr><td data-klaviyo-region=\"true\" data-klaviyo-region-width-pixels=\"600\">"
            f"<div data-klaviyo-universal-block=\"{block_id}\">&nbsp;</div>"
            "<div data-klaviyo-universal-block=\"01UNKNOWNBLOCK000000000000\">kept</div></td></tr></table>")
    template = http.post("/api/templates", json=create_body("Hybrid", "USER_DRAGGABLE", html=html)).json()
    assert template["data"]["attributes"]["html"] == html
    rendered = http.post("/api/template-render", json={"data": {"type": "template", "id": template["data"]["id"],
                                                                "attributes": {"context": {"first_name": "Ann"}}}})
    out = rendered.json()["data"]["attributes"]["html"]
    assert "<p>Promo for Ann</p>" in out and "&nbsp;" not in out
    assert ">kept</div>" in out
    # Editing the block changes every template that references it.
    http.patch(f"/api/{UC}/{block_id}", json={"data": {"type": UC, "id": block_id, "attributes": {
        "definition": text_block("<p>New promo</p>")}}})
    again = http.post("/api/template-render", json={"data": {"type": "template", "id": template["data"]["id"],
                                                             "attributes": {"context": {}}}})
    assert "<p>New promo</p>" in again.json()["data"]["attributes"]["html"]


def test_other_accounts_content_is_not_found(http, server, other_account):
    import httpx

    from tests.conftest import REVISION

    content_id = http.post(f"/api/{UC}", json=_body("Mine", text_block("x"))).json()["data"]["id"]
    headers = {"Authorization": f"Klaviyo-API-Key {other_account.key}", "revision": REVISION}
    with httpx.Client(base_url=server.url, headers=headers) as other:
        assert other.get(f"/api/{UC}/{content_id}").status_code == 404
        assert other.delete(f"/api/{UC}/{content_id}").status_code == 404
        assert other.get(f"/api/{UC}").json()["data"] == []
