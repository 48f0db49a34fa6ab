"""The migrations build exactly the schema the models describe (Alembic is the only way the
schema is made, so a model change without its migration would go unnoticed elsewhere)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from livestage import migrate
from livestage.models import Base


def test_the_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
