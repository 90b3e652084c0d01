"""Menura: a self-hostable marketing automation engine behind a Klaviyo-compatible API."""

__version__ = "0.1.0"
