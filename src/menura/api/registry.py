"""Every category module, in one list: adding a category is adding it here."""

from __future__ import annotations

from menura.api import (
    accounts,
    admin,
    campaign_sms_pages,
    campaigns,
    client_events,
    client_profiles,
    client_subscriptions,
    data_privacy,
    delivery_webhooks,
    events,
    images,
    lists,
    metrics,
    outbox_pages,
    profile_jobs,
    profiles,
    reporting_campaigns,
    reporting_segments,
    segments,
    subscription_pages,
    tags,
    templates,
    tracking_pages,
    tracking_settings,
    web_feeds,
)
from menura.api.operation import Category, Operation

CATEGORIES: list[Category] = [accounts.api, tags.api, admin.api]
CATEGORIES += [templates.api, images.api, images.public, web_feeds.api]
CATEGORIES += [events.api, metrics.api, client_events.api]
CATEGORIES += [lists.api, profile_jobs.api, client_subscriptions.api, subscription_pages.api]
CATEGORIES += [profiles.api, data_privacy.api, client_profiles.api]
CATEGORIES += [segments.api, reporting_segments.api]
CATEGORIES += [tracking_settings.api, tracking_pages.api, campaign_sms_pages.api, delivery_webhooks.api,
               outbox_pages.api]
CATEGORIES += [campaigns.api, reporting_campaigns.api]


def all_operations() -> list[Operation]:
    return [op for category in CATEGORIES for op in category.operations]
