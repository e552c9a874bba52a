"""Settings, declared once.

Every setting is read from the environment as ``CHARTER_<NAME>`` (or passed explicitly by the
CLI); ``docs/configuration.md`` lists them all and a test fails when one is missing there.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "charter"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHARTER_", extra="forbid")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the embedded database, keys and artifacts.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store; default: SQLite (WAL) in the data "
        "directory. Use postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    host: str = Field(default="127.0.0.1", description="Address `charter server` listens on.")
    port: int = Field(default=8750, ge=0, le=65535, description="Port `charter server` listens on.")
    audit_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs audit checkpoints; kept outside the "
        "database. Default: keys/audit-ed25519.pem in the data directory, created on first start.",
    )
    audit_checkpoint_every: int = Field(
        default=64, ge=1, description="Sign a checkpoint at least every N audit records."
    )
    audit_checkpoint_seconds: float = Field(
        default=30.0, gt=0, description="The server signs a checkpoint this often when records were added."
    )
    session_default_seconds: int = Field(
        default=3600, ge=60, description="Lifetime of an assume-role session when none is asked for."
    )
    session_max_seconds: int = Field(
        default=12 * 3600, ge=60, description="Longest assume-role session a caller may ask for."
    )
    token_max_days: int = Field(
        default=365, ge=1, description="Longest lifetime of an API token, in days."
    )
    max_request_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="Largest request body the API accepts."
    )
    api_inline_alone: bool = Field(
        default=True, description="Let a short fast-lane request (approve, reject, get, list, latest, "
        "and register on a file store with its model inspected at upload) run on the event loop when it is the only "
        "request the server is serving, sparing two thread hand-offs; off: always on a worker thread.",
    )
    config_dir: Path = Field(
        default_factory=lambda: Path.home() / ".config" / "charter",
        description="Where the CLI keeps its profiles (server URL, token, assumed-role session).",
    )
    max_artifact_bytes: int = Field(
        default=5 * 1024**3, ge=1024, description="Largest artifact one upload may store."
    )
    page_size_default: int = Field(default=50, ge=1, description="Items per page when none is asked for.")
    page_size_max: int = Field(default=500, ge=1, description="Largest page a caller may ask for.")
    artifact_store_url: str | None = Field(
        default=None,
        description="Where artifacts (content-addressed blobs) are kept: file:///PATH or "
        "s3://BUCKET/PREFIX, where a bucket containing {account} gives each account its own bucket. "
        "Default: the artifacts directory in the data directory.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store (MinIO, SeaweedFS, Ceph) for s3:// artifact "
        "stores; default: AWS. Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role).",
    )
    s3_multipart_threshold_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        description="Blobs larger than this go to S3 as multipart uploads; smaller ones in one request.",
    )
    s3_multipart_part_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=5 * 1024 * 1024 * 1024,
        description="Size of each part of a multipart upload to S3 (5 MiB to 5 GiB; at most 10,000 "
        "parts, so this bounds the largest blob), and the memory each upload buffers.",
    )
    dispatch_poll_seconds: float = Field(
        default=1.0, gt=0, description="How long the event dispatcher waits when it found no work."
    )
    dispatch_gather_seconds: float = Field(
        default=0.02, ge=0, le=5, description="The least time between the starts of two dispatcher "
        "rounds woken by commits: while events keep coming, those of other commits gather meanwhile and "
        "one transaction routes many. A commit after a quiet spell is routed at once (0: always at once).",
    )
    dispatch_batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Outbox rows routed, and deliveries claimed, per dispatcher round."
    )
    dispatch_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a dispatcher holds a claimed delivery; once it runs out "
        "(the worker crashed) another dispatcher retries it. Longer than the slowest handler or webhook.",
    )
    dispatch_in_server: bool = Field(
        default=True, description="`charter server` runs an event dispatcher in the background; turn it "
        "off when `charter worker` processes deliver instead.",
    )
    delivery_retry_base_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay of a failed delivery; it doubles per attempt "
        "(full jitter: a uniform draw below it).",
    )
    delivery_retry_cap_seconds: float = Field(default=300.0, gt=0, description="Longest delay between two delivery attempts.")
    delivery_max_attempts: int = Field(
        default=8, ge=1, description="Attempts per delivery (one rule target) before it goes to the dead-letter queue."
    )
    delivery_max_age_seconds: float = Field(
        default=24 * 3600.0, gt=0, description="A delivery still failing this long after its event was routed "
        "goes to the dead-letter queue.",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one webhook request.")
    webhook_allow_private_networks: list[str] = Field(
        default_factory=list, description="CIDRs webhook targets may resolve to although they are not public "
        "(loopback, private, link-local …), as a JSON list, e.g. [\"10.20.0.0/16\"]. Empty: only public addresses.",
    )
    webhook_key_file: Path | None = Field(
        default=None, description="HMAC-SHA256 key that signs webhook requests (X-Charter-Signature). "
        "Default: webhook.key in the data directory, created (0600) on first use.",
    )
    pipeline_executor: str = Field(
        default="local", description="Where pipeline steps run: `local` (each step a child process of "
        "the server), `ray` (each step a Ray task on the cluster this machine is part of) or "
        "`ray://HOST:PORT` (on a cluster's Ray Client server); Ray needs the `charter[ray]` extra.",
    )
    pipeline_max_parallel: int = Field(
        default=4, ge=1, le=256, description="Steps of one pipeline run that run at the same time.",
    )
    pipeline_preload_modules: list[str] = Field(
        default=["numpy", "sklearn.base", "sklearn.ensemble", "sklearn.linear_model", "sklearn.metrics",
                 "sklearn.model_selection", "sklearn.pipeline", "sklearn.preprocessing", "skops.io"],
        description="Modules the local executor's fork server imports once, so that every step forked "
        "from it starts with them loaded (those not installed are skipped).",
    )
    pipeline_poll_seconds: float = Field(
        default=0.5, gt=0, description="How long the pipeline runner waits when no run is pending.",
    )
    pipelines_in_server: bool = Field(
        default=True, description="`charter server` runs the pipeline runner, which claims pending runs "
        "and executes them.",
    )
    endpoints_in_server: bool = Field(
        default=True, description="`charter server` runs the serving supervisor: endpoint workers (a "
        "process per replica), blue/green rollouts, restarts of crashed workers, invocations.",
    )
    endpoint_rollout_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="How long a new endpoint revision's workers have to "
        "load their model and answer the sample payload before the rollout is Failed.",
    )
    endpoint_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the serving supervisor reconciles workers with the "
        "endpoints' revisions and restarts crashed workers (it also wakes at once on a change).",
    )
    endpoint_request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long an invocation waits for a worker's answer.",
    )
    endpoint_max_rows: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Rows one invocation may send.",
    )
    endpoint_capture_batch: int = Field(
        default=100, ge=1, description="Captured request/response pairs written to the artifact store "
        "together (data capture).",
    )
    endpoint_capture_flush_seconds: float = Field(
        default=5.0, gt=0, description="A data-capture batch is written at the latest this long after "
        "its first pair.",
    )
    endpoint_warm_at_start: bool = Field(
        default=True, description="The serving supervisor starts its worker template (a process with the "
        "model runtimes imported, about 200 MB) with the server, so that the first endpoint's workers start "
        "in a fraction of a second. false: it starts once an endpoint or a deployment pipeline exists.",
    )
    opentelemetry: bool = Field(
        default=False, description="FastAPI's native OpenTelemetry: a span and HTTP metrics for every "
        "request, given to the tracer and meter providers the process configures (opentelemetry-sdk). "
        "false: the API asks for no provider at all, which saves a look-up on every request.",
    )
    invocation_decision_seconds: float = Field(
        default=1.0, ge=0, le=60, description="How long a server reuses an allowed invocation decision "
        "(the caller's credential, roles and the policies) for the same credential and endpoint. A change "
        "committed by the same server (a revoked token, a removed role, new policies) ends every reused "
        "decision at once; a change made through another replica takes effect within this time. 0: every "
        "invocation is decided afresh.",
    )
    deployments_in_server: bool = Field(
        default=True, description="`charter server` runs the deployment runner, which takes up the "
        "executions of deployment pipelines and runs their stages, and expires approval requests.",
    )
    deployment_poll_seconds: float = Field(
        default=0.5, gt=0, description="How long the deployment runner waits when no execution is runnable.",
    )
    deployment_lease_seconds: float = Field(
        default=30.0, gt=0, description="How long a server holds an execution it runs without a word "
        "(it renews the claim while it works); a server that died leaves it to another after this.",
    )
    deployment_rollout_timeout_seconds: float = Field(
        default=300.0, gt=0, description="How long a deploy stage waits for the new endpoint revision to "
        "be in service before it fails (the previous revision keeps serving).",
    )
    deployment_rollout_poll_seconds: float = Field(
        default=0.2, gt=0, description="How often a deploy stage asks how the rollout stands.",
    )
    deployment_smoke_requests: int = Field(
        default=3, ge=1, le=1000, description="Invocations of production the smoke-prod stage makes.",
    )

    console_key_file: Path | None = Field(
        default=None, description="Key that seals the web console's session cookies (AES-GCM); every "
        "replica behind one load balancer needs the same file. Default: console.key in the data "
        "directory, created (0600) on first start.",
    )
    console_session_seconds: int = Field(
        default=8 * 3600, ge=60, le=7 * 86400, description="How long a web console sign-in lasts "
        "(the token behind it still has to be valid at every request).",
    )

    @field_validator("webhook_allow_private_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"not a CIDR network: {net!r}") from None
        return value

    @property
    def resolved_webhook_key_file(self) -> Path:
        return self.webhook_key_file or self.data_dir / "webhook.key"

    @property
    def resolved_console_key_file(self) -> Path:
        return self.console_key_file or self.data_dir / "console.key"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'charter.db'}"

    @property
    def resolved_artifact_store_url(self) -> str:
        return self.artifact_store_url or (self.data_dir / "artifacts").absolute().as_uri()

    @property
    def resolved_audit_key_file(self) -> Path:
        return self.audit_key_file or self.data_dir / "keys" / "audit-ed25519.pem"

    @property
    def audit_witness_file(self) -> Path:
        """The latest signed checkpoint, kept beside the key so truncation of the database shows."""
        return self.resolved_audit_key_file.with_name("audit-head.json")
