"""Worker side of data privacy deletion requests: delete every matching profile for good, with its
events and list memberships (through the profile delete hooks), in one transaction with the job's
completion, so a retried job never half-deletes."""

from __future__ import annotations

from menura.domain import profiles as rules
from menura.engine.event_ingest import drain_intake_log
from menura.store.work import WorkItem
from menura.worker import WorkContext, work_handler


@work_handler(rules.DELETE_PROFILES_KIND)
def delete_profiles(ctx: WorkContext, item: WorkItem) -> None:
    account_id = item.account_id
    assert account_id is not None
    payload = item.payload
    # Events accepted before the request but still in the intake log belong to the profile too.
    drain_intake_log(ctx.db, ctx.clock)
    with ctx.db.write() as conn:
        for profile_id in rules.profiles_to_delete(conn, account_id, profile_id=payload.get("profile_id"),
                                                   email=payload.get("email"),
                                                   phone_number=payload.get("phone_number")):
            rules.delete_profile_everywhere(conn, account_id, profile_id)
        ctx.complete(conn)
