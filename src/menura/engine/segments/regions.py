"""Which `location.country` values put a profile in a region: ISO 3166 alpha-2 and alpha-3 codes
and English names, lower-case. The EU is its 27 member states; the UK is not in it (Klaviyo's
help center: the EU condition "does not include people located in the UK")."""

from __future__ import annotations

_EU = {
    "at": ("aut", "austria"), "be": ("bel", "belgium"), "bg": ("bgr", "bulgaria"), "hr": ("hrv", "croatia"),
    "cy": ("cyp", "cyprus"), "cz": ("cze", "czechia", "czech republic"), "dk": ("dnk", "denmark"),
    "ee": ("est", "estonia"), "fi": ("fin", "finland"), "fr": ("fra", "france"), "de": ("deu", "germany"),
    "gr": ("grc", "greece"), "hu": ("hun", "hungary"), "ie": ("irl", "ireland"), "it": ("ita", "italy"),
    "lv": ("lva", "latvia"), "lt": ("ltu", "lithuania"), "lu": ("lux", "luxembourg"), "mt": ("mlt", "malta"),
    "nl": ("nld", "netherlands", "the netherlands"), "pl": ("pol", "poland"), "pt": ("prt", "portugal"),
    "ro": ("rou", "romania"), "sk": ("svk", "slovakia"), "si": ("svn", "slovenia"), "es": ("esp", "spain"),
    "se": ("swe", "sweden"),
}

NAMES: dict[str, tuple[str, ...]] = {
    "european_union": tuple(sorted({code for code in _EU} | {name for names in _EU.values() for name in names})),
    "united_states": ("united states", "united states of america", "us", "usa"),
}
