"""Sales data: the CSV schema, the store, and demo data."""
