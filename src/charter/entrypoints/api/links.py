"""OpenAPI links: which answer feeds which next request, declared once as a table and added to the
generated schema. A client (or a stateful fuzzer) follows them from a created or listed resource
to what can be done with it: create a group → register a package → read, approve or reject it;
issue a token → revoke it; register a dataset → subscribe → decide the subscription; deploy an
endpoint → read, roll back or delete it; an execution → approve, reject, retry it.

Every link names its target by ``operationId``; a link to an operation that does not exist (a
route renamed without its link) fails when the schema is generated, not silently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.entrypoints.api.middleware import API_PREFIX
from charter.entrypoints.api.routes import (
    account_requests,
    cards,
    catalog,
    datasets,
    deployments,
    endpoints,
    pipelines,
    projects,
    registry,
)

ACCOUNT = "$request.path.account"
"""The account of the source request: every link stays in the account it started from."""


@dataclass(frozen=True, slots=True)
class Link:
    source: tuple[str, str]
    """(method, path) of the operation whose answer the link follows."""
    status: int
    name: str
    target: tuple[str, str]
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None


def _p(method: str, path: str) -> tuple[str, str]:
    return method, API_PREFIX + path


GROUPS, GROUP = _p("get", registry.GROUPS), _p("get", registry.GROUPS + "/{group}")
CREATE_GROUP = _p("post", registry.GROUPS)
PACKAGES, REGISTER = _p("get", registry.PACKAGES), _p("post", registry.PACKAGES)
LATEST_PACKAGE = _p("get", registry.PACKAGES + "/latest")
PACKAGE = _p("get", registry.PACKAGES + "/{version}")
APPROVE_PACKAGE, REJECT_PACKAGE = _p("post", registry.PACKAGES + "/{version}/approve"), \
    _p("post", registry.PACKAGES + "/{version}/reject")
UPLOAD, ARTIFACT = _p("post", registry.ARTIFACTS), _p("get", registry.ARTIFACTS + "/{sha256}")
CARD = _p("get", cards.CARD)
CARD_ACTIONS = {a: _p("post", cards.CARD + "/" + a) for a in ("versions", "submit", "approve", "reject", "archive")}
CARD_LIST = _p("get", cards.CARDS)
DATASETS_LIST, DATASET = _p("get", datasets.DATASETS), _p("get", datasets.DATASET)
REGISTER_DATASET = _p("post", datasets.DATASETS)
DATASET_VERSIONS = _p("get", datasets.DATASET + "/versions")
SUBSCRIBE = _p("post", datasets.DATASET + "/subscriptions")
SUBSCRIPTIONS, SUBSCRIPTION = _p("get", datasets.SUBSCRIPTIONS), _p("get", datasets.SUBSCRIPTIONS + "/{subscription_id}")
SUBSCRIPTION_ACTIONS = {a: _p("post", datasets.SUBSCRIPTIONS + "/{subscription_id}/" + a)
                        for a in ("approve", "reject", "revoke")}
TOKENS, CREATE_TOKEN, REVOKE_TOKEN = _p("get", "/tokens"), _p("post", "/tokens"), _p("delete", "/tokens/{token_id}")
WHOAMI, PRINCIPALS, PRINCIPAL = _p("get", "/whoami"), _p("get", "/principals"), _p("get", "/principals/{name}")
ACCOUNTS, ACCOUNT_ONE = _p("get", "/accounts"), _p("get", "/accounts/{account}")
BINDINGS = _p("get", "/accounts/{account}/role-bindings")
ENDPOINTS_LIST, ENDPOINT = _p("get", endpoints.ENDPOINTS), _p("get", endpoints.ENDPOINT)
DEPLOY, DELETE_ENDPOINT = _p("post", endpoints.ENDPOINT), _p("delete", endpoints.ENDPOINT)
ROLLBACK_ENDPOINT, CAPTURES = _p("post", endpoints.ENDPOINT + "/rollback"), _p("get", endpoints.ENDPOINT + "/captures")
DEPLOYMENT_PIPELINES, DEPLOYMENT_PIPELINE = _p("get", deployments.PIPELINES), _p("get", deployments.PIPELINE)
EXECUTIONS, LATEST_EXECUTION = _p("get", deployments.EXECUTIONS), _p("get", deployments.EXECUTIONS + "/latest")
EXECUTION = _p("get", deployments.EXECUTIONS + "/{execution}")
DEPLOYMENT_ACTIONS = {a: _p("post", deployments.PIPELINE + "/" + a) for a in ("approve", "reject", "retry", "rollback")}
PORTFOLIOS, PORTFOLIO = _p("get", catalog.PORTFOLIOS), _p("get", catalog.PORTFOLIO)
CREATE_PORTFOLIO, SHARE = _p("post", catalog.PORTFOLIOS), _p("post", catalog.PORTFOLIO + "/shares")
UNSHARE = _p("delete", catalog.PORTFOLIO + "/shares/{target}")
GRANT, UNGRANT = _p("post", catalog.PORTFOLIO + "/grants"), _p("delete", catalog.PORTFOLIO + "/grants/{pattern}")
PRODUCTS, PRODUCT = _p("get", catalog.PRODUCTS), _p("get", catalog.PRODUCTS + "/{product}")
PRODUCT_VERSIONS, PRODUCT_VERSION = _p("get", catalog.VERSIONS), _p("get", catalog.VERSIONS + "/{version}")
PROJECTS_LIST, PROJECT = _p("get", projects.PROJECTS), _p("get", projects.PROJECTS + "/{name}")
LAUNCH = _p("post", projects.PROJECTS)
PROJECT_ACTIONS = {a: _p("post", projects.PROJECTS + "/{name}/" + a) for a in ("update", "terminate")}
WORKSPACES, WORKSPACE = _p("get", projects.WORKSPACES), _p("get", projects.WORKSPACES + "/{name}")
WORKSPACE_TERMINATE = _p("post", projects.WORKSPACES + "/{name}/terminate")
PIPELINES_LIST, PIPELINE = _p("get", pipelines.PIPELINES), _p("get", pipelines.PIPELINE)
START_RUN, RUNS = _p("post", pipelines.PIPELINE + "/runs"), _p("get", pipelines.PIPELINE + "/runs")
RUN, CANCEL_RUN = _p("get", pipelines.RUN), _p("post", pipelines.RUN + "/cancel")
REQUESTS, REQUEST = _p("get", account_requests.REQUESTS), _p("get", account_requests.REQUESTS + "/{request_id}")
CREATE_REQUEST = _p("post", account_requests.REQUESTS)
REQUEST_ACTIONS = {a: _p("post", account_requests.REQUESTS + "/{request_id}/" + a) for a in ("approve", "reject")}


def _fan(source: tuple[str, str], status: int, targets: Mapping[str, tuple[str, str]],
         parameters: Mapping[str, str], body: Mapping[str, Any] | None = None) -> list[Link]:
    return [Link(source, status, name, target, parameters, body) for name, target in targets.items()]


def _first(pointer: str) -> str:
    return f"$response.body#/items/0/{pointer}"


# --- the chains -------------------------------------------------------------------------------------

_group = {"account": "$response.body#/account", "group": "$response.body#/name"}
_package = {"account": "$response.body#/account", "group": "$response.body#/group",
            "version": "$response.body#/version"}
_package_targets = {"GetPackage": PACKAGE, "ApprovePackage": APPROVE_PACKAGE, "RejectPackage": REJECT_PACKAGE}
_in_group = {"account": ACCOUNT, "group": "$request.path.group"}
_subscription = {"account": ACCOUNT, "subscription_id": "$response.body#/id"}
_endpoint = {"account": "$response.body#/account", "name": "$response.body#/name"}
_endpoint_targets = {"GetEndpoint": ENDPOINT, "RedeployEndpoint": DEPLOY, "RollBackEndpoint": ROLLBACK_ENDPOINT,
                     "ListCaptures": CAPTURES, "DeleteEndpoint": DELETE_ENDPOINT}
_pipeline = {"account": ACCOUNT, "name": "$request.path.name"}
_execution_body = {"execution": "$response.body#/id"}

LINKS: tuple[Link, ...] = (
    # registry: group → packages → decisions, artifacts, endpoints
    *_fan(CREATE_GROUP, 201, {"GetGroup": GROUP, "RegisterPackage": REGISTER, "ListPackages": PACKAGES}, _group),
    *_fan(GROUPS, 200, {"GetGroup": GROUP, "ListPackages": PACKAGES},
          {"account": ACCOUNT, "group": _first("name")}),
    *_fan(GROUP, 200, {"ListPackages": PACKAGES, "RegisterPackage": REGISTER, "LatestPackage": LATEST_PACKAGE,
                       "GetCard": CARD}, _group),
    *_fan(REGISTER, 201, _package_targets, _package),
    Link(REGISTER, 201, "GetArtifact", ARTIFACT,
         {"account": "$response.body#/account", "sha256": "$response.body#/artifacts/0/sha256"}),
    *_fan(PACKAGES, 200, _package_targets, {**_in_group, "version": _first("version")}),
    *_fan(LATEST_PACKAGE, 200, _package_targets, _package),
    *_fan(PACKAGE, 200, {"ApprovePackage": APPROVE_PACKAGE, "RejectPackage": REJECT_PACKAGE}, _package),
    Link(PACKAGE, 200, "RegisterSameArtifacts", REGISTER, {"account": "$response.body#/account",
                                                           "group": "$response.body#/group"},
         {"format": "$response.body#/format", "artifacts": [{"path": "$response.body#/artifacts/0/path",
                                                              "sha256": "$response.body#/artifacts/0/sha256"}]}),
    Link(PACKAGE, 200, "DeployPackage", DEPLOY, {}, {"variants": [{"package": "$response.body#/crn"}]}),
    *_fan(APPROVE_PACKAGE, 200, {"GetPackage": PACKAGE, "RejectPackage": REJECT_PACKAGE}, _package),
    *_fan(REJECT_PACKAGE, 200, {"GetPackage": PACKAGE, "ApprovePackage": APPROVE_PACKAGE}, _package),
    Link(UPLOAD, 201, "GetArtifact", ARTIFACT, {"account": "$response.body#/account",
                                                "sha256": "$response.body#/sha256"}),
    # model cards: edit → submit → approve / reject → archive
    *_fan(CARD_LIST, 200, {"GetCard": CARD, **{f"{a.title()}Card": t for a, t in CARD_ACTIONS.items()}},
          {"account": ACCOUNT, "group": _first("group")}),
    *[link for source in (CARD, *CARD_ACTIONS.values()) for link in _fan(
        source, 201 if source == CARD_ACTIONS["versions"] else 200,
        {"GetCard": CARD, **{f"{a.title()}Card": t for a, t in CARD_ACTIONS.items()}},
        {"account": "$response.body#/account", "group": "$response.body#/group"})],
    # identity
    Link(CREATE_TOKEN, 201, "RevokeToken", REVOKE_TOKEN, {"token_id": "$response.body#/token/id"}),
    Link(CREATE_TOKEN, 201, "GetPrincipal", PRINCIPAL, {"name": "$response.body#/token/principal"}),
    Link(TOKENS, 200, "RevokeToken", REVOKE_TOKEN, {"token_id": _first("id")}),
    Link(WHOAMI, 200, "GetPrincipal", PRINCIPAL, {"name": "$response.body#/principal/name"}),
    Link(PRINCIPALS, 200, "GetPrincipal", PRINCIPAL, {"name": _first("name")}),
    *_fan(ACCOUNTS, 200, {"GetAccount": ACCOUNT_ONE, "ListRoleBindings": BINDINGS, "ListGroups": GROUPS,
                          "ListDatasets": DATASETS_LIST, "ListEndpoints": ENDPOINTS_LIST, "ListCards": CARD_LIST,
                          "ListDeploymentPipelines": DEPLOYMENT_PIPELINES, "ListProjects": PROJECTS_LIST,
                          "ListPortfolios": PORTFOLIOS, "ListProducts": PRODUCTS, "ListPipelines": PIPELINES_LIST,
                          "ListSubscriptions": SUBSCRIPTIONS},
          {"account": _first("name")}),
    # governed data: dataset → subscription → decisions
    *_fan(REGISTER_DATASET, 201, {"GetDataset": DATASET, "ListVersions": DATASET_VERSIONS, "Subscribe": SUBSCRIBE},
          {"account": "$response.body#/account", "dataset": "$response.body#/dataset"}),
    *_fan(DATASETS_LIST, 200, {"GetDataset": DATASET, "ListVersions": DATASET_VERSIONS, "Subscribe": SUBSCRIBE},
          {"account": ACCOUNT, "dataset": _first("name")}),
    *_fan(DATASET, 200, {"ListVersions": DATASET_VERSIONS, "Subscribe": SUBSCRIBE},
          {"account": "$response.body#/account", "dataset": "$response.body#/name"}),
    *_fan(SUBSCRIBE, 201, {"GetSubscription": SUBSCRIPTION, **{f"{a.title()}Subscription": t
                                                              for a, t in SUBSCRIPTION_ACTIONS.items()}},
          _subscription),
    *_fan(SUBSCRIPTIONS, 200, {"GetSubscription": SUBSCRIPTION, **{f"{a.title()}Subscription": t
                                                                  for a, t in SUBSCRIPTION_ACTIONS.items()}},
          {"account": ACCOUNT, "subscription_id": _first("id")}),
    *[link for source in (SUBSCRIPTION, *SUBSCRIPTION_ACTIONS.values()) for link in _fan(
        source, 200, {"GetSubscription": SUBSCRIPTION, **{f"{a.title()}Subscription": t
                                                          for a, t in SUBSCRIPTION_ACTIONS.items()}}, _subscription)],
    # endpoints
    *[link for source, status in ((DEPLOY, 202), (ROLLBACK_ENDPOINT, 202), (ENDPOINT, 200))
      for link in _fan(source, status, _endpoint_targets, _endpoint)],
    *_fan(ENDPOINTS_LIST, 200, _endpoint_targets, {"account": ACCOUNT, "name": _first("name")}),
    # deployments: pipeline → executions → the approval, retries, rollbacks
    *_fan(DEPLOYMENT_PIPELINES, 200, {"GetDeploymentPipeline": DEPLOYMENT_PIPELINE, "ListExecutions": EXECUTIONS,
                                      "LatestExecution": LATEST_EXECUTION},
          {"account": ACCOUNT, "name": _first("name")}),
    *_fan(DEPLOYMENT_PIPELINE, 200, {"ListExecutions": EXECUTIONS, "LatestExecution": LATEST_EXECUTION},
          {"account": "$response.body#/account", "name": "$response.body#/name"}),
    Link(EXECUTIONS, 200, "GetExecution", EXECUTION, {**_pipeline, "execution": _first("id")}),
    *[link for source in (LATEST_EXECUTION, EXECUTION, *DEPLOYMENT_ACTIONS.values()) for link in [
        Link(source, 200, "GetExecution", EXECUTION, {"account": "$response.body#/account",
                                                      "name": "$response.body#/pipeline",
                                                      "execution": "$response.body#/id"}),
        *_fan(source, 200, {f"{a.title()}Execution": t for a, t in DEPLOYMENT_ACTIONS.items()},
              {"account": "$response.body#/account", "name": "$response.body#/pipeline"}, _execution_body)]],
    # the catalog: portfolios → shares and grants; products → versions
    *_fan(CREATE_PORTFOLIO, 201, {"GetPortfolio": PORTFOLIO, "SharePortfolio": SHARE, "GrantPortfolio": GRANT},
          {"account": "$response.body#/account", "portfolio": "$response.body#/name"}),
    *_fan(PORTFOLIOS, 200, {"GetPortfolio": PORTFOLIO, "SharePortfolio": SHARE, "GrantPortfolio": GRANT},
          {"account": ACCOUNT, "portfolio": _first("name")}),
    Link(SHARE, 201, "Unshare", UNSHARE, {"account": "$response.body#/account",
                                          "portfolio": "$response.body#/portfolio",
                                          "target": "$response.body#/target"}),
    *_fan(PRODUCTS, 200, {"GetProduct": PRODUCT, "ListProductVersions": PRODUCT_VERSIONS},
          {"account": ACCOUNT, "product": _first("name")}),
    Link(PRODUCT, 200, "GetLatestVersion", PRODUCT_VERSION, {"account": "$response.body#/account",
                                                            "product": "$response.body#/name",
                                                            "version": "$response.body#/latest_version"}),
    # projects, workspaces, pipelines, account requests
    *_fan(LAUNCH, 201, {"GetProject": PROJECT, **{f"{a.title()}Project": t for a, t in PROJECT_ACTIONS.items()}},
          {"account": "$response.body#/account", "name": "$response.body#/name"}),
    *_fan(PROJECTS_LIST, 200, {"GetProject": PROJECT, **{f"{a.title()}Project": t
                                                         for a, t in PROJECT_ACTIONS.items()}},
          {"account": ACCOUNT, "name": _first("name")}),
    *_fan(WORKSPACES, 200, {"GetWorkspace": WORKSPACE, "TerminateWorkspace": WORKSPACE_TERMINATE},
          {"account": ACCOUNT, "name": _first("name")}),
    *_fan(PIPELINES_LIST, 200, {"GetPipeline": PIPELINE, "StartRun": START_RUN, "ListRuns": RUNS},
          {"account": ACCOUNT, "name": _first("name")}),
    *_fan(START_RUN, 201, {"GetRun": RUN, "CancelRun": CANCEL_RUN},
          {"account": "$response.body#/account", "run_id": "$response.body#/id"}),
    *_fan(RUNS, 200, {"GetRun": RUN, "CancelRun": CANCEL_RUN}, {"account": ACCOUNT, "run_id": _first("id")}),
    *_fan(CREATE_REQUEST, 201, {"GetAccountRequest": REQUEST, **{f"{a.title()}AccountRequest": t
                                                                 for a, t in REQUEST_ACTIONS.items()}},
          {"request_id": "$response.body#/id"}),
    *_fan(REQUESTS, 200, {"GetAccountRequest": REQUEST, **{f"{a.title()}AccountRequest": t
                                                           for a, t in REQUEST_ACTIONS.items()}},
          {"request_id": _first("id")}),
)


def add_links(schema: dict[str, Any], links: tuple[Link, ...] = LINKS) -> dict[str, Any]:
    """Add ``links`` to the responses of the generated ``schema`` (in place) and return it."""
    paths: dict[str, Any] = schema["paths"]

    def operation(key: tuple[str, str]) -> dict[str, Any]:
        method, path = key
        try:
            found: dict[str, Any] = paths[path][method]
        except KeyError:
            raise LookupError(f"an OpenAPI link names {method.upper()} {path}, which is no operation") from None
        return found

    for link in links:
        target = operation(link.target)
        responses = operation(link.source)["responses"]
        response = responses.get(str(link.status))
        if response is None:
            raise LookupError(f"an OpenAPI link follows a {link.status} of {link.source[0].upper()} "
                              f"{link.source[1]}, which documents no such answer")
        declared: dict[str, Any] = {"operationId": target["operationId"]}
        if link.parameters:
            declared["parameters"] = dict(link.parameters)
        if link.body is not None:
            declared["requestBody"] = dict(link.body)
        response.setdefault("links", {})[link.name] = declared
    return schema
