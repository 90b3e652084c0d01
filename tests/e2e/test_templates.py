"""Templates: CRUD, render and clone, end to end through the official SDK, on both databases."""

from __future__ import annotations

import pytest
from openapi_client.exceptions import ApiException

from tests.e2e.template_fixtures import HYBRID_HTML, create_body, definition, text_block
from tests.spec import assert_matches_spec

HTML = "<html><body><h1>Hello {{ first_name|default:'there'|title }}</h1><p>{% unsubscribe %}</p></body></html>"


def _create(http, name="Welcome", **attributes):
    attributes.setdefault("html", HTML)
    response = http.post("/api/templates", json=create_body(name, **attributes))
    assert response.status_code == 201, response.text
    return response.json()


def test_code_template_lifecycle_through_sdk(sdk, http):
    created = sdk.Templates.create_template(create_body("Welcome", html=HTML, text="Hi {{ first_name }}"))
    template_id = created.data.id
    assert created.data.attributes.editor_type == "CODE"
    assert created.data.attributes.html == HTML

    fetched = sdk.Templates.get_template(template_id)
    assert fetched.data.attributes.name == "Welcome"
    assert fetched.data.attributes.text == "Hi {{ first_name }}"

    sdk.Templates.update_template(template_id, {"data": {"type": "template", "id": template_id,
                                                         "attributes": {"name": "Welcome v2"}}})
    listed = sdk.Templates.get_templates(filter="equals(name,'Welcome v2')")
    assert [t.id for t in listed.data] == [template_id]

    sdk.Templates.delete_template(template_id)
    with pytest.raises(ApiException) as err:
        sdk.Templates.get_template(template_id)
    assert err.value.status == 404


def test_responses_match_the_spec(http):
    created = _create(http)
    assert_matches_spec("create_template", 201, created)
    template_id = created["data"]["id"]
    one = http.get(f"/api/templates/{template_id}")
    assert_matches_spec("get_template", 200, one.json())
    listed = http.get("/api/templates")
    assert_matches_spec("get_templates", 200, listed.json())
    patched = http.patch(f"/api/templates/{template_id}", json={
        "data": {"type": "template", "id": template_id, "attributes": {"html": "<p>new</p>"}}})
    assert patched.status_code == 200
    assert_matches_spec("update_template", 200, patched.json())
    assert patched.json()["data"]["attributes"]["html"] == "<p>new</p>"
    assert http.delete(f"/api/templates/{template_id}").status_code == 204


def test_listing_filters_sorts_pages_and_sparse_fields(http):
    ids = [_create(http, name=f"T{i}")["data"]["id"] for i in range(12)]
    first = http.get("/api/templates", params={"sort": "-name", "fields[template]": "name,editor_type"})
    body = first.json()
    assert first.status_code == 200
    assert len(body["data"]) == 10 and "next" in body["links"]
    assert set(body["data"][0]["attributes"]) == {"name", "editor_type"}
    assert body["data"][0]["attributes"]["name"] == "T9"
    rest = http.get(body["links"]["next"]).json()
    assert len(rest["data"]) == 2
    names = [t["attributes"]["name"] for t in body["data"] + rest["data"]]
    assert names == sorted(names, reverse=True)
    some = http.get("/api/templates", params={"filter": f"any(id,['{ids[0]}','{ids[1]}'])"}).json()
    assert sorted(t["id"] for t in some["data"]) == sorted(ids[:2])
    contains = http.get("/api/templates", params={"filter": "contains(name,'T1')"}).json()
    assert sorted(t["attributes"]["name"] for t in contains["data"]) == ["T1", "T10", "T11"]
    created = body["data"][0]
    assert http.get("/api/templates", params={"filter": "greater-than(created,2000-01-01T00:00:00Z)",
                                              "page[size]": "3"}).json()["data"]
    assert created
    bad = http.get("/api/templates", params={"filter": "equals(editor_type,'CODE')"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["source"] == {"parameter": "filter"}
    too_big = http.get("/api/templates", params={"page[size]": "11"})
    assert too_big.status_code == 400


def test_drag_and_drop_template_definition(http):
    body = create_body("DnD", "SYSTEM_DRAGGABLE", definition=definition(text_block("<p>Hi {{ first_name }}</p>")))
    response = http.post("/api/templates", json=body, params={"additional-fields[template]": "definition"})
    assert response.status_code == 201, response.text
    assert_matches_spec("create_template", 201, response.json())
    data = response.json()["data"]
    template_id = data["id"]
    stored = data["attributes"]["definition"]
    assert stored["template_id"] == template_id and stored["id"]
    block = stored["body"]["sections"][0]["rows"][0]["columns"][0]["blocks"][0]
    assert block["id"] and block["data"]["content"] == "<p>Hi {{ first_name }}</p>"
    assert "<p>Hi {{ first_name }}</p>" in data["attributes"]["html"]

    one = http.get(f"/api/templates/{template_id}").json()
    assert one["data"]["attributes"]["definition"]["body"]["styles"]["width"] == 600
    assert_matches_spec("get_template", 200, one)
    listed = http.get("/api/templates").json()["data"]
    assert "definition" not in listed[0]["attributes"]
    with_definition = http.get("/api/templates", params={"additional-fields[template]": "definition"}).json()
    assert with_definition["data"][0]["attributes"]["definition"]["id"] == stored["id"]
    assert_matches_spec("get_templates", 200, with_definition)
    sparse = http.get(f"/api/templates/{template_id}", params={"fields[template]": "definition.body.styles.width"})
    assert sparse.json()["data"]["attributes"] == {"definition": {"body": {"styles": {"width": 600}}}}

    rendered = http.post("/api/template-render", json={"data": {"type": "template", "id": template_id,
                                                                "attributes": {"context": {"first_name": "Zoe"}}}})
    assert "<p>Hi Zoe</p>" in rendered.json()["data"]["attributes"]["html"]

    replaced = http.patch(f"/api/templates/{template_id}", json={"data": {
        "type": "template", "id": template_id,
        "attributes": {"definition": definition(text_block("<p>Bye</p>"), text_block("<p>Two</p>"))}}})
    assert replaced.status_code == 200
    html = replaced.json()["data"]["attributes"]["html"]
    assert "<p>Bye</p>" in html and "<p>Two</p>" in html and "Hi {{" not in html

    not_html = http.patch(f"/api/templates/{template_id}", json={"data": {
        "type": "template", "id": template_id, "attributes": {"html": "<p>x</p>"}}})
    assert not_html.status_code == 400
    assert not_html.json()["errors"][0]["source"]["pointer"] == "/data/attributes/html"


@pytest.mark.parametrize(("attributes", "pointer"), [
    ({"editor_type": "CODE"}, "/data/attributes/name"),
    ({"name": "x"}, "/data/attributes/editor_type"),
    ({"name": "x", "editor_type": "SIMPLE", "html": "<p/>"}, "/data/attributes/editor_type"),
    ({"name": "x", "editor_type": "CODE"}, "/data/attributes/html"),
    ({"name": "x", "editor_type": "SYSTEM_DRAGGABLE"}, "/data/attributes/definition"),
    ({"name": "x", "editor_type": "SYSTEM_DRAGGABLE", "html": "<p/>"}, "/data/attributes/html"),
    ({"name": "x", "editor_type": "SYSTEM_DRAGGABLE", "definition": {"body": {}}},
     "/data/attributes/definition/body/properties"),
    ({"name": "x", "editor_type": "SYSTEM_DRAGGABLE",
      "definition": definition({"content_type": "block", "type": "carousel", "data": {}})},
     "/data/attributes/definition/body/sections/0/rows/0/columns/0/blocks/0/type"),
    ({"name": "", "editor_type": "CODE", "html": "<p/>"}, "/data/attributes/name"),
    ({"name": "x", "editor_type": "CODE", "html": 5}, "/data/attributes/html"),
    ({"name": "x", "editor_type": "CODE", "html": "<p/>", "colour": "red"}, "/data/attributes/colour"),
])
def test_invalid_templates_are_400_with_a_pointer(http, attributes, pointer):
    response = http.post("/api/templates", json={"data": {"type": "template", "attributes": attributes}})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer


def test_broken_template_is_400_with_line_and_reason(http):
    response = http.post("/api/templates", json=create_body("Bad", html="<p>ok</p>\n<p>{% for x in %}</p>"))
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "line 2" in error["detail"] and "for" in error["detail"]
    assert error["source"]["pointer"] == "/data/attributes/html"
    text = http.post("/api/templates", json=create_body("Bad", html="<p/>", text="{{ x|nofilter }}"))
    assert text.status_code == 400 and text.json()["errors"][0]["source"]["pointer"] == "/data/attributes/text"
    wrong_type = http.post("/api/templates", json={"data": {"type": "list", "attributes": {}}})
    assert wrong_type.status_code == 409


def test_render_with_context(sdk, http):
    template_id = _create(http)["data"]["id"]
    rendered = sdk.Templates.render_template({"data": {"type": "template", "id": template_id,
                                                       "attributes": {"context": {"first_name": "george"}}}})
    assert "<h1>Hello George</h1>" in rendered.data.attributes.html
    assert 'href="' in rendered.data.attributes.html and ">Unsubscribe</a>" in rendered.data.attributes.html
    assert rendered.data.attributes.text.startswith("Hello George")
    raw = http.post("/api/template-render", json={"data": {"type": "template", "id": template_id,
                                                           "attributes": {"context": {}}}})
    assert raw.status_code == 201
    assert_matches_spec("render_template", 201, raw.json())
    assert "<h1>Hello There</h1>" in raw.json()["data"]["attributes"]["html"]
    sparse = http.post("/api/template-render", params={"fields[template]": "text"},
                       json={"data": {"type": "template", "id": template_id, "attributes": {"context": {}}}})
    assert set(sparse.json()["data"]["attributes"]) == {"text"}


def test_render_uses_given_text_amp_and_organization(http, account):
    template_id = _create(http, html="<p>{{ organization.name }}</p>", text="Text for {{ email }}",
                          amp="<p amp>{{ email }}</p>")["data"]["id"]
    rendered = http.post("/api/template-render", json={"data": {"type": "template", "id": template_id,
                                                                "attributes": {"context": {"email": "a@b.c"}}}})
    attributes = rendered.json()["data"]["attributes"]
    assert attributes["text"] == "Text for a@b.c"
    assert attributes["amp"] == "<p amp>a@b.c</p>"
    assert attributes["html"].startswith("<p>Shop ")


def test_render_errors(http, other_account):
    missing = http.post("/api/template-render", json={"data": {"type": "template", "id": "nope00",
                                                               "attributes": {"context": {}}}})
    assert missing.status_code == 404
    template_id = _create(http)["data"]["id"]
    no_context = http.post("/api/template-render", json={"data": {"type": "template", "id": template_id,
                                                                  "attributes": {}}})
    assert no_context.status_code == 400
    assert no_context.json()["errors"][0]["source"]["pointer"] == "/data/attributes/context"
    looping = _create(http, html="{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}"
                                 "{% endfor %}")["data"]["id"]
    limited = http.post("/api/template-render", json={"data": {"type": "template", "id": looping, "attributes": {
        "context": {"x": list(range(200))}}}})
    assert limited.status_code == 400 and "iterations" in limited.json()["errors"][0]["detail"]


def test_clone(sdk, http):
    template_id = _create(http, name="Original", text="t")["data"]["id"]
    clone = sdk.Templates.clone_template({"data": {"type": "template", "id": template_id, "attributes": {}}})
    assert clone.data.id != template_id
    assert clone.data.attributes.name == "Original (Clone)"
    assert clone.data.attributes.html == HTML and clone.data.attributes.text == "t"
    named = http.post("/api/template-clone", json={"data": {"type": "template", "id": template_id,
                                                            "attributes": {"name": "Copy"}}})
    assert named.status_code == 201
    assert_matches_spec("clone_template", 201, named.json())
    assert named.json()["data"]["attributes"]["name"] == "Copy"
    assert http.get("/api/templates").json()["data"].__len__() == 3


def test_other_accounts_templates_are_not_found(http, server, other_account):
    import httpx

    from tests.conftest import REVISION

    template_id = _create(http)["data"]["id"]
    headers = {"Authorization": f"Klaviyo-API-Key {other_account.key}", "revision": REVISION,
               "Content-Type": "application/vnd.api+json"}
    with httpx.Client(base_url=server.url, headers=headers) as other:
        assert other.get(f"/api/templates/{template_id}").status_code == 404
        assert other.patch(f"/api/templates/{template_id}", json={"data": {
            "type": "template", "id": template_id, "attributes": {"name": "x"}}}).status_code == 404
        assert other.delete(f"/api/templates/{template_id}").status_code == 404
        assert other.post("/api/template-clone", json={"data": {"type": "template", "id": template_id,
                                                                "attributes": {}}}).status_code == 404
        assert other.post("/api/template-render", json={"data": {"type": "template", "id": template_id,
                                                                 "attributes": {"context": {}}}}).status_code == 404
        assert other.get("/api/templates").json()["data"] == []
    assert http.get(f"/api/templates/{template_id}").status_code == 200


def test_template_limit(http, monkeypatch):
    from menura.domain import templates

    monkeypatch.setattr(templates, "MAX_TEMPLATES", 2)
    first = _create(http)["data"]["id"]
    _create(http)
    third = http.post("/api/templates", json=create_body("Third", html="<p/>"))
    assert third.status_code == 400 and "limit" in third.json()["errors"][0]["detail"]
    clone = http.post("/api/template-clone", json={"data": {"type": "template", "id": first, "attributes": {}}})
    assert clone.status_code == 400


def test_hybrid_template_round_trips_byte_for_byte(sdk, http):
    created = sdk.Templates.create_template(create_body("Hybrid", "USER_DRAGGABLE", html=HYBRID_HTML))
    assert created.data.attributes.editor_type == "USER_DRAGGABLE"
    assert created.data.attributes.html == HYBRID_HTML
    raw = http.get(f"/api/templates/{created.data.id}")
    assert raw.json()["data"]["attributes"]["html"].encode() == HYBRID_HTML.encode()
    rendered = http.post("/api/template-render", json={"data": {"type": "template", "id": created.data.id,
                                                                "attributes": {"context": {"first_name": "Ann"}}}})
    html = rendered.json()["data"]["attributes"]["html"]
    assert "Hi Ann," in html
    assert 'data-klaviyo-region="true"' in html and "Editable   copy &amp; more\t" in html
