"""Postal-code distances from an offline dataset (the `countrystatecity-postal-codes` package,
GeoNames-derived, ODbL), so no request ever leaves the machine.

Klaviyo offers distance conditions for the US, EU, Australia, New Zealand and Canada (help center,
"Segment conditions reference"). Here a country is supported when it is one of those and the
dataset holds coordinates for its codes: US (ZIP), CA (forward sortation area: the first three
characters), AU, NZ, and the EU countries BE, DK, GR, MT, PL, SI. Anything else is a 400.

A profile's code is its `location.zip`, compared after removing spaces and upper-casing (US: its
first five characters, CA: its first three). A profile whose location names another country is
never within a distance of this one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from countrystatecity_postal_codes.loaders import DataLoader

EARTH_RADIUS_KM = 6371.0088
KM_PER_MILE = 1.609344
KEY_LENGTH = {"US": 5, "CA": 3}
COUNTRY_NAMES = {
    "US": ("us", "usa", "united states", "united states of america"),
    "CA": ("ca", "can", "canada"),
    "AU": ("au", "aus", "australia"),
    "NZ": ("nz", "nzl", "new zealand"),
    "BE": ("be", "bel", "belgium"),
    "DK": ("dk", "dnk", "denmark"),
    "GR": ("gr", "grc", "greece"),
    "MT": ("mt", "mlt", "malta"),
    "PL": ("pl", "pol", "poland"),
    "SI": ("si", "svn", "slovenia"),
}
SUPPORTED = tuple(sorted(COUNTRY_NAMES))


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float


def normalize(country: str, code: str) -> str:
    """The key a postal code is compared by; the SQL compiler builds the same expression."""
    key = code.replace(" ", "").upper()
    length = KEY_LENGTH.get(country)
    return key[:length] if length else key


@lru_cache(maxsize=16)
def places(country: str) -> dict[str, Place]:
    """Normalized code -> coordinates (the first entry wins when a code repeats)."""
    out: dict[str, Place] = {}
    for entry in DataLoader.load_postcodes(country):
        lat, lon = entry.get("latitude"), entry.get("longitude")
        if lat is None or lon is None:
            continue
        out.setdefault(normalize(country, str(entry["code"])), Place(float(lat), float(lon)))
    return out


def distance_km(a: Place, b: Place) -> float:
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi, dlmb = phi2 - phi1, math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class PostalError(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field  # country_code | postal_code


def center(country: str, postal_code: str) -> Place:
    if country not in COUNTRY_NAMES:
        raise PostalError(f"Postal code distance is not available for the country '{country}'; supported "
                          f"countries: {', '.join(SUPPORTED)}.", "country_code")
    place = places(country).get(normalize(country, postal_code))
    if place is None:
        raise PostalError(f"'{postal_code}' is not a known postal code of {country}.", "postal_code")
    return place


@lru_cache(maxsize=256)
def codes_matching(country: str, postal_code: str, unit: str, operator: str, value: float) -> tuple[str, ...]:
    """Every code of the country whose distance to the given one passes `operator value`."""
    origin = center(country, postal_code)
    limit_km = value * KM_PER_MILE if unit == "miles" else value
    out = []
    for key, place in places(country).items():
        d = distance_km(origin, place)
        if (d < limit_km) if operator == "less-than" else (d > limit_km):
            out.append(key)
    return tuple(sorted(out))
