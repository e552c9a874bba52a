"""The serving supervisor: runs in ``charter server`` (a thread), keeps this process's endpoint
workers in step with what the store says each endpoint should serve, and routes invocations.

- A new revision (Updating) is rolled out blue/green: its workers start beside the serving ones and
  take traffic only once every replica loaded its model and answered a prediction on the package's
  sample payload; if they never get healthy within the timeout the revision is Failed with the
  reason and the serving revision goes on serving.
- On start it brings back, for each endpoint, the revision that serves.
- A worker that dies is restarted; meanwhile its variant's requests go to its other replicas, or
  get a clear 503 when it has none.
- Data capture keeps sampled request/response pairs in memory and writes them in batches (JSON
  lines, content-addressed) to the endpoint account's artifact store, listed on the endpoint.

Nothing here writes to the database per request."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from charter.domain.endpoints import (
    MAX_ROWS,
    Capture,
    Endpoint,
    Revision,
    Variant,
    choose_variant,
    parse_rows,
)
from charter.errors import (
    CharterError,
    InvalidTransition,
    NotFound,
    ServerError,
    ServiceUnavailable,
    ValidationError,
)
from charter.services.endpoint_traffic import TrafficPoint, TrafficWindow
from charter.services.handlers.endpoints import state_event
from charter.services.messagebus import MessageBus
from charter.services.ports import ServingMetrics, Worker, WorkerLauncher

log = logging.getLogger("charter.endpoints")


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    poll_seconds: float = 1.0
    rollout_timeout_seconds: float = 60.0
    request_timeout_seconds: float = 30.0
    max_rows: int = MAX_ROWS
    capture_batch: int = 100
    capture_flush_seconds: float = 5.0
    restart_backoff_seconds: float = 0.2
    warm_at_start: bool = False


@dataclass
class _Call:
    """One invocation on its way: where it goes and what it sends."""

    account: str
    endpoint: str
    group: _Group
    variant: Variant
    payload: dict[str, Any]
    started: float
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Replica:
    variant: Variant
    worker: Worker
    restarts: int = 0
    down_since: float | None = None


@dataclass
class _Group:
    """The workers of one revision of one endpoint."""

    account: str
    endpoint: str
    revision: Revision
    replicas: dict[str, list[_Replica]] = field(default_factory=dict)
    cursor: int = 0

    def workers(self) -> list[_Replica]:
        return [r for rs in self.replicas.values() for r in rs]

    def stop(self) -> None:
        for r in self.workers():
            r.worker.stop()


class EndpointSupervisor:
    def __init__(self, bus: MessageBus, launcher: WorkerLauncher, metrics: ServingMetrics, work_dir: Path,
                 settings: SupervisorSettings | None = None) -> None:
        self.bus = bus
        self.launcher = launcher
        self.metrics = TrafficWindow(metrics)
        """The port, with each endpoint's recent traffic kept for the console's charts."""
        self.work_dir = work_dir
        self.settings = settings or SupervisorSettings()
        self._routes: dict[tuple[str, str], _Group] = {}
        self._pending: dict[tuple[str, str, int], _Group] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._captures: dict[tuple[str, str], list[bytes]] = {}
        self._capture_since: dict[tuple[str, str], float] = {}
        self._capture_lock = threading.Lock()
        self._warmed = False
        self._looked = threading.Event()
        """Set once a first round has looked at the store (and begun bringing endpoints back)."""
        self._bringing_back: set[tuple[str, str]] = set()
        self._taking_route: Counter[tuple[str, str]] = Counter()
        """Endpoints whose new revision is recorded in service and is about to take the route: from
        the commit to the route a request waits, since the store already says the endpoint serves."""

    @property
    def warmed(self) -> bool:
        """Whether the worker template was asked to start (see ``SupervisorSettings.warm_at_start``)."""
        return self._warmed

    # --- the loop ------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def run_forever(self, stop: threading.Event) -> None:
        self._stop = stop
        while not stop.is_set():
            try:
                self.reconcile()
            except Exception:  # noqa: BLE001 - one bad round must not stop the supervisor
                log.exception("an endpoint reconciliation round failed")
            self._looked.set()  # even after a bad round: requests do not wait for a second one
            self._wake.wait(self.settings.poll_seconds)
            self._wake.clear()
        self.close()

    def close(self) -> None:
        self.flush_captures(force=True)
        with self._lock:
            groups = list(self._routes.values()) + list(self._pending.values())
            self._routes.clear()
            self._pending.clear()
        for group in groups:
            group.stop()
        self.launcher.close()

    def reconcile(self) -> None:
        with self.bus.uow_factory(readonly=True) as uow:
            endpoints = uow.endpoints.all()
            deploying = (not self._warmed and not endpoints and not self.settings.warm_at_start
                         and uow.deployments.any_enabled())
        wanted = {(e.account, e.name) for e in endpoints}
        if (endpoints or deploying or self.settings.warm_at_start) and not self._warmed:
            # The template imports the model runtimes (seconds) with the server (warm_at_start), or
            # else once some endpoint, or a deployment pipeline that will make one, exists: then a
            # server that serves none never pays for it, and the first deployment does not wait for it.
            self._warmed = True
            self.launcher.warm()
        for endpoint in endpoints:
            key = (endpoint.account, endpoint.name)
            serving = endpoint.serving
            with self._lock:
                route = self._routes.get(key)
            if serving is not None and (route is None or route.revision.number != serving.number):
                # Brought back after a start, or served by another server's rollout or rollback.
                self._begin(endpoint, serving, record=False)
            rolling = endpoint.rolling_out
            if rolling is not None and (route is None or route.revision.number != rolling.number):
                self._begin(endpoint, rolling, record=True)
        with self._lock:
            gone = [k for k in self._routes if k not in wanted]
            stale = [k for k in self._pending if (k[0], k[1]) not in wanted]
            removed = [self._routes.pop(k) for k in gone] + [self._pending.pop(k) for k in stale]
        for group in removed:
            group.stop()
        self._looked.set()
        self._restart_dead()
        self.flush_captures()

    def _begin(self, endpoint: Endpoint, revision: Revision, *, record: bool) -> None:
        key = (endpoint.account, endpoint.name, revision.number)
        with self._lock:
            if key in self._pending:
                return
            group = _Group(endpoint.account, endpoint.name, revision)
            self._pending[key] = group
            if not record:
                self._bringing_back.add((endpoint.account, endpoint.name))
        threading.Thread(target=self._rollout, args=(group, record), daemon=True,
                         name=f"charter-rollout-{endpoint.name}-{revision.number}").start()

    # --- one rollout ---------------------------------------------------------------------------

    def _rollout(self, group: _Group, record: bool) -> None:
        key = (group.account, group.endpoint, group.revision.number)
        try:
            reason = self._start_and_check(group)
        except Exception as error:  # noqa: BLE001 - any failure fails the rollout with its reason
            log.exception("rollout of %s/%s revision %s", *key)
            reason = f"{type(error).__name__}: {error}"
        ok = reason is None
        took = True
        endpoint = (group.account, group.endpoint)
        if record:
            if ok:
                with self._lock:
                    self._taking_route[endpoint] += 1
            try:
                took = self._record(group, ok, reason)
            except Exception:  # noqa: BLE001 - the store failed: a later round tries the rollout again
                log.exception("recording the rollout of %s/%s revision %s", *key)
                took = False
        elif ok:
            took = self._still_serving(group)
        with self._lock:
            self._pending.pop(key, None)
            if not record:
                self._bringing_back.discard(endpoint)
            elif ok:
                self._taking_route[endpoint] -= 1
                if not self._taking_route[endpoint]:
                    del self._taking_route[endpoint]
            old = None
            if ok and took:
                old = self._routes.get(endpoint)
                self._routes[endpoint] = group
        if not (ok and took):
            group.stop()
            if not ok and not record:
                log.warning("endpoint %s/%s revision %s could not be brought back: %s", *key, reason)
        if old is not None and old is not group:
            # In-flight requests on the old workers finish: they hold their connections until then.
            threading.Timer(2.0, old.stop).start()

    def _start_and_check(self, group: _Group) -> str | None:
        """None when every replica of every variant is healthy, else why not."""
        revision = group.revision
        for variant in revision.variants:
            path = self._model_file(variant)
            group.replicas[variant.name] = [
                _Replica(variant, self.launcher.start(f"{group.endpoint}/{revision.number}/{variant.name}/{i}",
                                                      str(path), variant.format))
                for i in range(revision.replicas)]
        deadline = time.monotonic() + self.settings.rollout_timeout_seconds
        for replica in group.workers():
            reason = self._healthy(replica, deadline)
            if reason is not None:
                return f"variant {replica.variant.name} ({replica.variant.package}): {reason}"
        return None

    def _healthy(self, replica: _Replica, deadline: float) -> str | None:
        worker = replica.worker
        while not worker.ready():
            failure = worker.failure()
            if failure is not None:
                return failure
            if time.monotonic() > deadline or self._stop.is_set():
                return (f"not healthy within {self.settings.rollout_timeout_seconds:g} s "
                        "(the model did not load in time)")
            time.sleep(0.01)
        sample = replica.variant.sample_payload
        if sample is None:
            request: dict[str, Any] = {"op": "ping"}
        else:
            try:
                request = {"op": "predict", "rows": parse_rows(sample, replica.variant.inputs,
                                                                self.settings.max_rows)}
            except ValidationError as error:
                return f"the package's sample payload does not fit its signature: {error.message}"
        try:
            answer = worker.call(request, max(0.1, deadline - time.monotonic()))
        except ConnectionError as error:
            return worker.failure() or f"the health check got no answer: {error}"
        if not answer.get("ok"):
            return f"the prediction on the sample payload failed: {answer.get('error')}"
        return None

    def _record(self, group: _Group, ok: bool, reason: str | None) -> bool:
        """Store how the rollout ended; False when it no longer counts (superseded, deleted)."""
        with self.bus.uow_factory() as uow:
            endpoint = uow.endpoints.get(group.account, group.endpoint, for_update=True)
            if endpoint is None:
                return False
            try:
                done = endpoint.finish(group.revision.number, ok, reason, self.bus.clock.now())
            except (InvalidTransition, KeyError):
                return False
            uow.endpoints.save(done)
            uow.outbox.add(state_event(done, endpoint.status, account=done.account, name=done.name, actor=None,
                                       revision=done.revision(group.revision.number)))
            uow.commit()
        self.bus.committed({"endpoints"})  # a deploy stage waiting for this rollout looks at once
        return True

    def _still_serving(self, group: _Group) -> bool:
        """A brought-back revision takes the route only if it still serves (a round that read the
        store before a rollout ended must not put an older revision back)."""
        with self.bus.uow_factory(readonly=True) as uow:
            endpoint = uow.endpoints.get(group.account, group.endpoint)
        return endpoint is not None and endpoint.serving_revision == group.revision.number

    def _model_file(self, variant: Variant) -> Path:
        """The model file on local disk, copied once from the package's account store (verified:
        the store checks the digest as it streams)."""
        path = self.work_dir / "models" / f"{variant.model_sha256}.{variant.format}"
        if path.exists():
            return path
        store = self.bus.artifacts
        if store is None:
            raise ServerError("no artifact store is configured")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.part")
        with tmp.open("wb") as f:
            for chunk in store.open(variant.package_account, variant.model_sha256):
                f.write(chunk)
        tmp.replace(path)
        return path

    # --- faults --------------------------------------------------------------------------------

    def _restart_dead(self) -> None:
        now = time.monotonic()
        with self._lock:
            groups = list(self._routes.values())
        for group in groups:
            for replicas in group.replicas.values():
                for i, replica in enumerate(replicas):
                    if replica.worker.alive():
                        continue
                    if replica.down_since is None:
                        replica.down_since = now
                        log.warning("endpoint %s/%s: %s; restarting it", group.account, group.endpoint,
                                    replica.worker.failure())
                    if now - replica.down_since < self.settings.restart_backoff_seconds * min(replica.restarts, 10):
                        continue
                    path = self._model_file(replica.variant)
                    worker = self.launcher.start(f"{group.endpoint}/{group.revision.number}/"
                                                 f"{replica.variant.name}/{i}", str(path), replica.variant.format)
                    replicas[i] = _Replica(replica.variant, worker, replica.restarts + 1, None)

    def watch(self) -> None:
        """Restart dead workers now (the loop does it every round; a failed request calls this)."""
        self._wake.set()

    # --- invocations ---------------------------------------------------------------------------

    def _serving_now(self, account: str, endpoint: str) -> tuple[_Group | None, bool]:
        """The workers that serve the endpoint here, and whether a request should wait for them:
        before the first round has looked at the store, while the revision that serves is being
        brought back after a start (its workers loading), or between a rollout's commit and its
        taking the route."""
        key = (account, endpoint)
        with self._lock:
            wait = not self._looked.is_set() or key in self._bringing_back or key in self._taking_route
            return self._routes.get(key), wait

    def _still_coming(self, account: str, endpoint: str, deadline: float) -> bool:
        """Whether to wait on; a ServiceUnavailable once the bring-back took longer than a rollout may."""
        if time.monotonic() <= deadline and not self._stop.is_set():
            return True
        with self._lock:
            coming = (account, endpoint) in self._bringing_back
        if coming:
            raise ServiceUnavailable(f"endpoint {endpoint!r} in {account} is being brought back after a "
                                     "restart (its workers are loading); retry shortly",
                                     account=account, endpoint=endpoint)
        return False

    def _group(self, account: str, endpoint: str) -> _Group | None:
        """The serving workers; right after a start the request waits for the bring-back (as long as
        a rollout may take) instead of being told the endpoint serves nothing."""
        deadline = time.monotonic() + self.settings.rollout_timeout_seconds
        while True:
            group, wait = self._serving_now(account, endpoint)
            if group is not None or not wait or not self._still_coming(account, endpoint, deadline):
                return group
            time.sleep(0.02)

    async def _agroup(self, account: str, endpoint: str) -> _Group | None:
        """``_group`` on the event loop: it waits without blocking the loop."""
        deadline = time.monotonic() + self.settings.rollout_timeout_seconds
        while True:
            group, wait = self._serving_now(account, endpoint)
            if group is not None or not wait or not self._still_coming(account, endpoint, deadline):
                return group
            await asyncio.sleep(0.02)

    def invoke(self, account: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        call = self._call(account, endpoint, self._group(account, endpoint), payload, started)
        try:
            for replica in self._in_turn(call):
                try:
                    answer = replica.worker.call(call.request, self.settings.request_timeout_seconds)
                except ConnectionError:
                    self.watch()
                    continue
                return self._finish(call, answer)
            raise self._none_up(call)
        except CharterError:
            self._failed(call)
            raise

    async def ainvoke(self, account: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        call = self._call(account, endpoint, await self._agroup(account, endpoint), payload, started)
        try:
            for replica in self._in_turn(call):
                try:
                    answer = await replica.worker.acall(call.request, self.settings.request_timeout_seconds)
                except ConnectionError:
                    self.watch()
                    continue
                return self._finish(call, answer)
            raise self._none_up(call)
        except CharterError:
            self._failed(call)
            raise

    def _call(self, account: str, endpoint: str, group: _Group | None, payload: dict[str, Any],
              started: float) -> _Call:
        """One invocation routed: a variant of the serving revision by weight, the rows checked
        against the variant's signature (a ValidationError counts as a failed request)."""
        if group is None:
            raise NotFound(f"endpoint {endpoint!r} in {account} serves nothing (it does not exist, or no "
                           "revision of it is in service yet)", account=account, endpoint=endpoint)
        variant = choose_variant(group.revision.variants, random.random())
        call = _Call(account, endpoint, group, variant, payload, started)
        try:
            call.request = {"op": "predict", "rows": parse_rows(payload, variant.inputs, self.settings.max_rows)}
        except CharterError:
            self._failed(call)
            raise
        return call

    def _in_turn(self, call: _Call) -> Iterator[_Replica]:
        """The variant's live replicas, round robin from the next one."""
        replicas = call.group.replicas.get(call.variant.name, [])
        count = len(replicas)
        call.group.cursor += 1
        for k in range(count):
            replica = replicas[(call.group.cursor + k) % count]
            if replica.worker.alive():
                yield replica

    def _finish(self, call: _Call, answer: dict[str, Any]) -> dict[str, Any]:
        variant, revision = call.variant, call.group.revision
        if not answer.get("ok"):
            if answer.get("kind") == "input":
                raise ValidationError(f"the model refused the input: {answer.get('error')}", field="body",
                                      variant=variant.name)
            raise ServerError(f"the model failed: {answer.get('error')}", variant=variant.name)
        predictions: list[Any] = answer.get("predictions", [])
        self.metrics.observe(call.account, call.endpoint, variant.name, time.perf_counter() - call.started, False)
        if revision.capture_percent and random.random() * 100 < revision.capture_percent:
            self._capture(call.account, call.endpoint, revision, variant, call.payload, predictions)
        return {"predictions": predictions, "endpoint": call.endpoint, "revision": revision.number,
                "variant": variant.name, "package": variant.package}

    def _none_up(self, call: _Call) -> ServiceUnavailable:
        self.watch()
        return ServiceUnavailable(f"no worker of variant {call.variant.name} of endpoint {call.endpoint} is up "
                                  "(it is being restarted); retry shortly", endpoint=call.endpoint,
                                  variant=call.variant.name)

    def _failed(self, call: _Call) -> None:
        self.metrics.observe(call.account, call.endpoint, call.variant.name, time.perf_counter() - call.started,
                             True)

    def traffic(self, account: str, endpoint: str) -> list[TrafficPoint]:
        """The endpoint's requests, errors and latency over the last minutes, in this process."""
        return self.metrics.traffic(account, endpoint)

    def status(self, account: str, endpoint: str) -> list[dict[str, Any]]:
        """The workers of this process for the endpoint: revision, variant, pid, state."""
        with self._lock:
            groups = [g for g in (self._routes.get((account, endpoint)),) if g is not None]
            groups += [g for k, g in self._pending.items() if (k[0], k[1]) == (account, endpoint)]
        out = []
        for group in groups:
            serving = self._routes.get((account, endpoint)) is group
            for name, replicas in list(group.replicas.items()):
                for replica in replicas:
                    w = replica.worker
                    out.append({"revision": group.revision.number, "variant": name, "pid": w.pid,
                                "state": "ready" if w.ready() else ("down" if not w.alive() else "starting"),
                                "serving": serving, "restarts": replica.restarts})
        return out

    # --- data capture --------------------------------------------------------------------------

    def _capture(self, account: str, endpoint: str, revision: Revision, variant: Variant,
                 payload: dict[str, Any], predictions: list[Any]) -> None:
        line = json.dumps({"time": self.bus.clock.now().isoformat(), "revision": revision.number,
                           "variant": variant.name, "package": variant.package, "request": payload,
                           "response": {"predictions": predictions}}, separators=(",", ":")).encode()
        key = (account, endpoint)
        with self._capture_lock:
            self._captures.setdefault(key, []).append(line)
            self._capture_since.setdefault(key, time.monotonic())
            full = len(self._captures[key]) >= self.settings.capture_batch
        if full:
            self.wake()

    def flush_captures(self, force: bool = False) -> list[Capture]:
        now = time.monotonic()
        with self._capture_lock:
            due = [k for k, lines in self._captures.items() if lines and (
                force or len(lines) >= self.settings.capture_batch
                or now - self._capture_since.get(k, now) >= self.settings.capture_flush_seconds)]
            batches = {k: self._captures.pop(k) for k in due}
            for k in due:
                self._capture_since.pop(k, None)
        written = []
        store = self.bus.artifacts
        for (account, endpoint), lines in batches.items():
            if store is None:
                break
            body = b"\n".join(lines) + b"\n"
            digest = hashlib.sha256(body).hexdigest()
            try:
                info = store.put(account, [body], expected_sha256=digest)
                capture = Capture(account, endpoint, digest, len(lines), info.size, _now(self))
                with self.bus.uow_factory() as uow:
                    if uow.endpoints.get(account, endpoint) is None:
                        continue
                    uow.endpoints.add_capture(capture)
                    uow.commit()
                written.append(capture)
            except Exception:  # noqa: BLE001 - capture must never fail serving; logged, batch dropped
                log.exception("writing a data-capture batch of %s/%s", account, endpoint)
        return written


def _now(supervisor: EndpointSupervisor) -> datetime:
    return supervisor.bus.clock.now()
