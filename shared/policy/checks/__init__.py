"""The checks, one module per kind of node; each yields the Violations it finds."""
