"""The composition root: Settings in, a wired message bus out. Nothing here runs at import time."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from charter.adapters.artifacts.factory import artifact_store_from_url
from charter.adapters.cedar import CedarPolicyEngine
from charter.adapters.clock import SystemClock
from charter.adapters.db.engine import make_engine
from charter.adapters.db.migrate import upgrade
from charter.adapters.db.orgcache import OrgCache
from charter.adapters.db.store import SqlUnitOfWork
from charter.adapters.executors.local import LocalExecutor
from charter.adapters.signing import Ed25519FileSigner, FileWitness
from charter.adapters.webhooks import HttpWebhookSender, load_or_create_key
from charter.config import Settings
from charter.domain.deliveries import RetryPolicy
from charter.services.audit import AuditTrail
from charter.services.authorization import Authorizer
from charter.services.dispatch import Dispatcher, DispatchSettings
from charter.services.handlers import register_all
from charter.services.messagebus import Limits, MessageBus
from charter.services.pipeline_runner import PipelineRunner
from charter.services.ports import ArtifactStore


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    bus: MessageBus
    artifacts: ArtifactStore
    dispatcher: Dispatcher
    pipelines: PipelineRunner
    console_key: bytes = b""
    """Seals the web console's session cookies (see charter.entrypoints.console.session)."""

    def close(self) -> None:
        self.pipelines.close()
        self.engine.dispose()


def bootstrap(settings: Settings | None = None, *, migrate: bool = True) -> Platform:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    clock = SystemClock()
    write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
    org_cache = OrgCache()

    def uow_factory(*, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, readonly=readonly, write_lock=write_lock, org_cache=org_cache)

    key_file = settings.resolved_audit_key_file
    trail = AuditTrail(
        signer=Ed25519FileSigner(key_file),
        witness=FileWitness(settings.audit_witness_file),
        clock=clock,
        checkpoint_every=settings.audit_checkpoint_every,
    )
    artifacts = artifact_store_from_url(
        settings.resolved_artifact_store_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_multipart_threshold_bytes=settings.s3_multipart_threshold_bytes,
        s3_multipart_part_bytes=settings.s3_multipart_part_bytes,
    )
    bus = MessageBus(
        uow_factory=uow_factory,
        authorizer=Authorizer(CedarPolicyEngine()),
        trail=trail,
        clock=clock,
        limits=Limits(
            session_default_seconds=settings.session_default_seconds,
            session_max_seconds=settings.session_max_seconds,
            token_max_days=settings.token_max_days,
        ),
        artifacts=artifacts,
    )
    register_all(bus)
    dispatcher = Dispatcher(
        bus,
        DispatchSettings(
            batch_size=settings.dispatch_batch_size,
            lease_seconds=settings.dispatch_lease_seconds,
            poll_seconds=settings.dispatch_poll_seconds,
            gather_seconds=settings.dispatch_gather_seconds,
            retry=RetryPolicy(settings.delivery_retry_base_seconds, settings.delivery_retry_cap_seconds,
                              settings.delivery_max_attempts, settings.delivery_max_age_seconds),
        ),
        webhooks=HttpWebhookSender(settings.resolved_webhook_key_file, clock,
                                   timeout=settings.webhook_timeout_seconds,
                                   allow=settings.webhook_allow_private_networks),
    )
    if settings.pipeline_executor != "local":
        raise ValueError(f"unknown pipeline executor {settings.pipeline_executor!r} (known: local)")
    runner = PipelineRunner(bus, LocalExecutor(settings.pipeline_max_parallel), settings.data_dir / "pipelines",
                            poll_seconds=settings.pipeline_poll_seconds)
    return Platform(settings, engine, bus, artifacts, dispatcher, runner,
                    load_or_create_key(settings.resolved_console_key_file))
