"""Alembic migrations for the coordinator's database. Run them with `coordinator migrate`."""
