"""CSS inlining for email clients, done at send time (css-inline, a maintained Rust library).
Templates are stored and previewed as written; only outgoing messages are inlined."""

from __future__ import annotations

import css_inline

# Remote stylesheets are never fetched: sending must not depend on (or leak to) other hosts.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True)


def inline_css(html: str) -> str:
    return _INLINER.inline(html)
