"""Public pages of SMS render options (signed codes, no key): the short tracked link of a message's
link (`shorten_links`) and the sender's company information page (`add_info_link`). Not Klaviyo
operations; they join the tracking pages."""

from __future__ import annotations

import html

from menura.api.operation import Category, Ctx, Reply
from menura.api.tracking_pages import NO_CACHE, page
from menura.delivery import outcomes, sms_links
from menura.delivery.context import context_for_services
from menura.delivery.message import add_query_params
from menura.domain.identity import kx_token

api = Category("Tracking pages")


@api.get("/t/s/{token}", "tracking_short_link", auth="none")
def short_link(ctx: Ctx) -> Reply:
    """Short link of an SMS: records "Clicked SMS" and redirects to the link as it was in the message."""
    signer = context_for_services(ctx.services).signer
    with ctx.db.read() as conn:
        found = sms_links.resolve_short_link(conn, signer, ctx.path_params["token"])
    if found is None:
        return page(404, "Link not valid", "<p>This link is not valid or has expired.</p>")
    row, url = found
    with ctx.db.write() as conn:
        outcomes.record_click(conn, row, url, ctx.now())
    if row.profile_id:
        url = add_query_params(url, [("_kx", kx_token(ctx.services.secret, row.account_id, row.profile_id))])
    return Reply(302, headers={"Location": url, **NO_CACHE})


@api.get("/t/i/{token}", "tracking_company_info", auth="none")
def company_info(ctx: Ctx) -> Reply:
    """The sender's contact information (an SMS's company info link; not a click on the message)."""
    signer = context_for_services(ctx.services).signer
    with ctx.db.read() as conn:
        info = sms_links.organization_info(conn, signer, ctx.path_params["token"], ctx.now())
    if info is None:
        return page(404, "Link not valid", "<p>This link is not valid or has expired.</p>")
    rows = [("Address", info.get("full_address")), ("Email", info.get("email")), ("Website", info.get("url"))]
    body = "".join(f"<p><strong>{label}:</strong> {html.escape(str(value))}</p>" for label, value in rows if value)
    return page(200, str(info.get("name") or "Company information"), body or "<p>No contact information.</p>")
