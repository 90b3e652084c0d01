"""Drag-and-drop definitions, hybrid markup, the text part, CSS inlining, image storage and
fetch rules: the pieces around the template language."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from menura.domain import images as image_rules
from menura.domain import remote_fetch
from menura.domain import web_feeds as feed_rules
from menura.store.image_storage import ImageStorageSettings, LocalImageStorage, S3ImageStorage, valid_key
from menura.templating import RenderEnv, dnd, hybrid, render
from menura.templating.inline import inline_css
from menura.templating.text import html_to_text
from tests.e2e.template_fixtures import HYBRID_HTML, definition, text_block

# --------------------------------------------------------------------------- drag and drop

BLOCKS = [
    text_block("<p>Hi {{ first_name }}</p>"),
    {"content_type": "block", "type": "html", "data": {"content": "<b>raw</b>", "display_options": {}}},
    {"content_type": "block", "type": "button", "data": {
        "content": "Shop", "properties": {"href": "https://shop.example"}, "display_options": {},
        "styles": {"background_color": "#ff0000", "border_radius": 6, "color": "#ffffff"}}},
    {"content_type": "block", "type": "image", "data": {
        "properties": {"dynamic": False, "src": "https://img.example/a.png", "alt_text": "A", "href": None},
        "display_options": {}, "styles": {"align": "left", "width": 300}}},
    {"content_type": "block", "type": "spacer", "data": {"display_options": {}, "styles": {"height": 24}}},
    {"content_type": "block", "type": "horizontal_rule", "data": {
        "display_options": {}, "styles": {"border_color": "#cccccc", "border_width": 2, "border_style": "dashed"}}},
    {"content_type": "block", "type": "social", "data": {"properties": {"show_labels": True}, "display_options": {},
                                                         "styles": {}},
     "subblocks": [{"type": "social_link_icon", "link_type": "instagram", "link_url": "https://ig.example/x"}]},
    {"content_type": "block", "type": "table", "data": {"properties": {"dynamic": False, "num_columns": 2},
                                                        "display_options": {}, "styles": {}},
     "subblocks": [{"type": "table_text", "content": "L"}, {"type": "table_text", "content": "R"}]},
    {"content_type": "block", "type": "coupon", "data": {"content": "{% coupon_code 'WELCOME' %}",
                                                         "properties": {}, "display_options": {}, "styles": {}}},
    {"content_type": "block", "type": "text", "data": {
        "content": "{{ item.name }}",
        "display_options": {"content_repeat": {"repeat_for": "event.Items", "item_alias": "item"},
                            "visibility": {"check": "event.Items"}},
        "styles": {}}},
    {"content_type": "block", "type": "text", "data": {"content": "mobile only",
                                                       "display_options": {"show_on": "mobile"}, "styles": {}}},
]


def test_definition_renders_every_block_kind() -> None:
    checked = dnd.validate_definition(copy.deepcopy(definition(*BLOCKS)))
    html = dnd.render_definition(dnd.assign_ids(checked, "T1"))
    out = render(html, {"first_name": "Ann", "event": {"Items": [{"name": "Hat"}, {"name": "Bag"}]}},
                 env=RenderEnv(now=datetime(2026, 1, 1, tzinfo=UTC), coupon_code=lambda name: f"{name}-1"))
    for expected in ("Hi Ann", "<b>raw</b>", 'href="https://shop.example"', "background-color:#ff0000",
                     'src="https://img.example/a.png"', "height:24px", "2px dashed #cccccc",
                     'href="https://ig.example/x"', ">L</td>", ">R</td>", "WELCOME-1", ">Hat</div>", ">Bag</div>",
                     'class="kl-hide-desktop"', "width=\"600\"", "background-color:#eeeeee"):
        assert expected in out, expected


def test_assign_ids_replaces_client_ids() -> None:
    given = definition(text_block("x"))
    given["id"] = "client"
    given["body"]["sections"][0]["id"] = "client"
    done = dnd.assign_ids(dnd.validate_definition(given), "TPL")
    assert done["id"] != "client" and done["template_id"] == "TPL"
    section = done["body"]["sections"][0]
    assert section["id"] != "client" and section["data_id"]
    block = section["rows"][0]["columns"][0]["blocks"][0]
    assert block["id"] and block["data_id"] and block["universal_id"] is None
    assert all(style["id"] for style in done["styles"])


@pytest.mark.parametrize(("mutate", "pointer"), [
    (lambda d: d.pop("body"), "/body"),
    (lambda d: d.pop("styles"), "/styles"),
    (lambda d: d["styles"].append({"style_type": "text-styles", "styles": {}}), "/styles/3/style_type"),
    (lambda d: d["styles"].append({"style_type": "fancy", "styles": {}}), "/styles/3/style_type"),
    (lambda d: d["body"]["sections"][0].update(type="row"), "/body/sections/0/type"),
    (lambda d: d["body"]["sections"][0]["data"].pop("styles"), "/body/sections/0/data/styles"),
    (lambda d: d["body"]["sections"][0]["rows"][0]["data"]["styles"].update(column_layout="5-columns"),
     "/body/sections/0/rows/0/data/styles/column_layout"),
    (lambda d: d["body"]["sections"][0]["rows"][0]["columns"][0].update(data={"x": 1}),
     "/body/sections/0/rows/0/columns/0/data"),
    (lambda d: d["body"]["sections"][0]["rows"][0]["columns"][0]["blocks"][0]["data"]["styles"].update(
        text_align="justify"), "/body/sections/0/rows/0/columns/0/blocks/0/data/styles/text_align"),
    (lambda d: d["body"]["sections"][0]["rows"][0]["columns"][0]["blocks"][0]["data"]["display_options"].update(
        content_repeat={"repeat_for": "x", "item_alias": "not valid"}),
     "/body/sections/0/rows/0/columns/0/blocks/0/data/display_options/content_repeat/item_alias"),
    (lambda d: d["body"]["sections"][0]["rows"][0]["columns"][0]["blocks"][0]["data"]["display_options"].update(
        visible_check="x %}{% evil"),
     "/body/sections/0/rows/0/columns/0/blocks/0/data/display_options/visible_check"),
    (lambda d: d["body"]["styles"].update(width={"px": 1}), "/body/styles/width"),
])
def test_definition_errors_point_at_the_culprit(mutate, pointer) -> None:
    bad = definition(text_block("x"))
    mutate(bad)
    with pytest.raises(dnd.DefinitionError) as info:
        dnd.validate_definition(bad)
    assert info.value.pointer == pointer


# --------------------------------------------------------------------------- hybrid

def test_hybrid_markup_is_read_not_rewritten() -> None:
    found = hybrid.regions(HYBRID_HTML)
    assert [(r.tag, r.width) for r in found] == [("td", 600), ("td", 600)]
    assert hybrid.block_kinds(HYBRID_HTML) == ["text", "image"]
    assert hybrid.is_hybrid(HYBRID_HTML) and not hybrid.is_hybrid("<p>plain</p>")
    assert hybrid.expand_universal_blocks(HYBRID_HTML, lambda _id: "x") == HYBRID_HTML


def test_universal_placeholders_are_filled() -> None:
    html = ('<td data-klaviyo-region="true"><div data-klaviyo-universal-block="A1">&nbsp;<div>'
            "<div data-klaviyo-universal-block='B2'>keep</div></td>")
    assert hybrid.universal_block_ids(html) == ["A1", "B2"]
    out = hybrid.expand_universal_blocks(html, {"A1": "<p>block</p>"}.get)
    assert out == ('<td data-klaviyo-region="true"><div data-klaviyo-universal-block="A1"><p>block</p><div>'
                   "<div data-klaviyo-universal-block='B2'>keep</div></td>")


# --------------------------------------------------------------------------- text and CSS

def test_text_part_from_html() -> None:
    html = ("<html><head><title>T</title><style>p{color:red}</style></head><body><h1>Sale</h1>"
            "<p>Save <b>20%</b> at <a href='https://shop.example'>our shop</a>.</p><ul><li>Hats</li><li>Bags</li>"
            "</ul><img src='x.png' alt='Logo'><p>{% raw %}</p><script>alert(1)</script></body></html>")
    assert html_to_text(html) == ("Sale\n\nSave 20% at our shop (https://shop.example).\n\n- Hats\n- Bags\n"
                                  "Logo\n\n{% raw %}")


def test_css_is_inlined_for_email_clients() -> None:
    out = inline_css("<html><head><style>p.x{color:red}</style></head><body><p class='x'>a</p></body></html>")
    assert 'style="color: red;"' in out


# --------------------------------------------------------------------------- images

def test_formats_are_sniffed_from_bytes() -> None:
    from tests.e2e.local_http import GIF, JPEG, png

    assert image_rules.sniff_format(png()) == "png"
    assert image_rules.sniff_format(GIF) == "gif"
    assert image_rules.sniff_format(JPEG) == "jpeg"
    assert image_rules.sniff_format(b"<svg/>") is None
    assert image_rules.name_from_url("https://x.example/a/b%20c.png?x=1") == "b c.png"
    assert image_rules.name_from_url("https://x.example/") is None


def test_local_storage(tmp_path) -> None:
    storage = LocalImageStorage(tmp_path)
    storage.put("acct/abc.png", b"data", "image/png")
    assert storage.get("acct/abc.png") == b"data"
    assert storage.url("acct/abc.png", "http://h:1/") == "http://h:1/i/acct/abc.png"
    assert LocalImageStorage(tmp_path, "https://cdn.example").url("acct/abc.png", "x") == \
        "https://cdn.example/acct/abc.png"
    storage.delete("acct/abc.png")
    assert storage.get("acct/abc.png") is None
    with pytest.raises(ValueError):
        storage.put("../etc/passwd", b"x", "text/plain")
    assert not valid_key("acct/../x") and not valid_key("/abs/x") and valid_key("acct/a.png")


def test_s3_storage_with_an_in_process_fake() -> None:
    """S3 through moto's in-process fake (no network): put, get, url, delete."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
        client.create_bucket(Bucket="imgs")
        settings = ImageStorageSettings(storage="s3", s3_bucket="imgs", s3_region="us-east-1", s3_prefix="menura")
        storage = S3ImageStorage(settings, client=client)
        storage.put("acct/abc.png", b"data", "image/png")
        head = client.head_object(Bucket="imgs", Key="menura/acct/abc.png")
        assert head["ContentType"] == "image/png"
        assert storage.get("acct/abc.png") == b"data"
        assert storage.get("acct/none.png") is None
        assert storage.url("acct/abc.png", "ignored") == "https://imgs.s3.us-east-1.amazonaws.com/menura/acct/abc.png"
        storage.delete("acct/abc.png")
        assert storage.get("acct/abc.png") is None
    public = S3ImageStorage(ImageStorageSettings(s3_bucket="b", public_url="https://cdn.example/"), client=object())
    assert public.url("a/b.png", "x") == "https://cdn.example/a/b.png"
    minio = S3ImageStorage(ImageStorageSettings(s3_bucket="b", s3_endpoint_url="http://minio:9000"), client=object())
    assert minio.url("a/b.png", "x") == "http://minio:9000/b/a/b.png"


# --------------------------------------------------------------------------- fetching and feeds

def test_allowed_hosts() -> None:
    allowed = remote_fetch.allowed_hosts(" feeds.example.com, *.cdn.example ,127.0.0.1")
    assert remote_fetch.host_allowed("feeds.example.com", allowed)
    assert remote_fetch.host_allowed("a.cdn.example", allowed)
    assert not remote_fetch.host_allowed("cdn.example.evil", allowed)
    assert not remote_fetch.host_allowed("example.com", allowed)
    assert remote_fetch.host_allowed("anything", ["*"])
    assert not remote_fetch.host_allowed("anything", [])
    with pytest.raises(remote_fetch.FetchError):
        remote_fetch.check_url("file:///etc/passwd", ["*"])
    with pytest.raises(remote_fetch.FetchError):
        remote_fetch.check_url("http://user@evil.example/", allowed)


def test_feed_parsing() -> None:
    assert feed_rules.parse_feed(b'{"items": [1]}', "json") == {"items": [1]}
    xml = feed_rules.parse_feed(b"<rss a='1'><item>x</item><item>y</item></rss>", "xml")
    assert xml == {"rss": {"@a": "1", "item": ["x", "y"]}}
    with pytest.raises(feed_rules.FeedFormatError):
        feed_rules.parse_feed(b"{", "json")
    with pytest.raises(feed_rules.FeedFormatError):
        feed_rules.parse_feed(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "xml")


def test_refresh_schedule_backs_off_to_nightly_then_critical(monkeypatch) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def failing(*_args, **kwargs):
        failing.timeouts.append(kwargs["timeout"])
        raise remote_fetch.FetchError("timed out")

    failing.timeouts = []
    monkeypatch.setattr(remote_fetch, "fetch", failing)
    row = SimpleNamespace(url="http://h/x", request_method="get", content_type="json", failures=0)
    statuses = []
    for _ in range(15):
        outcome = feed_rules.refresh(row, now, "h")
        statuses.append((outcome.values["status"], outcome.next_run - now))
        row.failures = outcome.values["failures"]
    assert statuses[0] == ("warning_periodic_refresh_timeout", timedelta(minutes=15))
    assert statuses[11] == ("warning_nightly_refresh_timeout", timedelta(days=1))
    assert statuses[14] == ("critical_nightly_refresh_timeout", timedelta(days=1))
    assert failing.timeouts[:12] == [5.0] * 12 and failing.timeouts[12:] == [30.0] * 3

    monkeypatch.setattr(remote_fetch, "fetch", lambda *a, **k: remote_fetch.Fetched(b'{"a": 1}', "json", 200))
    ok = feed_rules.refresh(row, now, "h")
    assert ok.values == {"failures": 0, "status": "ok", "last_error": None, "content": {"a": 1}, "fetched_at": now}
    assert ok.next_run == now + timedelta(minutes=15)
