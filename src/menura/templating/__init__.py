"""The Klaviyo template language: Django's engine, sandboxed, with Klaviyo's tags and filters."""

from menura.templating.engine import CompiledTemplate, check, compile_template, render
from menura.templating.errors import RenderLimitError, TemplateError
from menura.templating.limits import DEFAULT_LIMITS, Limits, RenderEnv

__all__ = ["DEFAULT_LIMITS", "CompiledTemplate", "Limits", "RenderEnv", "RenderLimitError", "TemplateError",
           "check", "compile_template", "render"]
