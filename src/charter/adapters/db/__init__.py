"""The SQLAlchemy store: tables, repositories, the unit of work and Alembic migrations."""
