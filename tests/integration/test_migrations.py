"""Each service's Alembic environment builds exactly the schema its models describe."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.config import SERVICES
from shared.db import create_db_engine
from shared.migrations import upgrade
from shared.system import service_module


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_reach_the_models(backend_settings, service):
    # Given an empty database, When it is upgraded to head
    upgrade(service, backend_settings)
    metadata = service_module(service).models.Base.metadata
    engine = create_db_engine(backend_settings.database_url(service))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    finally:
        engine.dispose()
    # Then the models and the database agree
    assert diff == []
