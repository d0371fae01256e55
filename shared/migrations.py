"""Alembic, one migration environment per service.

Each service keeps ``<service>_svc/migrations/`` (``env.py`` + ``versions/``);
``env.py`` calls ``run_env(metadata)``.  ``upgrade(service, url)`` is what
``xinfang migrate`` and ``xinfang up`` call.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.config import Settings


def alembic_config(service: str, url: str) -> Config:
    package = importlib.import_module(f"{service}_svc")
    script_location = Path(package.__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, settings: Settings, revision: str = "head") -> None:
    url = settings.database_url(service)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service, url), revision)


def run_env(metadata) -> None:
    """Body of every service's ``migrations/env.py``."""
    from alembic import context

    from shared.db import create_db_engine

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
