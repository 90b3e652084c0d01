"""Data Privacy category: a deletion request becomes a durable job (202); the worker removes every
matching profile with its events, list memberships and personal data (engine/data_privacy.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from menura.api.bodies import expect_type
from menura.api.operation import Category, Ctx, tier
from menura.api.strict_bodies import Envelope
from menura.domain import identity
from menura.domain import profiles as rules
from menura.jsonapi import errors
from menura.store import work

api = Category("Data Privacy")


class ProfileIdentifiers(msgspec.Struct, forbid_unknown_fields=True):
    email: str | None = None
    phone_number: str | None = None


class ProfileData(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: ProfileIdentifiers = msgspec.field(default_factory=ProfileIdentifiers)
    id: str | None = None


class DeletionAttributes(msgspec.Struct, forbid_unknown_fields=True):
    profile: Envelope[ProfileData]


class DeletionJob(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: DeletionAttributes


PROFILE_POINTER = "/data/attributes/profile/data"


def _identifier(data: ProfileData) -> dict[str, Any]:
    """Exactly one of id, email, phone_number (Klaviyo answers an error for several)."""
    given = {name: value for name, value in (("profile_id", data.id), ("email", data.attributes.email),
                                             ("phone_number", data.attributes.phone_number)) if value is not None}
    if len(given) != 1:
        raise errors.invalid("Exactly one of 'id', 'email' or 'phone_number' must identify the profile to delete.",
                             pointer=PROFILE_POINTER)
    if "email" in given:
        given["email"] = identity.normalize_email(given["email"], pointer=f"{PROFILE_POINTER}/attributes/email")
    if "phone_number" in given:
        given["phone_number"] = identity.normalize_phone(given["phone_number"],
                                                         pointer=f"{PROFILE_POINTER}/attributes/phone_number")
    return given


@api.post("/api/data-privacy-deletion-jobs", "request_profile_deletion", scopes=("data-privacy:write",),
          rate=tier(3, 60), success=202)
def request_profile_deletion(ctx: Ctx) -> None:
    """Request Profile Deletion: every profile matching the identifier is deleted, asynchronously."""
    job = ctx.body(Envelope[DeletionJob]).data
    expect_type(job.type, "data-privacy-deletion-job")
    profile = job.attributes.profile.data
    expect_type(profile.type, "profile", f"{PROFILE_POINTER}/type")
    payload = _identifier(profile)
    with ctx.db.write() as conn:
        work.enqueue(conn, kind=rules.DELETE_PROFILES_KIND, payload=payload, now=ctx.now(), account_id=ctx.account_id)
    ctx.services.work_signal.set()
