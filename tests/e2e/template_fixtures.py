"""Shared bodies for the template tests."""

from __future__ import annotations

from typing import Any

HYBRID_HTML = (
    "<!DOCTYPE html>\r\n<html>\n<head>\n  <meta charset=\"utf-8\">\n  <title>Spring \u2603 sale</title>\n"
    "  <style>\n    .main { background: #ffffff; }\n  </style>\n</head>\n<body>\n"
    "  <table class=\"main\">\n    <tr>\n      <td class=\"wrapper\">Hi {{ first_name|default:'friend' }},</td>\n"
    "    </tr>\n    <tr>\n"
    "      <td align=\"center\" data-klaviyo-region=\"true\" data-klaviyo-region-width-pixels=\"600\">\n"
    "        <div class=\"klaviyo-block klaviyo-text-block\">Editable   copy &amp; more\t</div>\n"
    "      </td>\n    </tr>\n    <tr>\n"
    "      <td align=\"center\" data-klaviyo-region=\"true\" data-klaviyo-region-width-pixels=\"600\">\n"
    "        <div class=\"klaviyo-block klaviyo-image-block\">"
    "<a href=\"https://example.com\"><img src=\"https://example.com/a.png\" alt=\"A\" /></a></div>\n"
    "      </td>\n    </tr>\n    <tr>\n      <td>{% unsubscribe %}</td>\n    </tr>\n  </table>\n</body>\n</html>\n"
)


def text_block(content: str) -> dict[str, Any]:
    return {"content_type": "block", "type": "text",
            "data": {"content": content, "display_options": {}, "styles": {"color": "#111111", "font_size": 16}}}


def definition(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {
        "body": {
            "properties": {"id": None, "css_class": None},
            "styles": {"background_color": "#eeeeee", "width": 600},
            "sections": [{
                "content_type": "section", "type": "section",
                "data": {"properties": {}, "display_options": {"show_on": "all"},
                         "styles": {"background_color": "#ffffff", "inner_padding_top": 10}},
                "rows": [{"data": {"styles": {"column_layout": "1-column-full-width"}},
                          "columns": [{"data": {}, "blocks": list(blocks)}]}],
            }],
        },
        "styles": [
            {"style_type": "base-styles", "properties": {}, "styles": {"content_background_color": "#ffffff"}},
            {"style_type": "text-styles", "styles": {"color": "#222222", "font_size": 14}},
            {"style_type": "link-styles", "styles": {"color": "#0000ff"}},
        ],
    }


def create_body(name: str, editor_type: str = "CODE", **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "template", "attributes": {"name": name, "editor_type": editor_type, **attributes}}}
