"""The composition root: Settings in, a wired message bus out. Nothing here runs at import time."""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from charter.adapters.artifacts.factory import artifact_store_from_url
from charter.adapters.backup import (
    BackupSummary,
    Progress,
    RestoreSummary,
    restore_backup,
    write_backup,
)
from charter.adapters.cedar import CedarPolicyEngine
from charter.adapters.clock import SystemClock
from charter.adapters.db.engine import WalCheckpointer, make_engine, sqlite_file
from charter.adapters.db.migrate import upgrade
from charter.adapters.db.orgcache import OrgCache
from charter.adapters.db.store import AuditHeadCache, SqlUnitOfWork
from charter.adapters.executors.local import LocalExecutor
from charter.adapters.executors.ray import RayExecutor, ray_address
from charter.adapters.serving.launcher import ForkTemplateLauncher
from charter.adapters.serving.metrics import PrometheusServingMetrics
from charter.adapters.signing import Ed25519FileSigner, FileWitness
from charter.adapters.webhooks import HttpWebhookSender, load_or_create_key
from charter.config import Settings
from charter.domain.audit import Checkpoint
from charter.domain.deliveries import RetryPolicy
from charter.services.audit import AuditTrail
from charter.services.authorization import Authorizer
from charter.services.deployment_runner import DeploymentRunner
from charter.services.dispatch import Dispatcher, DispatchSettings
from charter.services.endpoint_operations import BusEndpointOperations
from charter.services.endpoint_supervisor import EndpointSupervisor, SupervisorSettings
from charter.services.handlers import register_all
from charter.services.invocation_gate import InvocationGate
from charter.services.messagebus import Limits, MessageBus
from charter.services.pipeline_runner import PipelineRunner
from charter.services.ports import ArtifactStore, PipelineExecutor


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    bus: MessageBus
    artifacts: ArtifactStore
    dispatcher: Dispatcher
    pipelines: PipelineRunner
    endpoints: EndpointSupervisor
    deployments: DeploymentRunner
    invocations: InvocationGate
    console_key: bytes = b""
    """Seals the web console's session cookies (see charter.entrypoints.console.session)."""
    checkpoints: WalCheckpointer | None = None
    """SQLite's WAL checkpoints, off the commits' path (None on PostgreSQL)."""

    def close(self) -> None:
        self.pipelines.close()
        self.endpoints.close()
        if self.checkpoints is not None:
            self.checkpoints.stop()
        self.engine.dispose()


def pipeline_executor(settings: Settings) -> PipelineExecutor:
    """The executor ``pipeline_executor`` names: ``local``, ``ray`` (the cluster this machine is
    part of) or ``ray://HOST:PORT`` (a cluster's Ray Client server)."""
    if settings.pipeline_executor == "local":
        return LocalExecutor(settings.pipeline_max_parallel, preload=tuple(settings.pipeline_preload_modules))
    address = ray_address(settings.pipeline_executor)
    if address is None:
        raise ValueError(f"unknown pipeline executor {settings.pipeline_executor!r} "
                         "(known: local, ray, ray://HOST:PORT)")
    if importlib.util.find_spec("ray") is None:
        raise ValueError(f"the pipeline executor {settings.pipeline_executor!r} needs Ray: "
                         "pip install 'charter[ray]'")
    return RayExecutor(address, settings.pipeline_max_parallel)


def bootstrap(settings: Settings | None = None, *, migrate: bool = True) -> Platform:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url, background_checkpoints=True)
    if migrate:
        upgrade(engine)
    clock = SystemClock()
    write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
    checkpoints = _wal_checkpoints(engine, write_lock)
    org_cache = OrgCache()
    audit_heads = AuditHeadCache()

    def uow_factory(*, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, readonly=readonly, write_lock=write_lock, org_cache=org_cache,
                             audit_heads=audit_heads)

    artifacts = _artifacts(settings)
    key_file = settings.resolved_audit_key_file
    trail = AuditTrail(
        signer=Ed25519FileSigner(key_file),
        witness=FileWitness(settings.audit_witness_file),
        clock=clock,
        checkpoint_every=settings.audit_checkpoint_every,
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
    runner = PipelineRunner(bus, pipeline_executor(settings), settings.data_dir / "pipelines",
                            poll_seconds=settings.pipeline_poll_seconds)
    supervisor = EndpointSupervisor(
        bus, ForkTemplateLauncher(settings.data_dir / "endpoints"), PrometheusServingMetrics(),
        settings.data_dir / "endpoints",
        SupervisorSettings(
            poll_seconds=settings.endpoint_poll_seconds,
            rollout_timeout_seconds=settings.endpoint_rollout_timeout_seconds,
            request_timeout_seconds=settings.endpoint_request_timeout_seconds,
            max_rows=settings.endpoint_max_rows,
            capture_batch=settings.endpoint_capture_batch,
            capture_flush_seconds=settings.endpoint_capture_flush_seconds,
            warm_at_start=settings.endpoint_warm_at_start,
        ),
    )
    deployments = DeploymentRunner(
        bus, BusEndpointOperations(bus), poll_seconds=settings.deployment_poll_seconds,
        lease_seconds=settings.deployment_lease_seconds,
        rollout_timeout_seconds=settings.deployment_rollout_timeout_seconds,
        rollout_poll_seconds=settings.deployment_rollout_poll_seconds,
        smoke_requests=settings.deployment_smoke_requests)
    return Platform(settings, engine, bus, artifacts, dispatcher, runner, supervisor, deployments,
                    InvocationGate(bus, settings.invocation_decision_seconds),
                    load_or_create_key(settings.resolved_console_key_file), checkpoints)


def _wal_checkpoints(engine: Engine, write_lock: threading.Lock | None) -> WalCheckpointer | None:
    if write_lock is None or sqlite_file(engine) is None:
        return None
    checkpoints = WalCheckpointer(engine, write_lock)
    checkpoints.start()
    return checkpoints


def _artifacts(settings: Settings) -> ArtifactStore:
    return artifact_store_from_url(
        settings.resolved_artifact_store_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_multipart_threshold_bytes=settings.s3_multipart_threshold_bytes,
        s3_multipart_part_bytes=settings.s3_multipart_part_bytes,
    )


def backup(settings: Settings, out: Path, *, artifacts: bool = True,
           progress: Progress | None = None) -> BackupSummary:
    """``charter backup``: the database (and the blobs) of these settings into one file."""
    engine = make_engine(settings.resolved_database_url)
    try:
        return write_backup(engine, _artifacts(settings) if artifacts else None, out,
                            **({"progress": progress} if progress else {}))
    finally:
        engine.dispose()


def restore(settings: Settings, archive: Path, *, progress: Progress | None = None) -> RestoreSummary:
    """``charter restore``: a backup into the empty database and artifact store of these settings.
    A witness already there (a server that ran on this data dir) is moved aside, not overwritten."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.resolved_audit_key_file
    key_id = Ed25519FileSigner(key_file).key_id if key_file.exists() else None
    witness = FileWitness(settings.audit_witness_file)

    def replace_witness(checkpoint: Checkpoint) -> None:
        if witness.path.exists():
            witness.path.rename(witness.path.with_name(f"{witness.path.name}.before-restore"))
        witness.write(checkpoint)

    engine = make_engine(settings.resolved_database_url)
    try:
        return restore_backup(engine, _artifacts(settings), archive, key_id=key_id, witness=replace_witness,
                              **({"progress": progress} if progress else {}))
    finally:
        engine.dispose()
