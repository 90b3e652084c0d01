"""The campaign send engine driven directly (worker + a controlled clock), on SQLite and PostgreSQL:
send strategies (immediate, static, local time zone, throttled, smart send time), audiences and
consent, smart sending, cancel and unsubscribe mid-send, a relay that defers everything, and a
crash that leaves a batch in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from menura.clock import SystemClock
from menura.delivery.sending import DeliveryResult
from menura.domain import accounts, consent
from menura.domain import campaign_jobs as jobs
from menura.domain.events import NewEvent, record_events
from menura.engine.campaigns import dispatcher
from menura.store import campaigns as store
from menura.worker import Worker
from tests.e2e import campaign_fixtures as cf
from tests.engine_fixtures import ControlledClock, scratch_db

T0 = datetime(2031, 3, 10, 6, 0, tzinfo=UTC)  # a Monday, 06:00 UTC
db = scratch_db  # the fixture, on each backend


@pytest.fixture
def clock() -> ControlledClock:
    return ControlledClock(T0)


@pytest.fixture
def account_id(db) -> str:
    return accounts.create_account(db, T0, name="Engine shop").account_id


def run(db, clock: ControlledClock) -> None:
    Worker(db, clock, lease_seconds=60, lease_clock=SystemClock(), kinds=[jobs.SEND_KIND]).run_once(limit=1000)


def send(db, clock: ControlledClock, account_id: str, campaign_id: str, batch_size: int = 3) -> None:
    jobs.send_campaign(db, account_id, campaign_id, clock.now(), batch_size=batch_size)


def statuses(db, account_id: str, campaign_id: str) -> tuple[str, str]:
    with db.read() as conn:
        campaign = store.get_campaign(conn, account_id, campaign_id)
        job = store.get_send_job(conn, account_id, campaign_id)
    return campaign.status, job.status


def sent_ids(db, message_id: str) -> set[str]:
    return {pid for pid, (status, _) in cf.ledger(db, message_id).items() if status == "sent"}


def test_immediate_send_reaches_exactly_the_eligible_audience(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [
        {"email": "sub@example.com", "first_name": "Sub", "email_consent": consent.SUBSCRIBED},
        {"email": "never@example.com", "first_name": "Never"},  # implicit consent: receives email
        {"email": "unsub@example.com", "email_consent": consent.UNSUBSCRIBED},
        {"email": "bounced@example.com", "email_suppression_reason": consent.HARD_BOUNCE},
        {"phone_number": "+15005550006"},  # no address
        {"email": "excluded@example.com"},
        {"email": "listsupp@example.com"},
        {"email": "both@example.com"},
    ])
    sub, never, unsub, bounced, no_email, excluded, list_suppressed, both = people
    main = cf.seed_list(db, account_id, T0, people, "Main")
    other = cf.seed_list(db, account_id, T0, [both], "Other")
    out = cf.seed_list(db, account_id, T0, [excluded], "Out")
    with db.write() as conn:
        for pid in (list_suppressed, both):
            consent.add_list_suppression(conn, account_id=account_id, profile_id=pid, list_id=main,
                                         reason="UNSUBSCRIBE", now=T0)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [main, other], excluded=[out])
    send(db, clock, account_id, campaign_id)
    assert statuses(db, account_id, campaign_id) == ("Sending", "queued")
    run(db, clock)
    # `both` is suppressed from Main but still reached through Other.
    assert sent_ids(db, message_id) == {sub, never, both}
    assert statuses(db, account_id, campaign_id) == ("Sent", "complete")
    outbox = cf.outbox_for(db, account_id)
    assert set(outbox) == {sub, never, both}
    assert outbox[sub].subject == "Hi Sub" and outbox[sub].status == "captured"
    assert outbox[sub].attribution["$campaign"] == campaign_id
    assert outbox[sub].send_key == f"campaign:{message_id}:{sub}"
    with db.read() as conn:
        job = store.get_send_job(conn, account_id, campaign_id)
    assert (job.recipients, job.sent) == (3, 3)
    assert job.skipped == 4  # unsubscribed, bounced, no address, list-suppressed (excluded: not a candidate)
    assert unsub not in cf.ledger(db, message_id) and no_email not in cf.ledger(db, message_id)
    assert bounced not in outbox and excluded not in outbox and list_suppressed not in outbox


def test_static_send_waits_for_its_time(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [{"email": f"s{i}@example.com"} for i in range(4)])
    list_id = cf.seed_list(db, account_id, T0, people)
    at = T0 + timedelta(days=2)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id],
                                               strategy={"method": "static", "datetime": at.isoformat()})
    send(db, clock, account_id, campaign_id)
    assert statuses(db, account_id, campaign_id) == ("Scheduled", "queued")
    clock.current = at - timedelta(seconds=1)
    run(db, clock)
    assert cf.ledger(db, message_id) == {}
    clock.current = at
    run(db, clock)
    assert sent_ids(db, message_id) == set(people)
    assert statuses(db, account_id, campaign_id) == ("Sent", "complete")


def test_local_time_zone_sends_at_each_recipients_wall_clock_time(db, clock, account_id):
    zones = ["Asia/Tokyo", "Europe/Paris", "America/New_York", None, "Pacific/Honolulu"]
    people = cf.seed_profiles(db, account_id, T0, [
        {"email": f"z{i}@example.com", "location": {"timezone": z} if z else None} for i, z in enumerate(zones)])
    tokyo, paris, new_york, no_zone, honolulu = people
    list_id = cf.seed_list(db, account_id, T0, people)
    # 09:00 wall-clock time on March 10th; at planning (06:00 UTC) Tokyo (15:00) is already past it.
    strategy = {"method": "static", "datetime": "2031-03-10T09:00:00+00:00",
                "options": {"is_local": True, "send_past_recipients_immediately": False}}
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id], strategy=strategy)
    send(db, clock, account_id, campaign_id)
    run(db, clock)
    ledger = cf.ledger(db, message_id)
    assert tokyo not in ledger  # its local 09:00 had passed and past recipients are not sent to
    assert sent_ids(db, message_id) == set()
    clock.current = datetime(2031, 3, 10, 8, 0, tzinfo=UTC)  # 09:00 in Paris (UTC+1)
    run(db, clock)
    assert sent_ids(db, message_id) == {paris}
    clock.current = datetime(2031, 3, 10, 9, 0, tzinfo=UTC)  # the account's zone (UTC) for no zone
    run(db, clock)
    assert sent_ids(db, message_id) == {paris, no_zone}
    clock.current = datetime(2031, 3, 10, 13, 0, tzinfo=UTC)  # New York is on EDT (UTC-4) from March 9th
    run(db, clock)
    assert sent_ids(db, message_id) == {paris, no_zone, new_york}
    assert statuses(db, account_id, campaign_id)[0] == "Sending"
    clock.current = datetime(2031, 3, 10, 19, 0, tzinfo=UTC)  # Honolulu (UTC-10)
    run(db, clock)
    assert sent_ids(db, message_id) == {paris, no_zone, new_york, honolulu}
    assert statuses(db, account_id, campaign_id) == ("Sent", "complete")


def test_local_sends_past_recipients_immediately_when_asked(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [{"email": "t@example.com", "location": {"timezone": "Asia/Tokyo"}}])
    list_id = cf.seed_list(db, account_id, T0, people)
    strategy = {"method": "static", "datetime": "2031-03-10T09:00:00+00:00",
                "options": {"is_local": True, "send_past_recipients_immediately": True}}
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id], strategy=strategy)
    send(db, clock, account_id, campaign_id)
    run(db, clock)
    assert sent_ids(db, message_id) == set(people)


def test_throttled_send_goes_out_in_hourly_waves(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [{"email": f"w{i}@example.com"} for i in range(8)])
    list_id = cf.seed_list(db, account_id, T0, people)
    start = T0 + timedelta(hours=1)
    strategy = {"method": "throttled", "datetime": start.isoformat(), "throttle_percentage": 25}
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id], strategy=strategy)
    send(db, clock, account_id, campaign_id)
    for hour, expected in enumerate((2, 4, 6, 8)):
        clock.current = start + timedelta(hours=hour, minutes=1)
        run(db, clock)
        assert len(sent_ids(db, message_id)) == expected, hour
    assert statuses(db, account_id, campaign_id) == ("Sent", "complete")


def _opens(account_id: str, profile_id: str, hours: list[int]) -> list[NewEvent]:
    return [NewEvent(profile_id, "Opened Email", {}, datetime(2031, 2, 1 + i, h, 30, tzinfo=UTC),
                     unique_id=f"o{i}{h}") for i, h in enumerate(hours)]


def test_smart_send_time_uses_each_profiles_best_hour(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [
        {"email": "evening@example.com"}, {"email": "new@example.com"},
        {"email": "paris@example.com", "location": {"timezone": "Europe/Paris"}}])
    evening, new, paris = people
    with db.write() as conn:
        record_events(conn, account_id, [*_opens(account_id, evening, [18, 18, 18, 18, 9]),
                                         *_opens(account_id, paris, [13, 13, 13])], T0)
    list_id = cf.seed_list(db, account_id, T0, people)
    strategy = {"method": "smart_send_time", "date": "2031-03-11"}
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id], strategy=strategy)
    send(db, clock, account_id, campaign_id)
    assert statuses(db, account_id, campaign_id)[0] == "Scheduled"
    with db.read() as conn:
        job = store.get_send_job(conn, account_id, campaign_id)
    # The day begins first at UTC+14: the job starts planning then.
    clock.current = datetime(2031, 3, 10, 10, 0, tzinfo=UTC)
    run(db, clock)
    with db.read() as conn:
        due = {r.profile_id: r.due_at for r in store.recipients_in_status(conn, message_id, "pending", 10)}
    assert job.status == "queued"
    assert due[evening] == datetime(2031, 3, 11, 18, 0, tzinfo=UTC)
    assert due[paris] == datetime(2031, 3, 11, 13, 0, tzinfo=UTC)  # opened at 14:xx Paris time (UTC+1)
    # No history: the account's default, the hour its audience engages most (18:00, account zone UTC).
    assert due[new] == datetime(2031, 3, 11, 18, 0, tzinfo=UTC)
    clock.current = datetime(2031, 3, 11, 13, 0, tzinfo=UTC)
    run(db, clock)
    assert sent_ids(db, message_id) == {paris}
    clock.current = datetime(2031, 3, 11, 18, 0, tzinfo=UTC)
    run(db, clock)
    assert sent_ids(db, message_id) == set(people)


def test_smart_sending_skips_recently_messaged_profiles(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [{"email": f"r{i}@example.com"} for i in range(3)])
    first_list = cf.seed_list(db, account_id, T0, people[:1], "First")
    everyone = cf.seed_list(db, account_id, T0, people, "Everyone")
    first, _ = cf.seed_campaign(db, account_id, T0, [first_list], name="First")
    send(db, clock, account_id, first)
    run(db, clock)
    clock.current = T0 + timedelta(hours=2)
    second, second_message = cf.seed_campaign(db, account_id, clock.now(), [everyone], smart_sending=True,
                                              name="Second")
    send(db, clock, account_id, second)
    run(db, clock)
    assert cf.ledger(db, second_message)[people[0]] == ("skipped", "smart_sending")
    assert sent_ids(db, second_message) == set(people[1:])
    # After the 16-hour window, or with smart sending off, the profile receives campaigns again.
    clock.current = T0 + timedelta(hours=17)
    third, third_message = cf.seed_campaign(db, account_id, clock.now(), [everyone], smart_sending=True,
                                            name="Third")
    send(db, clock, account_id, third)
    run(db, clock)
    assert people[0] in sent_ids(db, third_message)


def test_cancel_mid_send_stops_after_the_current_batch(db, clock, account_id, monkeypatch):
    people = cf.seed_profiles(db, account_id, T0, [{"email": f"c{i}@example.com"} for i in range(12)])
    list_id = cf.seed_list(db, account_id, T0, people)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id])
    real = dispatcher.send_emails
    batches: list[int] = []

    def cancelling(db_, jobs_, **kwargs):
        batches.append(len(jobs_))
        results = real(db_, jobs_, **kwargs)
        if len(batches) == 1:
            jobs.change_send_job(db, account_id, campaign_id, "cancel", clock.now())
        return results

    monkeypatch.setattr(dispatcher, "send_emails", cancelling)
    monkeypatch.setattr(dispatcher, "HAND_OVER_PARTS", 1)  # one delivery call per batch
    send(db, clock, account_id, campaign_id, batch_size=4)
    run(db, clock)
    assert batches == [4]
    ledger = cf.ledger(db, message_id)
    assert sum(1 for status, _ in ledger.values() if status == "sent") == 4
    assert all(status in ("sent", "cancelled") for status, _ in ledger.values())
    assert len(cf.outbox_for(db, account_id)) == 4
    assert statuses(db, account_id, campaign_id) == ("Cancelled", "cancelled")


def test_a_recipient_who_unsubscribes_mid_send_gets_nothing_more(db, clock, account_id, monkeypatch):
    people = sorted(cf.seed_profiles(db, account_id, T0, [{"email": f"u{i}@example.com"} for i in range(9)]))
    list_id = cf.seed_list(db, account_id, T0, people)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id])
    in_flight, later = people[4], people[8]  # in the second batch, and in the third
    real = dispatcher.send_emails
    calls: list[int] = []

    def unsubscribing(db_, jobs_, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second batch was checked already; it is being handed over now
            with db.write() as conn:
                for pid in (in_flight, later):
                    consent.set_email_marketing(conn, account_id=account_id, profile_id=pid,
                                                consent=consent.UNSUBSCRIBED, now=clock.now())
        return real(db_, jobs_, **kwargs)

    monkeypatch.setattr(dispatcher, "send_emails", unsubscribing)
    monkeypatch.setattr(dispatcher, "HAND_OVER_PARTS", 1)  # one delivery call per batch
    send(db, clock, account_id, campaign_id, batch_size=3)
    run(db, clock)
    ledger = cf.ledger(db, message_id)
    assert ledger[in_flight] == ("skipped", "unsubscribed")  # delivery's last-moment check
    # Caught wherever its batch was when the change landed: at planning, at rendering, or by delivery.
    assert ledger.get(later, ("never planned", None))[0] in ("never planned", "skipped")
    assert sent_ids(db, message_id) == set(people) - {in_flight, later}
    outbox = cf.outbox_for(db, account_id)
    assert outbox[in_flight].status == "skipped"
    assert later not in outbox or outbox[later].status == "skipped"


def test_a_relay_that_defers_everything_pauses_the_job_with_backoff(db, clock, account_id, monkeypatch):
    people = cf.seed_profiles(db, account_id, T0, [{"email": f"d{i}@example.com"} for i in range(6)])
    list_id = cf.seed_list(db, account_id, T0, people)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id])
    real = dispatcher.send_emails
    down = {"on": True}

    def flaky(db_, jobs_, **kwargs):
        if down["on"]:
            return [DeliveryResult(f"d{i}", "deferred", detail="relay down") for i, _ in enumerate(jobs_)]
        return real(db_, jobs_, **kwargs)

    monkeypatch.setattr(dispatcher, "send_emails", flaky)
    monkeypatch.setattr(dispatcher, "HAND_OVER_PARTS", 1)
    send(db, clock, account_id, campaign_id, batch_size=3)
    run(db, clock)
    # One batch was handed over (deferred: delivery retries it), then the job paused.
    assert len(sent_ids(db, message_id)) == 3, cf.ledger(db, message_id)
    # The next batch, claimed while the first was being handed over, went back to pending.
    assert sorted(status for status, _ in cf.ledger(db, message_id).values()) == ["pending"] * 3 + ["sent"] * 3
    assert statuses(db, account_id, campaign_id) == ("Sending", "processing")
    clock.current = T0 + timedelta(seconds=5)
    run(db, clock)
    assert len(sent_ids(db, message_id)) == 3  # the pause (30 s by default) has not elapsed
    down["on"] = False
    clock.current = T0 + timedelta(minutes=1)
    run(db, clock)
    assert sent_ids(db, message_id) == set(people)
    assert statuses(db, account_id, campaign_id) == ("Sent", "complete")


def test_a_batch_left_in_flight_is_reported_and_not_delivered_twice(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [{"email": f"f{i}@example.com"} for i in range(5)])
    list_id = cf.seed_list(db, account_id, T0, people)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id])
    send(db, clock, account_id, campaign_id, batch_size=10)
    run(db, clock)
    # Pretend the worker died after delivery recorded the batch but before the ledger did.
    with db.write() as conn:
        store.set_recipient_status(conn, message_id, people, "sending")
        job = store.get_send_job(conn, account_id, campaign_id)
        store.update_send_job(conn, campaign_id, {"status": "processing", "sent": 0})
        from menura.store import work

        work.enqueue(conn, kind=jobs.SEND_KIND, payload={"campaign_id": campaign_id, "token": job.plan["token"],
                                                         "batch_size": 10}, now=T0, account_id=account_id)
    run(db, clock)
    with db.read() as conn:
        job = store.get_send_job(conn, account_id, campaign_id)
    assert job.status == "complete"
    assert job.in_flight_reports[0]["count"] == 5
    assert sent_ids(db, message_id) == set(people)
    from sqlalchemy import func, select

    from menura.store.delivery_tables import outbound_messages

    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(outbound_messages)).scalar() == 5


def test_sms_campaign_renders_with_options_and_needs_explicit_consent(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [
        {"phone_number": "+15005550001", "first_name": "Ann", "sms_consent": consent.SUBSCRIBED},
        {"phone_number": "+15005550002", "first_name": "Bob"},
        {"email": "mail-only@example.com", "sms_consent": consent.SUBSCRIBED}])
    list_id = cf.seed_list(db, account_id, T0, people)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id], channel="sms")
    send(db, clock, account_id, campaign_id)
    run(db, clock)
    assert sent_ids(db, message_id) == {people[0]}
    sms = cf.outbox_for(db, account_id)[people[0]]
    assert sms.channel == "sms" and sms.to_address == "+15005550001"
    import json

    from menura.delivery.sending import decompress

    assert json.loads(decompress(sms.raw_z))["body"] == "Engine shop: Hi Ann"


def test_reverted_send_does_not_run_its_old_work(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [{"email": "rv@example.com"}])
    list_id = cf.seed_list(db, account_id, T0, people)
    at = T0 + timedelta(hours=3)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id],
                                               strategy={"method": "static", "datetime": at.isoformat()})
    send(db, clock, account_id, campaign_id)
    jobs.change_send_job(db, account_id, campaign_id, "revert", clock.now())
    later = T0 + timedelta(hours=6)
    from menura.domain import campaigns as rules

    rules.update_campaign(db, account_id, campaign_id, T0, rules.CampaignChange(
        send_strategy={"method": "static", "datetime": later.isoformat()}), rules.TrackingDefaults())
    send(db, clock, account_id, campaign_id)
    clock.current = at
    run(db, clock)
    assert cf.ledger(db, message_id) == {}  # the reverted schedule's item found nothing to do
    clock.current = later
    run(db, clock)
    assert sent_ids(db, message_id) == set(people)


def test_shards_deliver_disjoint_parts_and_the_last_one_completes_the_job(db, clock, account_id):
    people = cf.seed_profiles(db, account_id, T0, [{"email": f"sh{i}@example.com"} for i in range(40)])
    list_id = cf.seed_list(db, account_id, T0, people)
    campaign_id, message_id = cf.seed_campaign(db, account_id, T0, [list_id])
    jobs.send_campaign(db, account_id, campaign_id, clock.now(), batch_size=7, shards=3)
    for _ in range(20):
        run(db, clock)
        clock.current += timedelta(seconds=1)  # the delivering shards come back while planning goes on
        if statuses(db, account_id, campaign_id)[1] == "complete":
            break
    assert statuses(db, account_id, campaign_id) == ("Sent", "complete")
    assert sent_ids(db, message_id) == set(people)
    assert len(cf.outbox_for(db, account_id)) == 40
    with db.read() as conn:
        job = store.get_send_job(conn, account_id, campaign_id)
    assert job.plan["done_shards"] == [0, 1, 2] and job.sent == 40
    # Every profile id falls in exactly one shard's part.
    parts = [set(dispatcher.partition(k, 3)) for k in range(3)]
    assert all(sum(p[-1] in part for part in parts) == 1 for p in people)
