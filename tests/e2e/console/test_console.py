"""The personas at work in the console, clicked through in headless Chromium: signing in, the
inbox, a self-approval refused in the page, an approval with a comment, the pipeline DAG, and a
forged form refused."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charter.client import models as m
from charter.client.client import Client
from tests.models import skops_model
from tests.pipelines_support import CODE

GROUP = "console-e2e"
PIPELINE = "console-e2e"
DEFINITION = """
parameters:
  n: {default: "10"}
  threshold: {default: "0.5"}
steps:
  - {name: prepare, kind: processing, entry_point: "steps:prepare", inputs: {n: "param:n"}, outputs: [table]}
  - name: train
    kind: training
    entry_point: steps:train
    inputs: {table: "step:prepare.table"}
    outputs: {model: artifact, metrics: metrics}
  - name: gate
    kind: condition
    entry_point: steps:gate
    inputs: {metrics: "step:train.metrics", threshold: "param:threshold"}
"""
SignIn = Callable[[str], Any]
Shot = Callable[[Any, str], Path]


def _register(client: Client, auc: float) -> m.PackageOut:
    if GROUP not in [g.name for g in client.groups("ml-dev")]:
        client.create_group("ml-dev", GROUP, description="the console's e2e model")
    blob = client.upload_artifact("ml-dev", skops_model())
    return client.register_package("ml-dev", GROUP, m.PackageCreate(
        format="skops", artifacts=[m.ArtifactIn(path="model.skops", sha256=blob.sha256)], metrics={"auc": auc}))


@pytest.fixture(scope="module")
def packages(personas: dict[str, Client]) -> dict[str, m.PackageOut]:
    """One package lena registered (she may not approve it) and one sam registered (she may)."""
    return {"lena": _register(personas["lena"], 0.84), "sam": _register(personas["sam"], 0.91)}


def _item(pkg: m.PackageOut) -> str:
    return f"[data-testid=item-package-ml-dev-{pkg.group}-{pkg.version}]"


def test_signing_in_shows_who_you_are_and_the_role_switcher_assumes_a_role(
        signed_in: SignIn, shot: Shot) -> None:
    page = signed_in("lena")
    assert "lena" in page.inner_text("[data-testid=identity]")
    page.select_option("#switch-target", "ml-dev/lead-data-scientist")
    page.click("form[action='/switch'] button")
    identity = page.inner_text("[data-testid=identity]")
    assert "as lead-data-scientist in ml-dev" in " ".join(identity.split())
    assert "Assumed lead-data-scientist in ml-dev" in page.inner_text("main")
    shot(page, "inbox-lena")


def test_the_inbox_refuses_lena_the_approval_of_her_own_package_in_the_page(
        signed_in: SignIn, packages: dict[str, m.PackageOut], shot: Shot) -> None:
    page = signed_in("lena")
    own = page.locator(_item(packages["lena"]))
    assert own.count() == 1
    assert "no-self-approval" in own.locator("[data-testid=approve-refused]").inner_text()
    assert own.locator("button[value=approve]").count() == 0
    assert own.locator("button[value=reject]").count() == 1
    shot(page, "inbox-refused-self-approval")


def test_lena_approves_sams_package_from_the_inbox_with_a_comment(
        signed_in: SignIn, packages: dict[str, m.PackageOut], personas: dict[str, Client], shot: Shot) -> None:
    pkg = packages["sam"]
    page = signed_in("lena")
    item = page.locator(_item(pkg))
    item.locator("textarea[name=comment]").fill("beats the last one on AUC")
    item.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert page.locator(".flash").count() == 1, page.inner_text("main")
    assert f"Approved {GROUP}/{pkg.version} in ml-dev" in page.inner_text("main")
    assert page.locator(_item(pkg)).count() == 0
    decided = personas["lena"].package("ml-dev", GROUP, pkg.version)
    assert decided.status == "Approved" and decided.history[-1].comment == "beats the last one on AUC"
    page.goto(f"/accounts/ml-dev/registry/{GROUP}/{pkg.version}")
    assert "beats the last one on AUC" in page.inner_text("[data-testid=history]")
    shot(page, "package")
    page.goto(f"/accounts/ml-dev/registry/{GROUP}")
    page.click("text=Compare the chosen versions")
    assert "auc" in page.inner_text("[data-testid=metrics]")
    shot(page, "registry-group")


def test_a_form_with_a_forged_csrf_token_is_refused_and_decides_nothing(
        signed_in: SignIn, packages: dict[str, m.PackageOut], personas: dict[str, Client]) -> None:
    pkg = packages["lena"]
    page = signed_in("lena")
    form = page.locator(_item(pkg)).locator("form")
    form.locator("input[name=csrf]").evaluate("input => { input.value = 'forged-by-another-site'; }")
    form.locator("textarea[name=comment]").fill("not really me")
    form.locator("button[value=reject]").click()
    assert "CSRF" in page.inner_text("body")
    assert personas["lena"].package("ml-dev", GROUP, pkg.version).status == "PendingManualApproval"


def _archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, content in {"pipeline.yaml": DEFINITION.encode(), **CODE}.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_a_run_started_in_the_console_is_drawn_as_a_dag_with_its_step_states(
        signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    personas["lena"].create_pipeline("ml-dev", PIPELINE, _archive())
    page = signed_in("sam")
    page.goto(f"/accounts/ml-dev/pipelines/{PIPELINE}")
    page.fill("#parameters", "n=8")
    page.click("text=Start run")
    page.wait_for_selector("[data-testid=dag] svg")
    run_url = page.url
    deadline = time.monotonic() + 90
    while "Succeeded" not in page.inner_text("h1") and time.monotonic() < deadline:
        time.sleep(0.5)
        page.goto(run_url)
    assert "Succeeded" in page.inner_text("h1")
    dag = page.locator("[data-testid=dag] svg")
    assert [dag.locator(f"[data-node={name}]").count() for name in ("prepare", "train", "gate")] == [1, 1, 1]
    assert dag.locator("g.state-succeeded").count() == 3
    assert dag.locator("path.edge").count() == 2
    shot(page, "pipeline-run-dag")
    page.click("#step-prepare >> text=log")
    assert "preparing 8 rows" in page.inner_text("[data-testid=log]")


def test_the_main_pages_render_for_their_personas(signed_in: SignIn, packages: dict[str, m.PackageOut],
                                                  shot: Shot) -> None:
    admin = signed_in("admin")
    admin.goto("/org")
    assert "ml-dev" in admin.inner_text("[data-testid=org-tree]")
    shot(admin, "organization")
    auditor = signed_in("arthur")
    auditor.goto("/audit?action=registry:ApproveModelPackage")
    assert "denied" in auditor.inner_text("[data-testid=audit]") or "allowed" in auditor.inner_text("[data-testid=audit]")
    auditor.click("text=Verify the chain")
    assert "Verified:" in auditor.inner_text("[data-testid=verified]")
    shot(auditor, "audit")
    lena = signed_in("lena")
    for path, name in ((f"/accounts/ml-dev/registry/{GROUP}/{packages['sam'].version}/lineage", "lineage"),
                       ("/accounts/ml-dev/catalog", "catalog"), ("/accounts/ml-dev/data", "data"),
                       ("/accounts/ml-dev/projects", "projects")):
        response = lena.goto(path)
        assert response is not None and response.status == 200, path
        shot(lena, name)
