"""Alembic environment: runs migrations on the URL that server.store.db passes in."""

from alembic import context
from sqlalchemy import create_engine, pool

from server.store.tables import metadata

url = context.config.get_main_option("sqlalchemy.url")
assert url, "server.store.db.migrate sets sqlalchemy.url"

if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
