"""Images: uploads from a URL (allowed hosts only), a data URI and a file; listing, updates, names,
and the public files behind image_url; end to end through the SDK on both databases."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import REVISION
from tests.e2e.local_http import GIF, JPEG, Route, allow_local_fetch, local_http, png  # noqa: F401
from tests.spec import assert_matches_spec

PNG = png(2, 2)


def _data_uri(content: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def _post_form(http, **kwargs):
    """multipart/form-data: the client's JSON content type must not ride along."""
    headers = {k: v for k, v in http.headers.items() if k.lower() != "content-type"}
    return httpx.post(f"{str(http.base_url).rstrip('/')}/api/image-upload", headers=headers, **kwargs)


def _upload(http, source, **attributes):
    return http.post("/api/images", json={"data": {"type": "image", "attributes": {
        "import_from_url": source, **attributes}}})


def test_upload_from_data_uri_through_sdk(sdk, http):
    created = sdk.Images.upload_image_from_url({"data": {"type": "image", "attributes": {
        "import_from_url": _data_uri(PNG), "name": "logo.png"}}})
    assert created.data.attributes.format == "png"
    assert created.data.attributes.size == len(PNG)
    assert created.data.attributes.hidden is False
    served = httpx.get(created.data.attributes.image_url)
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"

    fetched = sdk.Images.get_image(created.data.id)
    assert fetched.data.attributes.name == "logo.png"
    updated = sdk.Images.update_image(created.data.id, {"data": {"type": "image", "id": created.data.id,
                                                                 "attributes": {"name": "brand.png", "hidden": True}}})
    assert updated.data.attributes.name == "brand.png" and updated.data.attributes.hidden is True
    listed = sdk.Images.get_images(filter="equals(hidden,true)")
    assert [i.id for i in listed.data] == [created.data.id]


def test_upload_from_file_through_sdk(sdk, http):
    created = sdk.Images.upload_image_from_file(file=GIF, name="spinner", hidden=True)
    assert created.data.attributes.format == "gif"
    assert created.data.attributes.name == "spinner" and created.data.attributes.hidden is True
    unnamed = sdk.Images.upload_image_from_file(file=JPEG)
    assert unnamed.data.attributes.format == "jpeg" and unnamed.data.attributes.name == "file"
    assert httpx.get(unnamed.data.attributes.image_url).content == JPEG
    raw = _post_form(http, files={"file": ("photo.png", PNG, "image/png")}, data={"hidden": "false"})
    assert raw.status_code == 201, raw.text
    assert_matches_spec("upload_image_from_file", 201, raw.json())
    assert raw.json()["data"]["attributes"]["name"] == "photo.png"


def test_upload_from_allowed_url(http, local_http, allow_local_fetch):  # noqa: F811
    local_http.routes["/media/banner%20big.png"] = Route(PNG, "image/png")
    created = _upload(http, local_http.url("/media/banner%20big.png"))
    assert created.status_code == 201, created.text
    assert_matches_spec("upload_image_from_url", 201, created.json())
    assert created.json()["data"]["attributes"]["name"] == "banner big.png"
    assert httpx.get(created.json()["data"]["attributes"]["image_url"]).content == PNG


def test_fetch_refusals(http, local_http, allow_local_fetch):  # noqa: F811
    local_http.routes["/redirect"] = Route(b"", status=302, headers={"Location": "http://example.com/a.png"})
    local_http.routes["/text"] = Route(b"not an image", "text/plain")
    local_http.routes["/gone"] = Route(b"", status=404)
    local_http.routes["/huge"] = Route(b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024), "image/png")
    cases = {
        "https://images.example.com/a.png": "not allowed",
        "ftp://127.0.0.1/a.png": "http(s)",
        local_http.url("/redirect"): "redirect",
        local_http.url("/text"): "Unsupported image format",
        local_http.url("/gone"): "404",
        local_http.url("/huge"): "larger than",
    }
    for source, reason in cases.items():
        response = _upload(http, source)
        assert response.status_code == 400, source
        error = response.json()["errors"][0]
        assert reason in error["detail"], (source, error["detail"])
        assert error["source"]["pointer"] == "/data/attributes/import_from_url"


def test_no_host_is_allowed_by_default(http, local_http):  # noqa: F811
    local_http.routes["/a.png"] = Route(PNG, "image/png")
    response = _upload(http, local_http.url("/a.png"))
    assert response.status_code == 400 and "not allowed" in response.json()["errors"][0]["detail"]
    assert local_http.hits.get("/a.png") is None


def test_names_are_deduplicated(http):
    names = [_upload(http, _data_uri(PNG), name="hero.png").json()["data"]["attributes"]["name"] for _ in range(3)]
    assert names == ["hero.png", "hero (1).png", "hero (2).png"]
    plain = [_upload(http, _data_uri(GIF, "image/gif"), name="Banner").json()["data"]["attributes"]["name"]
             for _ in range(2)]
    assert plain == ["Banner", "Banner (1)"]
    first_id = http.get("/api/images", params={"filter": "equals(name,'hero.png')"}).json()["data"][0]["id"]
    renamed = http.patch(f"/api/images/{first_id}", json={"data": {"type": "image", "id": first_id,
                                                                   "attributes": {"name": "Banner"}}})
    assert renamed.json()["data"]["attributes"]["name"] == "Banner (2)"
    same = http.patch(f"/api/images/{first_id}", json={"data": {"type": "image", "id": first_id,
                                                                "attributes": {"name": "Banner (2)"}}})
    assert same.json()["data"]["attributes"]["name"] == "Banner (2)"


def test_listing_filters_sorts_and_spec(http):
    for name, content, mime in (("b.png", png(1, 1), "image/png"), ("a.gif", GIF, "image/gif"),
                                ("c.png", png(8, 8), "image/png")):
        assert _upload(http, _data_uri(content, mime), name=name).status_code == 201
    listed = http.get("/api/images", params={"sort": "name"})
    assert listed.status_code == 200
    assert_matches_spec("get_images", 200, listed.json())
    assert [i["attributes"]["name"] for i in listed.json()["data"]] == ["a.gif", "b.png", "c.png"]
    pngs = http.get("/api/images", params={"filter": "equals(format,'png')", "sort": "-size"}).json()["data"]
    assert [i["attributes"]["name"] for i in pngs] == ["c.png", "b.png"]
    by_name = http.get("/api/images", params={"filter": "starts-with(name,'a')"}).json()["data"]
    assert [i["attributes"]["name"] for i in by_name] == ["a.gif"]
    small = http.get("/api/images", params={"filter": f"less-than(size,{len(png(8, 8))})"}).json()["data"]
    assert len(small) == 2
    some_id = pngs[0]["id"]
    by_id = http.get("/api/images", params={"filter": f"any(id,['{some_id}','nope'])"}).json()["data"]
    assert [i["id"] for i in by_id] == [some_id]
    paged = http.get("/api/images", params={"page[size]": "2", "sort": "id"}).json()
    assert len(paged["data"]) == 2 and "next" in paged["links"]
    assert len(http.get(paged["links"]["next"]).json()["data"]) == 1
    sparse = http.get("/api/images", params={"fields[image]": "name"}).json()["data"][0]["attributes"]
    assert list(sparse) == ["name"]
    one = http.get(f"/api/images/{some_id}")
    assert_matches_spec("get_image", 200, one.json())
    patched = http.patch(f"/api/images/{some_id}", json={"data": {"type": "image", "id": some_id,
                                                                  "attributes": {"hidden": True}}})
    assert_matches_spec("update_image", 200, patched.json())


@pytest.mark.parametrize(("attributes", "pointer"), [
    ({}, "/data/attributes/import_from_url"),
    ({"import_from_url": ""}, "/data/attributes/import_from_url"),
    ({"import_from_url": "data:image/png;base64,!!!"}, "/data/attributes/import_from_url"),
    ({"import_from_url": "data:text/plain;base64,aGVsbG8="}, "/data/attributes/import_from_url"),
    ({"import_from_url": "data:image/png;base64,", "name": "x"}, "/data/attributes/import_from_url"),
    ({"import_from_url": _data_uri(PNG), "hidden": "yes"}, "/data/attributes/hidden"),
    ({"import_from_url": _data_uri(PNG), "name": ""}, "/data/attributes/name"),
])
def test_invalid_uploads(http, attributes, pointer):
    response = http.post("/api/images", json={"data": {"type": "image", "attributes": attributes}})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer


def test_file_upload_errors(http):
    no_file = _post_form(http, data={"name": "x"}, files={"other": ("a", b"x", "text/plain")})
    assert no_file.status_code == 400
    assert no_file.json()["errors"][0]["source"]["pointer"] == "/data/attributes/file"
    not_image = _post_form(http, files={"file": ("a.txt", b"hello", "text/plain")})
    assert not_image.status_code == 400
    as_json = http.post("/api/image-upload", json={"data": {}})
    assert as_json.status_code == 415
    updated_unknown = http.patch("/api/images/999999", json={"data": {"type": "image", "id": "999999",
                                                                      "attributes": {"name": "x"}}})
    assert updated_unknown.status_code == 404


def test_other_accounts_images_are_not_found(http, server, other_account):
    image = _upload(http, _data_uri(PNG)).json()["data"]
    headers = {"Authorization": f"Klaviyo-API-Key {other_account.key}", "revision": REVISION,
               "Content-Type": "application/vnd.api+json"}
    with httpx.Client(base_url=server.url, headers=headers) as other:
        assert other.get(f"/api/images/{image['id']}").status_code == 404
        assert other.patch(f"/api/images/{image['id']}", json={"data": {
            "type": "image", "id": image["id"], "attributes": {"hidden": True}}}).status_code == 404
        assert other.get("/api/images").json()["data"] == []
    # The public file is public (it is what emails link to), but only under its own account.
    file_name = image["attributes"]["image_url"].rsplit("/", 1)[1]
    assert httpx.get(f"{server.url}/i/{other_account.id}/{file_name}").status_code == 404
    assert httpx.get(f"{server.url}/i/{image['attributes']['image_url'].split('/')[-2]}/..%2Fx").status_code == 404
