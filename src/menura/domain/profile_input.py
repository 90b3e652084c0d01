"""A request's profile identifiers and attributes, validated (400 with a pointer at the culprit) and
normalized: emails lower-cased, phone numbers in E.164."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from menura.domain import identity
from menura.jsonapi import errors

IDENTIFIER_FIELDS = ("email", "phone_number", "external_id", "anonymous_id")
TEXT_FIELDS = ("first_name", "last_name", "organization", "locale", "title", "image")
LOCATION_FIELDS = ("address1", "address2", "city", "country", "latitude", "longitude", "region", "zip",
                   "timezone", "ip")
ATTRIBUTE_FIELDS = frozenset((*IDENTIFIER_FIELDS, "_kx", *TEXT_FIELDS, "location", "properties"))
# Column sizes (see store/profile_tables.py): longer values are a 400, never a database error.
MAX_LENGTHS = {"first_name": 255, "last_name": 255, "organization": 255, "locale": 64, "title": 255,
               "image": 2048, "location": 255}


@dataclass(frozen=True)
class PropertyPatch:
    """`meta.patch_properties`: applied after `properties` are merged."""

    append: Mapping[str, list[Any]] = field(default_factory=dict)
    unappend: Mapping[str, list[Any]] = field(default_factory=dict)
    unset: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProfileInput:
    """Identifiers and attributes as they arrive in one request (None = not given, or null).

    `given` names the attributes present in the request, explicit nulls included; when empty (an
    input built in code) every non-None field counts as given and nothing is cleared.
    """

    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None
    anonymous_id: str | None = None
    kx: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organization: str | None = None
    locale: str | None = None
    title: str | None = None
    image: str | None = None
    location: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    id: str | None = None
    given: frozenset[str] = frozenset()
    patch: PropertyPatch | None = None
    add_emails: tuple[str, ...] = ()
    remove_emails: tuple[str, ...] = ()

    def has(self, name: str) -> bool:
        attr = "kx" if name == "_kx" else name
        return name in self.given or getattr(self, attr) is not None

    def cleared(self, name: str) -> bool:
        """Sent as an explicit null."""
        attr = "kx" if name == "_kx" else name
        return name in self.given and getattr(self, attr) is None

    def identifiers(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in IDENTIFIER_FIELDS if getattr(self, name) is not None}


def profile_input_from_attributes(attrs: dict[str, Any], pointer: str = "/data/attributes", *,
                                  meta: dict[str, Any] | None = None, meta_pointer: str = "/data/meta",
                                  profile_id: str | None = None, allowed: Collection[str] = ATTRIBUTE_FIELDS,
                                  ignore: Collection[str] = ()) -> ProfileInput:
    """Validate a request's profile attributes (400 with a pointer at the culprit) and normalize
    identifiers (email lower-cased, phone in E.164)."""
    if not isinstance(attrs, dict):
        raise errors.invalid("Expected an object of profile attributes.", pointer=pointer)
    values: dict[str, Any] = {}
    given: set[str] = set()
    for name, value in attrs.items():
        if name in ignore:
            continue
        where = f"{pointer}/{name}"
        if name not in allowed:
            raise errors.invalid(f"'{name}' is not a valid field for the resource 'profile'.", pointer=where)
        given.add(name)
        if value is None:
            continue
        if name == "location":
            values["location"] = _parse_location(value, where)
        elif name == "properties":
            if not isinstance(value, dict):
                raise errors.invalid("'properties' must be an object.", pointer=where)
            values["properties"] = value
        else:
            if not isinstance(value, str):
                raise errors.invalid(f"'{name}' must be a string.", pointer=where)
            values["kx" if name == "_kx" else name] = _parse_text(name, value, where)
    patch, add_emails, remove_emails = _parse_meta(meta, meta_pointer)
    return ProfileInput(**values, id=profile_id, given=frozenset(given), patch=patch,
                        add_emails=add_emails, remove_emails=remove_emails)


def _parse_text(name: str, value: str, where: str) -> str:
    if name == "email":
        return identity.normalize_email(value, pointer=where)
    if name == "phone_number":
        return identity.normalize_phone(value, pointer=where)
    if name in ("external_id", "anonymous_id", "_kx"):
        return identity.normalize_opaque(value, name, pointer=where)
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        raise errors.invalid(f"'{name}' must be at most {limit} characters.", pointer=where)
    return value


def _parse_location(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.invalid("'location' must be an object.", pointer=where)
    out: dict[str, Any] = {}
    for key, item in value.items():
        at = f"{where}/{key}"
        if key not in LOCATION_FIELDS:
            raise errors.invalid(f"'{key}' is not a valid field for 'location'.", pointer=at)
        if item is None:
            out[key] = None
        elif key in ("latitude", "longitude"):
            out[key] = _parse_coordinate(key, item, at)
        elif not isinstance(item, str):
            raise errors.invalid(f"'location.{key}' must be a string.", pointer=at)
        elif len(item) > MAX_LENGTHS["location"]:
            raise errors.invalid(f"'location.{key}' must be at most 255 characters.", pointer=at)
        else:
            out[key] = item
    return out


def _parse_coordinate(key: str, item: Any, at: str) -> float | str:
    if isinstance(item, bool) or not isinstance(item, int | float | str):
        raise errors.invalid(f"'location.{key}' must be a number or a string.", pointer=at)
    try:
        number = float(item)
    except ValueError:
        raise errors.invalid(f"'location.{key}' must be a number.", pointer=at) from None
    bound = 90 if key == "latitude" else 180
    if not -bound <= number <= bound:
        raise errors.invalid(f"'location.{key}' must be between -{bound} and {bound}.", pointer=at)
    return item if isinstance(item, str) else number


def _simple_values(value: Any, where: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        if item is None or isinstance(item, dict | list):
            at = f"{where}/{index}" if isinstance(value, list) else where
            raise errors.invalid("Only strings, numbers and booleans can be appended or unappended.", pointer=at)
    return list(items)


def _parse_meta(meta: Any, where: str) -> tuple[PropertyPatch | None, tuple[str, ...], tuple[str, ...]]:
    if meta is None:
        return None, (), ()
    if not isinstance(meta, dict):
        raise errors.invalid("'meta' must be an object.", pointer=where)
    for key in meta:
        if key not in ("patch_properties", "patch_identifiers"):
            raise errors.invalid(f"'{key}' is not a valid field for 'meta'.", pointer=f"{where}/{key}")
    patch = _parse_patch_properties(meta.get("patch_properties"), f"{where}/patch_properties")
    add, remove = _parse_patch_identifiers(meta.get("patch_identifiers"), f"{where}/patch_identifiers")
    return patch, add, remove


def _parse_patch_properties(raw: Any, where: str) -> PropertyPatch | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise errors.invalid("'patch_properties' must be an object.", pointer=where)
    append: dict[str, list[Any]] = {}
    unappend: dict[str, list[Any]] = {}
    for key in raw:
        if key not in ("append", "unappend", "unset"):
            raise errors.invalid(f"'{key}' is not a valid patch operation.", pointer=f"{where}/{key}")
    for op, target in (("append", append), ("unappend", unappend)):
        section = raw.get(op)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise errors.invalid(f"'{op}' must be an object of property names to values.", pointer=f"{where}/{op}")
        for name, value in section.items():
            target[name] = _simple_values(value, f"{where}/{op}/{name}")
    unset_raw = raw.get("unset")
    unset: tuple[str, ...] = ()
    if isinstance(unset_raw, str):
        unset = (unset_raw,)
    elif isinstance(unset_raw, list) and all(isinstance(item, str) for item in unset_raw):
        unset = tuple(unset_raw)
    elif unset_raw is not None:
        raise errors.invalid("'unset' must be a property name or a list of them.", pointer=f"{where}/unset")
    return PropertyPatch(append, unappend, unset)


def _parse_patch_identifiers(raw: Any, where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, dict):
        raise errors.invalid("'patch_identifiers' must be an object.", pointer=where)
    out: dict[str, tuple[str, ...]] = {"append": (), "unappend": ()}
    for op, section in raw.items():
        if op not in out:
            raise errors.invalid(f"'{op}' is not a valid patch operation.", pointer=f"{where}/{op}")
        if not isinstance(section, dict):
            raise errors.invalid(f"'{op}' must be an object.", pointer=f"{where}/{op}")
        for name, value in section.items():
            if name != "email":
                raise errors.invalid("Only 'email' can be patched as an identifier.", pointer=f"{where}/{op}/{name}")
            items = value if isinstance(value, list) else [value]
            emails = []
            for index, item in enumerate(items):
                at = f"{where}/{op}/email/{index}" if isinstance(value, list) else f"{where}/{op}/email"
                if not isinstance(item, str):
                    raise errors.invalid("Email addresses must be strings.", pointer=at)
                emails.append(identity.normalize_email(item, pointer=at))
            out[op] = tuple(dict.fromkeys(emails))
    return out["append"], out["unappend"]
