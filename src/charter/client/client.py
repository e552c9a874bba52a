"""``charter.Client``: the SDK. Every method is one REST call; failures raise charter.errors types."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from charter.client import models as m
from charter.errors import ConnectionFailed, ServerError, error_from_payload

T = TypeVar("T", bound=BaseModel)
CHUNK = 1024 * 1024


def _read_chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


class Client:
    """A connection to a Charter server as one identity (an API token or an assume-role session).

    >>> client = Client("http://127.0.0.1:8750", token="cht_...")
    >>> client.whoami().principal.name
    """

    def __init__(self, server: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self.token = token
        headers = {"user-agent": "charter-sdk"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._transport = transport
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ConnectionFailed(f"cannot reach {self.server}: {error}", server=self.server) from None
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            raise error_from_payload(response.status_code, payload)
        return response

    def _get(self, model: type[T], path: str, **params: Any) -> T:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._parse(model, self._request("GET", f"/api/v1{path}", params=clean))

    def _send(self, method: str, model: type[T], path: str, body: BaseModel | None = None) -> T:
        json_body = body.model_dump(mode="json") if body is not None else None
        return self._parse(model, self._request(method, f"/api/v1{path}", json=json_body))

    @staticmethod
    def _parse(model: type[T], response: httpx.Response) -> T:
        try:
            return model.model_validate_json(response.content)
        except ValueError as error:
            raise ServerError(f"unexpected response from server: {error}") from None

    def _pages(self, model: type[T], path: str, **params: Any) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = self._get(m.Page[model], path, cursor=cursor, **params)  # type: ignore[valid-type]
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- health and identity ---------------------------------------------------------------

    def health(self) -> m.Health:
        return self._parse(m.Health, self._request("GET", "/healthz"))

    def whoami(self) -> m.WhoAmIOut:
        return self._get(m.WhoAmIOut, "/whoami")

    def create_token(self, principal: str, *, expires_in_seconds: int | None = None,
                     description: str = "") -> m.TokenIssued:
        body = m.TokenCreate(principal=principal, expires_in_seconds=expires_in_seconds,
                             description=description)
        return self._send("POST", m.TokenIssued, "/tokens", body)

    def tokens(self, principal: str | None = None) -> Iterator[m.TokenOut]:
        return self._pages(m.TokenOut, "/tokens", principal=principal)

    def revoke_token(self, token_id: str) -> m.TokenOut:
        return self._send("DELETE", m.TokenOut, f"/tokens/{token_id}")

    def assume_role(self, account: str, role: str, *, duration_seconds: int | None = None) -> m.SessionIssued:
        body = m.SessionCreate(account=account, role=role, duration_seconds=duration_seconds)
        return self._send("POST", m.SessionIssued, "/sessions", body)

    def as_role(self, account: str, role: str, *, duration_seconds: int | None = None) -> Client:
        """A new client acting through an assume-role session."""
        issued = self.assume_role(account, role, duration_seconds=duration_seconds)
        return Client(self.server, issued.secret, timeout=self._timeout, transport=self._transport)

    # --- organization ----------------------------------------------------------------------

    def org(self) -> m.OrganizationOut:
        return self._get(m.OrganizationOut, "/org")

    def apply(self, document: str, *, filename: str = "charter.yaml", plan: bool = False) -> m.ApplyOut:
        body = m.ApplyRequest(document=document, filename=filename, plan=plan)
        return self._send("POST", m.ApplyOut, "/org/apply", body)

    def accounts(self) -> Iterator[m.AccountOut]:
        return self._pages(m.AccountOut, "/accounts")

    def account(self, name: str) -> m.AccountOut:
        return self._get(m.AccountOut, f"/accounts/{name}")

    def role_bindings(self, account: str) -> list[m.RoleBindingOut]:
        response = self._request("GET", f"/api/v1/accounts/{account}/role-bindings")
        return [m.RoleBindingOut.model_validate(item) for item in response.json()]

    def principals(self) -> Iterator[m.PrincipalOut]:
        return self._pages(m.PrincipalOut, "/principals")

    def principal(self, name: str) -> m.PrincipalDetail:
        return self._get(m.PrincipalDetail, f"/principals/{name}")

    def policies(self) -> m.PoliciesOut:
        return self._get(m.PoliciesOut, "/policies")

    # --- registry --------------------------------------------------------------------------

    def create_group(self, account: str, name: str, *, description: str = "",
                     tags: dict[str, str] | None = None, readers: list[str] | None = None) -> m.GroupOut:
        body = m.GroupCreate(name=name, description=description, tags=tags or {}, readers=readers or [])
        return self._send("POST", m.GroupOut, f"/accounts/{account}/registry/groups", body)

    def groups(self, account: str) -> Iterator[m.GroupOut]:
        return self._pages(m.GroupOut, f"/accounts/{account}/registry/groups")

    def group(self, account: str, name: str) -> m.GroupOut:
        return self._get(m.GroupOut, f"/accounts/{account}/registry/groups/{name}")

    def upload_artifact(self, account: str, source: bytes | BinaryIO | Path, *,
                        model_format: str | None = None) -> m.BlobOut:
        """Stream bytes, a file object or a file into the account's artifact store. Name the
        ``model_format`` of a model file so the server checks it now rather than at registration."""
        if isinstance(source, Path):
            with source.open("rb") as f:
                return self.upload_artifact(account, f, model_format=model_format)
        content: bytes | Iterator[bytes] = source if isinstance(source, bytes) else _read_chunks(source)
        params = {"format": model_format} if model_format else None
        response = self._request("POST", f"/api/v1/accounts/{account}/artifacts", content=content,
                                 params=params, headers={"content-type": "application/octet-stream"})
        return self._parse(m.BlobOut, response)

    def download_artifact(self, account: str, sha256: str) -> Iterator[bytes]:
        try:
            with self._http.stream("GET", f"/api/v1/accounts/{account}/artifacts/{sha256}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_payload(response.status_code, response.json())
                yield from response.iter_bytes()
        except httpx.TransportError as error:
            raise ConnectionFailed(f"cannot reach {self.server}: {error}") from None

    def register_package(self, account: str, group: str, body: m.PackageCreate) -> m.PackageOut:
        return self._send("POST", m.PackageOut, f"/accounts/{account}/registry/groups/{group}/packages", body)

    def packages(self, account: str, group: str, *, status: str | None = None) -> Iterator[m.PackageOut]:
        return self._pages(m.PackageOut, f"/accounts/{account}/registry/groups/{group}/packages", status=status)

    def package(self, account: str, group: str, version: int) -> m.PackageOut:
        return self._get(m.PackageOut, f"/accounts/{account}/registry/groups/{group}/packages/{version}")

    def latest_package(self, account: str, group: str, status: str = "Approved") -> m.PackageOut:
        return self._get(m.PackageOut, f"/accounts/{account}/registry/groups/{group}/packages/latest",
                         status=status)

    def approve(self, account: str, group: str, version: int, comment: str = "") -> m.PackageOut:
        return self._decide("approve", account, group, version, comment)

    def reject(self, account: str, group: str, version: int, comment: str = "") -> m.PackageOut:
        return self._decide("reject", account, group, version, comment)

    def _decide(self, verb: str, account: str, group: str, version: int, comment: str) -> m.PackageOut:
        return self._send("POST", m.PackageOut,
                          f"/accounts/{account}/registry/groups/{group}/packages/{version}/{verb}",
                          m.DecisionIn(comment=comment))

    # --- model cards -----------------------------------------------------------------------

    def model_card(self, account: str, group: str, version: int | None = None) -> m.ModelCardOut:
        """A group's card: the latest version, or the one numbered ``version``."""
        return self._get(m.ModelCardOut, f"/accounts/{account}/cards/{group}", version=version)

    def model_cards(self, account: str) -> Iterator[m.ModelCardOut]:
        return self._pages(m.ModelCardOut, f"/accounts/{account}/cards")

    def edit_model_card(self, account: str, group: str, document: dict[str, Any], *, summary: str = "",
                        expected_version: int | None = None) -> m.ModelCardOut:
        """Write a new version from a card document (creating the card on a group's first edit).
        Pass ``expected_version``, the latest you read (0 for none), to be refused if it moved on."""
        body = m.CardEdit(document=document, summary=summary, expected_version=expected_version)
        return self._send("POST", m.ModelCardOut, f"/accounts/{account}/cards/{group}/versions", body)

    def submit_model_card(self, account: str, group: str, comment: str = "") -> m.ModelCardOut:
        return self._card_step("submit", account, group, m.CardComment(comment=comment))

    def approve_model_card(self, account: str, group: str, comment: str = "", *,
                           version: int | None = None) -> m.ModelCardOut:
        return self._card_step("approve", account, group, m.CardApprove(comment=comment, version=version))

    def reject_model_card(self, account: str, group: str, comment: str) -> m.ModelCardOut:
        return self._card_step("reject", account, group, m.CardComment(comment=comment))

    def archive_model_card(self, account: str, group: str, comment: str = "") -> m.ModelCardOut:
        return self._card_step("archive", account, group, m.CardComment(comment=comment))

    def _card_step(self, verb: str, account: str, group: str, body: BaseModel) -> m.ModelCardOut:
        return self._send("POST", m.ModelCardOut, f"/accounts/{account}/cards/{group}/{verb}", body)

    def export_model_card(self, account: str, group: str, export_format: str = "markdown", *,
                          version: int | None = None) -> str:
        """The card as ``markdown``, a standalone ``html`` page, or ``json`` text."""
        params: dict[str, Any] = {"format": export_format}
        if version is not None:
            params["version"] = version
        return self._request("GET", f"/api/v1/accounts/{account}/cards/{group}/export", params=params).text
    # --- governed data ---------------------------------------------------------------------

    def register_dataset(self, account: str, name: str, source: bytes | BinaryIO | Path, *,
                         data_format: str = "csv", description: str = "") -> m.DatasetVersionOut:
        """Stream a CSV or Parquet file into a data-governance account as the dataset's next
        version (the first creates the dataset, owned by you); the server profiles it."""
        if isinstance(source, Path):
            with source.open("rb") as f:
                return self.register_dataset(account, name, f, data_format=data_format,
                                             description=description)
        content: bytes | Iterator[bytes] = source if isinstance(source, bytes) else _read_chunks(source)
        params = {"name": name, "format": data_format, "description": description}
        response = self._request("POST", f"/api/v1/accounts/{account}/data/datasets", content=content,
                                 params=params, headers={"content-type": "application/octet-stream"})
        return self._parse(m.DatasetVersionOut, response)

    def datasets(self, account: str) -> Iterator[m.DatasetOut]:
        return self._pages(m.DatasetOut, f"/accounts/{account}/data/datasets")

    def dataset(self, account: str, name: str) -> m.DatasetOut:
        return self._get(m.DatasetOut, f"/accounts/{account}/data/datasets/{name}")

    def dataset_versions(self, account: str, name: str) -> Iterator[m.DatasetVersionOut]:
        return self._pages(m.DatasetVersionOut, f"/accounts/{account}/data/datasets/{name}/versions")

    def dataset_version(self, account: str, name: str, version: int | None = None) -> m.DatasetVersionOut:
        """One version, or the latest when ``version`` is None."""
        return self._get(m.DatasetVersionOut,
                         f"/accounts/{account}/data/datasets/{name}/versions/{version or 'latest'}")

    def subscribe(self, account: str, dataset: str, *, subscriber: str, reason: str,
                  project: str | None = None) -> m.SubscriptionOut:
        """Ask ``account``'s owner of ``dataset`` for reads by the ``subscriber`` account."""
        body = m.SubscriptionCreate(subscriber=subscriber, reason=reason, project=project)
        return self._send("POST", m.SubscriptionOut, f"/accounts/{account}/data/datasets/{dataset}/subscriptions",
                          body)

    def subscriptions(self, account: str, *, status: str | None = None,
                      dataset: str | None = None) -> Iterator[m.SubscriptionOut]:
        return self._pages(m.SubscriptionOut, f"/accounts/{account}/data/subscriptions", status=status,
                           dataset=dataset)

    def subscription(self, account: str, subscription_id: str) -> m.SubscriptionOut:
        return self._get(m.SubscriptionOut, f"/accounts/{account}/data/subscriptions/{subscription_id}")

    def approve_subscription(self, account: str, subscription_id: str, comment: str = "", *,
                             expires_in_seconds: int | None = None) -> m.SubscriptionOut:
        return self._decide_subscription("approve", account, subscription_id, comment, expires_in_seconds)

    def reject_subscription(self, account: str, subscription_id: str, comment: str) -> m.SubscriptionOut:
        return self._decide_subscription("reject", account, subscription_id, comment, None)

    def revoke_subscription(self, account: str, subscription_id: str, comment: str = "") -> m.SubscriptionOut:
        return self._decide_subscription("revoke", account, subscription_id, comment, None)

    def _decide_subscription(self, verb: str, account: str, subscription_id: str, comment: str,
                             expires_in_seconds: int | None) -> m.SubscriptionOut:
        body = m.SubscriptionDecisionIn(comment=comment, expires_in_seconds=expires_in_seconds)
        return self._send("POST", m.SubscriptionOut,
                          f"/accounts/{account}/data/subscriptions/{subscription_id}/{verb}", body)

    def read_dataset(self, account: str, name: str, *, for_account: str, version: int | None = None,
                     run: str | None = None, project: str | None = None) -> Iterator[bytes]:
        """A version's bytes (the latest by default), read for ``for_account`` under its grant;
        the server records the read as lineage."""
        params = {k: v for k, v in {"for_account": for_account, "version": version, "run": run,
                                    "project": project}.items() if v is not None}
        try:
            with self._http.stream("GET", f"/api/v1/accounts/{account}/data/datasets/{name}/data",
                                   params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_payload(response.status_code, response.json())
                yield from response.iter_bytes()
        except httpx.TransportError as error:
            raise ConnectionFailed(f"cannot reach {self.server}: {error}") from None

    def dataset_reads(self, account: str, name: str) -> Iterator[m.DatasetReadOut]:
        return self._pages(m.DatasetReadOut, f"/accounts/{account}/data/datasets/{name}/reads")

    # --- catalog ---------------------------------------------------------------------------

    def create_portfolio(self, account: str, name: str, *, description: str = "",
                         provider: str = "") -> m.PortfolioOut:
        body = m.PortfolioCreate(name=name, description=description, provider=provider)
        return self._send("POST", m.PortfolioOut, f"/accounts/{account}/catalog/portfolios", body)

    def portfolios(self, account: str) -> Iterator[m.PortfolioOut]:
        return self._pages(m.PortfolioOut, f"/accounts/{account}/catalog/portfolios")

    def portfolio(self, account: str, name: str) -> m.PortfolioDetail:
        return self._get(m.PortfolioDetail, f"/accounts/{account}/catalog/portfolios/{name}")

    def publish(self, account: str, portfolio: str, archive: bytes | BinaryIO | Path, *,
                repository: str | None = None, ref: str | None = None, commit: str | None = None,
                path: str | None = None) -> m.ProductVersionOut:
        """Publish a template from a tar.gz of its folder; for a git source name the repository,
        the ref, the commit it resolved to and the template's folder in the archive."""
        if isinstance(archive, Path):
            with archive.open("rb") as f:
                return self.publish(account, portfolio, f, repository=repository, ref=ref, commit=commit,
                                    path=path)
        content: bytes | Iterator[bytes] = archive if isinstance(archive, bytes) else _read_chunks(archive)
        params = {k: v for k, v in {"repository": repository, "ref": ref, "commit": commit, "path": path}.items()
                  if v is not None}
        response = self._request("POST", f"/api/v1/accounts/{account}/catalog/portfolios/{portfolio}/publish",
                                 content=content, params=params, headers={"content-type": "application/gzip"})
        return self._parse(m.ProductVersionOut, response)

    def products(self, account: str, *, portfolio: str | None = None) -> Iterator[m.ProductOut]:
        return self._pages(m.ProductOut, f"/accounts/{account}/catalog/products", portfolio=portfolio)

    def product(self, account: str, name: str) -> m.ProductOut:
        return self._get(m.ProductOut, f"/accounts/{account}/catalog/products/{name}")

    def product_versions(self, account: str, product: str) -> Iterator[m.ProductVersionOut]:
        return self._pages(m.ProductVersionOut, f"/accounts/{account}/catalog/products/{product}/versions")

    def product_version(self, account: str, product: str, version: int) -> m.ProductVersionOut:
        return self._get(m.ProductVersionOut, f"/accounts/{account}/catalog/products/{product}/versions/{version}")

    def download_product_file(self, account: str, product: str, version: int, path: str) -> Iterator[bytes]:
        url = f"/api/v1/accounts/{account}/catalog/products/{product}/versions/{version}/files/{quote(path)}"
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_payload(response.status_code, response.json())
                yield from response.iter_bytes()
        except httpx.TransportError as error:
            raise ConnectionFailed(f"cannot reach {self.server}: {error}") from None

    def share_portfolio(self, account: str, portfolio: str, target: str) -> m.ShareOut:
        """Share with ``ou:<unit>`` (every account in it or below it) or with one account."""
        return self._send("POST", m.ShareOut, f"/accounts/{account}/catalog/portfolios/{portfolio}/shares",
                          m.ShareIn(target=target))

    def unshare_portfolio(self, account: str, portfolio: str, target: str) -> m.ShareOut:
        return self._send("DELETE", m.ShareOut,
                          f"/accounts/{account}/catalog/portfolios/{portfolio}/shares/{quote(target, safe='')}")

    def grant_portfolio(self, account: str, portfolio: str, pattern: str) -> m.PortfolioGrantOut:
        """Let roles whose name matches ``pattern`` (fnmatch: ``*-data-scientist``) launch its products."""
        return self._send("POST", m.PortfolioGrantOut, f"/accounts/{account}/catalog/portfolios/{portfolio}/grants",
                          m.GrantIn(pattern=pattern))

    def revoke_portfolio_grant(self, account: str, portfolio: str, pattern: str) -> m.PortfolioGrantOut:
        return self._send("DELETE", m.PortfolioGrantOut,
                          f"/accounts/{account}/catalog/portfolios/{portfolio}/grants/{quote(pattern, safe='')}")

    def imported(self, account: str) -> m.ImportedOut:
        """The portfolios shared with ``account`` and what the caller's roles there may launch."""
        return self._get(m.ImportedOut, f"/accounts/{account}/catalog/imported")

    # --- projects and workspaces ------------------------------------------------------------

    def create_project(self, account: str, name: str, product: str, *, parameters: dict[str, Any] | None = None,
                       version: int | None = None, workspace: str | None = None) -> m.ProjectOut:
        """Launch ``product`` as project ``name``; text parameters are read as JSON where the schema wants."""
        body = m.ProjectCreate(name=name, product=product, version=version, workspace=workspace,
                               parameters=parameters or {})
        return self._send("POST", m.ProjectOut, f"/accounts/{account}/projects", body)

    def projects(self, account: str) -> Iterator[m.ProjectOut]:
        return self._pages(m.ProjectOut, f"/accounts/{account}/projects")

    def project(self, account: str, name: str) -> m.ProjectOut:
        return self._get(m.ProjectOut, f"/accounts/{account}/projects/{name}")

    def update_project(self, account: str, name: str, *, version: int | None = None,
                       parameters: dict[str, Any] | None = None) -> m.ProjectOut:
        body = m.ProjectUpdateIn(version=version, parameters=parameters or {})
        return self._send("POST", m.ProjectOut, f"/accounts/{account}/projects/{name}/update", body)

    def terminate_project(self, account: str, name: str) -> m.ProjectOut:
        return self._send("POST", m.ProjectOut, f"/accounts/{account}/projects/{name}/terminate")

    def create_workspace(self, account: str, name: str, product: str, *, parameters: dict[str, Any] | None = None,
                         version: int | None = None) -> m.WorkspaceOut:
        body = m.WorkspaceCreate(name=name, product=product, version=version, parameters=parameters or {})
        return self._send("POST", m.WorkspaceOut, f"/accounts/{account}/workspaces", body)

    def workspaces(self, account: str) -> Iterator[m.WorkspaceOut]:
        return self._pages(m.WorkspaceOut, f"/accounts/{account}/workspaces")

    def workspace(self, account: str, name: str) -> m.WorkspaceOut:
        return self._get(m.WorkspaceOut, f"/accounts/{account}/workspaces/{name}")

    def terminate_workspace(self, account: str, name: str) -> m.WorkspaceOut:
        return self._send("POST", m.WorkspaceOut, f"/accounts/{account}/workspaces/{name}/terminate")

    # --- audit -----------------------------------------------------------------------------

    # --- account vending ------------------------------------------------------------------------

    def request_account(self, account: str, *, ou: str, blueprint: str, reason: str, kind: str = "workload",
                        stage: str | None = None) -> m.AccountRequestOut:
        body = m.AccountRequestIn(account=account, ou=ou, kind=kind, stage=stage, blueprint=blueprint,
                                  reason=reason)
        return self._send("POST", m.AccountRequestOut, "/account-requests", body)

    def account_requests(self, *, status: str | None = None) -> Iterator[m.AccountRequestOut]:
        return self._pages(m.AccountRequestOut, "/account-requests", status=status)

    def account_request(self, request_id: str) -> m.AccountRequestOut:
        return self._get(m.AccountRequestOut, f"/account-requests/{request_id}")

    def approve_account_request(self, request_id: str, comment: str = "") -> m.AccountRequestOut:
        return self._send("POST", m.AccountRequestOut, f"/account-requests/{request_id}/approve",
                          m.AccountRequestDecision(comment=comment))

    def reject_account_request(self, request_id: str, comment: str) -> m.AccountRequestOut:
        return self._send("POST", m.AccountRequestOut, f"/account-requests/{request_id}/reject",
                          m.AccountRequestDecision(comment=comment))

    def audit_records(self, *, actor: str | None = None, account: str | None = None,
                      resource: str | None = None, action: str | None = None,
                      since: datetime | None = None, until: datetime | None = None) -> Iterator[m.AuditRecordOut]:
        return self._pages(m.AuditRecordOut, "/audit/records", actor=actor, account=account,
                           resource=resource, action=action,
                           since=since.isoformat() if since else None,
                           until=until.isoformat() if until else None)

    def audit_export(self, **filters: Any) -> Iterator[bytes]:
        """The matching records as JSON lines, streamed."""
        params = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None}
        try:
            with self._http.stream("GET", "/api/v1/audit/export", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_payload(response.status_code, response.json())
                for line in response.iter_lines():
                    if line:
                        yield line.encode() + b"\n"
        except httpx.TransportError as error:
            raise ConnectionFailed(f"cannot reach {self.server}: {error}") from None

    def audit_verify(self) -> m.VerifyOut:
        return self._send("POST", m.VerifyOut, "/audit/verify")

    # --- events -------------------------------------------------------------------------

    def event_rules(self, account: str) -> list[m.EventRuleOut]:
        return self._get(m.EventRuleList, f"/accounts/{account}/events/rules").items

    def deliveries(self, account: str, *, status: str | None = None) -> Iterator[m.DeliveryOut]:
        """The deliveries made by the rules on an account's bus, oldest first."""
        return self._pages(m.DeliveryOut, f"/accounts/{account}/events/deliveries", status=status)

    def dead_letters(self, account: str) -> Iterator[m.DeliveryOut]:
        """The account's dead-letter queue: deliveries that ran out of attempts or failed for good."""
        return self._pages(m.DeliveryOut, f"/accounts/{account}/events/dlq")

    def replay_delivery(self, account: str, delivery_id: str) -> m.DeliveryOut:
        return self._send("POST", m.DeliveryOut, f"/accounts/{account}/events/deliveries/{delivery_id}/replay")

    # --- pipelines ------------------------------------------------------------------------

    def create_pipeline(self, account: str, name: str, archive: bytes | BinaryIO) -> m.PipelineOut:
        """Create a pipeline (or its next version) from a tar.gz of its code with the definition
        at ``pipeline.yaml``."""
        content: bytes | Iterator[bytes] = archive if isinstance(archive, bytes) else _read_chunks(archive)
        response = self._request("POST", f"/api/v1/accounts/{account}/pipelines/{name}", content=content,
                                 headers={"content-type": "application/gzip"})
        return self._parse(m.PipelineOut, response)

    def pipelines(self, account: str) -> Iterator[m.PipelineOut]:
        return self._pages(m.PipelineOut, f"/accounts/{account}/pipelines")

    def pipeline(self, account: str, name: str) -> m.PipelineOut:
        return self._get(m.PipelineOut, f"/accounts/{account}/pipelines/{name}")

    def start_pipeline(self, account: str, name: str, parameters: dict[str, str] | None = None) -> m.PipelineRunOut:
        return self._send("POST", m.PipelineRunOut, f"/accounts/{account}/pipelines/{name}/runs",
                          m.PipelineRunStart(parameters=parameters or {}))

    def pipeline_runs(self, account: str, name: str) -> Iterator[m.PipelineRunOut]:
        """A pipeline's runs, newest first."""
        return self._pages(m.PipelineRunOut, f"/accounts/{account}/pipelines/{name}/runs")

    def pipeline_run(self, account: str, run_id: str) -> m.PipelineRunOut:
        return self._get(m.PipelineRunOut, f"/accounts/{account}/pipeline-runs/{run_id}")

    def cancel_pipeline_run(self, account: str, run_id: str) -> m.PipelineRunOut:
        return self._send("POST", m.PipelineRunOut, f"/accounts/{account}/pipeline-runs/{run_id}/cancel")

    def step_log(self, account: str, run_id: str, step: str, *, offset: int = 0) -> tuple[bytes, str]:
        """A step's log from ``offset`` on, and the step's status when it was read."""
        response = self._request("GET", f"/api/v1/accounts/{account}/pipeline-runs/{run_id}/steps/{step}/log",
                                 params={"offset": offset})
        return response.content, response.headers.get("x-charter-step-status", "")

    # --- endpoints ------------------------------------------------------------------------

    def deploy_endpoint(self, account: str, name: str, packages: list[str] | list[m.VariantIn], *,
                        replicas: int = 1, capture_percent: float = 0.0, reason: str = "") -> m.EndpointOut:
        """Create the endpoint or give it a new configuration revision (rolled out blue/green: it
        answers at once with the revision Updating). ``packages``: CRNs (equal weights) or variants."""
        variants = [v if isinstance(v, m.VariantIn) else m.VariantIn(package=v) for v in packages]
        return self._send("POST", m.EndpointOut, f"/accounts/{account}/endpoints/{name}",
                          m.EndpointDeploy(variants=variants, replicas=replicas, capture_percent=capture_percent,
                                           reason=reason))

    def endpoints(self, account: str) -> Iterator[m.EndpointOut]:
        return self._pages(m.EndpointOut, f"/accounts/{account}/endpoints")

    def endpoint(self, account: str, name: str) -> m.EndpointOut:
        return self._get(m.EndpointOut, f"/accounts/{account}/endpoints/{name}")

    def rollback_endpoint(self, account: str, name: str, *, reason: str = "") -> m.EndpointOut:
        return self._send("POST", m.EndpointOut, f"/accounts/{account}/endpoints/{name}/rollback",
                          m.EndpointChange(reason=reason))

    def delete_endpoint(self, account: str, name: str, *, reason: str = "") -> m.EndpointOut:
        return self._parse(m.EndpointOut, self._request("DELETE", f"/api/v1/accounts/{account}/endpoints/{name}",
                                                        params={"reason": reason}))

    def endpoint_captures(self, account: str, name: str) -> Iterator[m.CaptureOut]:
        return self._pages(m.CaptureOut, f"/accounts/{account}/endpoints/{name}/captures")

    def invoke_endpoint(self, account: str, name: str, payload: dict[str, Any]) -> m.InvocationOut:
        """Predictions: ``{"instances": [[...], ...]}`` or ``{"inputs": {"column": [...]}}``."""
        return self._parse(m.InvocationOut, self._request(
            "POST", f"/api/v1/accounts/{account}/endpoints/{name}/invocations", json=payload))

    def metrics(self) -> str:
        """The serving metrics, Prometheus text format."""
        return self._request("GET", "/metrics").text

    # --- deployments -------------------------------------------------------------------------

    def deployment_pipelines(self, account: str) -> Iterator[m.DeploymentPipelineOut]:
        return self._pages(m.DeploymentPipelineOut, f"/accounts/{account}/deployment-pipelines")

    def deployment_pipeline(self, account: str, name: str) -> m.DeploymentPipelineOut:
        return self._get(m.DeploymentPipelineOut, f"/accounts/{account}/deployment-pipelines/{name}")

    def deployment_executions(self, account: str, name: str) -> Iterator[m.DeploymentExecutionOut]:
        """A deployment pipeline's executions, newest first."""
        return self._pages(m.DeploymentExecutionOut, f"/accounts/{account}/deployment-pipelines/{name}/executions")

    def deployment_execution(self, account: str, name: str, execution: str | None = None) -> m.DeploymentExecutionOut:
        """One execution of a deployment pipeline (the latest when ``execution`` is None)."""
        return self._get(m.DeploymentExecutionOut,
                         f"/accounts/{account}/deployment-pipelines/{name}/executions/{execution or 'latest'}")

    def approve_deployment(self, account: str, name: str, comment: str,
                           execution: str | None = None) -> m.DeploymentExecutionOut:
        return self._send("POST", m.DeploymentExecutionOut, f"/accounts/{account}/deployment-pipelines/{name}/approve",
                          m.DeploymentDecision(comment=comment, execution=execution))

    def reject_deployment(self, account: str, name: str, comment: str,
                          execution: str | None = None) -> m.DeploymentExecutionOut:
        return self._send("POST", m.DeploymentExecutionOut, f"/accounts/{account}/deployment-pipelines/{name}/reject",
                          m.DeploymentDecision(comment=comment, execution=execution))

    def retry_deployment(self, account: str, name: str, execution: str | None = None) -> m.DeploymentExecutionOut:
        return self._send("POST", m.DeploymentExecutionOut, f"/accounts/{account}/deployment-pipelines/{name}/retry",
                          m.DeploymentAction(execution=execution))

    def rollback_deployment(self, account: str, name: str, reason: str,
                            execution: str | None = None) -> m.DeploymentExecutionOut:
        return self._send("POST", m.DeploymentExecutionOut,
                          f"/accounts/{account}/deployment-pipelines/{name}/rollback",
                          m.DeploymentRollback(reason=reason, execution=execution))
