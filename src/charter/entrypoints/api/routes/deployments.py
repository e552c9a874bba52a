"""Deployment pipelines of the shared-services account, their executions and the people's decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep

router = APIRouter(tags=["deployments"])
AccountName = Annotated[str, Path(max_length=63)]
Name = Annotated[str, Path(max_length=63)]
PIPELINES = "/accounts/{account}/deployment-pipelines"
PIPELINE = PIPELINES + "/{name}"
EXECUTIONS = PIPELINE + "/executions"


@router.get(PIPELINES, response_model=m.Page[m.DeploymentPipelineOut])
def list_pipelines(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.DeploymentPipelineOut]:
    return convert.page(caller(c.ListDeploymentPipelines(account, page)), convert.deployment_pipeline)


@router.get(PIPELINE, response_model=m.DeploymentPipelineOut)
def get_pipeline(account: AccountName, name: Name, caller: CallerDep) -> m.DeploymentPipelineOut:
    return convert.deployment_pipeline(caller(c.GetDeploymentPipeline(account, name)))


@router.get(EXECUTIONS, response_model=m.Page[m.DeploymentExecutionOut])
def list_executions(account: AccountName, name: Name, caller: CallerDep,
                    page: PageDep) -> m.Page[m.DeploymentExecutionOut]:
    """The pipeline's executions, newest first."""
    return convert.page(caller(c.ListDeploymentExecutions(account, name, page)), convert.deployment_execution)


@router.get(EXECUTIONS + "/latest", response_model=m.DeploymentExecutionOut)
def latest_execution(account: AccountName, name: Name, caller: CallerDep) -> m.DeploymentExecutionOut:
    return convert.deployment_execution(caller(c.GetDeploymentExecution(account, name, None)))


@router.get(EXECUTIONS + "/{execution}", response_model=m.DeploymentExecutionOut)
def get_execution(account: AccountName, name: Name, execution: Annotated[str, Path(max_length=64)],
                  caller: CallerDep) -> m.DeploymentExecutionOut:
    return convert.deployment_execution(caller(c.GetDeploymentExecution(account, name, execution)))


@router.post(PIPELINE + "/approve", response_model=m.DeploymentExecutionOut)
def approve(account: AccountName, name: Name, body: m.DeploymentDecision, caller: CallerDep) -> m.DeploymentExecutionOut:
    """Approve the production stage (governance officers; not whoever approved the package
    centrally; only once the model card is Approved)."""
    return convert.deployment_execution(caller(c.DecideDeployment(account, name, "Approved", body.comment,
                                                                  body.execution)))


@router.post(PIPELINE + "/reject", response_model=m.DeploymentExecutionOut)
def reject(account: AccountName, name: Name, body: m.DeploymentDecision, caller: CallerDep) -> m.DeploymentExecutionOut:
    return convert.deployment_execution(caller(c.DecideDeployment(account, name, "Rejected", body.comment,
                                                                  body.execution)))


@router.post(PIPELINE + "/retry", response_model=m.DeploymentExecutionOut)
def retry(account: AccountName, name: Name, body: m.DeploymentAction, caller: CallerDep) -> m.DeploymentExecutionOut:
    """Run a failed execution again from the stage that failed."""
    return convert.deployment_execution(caller(c.RetryDeployment(account, name, body.execution)))


@router.post(PIPELINE + "/rollback", response_model=m.DeploymentExecutionOut)
def rollback(account: AccountName, name: Name, body: m.DeploymentRollback, caller: CallerDep,
             ) -> m.DeploymentExecutionOut:
    """Return production to the configuration it had before this execution's release."""
    return convert.deployment_execution(caller(c.RollbackDeployment(account, name, body.reason, body.execution)))
