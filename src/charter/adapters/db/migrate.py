"""Alembic, driven from code: the server upgrades the schema to head when it starts."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    # "heads": migrations written on parallel branches (each revising the same parent until they
    # are chained at merge) all apply; with one head it is the same as "head".
    command.upgrade(alembic_config(engine), revision)
