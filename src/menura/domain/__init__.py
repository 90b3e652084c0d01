"""Business rules, one module per entity: no HTTP, no SQL strings."""
