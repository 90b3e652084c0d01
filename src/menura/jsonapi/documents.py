"""Resource objects and top-level documents in Klaviyo's JSON:API shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    """How one Klaviyo resource type appears on the wire."""

    type: str  # "tag"
    path: str  # collection segment of its URL: "tags"
    relationships: tuple[str, ...] = ()  # relationship names always shown with links


class LinkBuilder:
    """Absolute URLs from the request's own scheme and host, so followed links stay on this server."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def resource(self, rtype: ResourceType, rid: str) -> str:
        return f"{self.base}/api/{rtype.path}/{rid}/"

    def relationship(self, rtype: ResourceType, rid: str, name: str) -> dict[str, str]:
        return {
            "self": f"{self.base}/api/{rtype.path}/{rid}/relationships/{name}/",
            "related": f"{self.base}/api/{rtype.path}/{rid}/{name}/",
        }


def pick_fields(attributes: Mapping[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    """Apply a sparse fieldset; dotted names select nested keys (`subscriptions.email.marketing`)."""
    if fields is None:
        return dict(attributes)
    out: dict[str, Any] = {}
    for name in fields:
        parts = name.split(".")
        src: Any = attributes
        for part in parts:
            if not isinstance(src, Mapping) or part not in src:
                src = _MISSING
                break
            src = src[part]
        if src is _MISSING:
            continue
        dst = out
        for part in parts[:-1]:
            nxt = dst.get(part)
            if not isinstance(nxt, dict):
                nxt = dst[part] = {}
            dst = nxt
        dst[parts[-1]] = src
    return out


_MISSING = object()


def identifier(rtype: str, rid: str) -> dict[str, str]:
    return {"type": rtype, "id": rid}


def resource_object(
    rtype: ResourceType,
    rid: str,
    attributes: Mapping[str, Any],
    links: LinkBuilder,
    *,
    fields: Sequence[str] | None = None,
    relationship_data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One resource object. `relationship_data` maps a relationship name to its linkage
    (an identifier, a list of identifiers, or None) when it was requested through `include`."""
    obj: dict[str, Any] = {"type": rtype.type, "id": rid, "attributes": pick_fields(attributes, fields)}
    if rtype.relationships:
        rels: dict[str, Any] = {}
        for name in rtype.relationships:
            rel: dict[str, Any] = {}
            if relationship_data is not None and name in relationship_data:
                rel["data"] = relationship_data[name]
            rel["links"] = links.relationship(rtype, rid, name)
            rels[name] = rel
        obj["relationships"] = rels
    obj["links"] = {"self": links.resource(rtype, rid)}
    return obj


class Included:
    """Collects included resources once each, in first-seen order."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, resource: dict[str, Any]) -> None:
        self._items.setdefault((resource["type"], resource["id"]), resource)

    def extend(self, resources: Iterable[dict[str, Any]]) -> None:
        for resource in resources:
            self.add(resource)

    def as_list(self) -> list[dict[str, Any]]:
        return list(self._items.values())


def single_document(data: dict[str, Any] | None, included: Included | None = None,
                    links: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"data": data}
    if links:
        doc["links"] = links
    if included is not None:
        doc["included"] = included.as_list()
    return doc


def collection_document(data: list[dict[str, Any]], links: dict[str, str],
                        included: Included | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"data": data, "links": links}
    if included is not None:
        doc["included"] = included.as_list()
    return doc
