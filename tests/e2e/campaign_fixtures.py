"""Helpers of the campaign tests: profiles, lists, templates and campaigns made through the API,
and waiting for background work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

TEMPLATE_HTML = (
    "<html><head><style>p { color: #333333; }</style></head><body>"
    "<p>Hello {{ first_name|default:'friend' }},</p>"
    "<p>Our <a href=\"https://shop.example.com/sale?src=mail\">summer sale</a> is on.</p>"
    "<p><a href=\"{% unsubscribe_link %}\">Unsubscribe</a></p></body></html>"
)


def profile(http: httpx.Client, email: str | None = None, **attributes: Any) -> str:
    if email is not None:
        attributes["email"] = email
    response = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": attributes}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def new_list(http: httpx.Client, name: str = "Newsletter", members: list[str] | None = None) -> str:
    response = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": name}}})
    assert response.status_code == 201, response.text
    list_id = response.json()["data"]["id"]
    if members:
        add = http.post(f"/api/lists/{list_id}/relationships/profiles",
                        json={"data": [{"type": "profile", "id": pid} for pid in members]})
        assert add.status_code == 204, add.text
    return list_id


def template(http: httpx.Client, html: str = TEMPLATE_HTML, name: str = "Sale") -> str:
    response = http.post("/api/templates", json={"data": {"type": "template", "attributes": {
        "name": name, "editor_type": "CODE", "html": html}}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def email_campaign_body(name: str, included: list[str], excluded: list[str] | None = None, *,
                        strategy: dict[str, Any] | None = None, subject: str = "Summer sale, {{ first_name }}",
                        send_options: dict[str, Any] | None = None, tracking: dict[str, Any] | None = None,
                        content: dict[str, Any] | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "name": name,
        "audiences": {"included": included, "excluded": excluded or []},
        "campaign-messages": {"data": [{"type": "campaign-message", "attributes": {"definition": {
            "channel": "email", "label": "Main",
            "content": {"subject": subject, "preview_text": "Up to 50% off", "from_email": "shop@example.com",
                        "from_label": "Example Shop", "reply_to_email": "help@example.com",
                        **(content or {})}}}}]},
    }
    if strategy is not None:
        attributes["send_strategy"] = strategy
    if send_options is not None:
        attributes["send_options"] = send_options
    if tracking is not None:
        attributes["tracking_options"] = tracking
    return {"data": {"type": "campaign", "attributes": attributes}}


def sms_campaign_body(name: str, included: list[str], body: str = "Hi {{ first_name }}, sale today!",
                      render_options: dict[str, Any] | None = None) -> dict[str, Any]:
    definition: dict[str, Any] = {"channel": "sms", "content": {"body": body}}
    if render_options is not None:
        definition["render_options"] = render_options
    return {"data": {"type": "campaign", "attributes": {
        "name": name, "audiences": {"included": included},
        "campaign-messages": {"data": [{"type": "campaign-message", "attributes": {"definition": definition}}]}}}}


def create_campaign(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/api/campaigns", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def message_id_of(http: httpx.Client, campaign_id: str) -> str:
    response = http.get(f"/api/campaigns/{campaign_id}/relationships/campaign-messages")
    assert response.status_code == 200, response.text
    return response.json()["data"][0]["id"]


def assign(http: httpx.Client, message_id: str, template_id: str) -> httpx.Response:
    response = http.post("/api/campaign-message-assign-template", json={"data": {
        "type": "campaign-message", "id": message_id,
        "relationships": {"template": {"data": {"type": "template", "id": template_id}}}}})
    assert response.status_code == 200, response.text
    return response


def ready_email_campaign(http: httpx.Client, included: list[str], name: str = "Summer sale",
                         **kwargs: Any) -> tuple[str, str]:
    """(campaign id, message id) of a campaign ready to send."""
    campaign = create_campaign(http, email_campaign_body(name, included, **kwargs))
    message_id = message_id_of(http, campaign["id"])
    assign(http, message_id, template(http))
    return campaign["id"], message_id


def send(http: httpx.Client, campaign_id: str) -> httpx.Response:
    return http.post("/api/campaign-send-jobs", json={"data": {"type": "campaign-send-job", "id": campaign_id}})


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def job_status(http: httpx.Client, campaign_id: str) -> str:
    response = http.get(f"/api/campaign-send-jobs/{campaign_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]["attributes"]["status"]


def wait_sent(http: httpx.Client, campaign_id: str, timeout: float = 30.0) -> None:
    wait_for(lambda: job_status(http, campaign_id) in ("complete", "cancelled"), timeout)


# --------------------------------------------------------------------------- database-level helpers
# For engine tests that drive the worker themselves with a controlled clock.

def seed_profiles(db: Any, account_id: str, now: Any, people: list[dict[str, Any]]) -> list[str]:
    """Insert profiles directly (fast for thousands); each dict holds profile columns."""
    from sqlalchemy import insert

    from menura import ids
    from menura.store.profile_tables import profiles

    defaults = {"email": None, "phone_number": None, "first_name": None, "last_name": None, "location": None,
                "external_id": None, "email_consent": "NEVER_SUBSCRIBED", "sms_consent": "NEVER_SUBSCRIBED",
                "sms_transactional_consent": "NEVER_SUBSCRIBED", "email_suppression_reason": None}
    rows = []
    for person in people:
        row = {**defaults, "id": ids.ulid(), "account_id": account_id, "created": now, "updated": now,
               "properties": {}, **person}
        rows.append(row)
    with db.write() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(insert(profiles), rows[start:start + 1000])
    return [r["id"] for r in rows]


def seed_list(db: Any, account_id: str, now: Any, profile_ids: list[str], name: str = "All") -> str:
    from menura.domain import lists as list_rules
    from menura.store import lists as list_store

    row = list_rules.create_list(db, account_id, now, name=name, opt_in_process="single_opt_in")
    with db.write() as conn:
        list_store.add_members(conn, account_id, row.id, profile_ids, now, report=False)
    return row.id


def seed_campaign(db: Any, account_id: str, now: Any, included: list[str], *, channel: str = "email",
                  strategy: dict[str, Any] | None = None, smart_sending: bool = False, html: str = TEMPLATE_HTML,
                  excluded: list[str] | None = None, name: str = "Engine test", sms_body: str = "Hi {{ first_name }}",
                  render_options: dict[str, Any] | None = None, media_url: str | None = None) -> tuple[str, str]:
    """(campaign id, message id) of a campaign ready to send, made with the domain rules."""
    from menura.domain import campaigns as rules
    from menura.domain import templates as template_rules
    from menura.store import campaigns as store

    if channel == "email":
        content = {"subject": "Hi {{ first_name }}", "from_email": "shop@example.com", "from_label": "Shop",
                   "preview_text": "News"}
        message = rules.MessageInput("email", "Main", content)
    else:
        content = {"body": sms_body, **({"media_url": media_url} if media_url else {})}
        message = rules.MessageInput("sms", None, content, render_options)
    spec = rules.CampaignInput(name, included, excluded or [], [message], strategy,
                               {"use_smart_sending": smart_sending})
    campaign_id = rules.create_campaign(db, account_id, now, spec, rules.TrackingDefaults())
    with db.read() as conn:
        message_id = store.messages_of(conn, account_id, [campaign_id])[campaign_id][0].id
    if channel == "email":
        with db.write() as conn:
            template = template_rules.create_template(conn, account_id, now, name="T", editor_type="CODE", html=html)
        rules.assign_template(db, account_id, message_id, template.id, now)
    return campaign_id, message_id


def ledger(db: Any, message_id: str) -> dict[str, tuple[str, str | None]]:
    """profile id -> (status, reason) of a message's recipients."""
    from sqlalchemy import select

    from menura.store.campaign_tables import campaign_recipients as t

    with db.read() as conn:
        rows = conn.execute(select(t.c.profile_id, t.c.status, t.c.reason).where(t.c.message_id == message_id))
        return {r.profile_id: (r.status, r.reason) for r in rows}


def outbox_for(db: Any, account_id: str) -> dict[str, Any]:
    """profile id -> outbound message row of the account (every send)."""
    from sqlalchemy import select

    from menura.store.delivery_tables import outbound_messages as t

    with db.read() as conn:
        rows = conn.execute(select(t).where(t.c.account_id == account_id))
        return {r.profile_id: r for r in rows}
