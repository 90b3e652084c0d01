"""Web feeds: CRUD through the SDK, scheduled fetches from a local HTTP server by the worker,
and feed content in templates; on both databases."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from openapi_client.exceptions import ApiException
from sqlalchemy import select

from tests.conftest import REVISION
from tests.e2e.local_http import Route, allow_local_fetch, local_http  # noqa: F401
from tests.e2e.template_fixtures import create_body
from tests.spec import assert_matches_spec

BLOG = {"items": [{"title": "First post", "url": "https://blog.example/1"},
                  {"title": "Second post", "url": "https://blog.example/2"}]}
RSS = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>"
       b"<item><title>Alpha</title><link>https://n.example/a</link></item>"
       b"<item><title>Beta</title><link>https://n.example/b</link></item></channel></rss>")


def _feed(name, url, method="get", content_type="json"):
    return {"data": {"type": "web-feed", "attributes": {"name": name, "url": url, "request_method": method,
                                                         "content_type": content_type}}}


def _settled(http, feed_id, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = http.get(f"/api/web-feeds/{feed_id}").json()["data"]["attributes"]["status"]
        if status != "refreshing":
            return status
        time.sleep(0.05)
    raise AssertionError(f"feed {feed_id} still refreshing after {seconds} s")


def _render(http, html, context=None):
    template_id = http.post("/api/templates", json=create_body("Feed", html=html)).json()["data"]["id"]
    response = http.post("/api/template-render", json={"data": {"type": "template", "id": template_id,
                                                                "attributes": {"context": context or {}}}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["attributes"]["html"]


def test_feed_lifecycle_through_sdk(sdk, http, local_http, allow_local_fetch):  # noqa: F811
    local_http.routes["/blog.json"] = Route(json.dumps(BLOG).encode(), "application/json")
    created = sdk.Web_Feeds.create_web_feed(_feed("Blog_posts", local_http.url("/blog.json")))
    feed_id = created.data.id
    assert created.data.attributes.status == "refreshing"
    assert _settled(http, feed_id) == "ok"
    assert local_http.hits["/blog.json"] >= 1

    html = _render(http, "{% for post in feeds.Blog_posts.items %}<a href='{{ post.url }}'>{{ post.title }}</a>"
                         "{% endfor %}")
    assert "<a href='https://blog.example/1'>First post</a><a href='https://blog.example/2'>Second post</a>" in html

    fetched = sdk.Web_Feeds.get_web_feed(feed_id)
    assert fetched.data.attributes.name == "Blog_posts"
    sdk.Web_Feeds.update_web_feed(feed_id, {"data": {"type": "web-feed", "id": feed_id,
                                                    "attributes": {"name": "Journal"}}})
    listed = sdk.Web_Feeds.get_web_feeds(filter="equals(name,'Journal')")
    assert [f.id for f in listed.data] == [feed_id]
    assert _settled(http, feed_id) == "ok"
    assert "First post" in _render(http, "{{ feeds.Journal.items.0.title }}")
    sdk.Web_Feeds.delete_web_feed(feed_id)
    with pytest.raises(ApiException) as err:
        sdk.Web_Feeds.get_web_feed(feed_id)
    assert err.value.status == 404


def test_xml_feed_by_post(http, local_http, allow_local_fetch):  # noqa: F811
    local_http.routes["/news.xml"] = Route(RSS, "application/rss+xml")
    created = http.post("/api/web-feeds", json=_feed("News", local_http.url("/news.xml"), "post", "xml"))
    assert created.status_code == 201, created.text
    assert_matches_spec("create_web_feed", 201, created.json())
    feed_id = created.json()["data"]["id"]
    assert _settled(http, feed_id) == "ok"
    assert local_http.methods["/news.xml"][0] == "POST"
    html = _render(http, "{% for item in feeds.News.rss.channel.item|slice:':3' %}{{ item.title }};{% endfor %}"
                         "{{ feeds.News.rss|lookup:'@version' }}")
    assert html == "Alpha;Beta;2.0"


def test_failures_keep_the_last_good_content(http, server, local_http, allow_local_fetch):  # noqa: F811
    from menura.store.tables import work_items
    from menura.store.template_tables import web_feeds

    local_http.routes["/feed.json"] = Route(json.dumps({"n": 1}).encode(), "application/json")
    feed_id = http.post("/api/web-feeds", json=_feed("Numbers", local_http.url("/feed.json"))).json()["data"]["id"]
    assert _settled(http, feed_id) == "ok"
    with server.db.read() as conn:
        queued = [row for row in conn.execute(select(work_items).where(work_items.c.kind == "web_feed.refresh",
                                                                       work_items.c.status == "queued"))
                  if row.payload["feed_id"] == feed_id]
        assert len(queued) == 1
        fetched_at = conn.execute(select(web_feeds.c.fetched_at).where(web_feeds.c.id == feed_id)).scalar_one()
    assert queued[0].run_at - fetched_at == timedelta(minutes=15)

    # Point the feed at a broken URL: the refresh fails, the status says so, the content stays.
    local_http.routes["/broken.json"] = Route(b"{not json", "application/json")
    http.patch(f"/api/web-feeds/{feed_id}", json={"data": {"type": "web-feed", "id": feed_id, "attributes": {
        "url": local_http.url("/broken.json")}}})
    assert _settled(http, feed_id) == "warning_periodic_refresh_timeout"
    assert _render(http, "n={{ feeds.Numbers.n }}") == "n=1"


def test_listing_filters_sorts_pages_and_spec(http, local_http, allow_local_fetch):  # noqa: F811
    for name in ("c_feed", "a_feed", "b_feed", "d_feed", "e_feed", "f_feed"):
        assert http.post("/api/web-feeds", json=_feed(name, local_http.url(f"/{name}"))).status_code == 201
    listed = http.get("/api/web-feeds", params={"sort": "name"})
    assert_matches_spec("get_web_feeds", 200, listed.json())
    body = listed.json()
    assert [f["attributes"]["name"] for f in body["data"]] == ["a_feed", "b_feed", "c_feed", "d_feed", "e_feed"]
    assert [f["attributes"]["name"] for f in http.get(body["links"]["next"]).json()["data"]] == ["f_feed"]
    contains = http.get("/api/web-feeds", params={"filter": "any(name,['a_feed','e_feed'])", "sort": "-name"})
    assert [f["attributes"]["name"] for f in contains.json()["data"]] == ["e_feed", "a_feed"]
    sparse = http.get("/api/web-feeds", params={"fields[web-feed]": "url", "page[size]": "20"}).json()["data"]
    assert len(sparse) == 6 and list(sparse[0]["attributes"]) == ["url"]
    assert http.get("/api/web-feeds", params={"page[size]": "21"}).status_code == 400
    one_id = body["data"][0]["id"]
    assert_matches_spec("get_web_feed", 200, http.get(f"/api/web-feeds/{one_id}").json())
    patched = http.patch(f"/api/web-feeds/{one_id}", json={"data": {"type": "web-feed", "id": one_id,
                                                                     "attributes": {"content_type": "xml"}}})
    assert_matches_spec("update_web_feed", 200, patched.json())
    assert http.delete(f"/api/web-feeds/{one_id}").status_code == 204


@pytest.mark.parametrize(("attributes", "status", "pointer"), [
    ({"name": "Bad name", "url": "http://127.0.0.1/x", "request_method": "get", "content_type": "json"}, 400,
     "/data/attributes/name"),
    ({"name": "_hidden", "url": "http://127.0.0.1/x", "request_method": "get", "content_type": "json"}, 400,
     "/data/attributes/name"),
    ({"name": "Feed", "url": "https://feeds.example.com/x", "request_method": "get", "content_type": "json"}, 400,
     "/data/attributes/url"),
    ({"name": "Feed", "url": "http://127.0.0.1/x", "request_method": "put", "content_type": "json"}, 400,
     "/data/attributes/request_method"),
    ({"name": "Feed", "url": "http://127.0.0.1/x", "request_method": "get", "content_type": "csv"}, 400,
     "/data/attributes/content_type"),
    ({"name": "Feed", "request_method": "get", "content_type": "json"}, 400, "/data/attributes/url"),
])
def test_invalid_feeds(http, allow_local_fetch, attributes, status, pointer):  # noqa: F811
    response = http.post("/api/web-feeds", json={"data": {"type": "web-feed", "attributes": attributes}})
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer


def test_duplicate_names_conflict(http, allow_local_fetch):  # noqa: F811
    assert http.post("/api/web-feeds", json=_feed("Same", "http://127.0.0.1:9/a")).status_code == 201
    again = http.post("/api/web-feeds", json=_feed("Same", "http://127.0.0.1:9/b"))
    assert again.status_code == 409


def test_other_accounts_feeds_are_not_found(http, server, other_account, allow_local_fetch):  # noqa: F811
    feed_id = http.post("/api/web-feeds", json=_feed("Mine", "http://127.0.0.1:9/a")).json()["data"]["id"]
    headers = {"Authorization": f"Klaviyo-API-Key {other_account.key}", "revision": REVISION,
               "Content-Type": "application/vnd.api+json"}
    with httpx.Client(base_url=server.url, headers=headers) as other:
        assert other.get(f"/api/web-feeds/{feed_id}").status_code == 404
        assert other.delete(f"/api/web-feeds/{feed_id}").status_code == 404
        assert other.get("/api/web-feeds").json()["data"] == []
        # The other account may use the same name: names are per account.
        assert other.post("/api/web-feeds", json=_feed("Mine", "http://127.0.0.1:9/a")).status_code == 201
