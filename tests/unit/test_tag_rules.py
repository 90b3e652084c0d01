"""The rules of menura.domain.tags, straight against SQLite and PostgreSQL (no HTTP)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest

from menura.domain import accounts
from menura.domain import tags as rules
from menura.jsonapi.errors import ApiError
from menura.store import tags as store
from tests import work_fixtures as wf

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=wf.BACKENDS)
def db(request, tmp_path):
    with wf.open_test_database(request.param, tmp_path) as scratch:
        yield scratch.db


@pytest.fixture
def account_id(db) -> str:
    return accounts.create_account(db, NOW, name="Tag shop").account_id


@pytest.fixture
def lists_exist(monkeypatch):
    """Lists L0..L9 exist in every account."""
    known = {f"L{i}" for i in range(10)}
    monkeypatch.setitem(rules.RESOURCE_EXISTS, "list", lambda _conn, _account, ids: set(ids) & known)


def raises(status: int, fn, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as err:
        fn(*args, **kwargs)
    assert err.value.status == status, err.value.detail
    return err.value


def groups(db, account_id: str) -> list:
    with db.read() as conn:
        return list(conn.execute(store.group_select(account_id)).all())


def list_ids(db, account_id: str, tag_id: str) -> list[str]:
    with db.read() as conn:
        return store.assigned_ids(conn, account_id, tag_id, "list")


# --------------------------------------------------------------------------- default group


def test_default_group_is_created_lazily_and_once(db, account_id):
    assert groups(db, account_id) == []
    rules.ensure_default_group(db, account_id, NOW)
    rules.ensure_default_group(db, account_id, NOW)
    [default] = groups(db, account_id)
    assert (default.name, default.default, default.exclusive) == ("Default", True, False)
    tag = rules.create_tag(db, account_id, NOW, name="t", group_id=None)
    assert tag.tag_group_id == default.id


def test_concurrent_first_use_makes_one_default_group(db, account_id):
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def first_use() -> None:
        try:
            barrier.wait()
            rules.ensure_default_group(db, account_id, NOW)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [g.default for g in groups(db, account_id)] == [True]


def test_default_group_takes_another_name_if_default_is_taken(db, account_id):
    # Not reachable through the API (every write creates the default first), but never a crash.
    with db.write() as conn:
        store.insert_group(conn, {"id": str(uuid.uuid4()), "account_id": account_id, "name": "Default",
                                  "exclusive": False, "default": False, "created": NOW})
        default = rules.default_group(conn, account_id, NOW)
    assert (default.name, default.default) == ("Default 2", True)


def test_default_group_cannot_be_deleted_but_others_take_their_tags(db, account_id, lists_exist):
    rules.ensure_default_group(db, account_id, NOW)
    default = next(g for g in groups(db, account_id) if g.default)
    raises(400, rules.delete_group, db, account_id, NOW, default.id)
    group = rules.create_group(db, account_id, NOW, name="G", exclusive=False)
    tag = rules.create_tag(db, account_id, NOW, name="t", group_id=group.id)
    rules.tag_resources(db, account_id, NOW, tag.id, "list", ["L1"])
    rules.delete_group(db, account_id, NOW, group.id)
    with db.read() as conn:
        assert store.get_tag(conn, account_id, tag.id) is None
        assert rules.tags_of(conn, account_id, "list", ["L1"]) == {}
    raises(404, rules.delete_group, db, account_id, NOW, group.id)


# --------------------------------------------------------------------------- names and limits


@pytest.mark.parametrize("name", ["", " \t", "x" * (rules.MAX_NAME_LENGTH + 1)])
def test_unusable_names(db, account_id, name):
    err = raises(400, rules.create_tag, db, account_id, NOW, name=name, group_id=None)
    assert err.pointer == "/data/attributes/name"
    raises(400, rules.create_group, db, account_id, NOW, name=name, exclusive=False)


def test_names_unique_per_group_and_account(db, account_id):
    group = rules.create_group(db, account_id, NOW, name="G", exclusive=False)
    raises(409, rules.create_group, db, account_id, NOW, name="G", exclusive=True)
    first = rules.create_tag(db, account_id, NOW, name="t", group_id=None)
    raises(409, rules.create_tag, db, account_id, NOW, name="t", group_id=None)
    rules.create_tag(db, account_id, NOW, name="t", group_id=group.id)
    other = rules.create_tag(db, account_id, NOW, name="u", group_id=None)
    raises(409, rules.rename_tag, db, account_id, NOW, other.id, "t")
    rules.rename_tag(db, account_id, NOW, first.id, "t")  # its own name
    raises(404, rules.rename_tag, db, account_id, NOW, str(uuid.uuid4()), "x")


def test_names_of_other_accounts_do_not_clash(db, account_id):
    other = accounts.create_account(db, NOW, name="Other").account_id
    rules.create_group(db, account_id, NOW, name="Same", exclusive=False)
    rules.create_group(db, other, NOW, name="Same", exclusive=False)
    rules.create_tag(db, account_id, NOW, name="same", group_id=None)
    rules.create_tag(db, other, NOW, name="same", group_id=None)


def test_tag_limit_counts_the_whole_account(db, account_id):
    group = rules.create_group(db, account_id, NOW, name="G", exclusive=False)
    with db.write() as conn:
        store.insert_tags(conn, [{"id": str(uuid.uuid4()), "account_id": account_id, "tag_group_id": group.id,
                                  "name": f"t{i}", "created": NOW} for i in range(rules.MAX_TAGS_PER_ACCOUNT)])
    err = raises(400, rules.create_tag, db, account_id, NOW, name="more", group_id=None)
    assert str(rules.MAX_TAGS_PER_ACCOUNT) in err.detail


def test_group_limit_includes_the_default_group(db, account_id):
    for i in range(rules.MAX_GROUPS_PER_ACCOUNT - 1):
        rules.create_group(db, account_id, NOW, name=f"g{i}", exclusive=False)
    assert len(groups(db, account_id)) == rules.MAX_GROUPS_PER_ACCOUNT
    raises(400, rules.create_group, db, account_id, NOW, name="more", exclusive=False)


def test_tag_in_unknown_group(db, account_id):
    err = raises(404, rules.create_tag, db, account_id, NOW, name="t", group_id="nope")
    assert err.pointer == "/data/relationships/tag-group/data/id"


# --------------------------------------------------------------------------- tagging


def test_checker_registry(db, account_id, monkeypatch):
    with pytest.raises(ValueError):
        rules.resource_checker("profile")
    # The registry is process-wide and other categories fill it: restore it afterwards.
    monkeypatch.setattr(rules, "RESOURCE_EXISTS", {})
    tag = rules.create_tag(db, account_id, NOW, name="t", group_id=None)
    raises(404, rules.tag_resources, db, account_id, NOW, tag.id, "list", ["L1"])
    seen: list[tuple[str, list[str]]] = []

    def lists(_conn, account, ids):
        seen.append((account, sorted(ids)))
        return {"L1"}

    assert rules.resource_checker("list")(lists) is lists
    rules.tag_resources(db, account_id, NOW, tag.id, "list", ["L1", "L1"])
    assert seen == [(account_id, ["L1"])]
    err = raises(404, rules.tag_resources, db, account_id, NOW, tag.id, "list", ["L1", "L2"])
    assert err.pointer == "/data/1/id"
    assert list_ids(db, account_id, tag.id) == ["L1"]


def test_per_resource_limit_and_exclusive_groups(db, account_id, lists_exist, monkeypatch):
    exclusive = rules.create_group(db, account_id, NOW, name="X", exclusive=True)
    x1 = rules.create_tag(db, account_id, NOW, name="x1", group_id=exclusive.id)
    x2 = rules.create_tag(db, account_id, NOW, name="x2", group_id=exclusive.id)
    rules.tag_resources(db, account_id, NOW, x1.id, "list", ["L1"])
    err = raises(400, rules.tag_resources, db, account_id, NOW, x2.id, "list", ["L2", "L1"])
    assert err.pointer == "/data/1/id" and "'x1'" in err.detail
    assert list_ids(db, account_id, x2.id) == []
    # Another resource type is another resource.
    monkeypatch.setitem(rules.RESOURCE_EXISTS, "segment", lambda _c, _a, ids: set(ids))
    rules.tag_resources(db, account_id, NOW, x2.id, "segment", ["L1"])

    plain = [rules.create_tag(db, account_id, NOW, name=f"p{i}", group_id=None).id
             for i in range(rules.MAX_TAGS_PER_RESOURCE - 1)]
    for tag_id in plain:
        rules.tag_resources(db, account_id, NOW, tag_id, "list", ["L1"])
    last = rules.create_tag(db, account_id, NOW, name="last", group_id=None)
    err = raises(400, rules.tag_resources, db, account_id, NOW, last.id, "list", ["L3", "L1"])
    assert err.pointer == "/data/1/id"
    rules.tag_resources(db, account_id, NOW, plain[0], "list", ["L1"])  # already there: no growth


def test_untag_and_forget(db, account_id, lists_exist):
    tag = rules.create_tag(db, account_id, NOW, name="t", group_id=None)
    other = rules.create_tag(db, account_id, NOW, name="u", group_id=None)
    rules.tag_resources(db, account_id, NOW, tag.id, "list", ["L1", "L2", "L3"])
    rules.tag_resources(db, account_id, NOW, other.id, "list", ["L1"])
    rules.untag_resources(db, account_id, NOW, tag.id, "list", ["L2", "L4"])
    assert list_ids(db, account_id, tag.id) == ["L1", "L3"]
    raises(404, rules.untag_resources, db, account_id, NOW, tag.id, "list", ["L1", "X"])
    with db.write() as conn:
        rules.forget_resources(conn, account_id, "list", ["L1"])
        remaining = rules.tags_of(conn, account_id, "list", ["L1", "L3"])
    assert {rid: [t.name for t in rows] for rid, rows in remaining.items()} == {"L3": ["t"]}
    assert list_ids(db, account_id, other.id) == []


def test_many_ids_in_one_request(db, account_id, monkeypatch):
    # More ids than one IN clause takes: the store splits them.
    many = [f"R{i}" for i in range(store.CHUNK * 2 + 7)]
    monkeypatch.setitem(rules.RESOURCE_EXISTS, "flow", lambda _c, _a, ids: set(ids))
    tag = rules.create_tag(db, account_id, NOW, name="wide", group_id=None)
    rules.tag_resources(db, account_id, NOW, tag.id, "flow", many)
    rules.tag_resources(db, account_id, NOW, tag.id, "flow", many)
    with db.read() as conn:
        assert len(store.assigned_ids(conn, account_id, tag.id, "flow")) == len(many)
    rules.untag_resources(db, account_id, NOW, tag.id, "flow", many)
    with db.read() as conn:
        assert store.assigned_ids(conn, account_id, tag.id, "flow") == []
