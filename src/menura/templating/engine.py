"""Django's template engine, standalone and sandboxed.

Sandbox rules:
- no loaders and no `include`/`extends`/`load`/`debug`/`url`/`lorem` tags: no file or module access,
  no recursion through other templates;
- Django already refuses names starting with `_` (no private attributes, no `__class__` walking);
  data is frozen (mappingproxy/tuple) so zero-argument methods cannot mutate it;
- every loop iteration, every piece of output and every filter call is counted against `Limits`,
  with a render deadline; width-like filter arguments are capped before the filter runs.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from menura.templating import limits as limit_state
from menura.templating.errors import TemplateError
from menura.templating.frozen import freeze
from menura.templating.limits import DEFAULT_LIMITS, Limits, RenderEnv, RenderState

ALLOWED_TAGS = frozenset({
    "autoescape", "comment", "cycle", "filter", "firstof", "for", "if", "ifchanged", "regroup",
    "resetcycle", "spaceless", "templatetag", "verbatim", "widthratio", "with",
})
# Django filters left out: json_script and pprint print Python internals; the rest are all here.
EXCLUDED_FILTERS = frozenset({"json_script", "pprint"})
# Filters whose argument sizes the output: checked before they run.
WIDTH_FILTERS = frozenset({"center", "ljust", "rjust", "floatformat", "stringformat", "truncate",
                           "truncatechars", "truncatewords", "wordwrap", "urlizetrunc"})

_setup_lock = threading.Lock()
_engine: Any = None


def engine() -> Any:
    """The one sandboxed Engine, built on first use (Django is configured then, not at import)."""
    global _engine
    if _engine is None:
        with _setup_lock:
            if _engine is None:
                _engine = _build_engine()
    return _engine


def _configure_django() -> None:
    from django.conf import settings

    if not settings.configured:
        # Dates print in UTC unless a tag asks for the account timezone (Klaviyo's behaviour).
        settings.configure(USE_TZ=True, TIME_ZONE="UTC", USE_I18N=False, DEBUG=False,
                           INSTALLED_APPS=[], TEMPLATES=[])


def _build_engine() -> Any:
    _configure_django()
    from django.template import Engine, Library, defaultfilters, defaulttags

    from menura.templating import klaviyo_filters, klaviyo_tags

    tags = Library()
    for name, func in defaulttags.register.tags.items():
        if name in ALLOWED_TAGS:
            tags.tags[name] = func
    filters = Library()
    for name, func in defaultfilters.register.filters.items():
        if name not in EXCLUDED_FILTERS:
            filters.filters[name] = _guard(name, func)
    for name, func in klaviyo_filters.register.filters.items():
        filters.filters[name] = _guard(name, func)
    for name, func in klaviyo_tags.register.tags.items():
        tags.tags[name] = func
    # Django's timesince/timeuntil would read the machine clock; these read the render clock.
    filters.filters["timesince"] = _guard("timesince", _since(defaultfilters.timesince_filter))
    filters.filters["timeuntil"] = _guard("timeuntil", _since(defaultfilters.timeuntil_filter))

    eng = Engine(debug=True, loaders=[], libraries={}, builtins=[], string_if_invalid="")
    eng.template_builtins = [tags, filters]
    eng.template_libraries = {}
    return eng


_FILTER_FLAGS = ("is_safe", "needs_autoescape", "expects_localtime", "_decorated_function")


def _guard(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Count the call, cap width arguments, and refuse oversized results."""
    checks_width = name in WIDTH_FILTERS

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        # Time is checked per loop iteration; here only sizes (this runs for every filter call).
        state = limit_state.current()
        if checks_width and len(args) > 1:
            state.check_width(_width_of(args[1]))
        result = func(*args, **kwargs)
        state.check_value(result)
        return result

    for flag in _FILTER_FLAGS:
        if hasattr(func, flag):
            setattr(guarded, flag, getattr(func, flag))
    return guarded


def _width_of(arg: Any) -> int:
    """The largest number in a width-like argument ('10', '-3g', '%05.2f', 'i:8')."""
    digits = "".join(ch if ch.isdigit() else " " for ch in str(arg))
    numbers = [int(part) for part in digits.split() if len(part) < 12] or [0]
    if any(len(part) >= 12 for part in digits.split()):
        return 10**12
    return max(numbers)


def _since(django_filter: Callable[..., Any]) -> Callable[..., Any]:
    def apply(value: Any, arg: Any = None) -> Any:
        return django_filter(value, arg if arg is not None else limit_state.current().env.now)
    apply.expects_localtime = False  # type: ignore[attr-defined]
    apply.is_safe = False  # type: ignore[attr-defined]
    return apply


# --------------------------------------------------------------------------- metering nodes

def _make_meter_nodes() -> tuple[type, type]:
    from django.template.base import Node

    class LoopTick(Node):
        """First node of every loop body: one iteration spent."""

        child_nodelists = ()

        def __init__(self, loop: Any) -> None:
            # Django's debug annotation reads the culprit's token and origin: the loop's.
            self.token = getattr(loop, "token", None)
            self.origin = getattr(loop, "origin", None)

        def render(self, context: Any) -> str:
            limit_state.current().iterate()
            return ""

    class Metered(Node):
        """Wraps a leaf node and counts what it outputs."""

        child_nodelists = ()

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.token = getattr(inner, "token", None)
            self.origin = getattr(inner, "origin", None)

        def render(self, context: Any) -> str:
            return self.inner.render(context)

        def render_annotated(self, context: Any) -> Any:
            out = self.inner.render_annotated(context)
            limit_state.current().emit(len(out))
            return out

    return LoopTick, Metered


_meter_nodes: tuple[type, type] | None = None


def _instrument(nodelist: Any, in_loop: bool = False) -> None:
    """Put a tick at the top of each loop body and meter the output of leaves inside loops.
    Outside loops, output is bounded by the template's own size and the data's (values are
    checked by the filter guards), so those leaves run unwrapped."""
    global _meter_nodes
    if _meter_nodes is None:
        _meter_nodes = _make_meter_nodes()
    loop_tick, metered = _meter_nodes
    from django.template.defaulttags import ForNode, IfNode

    for position, node in enumerate(nodelist):
        children: list[Any] = []
        if isinstance(node, IfNode):
            children = [nl for _cond, nl in node.conditions_nodelists]
        else:
            for attr in getattr(node, "child_nodelists", ()):
                child = getattr(node, attr, None)
                if child is not None:
                    children.append(child)
        is_loop = isinstance(node, ForNode)
        if is_loop:
            node.nodelist_loop.insert(0, loop_tick(node))
        if children:
            for child in children:
                _instrument(child, in_loop or is_loop)
        elif in_loop and not isinstance(node, loop_tick | metered):
            nodelist[position] = metered(node)


# --------------------------------------------------------------------------- compile and render

class CompiledTemplate:
    """A template checked and compiled once, rendered many times (once per recipient)."""

    def __init__(self, source: str, limits: Limits = DEFAULT_LIMITS) -> None:
        if len(source) > limits.max_source_chars:
            raise TemplateError(f"the template is longer than {limits.max_source_chars} characters")
        self.source = source
        self.limits = limits
        from django.template import Template, TemplateSyntaxError

        try:
            self._template = Template(source, engine=engine())
        except TemplateSyntaxError as exc:
            raise TemplateError(str(exc), _line_of(exc)) from None
        except RecursionError:
            raise TemplateError("the template nests tags too deeply") from None
        _instrument(self._template.nodelist)

    def render(self, context: Mapping[str, Any], env: RenderEnv | None = None) -> str:
        from django.template import Context
        from django.utils import timezone

        state = RenderState(self.limits, env or RenderEnv())
        token = limit_state.activate(state)
        try:
            with timezone.override(UTC):
                # A plain str, not Django's SafeString, for callers and encoders alike.
                return str.__str__(self._template.render(Context(freeze_context(context), autoescape=True)))
        except TemplateError as exc:
            if exc.line is None and _line_of(exc) is not None:
                raise type(exc)(exc.reason, _line_of(exc)) from None
            raise
        except RecursionError:
            raise TemplateError("the template or its data nests too deeply") from None
        except Exception as exc:
            original = _unwrap(exc)
            if isinstance(original, TemplateError):
                raise TemplateError(original.reason, original.line or _line_of(exc)) from None
            raise TemplateError(_reason(original), _line_of(exc)) from None
        finally:
            limit_state.deactivate(token)


def freeze_context(context: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): freeze(value) for key, value in context.items()}


def _unwrap(exc: BaseException) -> BaseException:
    """The original error behind Django's wrapping (it re-raises with `from`)."""
    for _ in range(5):
        if isinstance(exc, TemplateError) or exc.__cause__ is None:
            break
        exc = exc.__cause__
    return exc


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _line_of(exc: BaseException) -> int | None:
    debug = getattr(exc, "template_debug", None)
    if isinstance(debug, dict) and isinstance(debug.get("line"), int):
        return int(debug["line"])
    return None


_CACHEABLE_CHARS = 256_000  # 256 cached templates of at most this size: bounded memory


@functools.lru_cache(maxsize=256)
def _cached(source: str, limits: Limits) -> CompiledTemplate:
    return CompiledTemplate(source, limits)


def compile_template(source: str, limits: Limits = DEFAULT_LIMITS) -> CompiledTemplate:
    """Compile (or reuse: a dispatcher renders one template per recipient) a template;
    raises TemplateError with the line and reason."""
    if len(source) > _CACHEABLE_CHARS:
        return CompiledTemplate(source, limits)
    return _cached(source, limits)


def render(source: str, context: Mapping[str, Any], env: RenderEnv | None = None, *,
           limits: Limits = DEFAULT_LIMITS) -> str:
    return compile_template(source, limits).render(context, env)


def check(source: str) -> None:
    """Raise TemplateError if the template does not compile."""
    compile_template(source)


__all__ = ["CompiledTemplate", "RenderEnv", "check", "compile_template", "engine", "render"]
