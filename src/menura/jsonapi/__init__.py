"""Klaviyo's JSON:API dialect, independent of any resource."""
