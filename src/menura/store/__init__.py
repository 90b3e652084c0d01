"""Storage: tables, migrations and queries. The only package that knows SQL dialects."""
