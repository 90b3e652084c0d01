"""HTTP layer: one module per Klaviyo category. Routes only — parse, authorize, call domain, serialize."""
