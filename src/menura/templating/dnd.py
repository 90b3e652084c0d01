"""Drag-and-drop content (SYSTEM_DRAGGABLE template definitions and universal content blocks):
structural validation, read-only ids, and rendering to email HTML.

The rendered HTML is itself a template: text and HTML blocks keep their tags, and a block's
display options become template logic (`visible_check`/`visibility.check` -> `{% if %}`,
`content_repeat` -> `{% for %}`), so it is rendered per recipient like any CODE template."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

BLOCK_TYPES = frozenset({"button", "coupon", "drop_shadow", "header", "horizontal_rule", "html", "image",
                         "product", "review", "social", "spacer", "split", "table", "text", "video"})
# Universal content may be created/updated only as these block types (the spec's create/update bodies).
UNIVERSAL_WRITABLE = frozenset({"button", "drop_shadow", "horizontal_rule", "html", "image", "spacer", "text"})
STYLE_TYPES = ("base-styles", "text-styles", "heading-1-styles", "heading-2-styles", "heading-3-styles",
               "heading-4-styles", "link-styles", "mobile-styles")
COLUMN_LAYOUTS = {
    "1-column-full-width": (100,), "2-columns-equal-width": (50, 50), "2-columns-25%-75%": (25, 75),
    "2-columns-33%-67%": (33, 67), "2-columns-67%-33%": (67, 33), "2-columns-75%-25%": (75, 25),
    "3-columns-equal-width": (33, 34, 33), "3-columns-25%-25%-50%": (25, 25, 50),
    "3-columns-25%-50%-25%": (25, 50, 25), "3-columns-50%-25%-25%": (50, 25, 25),
    "4-columns-equal-width": (25, 25, 25, 25),
}
ENUMS = {
    "border_style": {"dashed", "dotted", "groove", "inset", "none", "outset", "ridge", "solid"},
    "block_border_style": {"dashed", "dotted", "groove", "inset", "none", "outset", "ridge", "solid"},
    "text_align": {"center", "left", "right"},
    "font_style": {"italic", "normal"},
    "show_on": {"all", "desktop", "mobile"},
    "align": {"center", "left", "right"},
    "column_layout": set(COLUMN_LAYOUTS),
}
_TABLE = '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_EXPRESSION = re.compile(r"^[^{}%]*$")


class DefinitionError(ValueError):
    """An invalid definition; `pointer` is a JSON pointer relative to the definition."""

    def __init__(self, detail: str, pointer: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer


# --------------------------------------------------------------------------- validation

def _object(value: Any, where: str, *, nullable: bool = False) -> dict[str, Any]:
    if value is None and nullable:
        return {}
    if not isinstance(value, dict):
        raise DefinitionError("must be an object.", where)
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DefinitionError("must be an array.", where)
    return value


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise DefinitionError(f"'{key}' is a required field.", f"{where}/{key}")
    return obj[key]


def _const(obj: Mapping[str, Any], key: str, allowed: set[str] | frozenset[str], where: str) -> str:
    value = _require(obj, key, where)
    if value not in allowed:
        raise DefinitionError(f"'{value}' is not one of {sorted(allowed)}.", f"{where}/{key}")
    return str(value)


def _styles(value: Any, where: str) -> dict[str, Any]:
    """Style objects hold scalars; the enumerated ones are checked."""
    styles = _object(value, where, nullable=True)
    for key, item in styles.items():
        if isinstance(item, dict | list):
            if key == "visibility" or key == "content_repeat":
                continue
            raise DefinitionError("must be a scalar value.", f"{where}/{key}")
        if item is not None and key in ENUMS and item not in ENUMS[key]:
            raise DefinitionError(f"'{item}' is not one of {sorted(ENUMS[key])}.", f"{where}/{key}")
        if key.endswith(("_width", "_size", "_radius", "height", "width")) or key.startswith(
                ("block_padding_", "inner_padding_")):
            if item is not None and (isinstance(item, bool) or not isinstance(item, int | float | str)):
                raise DefinitionError("must be a number.", f"{where}/{key}")
    return styles


def _display_options(value: Any, where: str) -> dict[str, Any]:
    options = _object(value, where, nullable=True)
    if options.get("show_on") is not None and options["show_on"] not in ENUMS["show_on"]:
        raise DefinitionError(f"'{options['show_on']}' is not one of {sorted(ENUMS['show_on'])}.",
                              f"{where}/show_on")
    repeat = options.get("content_repeat")
    if repeat is not None:
        repeat = _object(repeat, f"{where}/content_repeat")
        alias = _require(repeat, "item_alias", f"{where}/content_repeat")
        source = _require(repeat, "repeat_for", f"{where}/content_repeat")
        if not isinstance(alias, str) or not _ALIAS.match(alias):
            raise DefinitionError("must be a variable name.", f"{where}/content_repeat/item_alias")
        if not isinstance(source, str) or not source.strip() or not _EXPRESSION.match(source):
            raise DefinitionError("must be a template expression.", f"{where}/content_repeat/repeat_for")
    for key in ("visible_check",):
        if options.get(key) is not None and (not isinstance(options[key], str) or not _EXPRESSION.match(options[key])):
            raise DefinitionError("must be a template condition.", f"{where}/{key}")
    visibility = options.get("visibility")
    if visibility is not None:
        visibility = _object(visibility, f"{where}/visibility")
        check = visibility.get("check")
        if check is not None and (not isinstance(check, str) or not _EXPRESSION.match(check)):
            raise DefinitionError("must be a template condition.", f"{where}/visibility/check")
    return options


def validate_block(block: Any, where: str, *, allowed: frozenset[str] = BLOCK_TYPES) -> dict[str, Any]:
    block = _object(block, where)
    _const(block, "content_type", {"block"}, where)
    kind = _const(block, "type", allowed, where)
    data = block.get("data") if "data" in block else _require(block, "data", where)
    if data is None:
        if kind in ("text", "html"):
            raise DefinitionError("must be an object.", f"{where}/data")
        return block
    data = _object(data, f"{where}/data")
    if kind in ("text", "html"):
        content = _require(data, "content", f"{where}/data")
        if not isinstance(content, str):
            raise DefinitionError("must be a string.", f"{where}/data/content")
    _display_options(data.get("display_options"), f"{where}/data/display_options")
    _styles(data.get("styles"), f"{where}/data/styles")
    if "properties" in data and data["properties"] is not None:
        _object(data["properties"], f"{where}/data/properties")
    for i, sub in enumerate(_list(block.get("subblocks"), f"{where}/subblocks")):
        _object(sub, f"{where}/subblocks/{i}")
    return block


def validate_definition(definition: Any) -> dict[str, Any]:
    """Check a SYSTEM_DRAGGABLE definition's structure; pointers are relative to it."""
    definition = _object(definition, "")
    body = _object(_require(definition, "body", ""), "/body")
    _object(_require(body, "properties", "/body"), "/body/properties")
    _styles(_require(body, "styles", "/body"), "/body/styles")
    for s, section in enumerate(_list(body.get("sections"), "/body/sections")):
        where = f"/body/sections/{s}"
        section = _object(section, where)
        _const(section, "content_type", {"section"}, where)
        _const(section, "type", {"section"}, where)
        data = _object(_require(section, "data", where), f"{where}/data")
        for key in ("properties", "display_options", "styles"):
            _require(data, key, f"{where}/data")
        _object(data["properties"], f"{where}/data/properties", nullable=True)
        _display_options(data["display_options"], f"{where}/data/display_options")
        _styles(data["styles"], f"{where}/data/styles")
        for r, row in enumerate(_list(section.get("rows"), f"{where}/rows")):
            rwhere = f"{where}/rows/{r}"
            row = _object(row, rwhere)
            rdata = _object(_require(row, "data", rwhere), f"{rwhere}/data")
            _styles(_require(rdata, "styles", f"{rwhere}/data"), f"{rwhere}/data/styles")
            for c, column in enumerate(_list(row.get("columns"), f"{rwhere}/columns")):
                cwhere = f"{rwhere}/columns/{c}"
                column = _object(column, cwhere)
                if column.get("data") not in (None, {}):
                    raise DefinitionError("must be an empty object.", f"{cwhere}/data")
                for b, block in enumerate(_list(column.get("blocks"), f"{cwhere}/blocks")):
                    validate_block(block, f"{cwhere}/blocks/{b}")
    seen: set[str] = set()
    for i, style in enumerate(_list(_require(definition, "styles", ""), "/styles")):
        style = _object(style, f"/styles/{i}")
        kind = _const(style, "style_type", set(STYLE_TYPES), f"/styles/{i}")
        if kind in seen:
            raise DefinitionError(f"'{kind}' appears more than once; each style type may appear once.",
                                  f"/styles/{i}/style_type")
        seen.add(kind)
        _styles(style.get("styles"), f"/styles/{i}/styles")
        _object(style.get("properties"), f"/styles/{i}/properties", nullable=True)
    return definition


# --------------------------------------------------------------------------- read-only ids

def _new_id() -> str:
    return secrets.token_hex(6)


def assign_ids(definition: dict[str, Any], template_id: str) -> dict[str, Any]:
    """Give every element its read-only ids (client-sent ids are replaced)."""
    definition["id"] = _new_id()
    definition["template_id"] = template_id
    body = definition["body"]
    body["id"] = _new_id()
    for section in body.get("sections") or []:
        section["id"], section["data_id"] = _new_id(), _new_id()
        section.setdefault("universal_id", None)
        for row in section.get("rows") or []:
            row["id"], row["data_id"] = _new_id(), _new_id()
            for column in row.get("columns") or []:
                column["id"], column["data_id"] = _new_id(), _new_id()
                for block in column.get("blocks") or []:
                    block["id"], block["data_id"] = _new_id(), _new_id()
                    block.setdefault("universal_id", None)
    for style in definition.get("styles") or []:
        style["id"] = _new_id()
    return definition


# --------------------------------------------------------------------------- rendering

def _px(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return f"{value:g}px"
    text = str(value).strip()
    return text + "px" if text.replace(".", "", 1).isdigit() else (text or None)


_CSS_TEXT = {"color": "color", "font_family": "font-family", "font_style": "font-style",
             "font_weight": "font-weight", "text_align": "text-align", "text_decoration": "text-decoration",
             "background_color": "background-color"}
_CSS_LENGTH = {"font_size": "font-size", "letter_spacing": "letter-spacing", "border_radius": "border-radius"}


def _css(styles: Mapping[str, Any], *, prefix: str = "", text: bool = True) -> str:
    rules: list[str] = []
    if text:
        for key, prop in _CSS_TEXT.items():
            if styles.get(key) not in (None, ""):
                rules.append(f"{prop}:{styles[key]}")
        for key, prop in _CSS_LENGTH.items():
            length = _px(styles.get(key))
            if length:
                rules.append(f"{prop}:{length}")
        if styles.get("line_height") not in (None, ""):
            rules.append(f"line-height:{styles['line_height']}")
    for side in ("top", "right", "bottom", "left"):
        length = _px(styles.get(f"{prefix}padding_{side}"))
        if length:
            rules.append(f"padding-{side}:{length}")
    border = prefix + "border_" if prefix == "block_" else "border_"
    if styles.get(f"{border}style") not in (None, "none") and styles.get(f"{border}width") is not None:
        rules.append(f"border:{_px(styles.get(f'{border}width'))} {styles[f'{border}style']} "
                     f"{styles.get(f'{border}color') or '#000000'}")
    return html.escape(";".join(rules), quote=True)


def _attr(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _block_cell(inner: str, styles: Mapping[str, Any]) -> str:
    outer = _css(styles, prefix="block_", text=False)
    background = styles.get("block_background_color")
    bg = f' style="background-color:{_attr(background)};{outer}"' if background else (
        f' style="{outer}"' if outer else "")
    return (f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
            f"<tr><td{bg}>{inner}</td></tr></table>")


def _wrap_display(rendered: str, options: Mapping[str, Any]) -> str:
    show_on = options.get("show_on")
    if show_on in ("desktop", "mobile"):
        rendered = f'<div class="kl-hide-{"mobile" if show_on == "desktop" else "desktop"}">{rendered}</div>'
    repeat = options.get("content_repeat")
    if isinstance(repeat, Mapping):
        rendered = f"{{% for {repeat['item_alias']} in {repeat['repeat_for']} %}}{rendered}{{% endfor %}}"
    check = options.get("visible_check")
    visibility = options.get("visibility")
    if isinstance(visibility, Mapping) and visibility.get("check"):
        check = visibility["check"]
    if check:
        rendered = f"{{% if {check} %}}{rendered}{{% endif %}}"
    return rendered


def _image(src: Any, alt: Any, href: Any, styles: Mapping[str, Any] | None = None, width: Any = None) -> str:
    styles = styles or {}
    size = styles.get("width") or width
    tag = (f'<img src="{_attr(src)}" alt="{_attr(alt)}"'
           + (f' width="{_attr(size)}"' if size else "")
           + ' style="display:block;max-width:100%;height:auto;border:0">')
    return f'<a href="{_attr(href)}">{tag}</a>' if href else tag


def _text_block(data: Mapping[str, Any], styles: Mapping[str, Any]) -> str:
    return f'<div style="{_css(styles, prefix="inner_")}">{data.get("content", "")}</div>'


def _button(data: Mapping[str, Any], styles: Mapping[str, Any]) -> str:
    props = data.get("properties") or {}
    align = styles.get("text_align") or "center"
    width = ' width="100%"' if styles.get("stretch") else ""
    return (f'<table role="presentation" cellpadding="0" cellspacing="0" border="0" align="{_attr(align)}"{width}>'
            f'<tr><td style="background-color:{_attr(styles.get("background_color") or "#000000")};'
            f'border-radius:{_px(styles.get("border_radius")) or "0px"}" align="center">'
            f'<a href="{_attr(props.get("href") or "#")}" style="display:inline-block;text-decoration:none;'
            f'{_css(styles, prefix="inner_")}">{data.get("content") or ""}</a></td></tr></table>')


def _image_block(data: Mapping[str, Any], styles: Mapping[str, Any]) -> str:
    props = data.get("properties") or {}
    align = styles.get("align") or "center"
    image = _image(props.get("src"), props.get("alt_text"), props.get("href"), styles)
    return f'<div style="text-align:{_attr(align)};{_css(styles, prefix="inner_", text=False)}">{image}</div>'


def _spacer(styles: Mapping[str, Any]) -> str:
    height = _px(styles.get("height")) or "20px"
    background = f"background-color:{_attr(styles['background_color'])};" if styles.get("background_color") else ""
    return f'<div style="{background}height:{height};line-height:{height};font-size:1px">&nbsp;</div>'


def _rule(styles: Mapping[str, Any]) -> str:
    width = _px(styles.get("border_width")) or "1px"
    return (f'<div style="border-top:{width} {_attr(styles.get("border_style") or "solid")} '
            f'{_attr(styles.get("border_color") or "#cccccc")};font-size:1px;line-height:1px">&nbsp;</div>')


_SHADOWS = {"light": "rgba(0,0,0,0.08)", "medium": "rgba(0,0,0,0.16)", "dark": "rgba(0,0,0,0.3)"}


def _drop_shadow(styles: Mapping[str, Any]) -> str:
    color = _SHADOWS.get(str(styles.get("shadow_color") or "medium"), _SHADOWS["medium"])
    return f'<div style="height:8px;background:linear-gradient({color},rgba(0,0,0,0));font-size:1px">&nbsp;</div>'


def _coupon(data: Mapping[str, Any], styles: Mapping[str, Any]) -> str:
    return (f'<div style="border:2px dashed {_attr(styles.get("border_color") or "#000000")};text-align:center;'
            f'{_css(styles, prefix="inner_")}">{data.get("content") or ""}</div>')


def _cells(subblocks: list[Any], per_row: int) -> str:
    rows: list[str] = []
    for start in range(0, len(subblocks), max(per_row, 1)):
        cells = []
        for sub in subblocks[start:start + max(per_row, 1)]:
            sub = sub if isinstance(sub, Mapping) else {}
            kind = sub.get("type", "")
            if kind.endswith("image"):
                inner = _image(sub.get("src"), sub.get("alt_text"), sub.get("href"), width=sub.get("width"))
            else:
                inner = str(sub.get("content") or "")
            tag = "th" if kind == "table_header" else "td"
            align = _attr(sub.get("cell_text_align") or "left")
            cells.append(f'<{tag} valign="top" align="{align}" style="{_css(sub)}">{inner}</{tag}>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _TABLE + "".join(rows) + "</table>"


def _social(block: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    show_labels = bool((data.get("properties") or {}).get("show_labels"))
    links: list[str] = []
    for sub in block.get("subblocks") or []:
        if not isinstance(sub, Mapping):
            continue
        if sub.get("type") == "social_link_spacer":
            links.append(f'<span style="display:inline-block;width:{_px(sub.get("width")) or "10px"}"></span>')
            continue
        label = sub.get("label") or str(sub.get("link_type") or "").replace("-", " ").title()
        size = _attr(sub.get("custom_size") or 32)
        icon = (f'<img src="{_attr(sub["custom_src"])}" alt="{_attr(label)}" width="{size}"'
                ' style="border:0;vertical-align:middle">' if sub.get("custom_src") else "")
        text = html.escape(str(label)) if show_labels or not icon else ""
        links.append(f'<a href="{_attr(sub.get("link_url"))}" style="text-decoration:none">{icon}{text}</a>')
    return f'<div style="text-align:center">{" ".join(links)}</div>'


def _header(block: Mapping[str, Any], styles: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for sub in block.get("subblocks") or []:
        if not isinstance(sub, Mapping):
            continue
        if sub.get("type") in ("header_link_bar_logo", "header_link_bar_image"):
            parts.append(_image(sub.get("src"), sub.get("alt_text"), sub.get("href"), width=sub.get("width")))
        else:
            parts.append(f'<a href="{_attr(sub.get("href"))}" style="{_css(styles)}">{sub.get("content") or ""}</a>')
    align = _attr(styles.get("item_align") or "center")
    return f'<div style="text-align:{align};{_css(styles, prefix="inner_", text=False)}">{" ".join(parts)}</div>'


def _video(data: Mapping[str, Any]) -> str:
    props = data.get("properties") or {}
    return _image(props.get("src"), props.get("alt_text") or "Video", props.get("href"))


def _products(block: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    props = data.get("properties") or {}
    if props.get("dynamic"):
        # Recommendation feeds come from a synced catalog, which this block cannot reach.
        return f"<!-- dynamic product feed {html.escape(str(props.get('feed') or ''))} -->"
    cells: list[str] = []
    for sub in block.get("subblocks") or []:
        if not isinstance(sub, Mapping):
            continue
        link = sub.get("link") or sub.get("url")
        title = sub.get("title") or sub.get("name") or ""
        piece = _image(sub.get("image_url"), title, link)
        if props.get("show_title", True):
            piece += f"<p>{html.escape(str(title))}</p>"
        if props.get("show_price", True) and sub.get("price"):
            piece += f"<p>{html.escape(str(sub['price']))}</p>"
        if props.get("show_button", True) and link:
            piece += f'<a href="{_attr(link)}">{html.escape(str(sub.get("button_text") or "Shop now"))}</a>'
        cells.append(f'<td valign="top" align="center">{piece}</td>')
    return ('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>'
            + "".join(cells) + "</tr></table>")


def _review(data: Mapping[str, Any]) -> str:
    props = data.get("properties") or {}
    if props.get("dynamic"):
        return "<!-- dynamic review -->"
    stars = int(props.get("stars") or 0) if str(props.get("stars") or "0").isdigit() else 0
    parts = []
    if props.get("show_rating", True) and stars:
        parts.append("★" * min(stars, 5) + "☆" * (5 - min(stars, 5)))
    parts.append(f"<p>{html.escape(str(props.get('quote') or props.get('quote_placeholder') or ''))}</p>")
    if props.get("show_reviewer_name", True):
        parts.append(f"<p>{html.escape(str(props.get('author') or props.get('author_placeholder') or ''))}</p>")
    return '<div style="text-align:center">' + "".join(parts) + "</div>"


def render_block(block: Mapping[str, Any]) -> str:
    """One content block as email HTML (with its display logic as template tags)."""
    kind = block.get("type")
    data = block.get("data") or {}
    if not isinstance(data, Mapping):
        data = {}
    styles = data.get("styles") or {}
    renderers: dict[str, Callable[[], str]] = {
        "text": lambda: _text_block(data, styles),
        "html": lambda: str(data.get("content") or ""),
        "button": lambda: _button(data, styles),
        "image": lambda: _image_block(data, styles),
        "spacer": lambda: _spacer(styles),
        "horizontal_rule": lambda: _rule(styles),
        "drop_shadow": lambda: _drop_shadow(styles),
        "coupon": lambda: _coupon(data, styles),
        "header": lambda: _header(block, styles),
        "social": lambda: _social(block, data),
        "split": lambda: _cells(list(block.get("subblocks") or []), 2),
        "table": lambda: _cells(list(block.get("subblocks") or []),
                                int((data.get("properties") or {}).get("num_columns") or 2)),
        "video": lambda: _video(data),
        "product": lambda: _products(block, data),
        "review": lambda: _review(data),
    }
    renderer = renderers.get(str(kind))
    if renderer is None:
        return ""
    inner = renderer() if kind == "html" else _block_cell(renderer(), styles)
    return _wrap_display(inner, data.get("display_options") or {})


def _style(definition: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for style in definition.get("styles") or []:
        if isinstance(style, Mapping) and style.get("style_type") == kind:
            return style.get("styles") or {}
    return {}


def _head_css(definition: Mapping[str, Any]) -> str:
    rules = [f"body, td {{{_css(_style(definition, 'text-styles'))}}}"]
    for level in range(1, 5):
        rules.append(f"h{level} {{{_css(_style(definition, f'heading-{level}-styles'))}}}")
    rules.append(f"a {{{_css(_style(definition, 'link-styles'))}}}")
    rules.append("@media (max-width:480px){.kl-hide-mobile{display:none!important}}")
    rules.append("@media (min-width:481px){.kl-hide-desktop{display:none!important}}")
    return html.unescape("\n".join(rules))


def render_definition(definition: Mapping[str, Any]) -> str:
    """A whole SYSTEM_DRAGGABLE template as email HTML."""
    body = definition.get("body") or {}
    body_styles = body.get("styles") or {}
    width = body_styles.get("width") or 600
    base = _style(definition, "base-styles")
    sections: list[str] = []
    for section in body.get("sections") or []:
        data = section.get("data") or {}
        sstyles = data.get("styles") or {}
        rows: list[str] = []
        for row in section.get("rows") or []:
            layout = ((row.get("data") or {}).get("styles") or {}).get("column_layout") or "1-column-full-width"
            widths = COLUMN_LAYOUTS.get(layout, (100,))
            cells = []
            for i, column in enumerate(row.get("columns") or []):
                share = widths[i] if i < len(widths) else widths[-1]
                blocks = "".join(render_block(b) for b in column.get("blocks") or [])
                cells.append(f'<td width="{share}%" valign="top">{blocks}</td>')
            rows.append('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>'
                        + "".join(cells) + "</tr></table>")
        background = sstyles.get("background_color")
        style = (f"background-color:{_attr(background)};" if background else "") + _css(sstyles, prefix="inner_",
                                                                                        text=False)
        sections.append(_wrap_display(f'<tr><td style="{style}">{"".join(rows)}</td></tr>',
                                      data.get("display_options") or {}))
    page = _attr(body_styles.get("background_color") or "#ffffff")
    content = _attr(base.get("content_background_color") or "#ffffff")
    props = body.get("properties") or {}
    body_attrs = (f' id="{_attr(props["id"])}"' if props.get("id") else "") + (
        f' class="{_attr(props["css_class"])}"' if props.get("css_class") else "")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>\n{_head_css(definition)}\n</style></head>"
            f'<body{body_attrs} style="margin:0;padding:0;background-color:{page}">'
            f'{_TABLE}<tr><td align="center">'
            f'<table role="presentation" width="{_attr(width)}" cellpadding="0" cellspacing="0" border="0" '
            f'style="max-width:{_attr(width)}px;background-color:{content}">'
            + "".join(sections) + "</table></td></tr></table></body></html>")
