"""The template catalog on fakes: publishing, product.yaml checks, archive safety, shares, grants
and what an account imports."""

from __future__ import annotations

import tarfile

import pytest

from charter.domain import commands as c
from charter.domain.catalog import Grant, Share
from charter.domain.identity import Identity
from charter.errors import Conflict, NotFound, PermissionDenied, TooLarge, ValidationError
from charter.services.handlers.catalog import Imported, ImportedEntry, UnpackedProduct
from tests.unit.catalog_support import pack, special, template, template_files
from tests.unit.conftest import EXAMPLE, World

SHARED = "ml-shared-services"


def _portfolio(world: World, priya: Identity, name: str = "ml-templates") -> None:
    world.bus.handle(c.CreatePortfolio(SHARED, name, "Model-building projects", "Platform team"), priya)


def _mine(view: Imported) -> ImportedEntry:
    """This module's portfolio among what an account imports (the example declares others)."""
    [entry] = [e for e in view.portfolios if e.imported.portfolio.name == "ml-templates"]
    return entry


def _publish(world: World, who: Identity, archive: bytes, portfolio: str = "ml-templates",
             **source: str) -> object:
    path = source.pop("path", None)
    unpacked: UnpackedProduct = world.bus.handle(
        c.UnpackProductArchive(SHARED, portfolio, [archive], 1 << 24, path), who)
    refs = tuple(c.ProductFileRef(f.path, f.sha256) for f in unpacked.files)
    return world.bus.handle(c.PublishProductVersion(SHARED, portfolio, refs, path=path, **source), who)


def _train_yaml(**changes: str) -> dict[str, bytes]:
    files = template_files("train-from-dataset")
    text = files["product.yaml"].decode()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    files["product.yaml"] = text.encode()
    return files


@pytest.fixture
def priya(world: World) -> Identity:
    who = world.token_for("priya")
    _portfolio(world, who)
    return who


def test_a_platform_engineer_publishes_a_template_as_version_1(world: World, priya: Identity) -> None:
    version = _publish(world, priya, template("train-from-dataset"))
    assert (version.product, version.version, version.source.kind) == ("train-from-dataset", 1, "directory")  # type: ignore[attr-defined]
    assert {f.path for f in version.files} == {"product.yaml", "README.md", "pipelines/train.yaml", *(
        f"steps/{n}.py" for n in ("__init__", "table", "ingest", "train", "evaluate", "register"))}  # type: ignore[attr-defined]
    for f in version.files:  # type: ignore[attr-defined]
        assert (SHARED, f.sha256) in world.artifacts.blobs
    event = world.store.data.outbox[-1]
    assert event.type == "charter.catalog.product.published" and event.data["version"] == 1
    assert world.store.data.records[-1].action == "catalog:PublishProductVersion"


def test_a_changed_template_becomes_version_2(world: World, priya: Identity) -> None:
    _publish(world, priya, template("train-from-dataset"))
    second = _publish(world, priya, pack(_train_yaml(**{"default: 0.7": "default: 0.8"})))
    assert second.version == 2  # type: ignore[attr-defined]
    assert second.spec.parameters["properties"]["threshold"]["default"] == 0.8  # type: ignore[attr-defined]


def test_publishing_identical_files_again_is_a_conflict_naming_the_version(world: World, priya: Identity) -> None:
    _publish(world, priya, template("train-from-dataset"))
    with pytest.raises(Conflict) as refused:
        _publish(world, priya, template("train-from-dataset"))
    assert refused.value.details["version"] == 1
    assert len(world.store.data.product_versions) == 1


def test_a_git_source_records_repository_ref_and_commit(world: World, priya: Identity) -> None:
    files = {f"templates/train/{k}": v for k, v in template_files("train-from-dataset").items()}
    version = _publish(world, priya, pack(files), repository="https://git.example/t.git", ref="main",
                       commit="a" * 40, path="templates/train")
    source = version.source  # type: ignore[attr-defined]
    assert (source.kind, source.ref, source.commit, source.path) == ("git", "main", "a" * 40, "templates/train")
    assert "product.yaml" in {f.path for f in version.files}  # type: ignore[attr-defined]


def test_an_invalid_parameter_type_is_named_by_its_path(world: World, priya: Identity) -> None:
    bad = _train_yaml(**{"      minLength: 1\n      description: The column to predict":
                         "      minLength: 1\n      description: The column to predict\n      type: strin"})
    bad["product.yaml"] = bad["product.yaml"].replace(b"    target:\n      type: string\n", b"    target:\n")
    with pytest.raises(ValidationError) as refused:
        _publish(world, priya, pack(bad))
    fields = [p["field"] for p in refused.value.details["problems"]]
    assert "product.yaml: parameters.properties.target.type" in fields
    assert "product.yaml: parameters.properties.target.type" in refused.value.message


def test_a_default_outside_its_own_schema_is_refused(world: World, priya: Identity) -> None:
    with pytest.raises(ValidationError) as refused:
        _publish(world, priya, pack(_train_yaml(**{"default: 0.7": "default: 1.5"})))
    assert [p["field"] for p in refused.value.details["problems"]] == [
        "product.yaml: parameters.properties.threshold.default"]


def test_a_placeholder_naming_no_parameter_is_refused(world: World, priya: Identity) -> None:
    with pytest.raises(ValidationError) as refused:
        _publish(world, priya, pack(_train_yaml(**{'dataset: "{{dataset}}"': 'dataset: "{{datset}}"'})))
    assert refused.value.details["problems"][0]["field"] == "product.yaml: provisions.pipelines[0].parameters.dataset"


def test_a_pipeline_definition_must_be_a_file_of_the_product(world: World, priya: Identity) -> None:
    files = template_files("train-from-dataset")
    del files["pipelines/train.yaml"]
    with pytest.raises(ValidationError) as refused:
        _publish(world, priya, pack(files))
    assert refused.value.details["problems"][0]["field"] == "product.yaml: provisions.pipelines[0].definition"


def test_unknown_fields_and_a_missing_kind_are_each_named(world: World, priya: Identity) -> None:
    files = _train_yaml(**{"kind: project\n": "colour: blue\n"})
    with pytest.raises(ValidationError) as refused:
        _publish(world, priya, pack(files))
    fields = {p["field"] for p in refused.value.details["problems"]}
    assert {"product.yaml: colour", "product.yaml: kind"} <= fields


def test_yaml_aliases_are_refused(world: World, priya: Identity) -> None:
    files = template_files("train-from-dataset")
    files["product.yaml"] += b"\nextra: &a [1]\nmore: *a\n"
    with pytest.raises(ValidationError, match="aliases"):
        _publish(world, priya, pack(files))


WORKSPACE = template_files("team-workspace")
HOSTILE = {
    "absolute path": (pack({**WORKSPACE, "/etc/cron.d/x": b"* * * * * root id"}), "absolute"),
    "dot-dot": (pack({**WORKSPACE, "seed/../../escape.sh": b"echo"}), "'..'"),
    "symlink": (pack(WORKSPACE, special("link", tarfile.SYMTYPE, "/etc/passwd")), "links"),
    "hardlink": (pack(WORKSPACE, special("hard", tarfile.LNKTYPE, "README.md")), "links"),
    "character device": (pack(WORKSPACE, special("tty", tarfile.CHRTYPE)), "devices"),
    "block device": (pack(WORKSPACE, special("disk", tarfile.BLKTYPE)), "devices"),
    "fifo": (pack(WORKSPACE, special("pipe", tarfile.FIFOTYPE)), "FIFOs"),
    "duplicate member": (pack(WORKSPACE, lambda tar: tar.addfile(tarfile.TarInfo("README.md"))), "twice"),
    "file and folder": (pack({**WORKSPACE, "README.md/x": b"x"}), "both a file and a folder"),
    "not utf-8": (pack({**WORKSPACE, "caf\xe9.txt": b"x"}, encoding="latin-1"), "UTF-8"),
    "not an archive": (b"PK\x03\x04 this is a zip", "gzip"),
    "no product.yaml": (pack({"README.md": b"hello"}), "no product.yaml"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_and_nothing_is_stored(world: World, priya: Identity, case: str) -> None:
    archive, reason = HOSTILE[case]
    with pytest.raises(ValidationError, match=reason):
        _publish(world, priya, archive)
    assert world.artifacts.blobs == {}
    assert world.store.data.products == {} and world.store.data.product_versions == {}
    assert world.store.data.records[-1].outcome == "failed"


def test_an_archive_over_the_size_limit_is_too_large(world: World, priya: Identity) -> None:
    with pytest.raises(TooLarge):
        world.bus.handle(c.UnpackProductArchive(SHARED, "ml-templates", [template("team-workspace")], 100), priya)
    assert world.artifacts.blobs == {}


def test_members_outside_the_git_path_are_refused(world: World, priya: Identity) -> None:
    files = {**{f"t/{k}": v for k, v in template_files("team-workspace").items()}, "other/x": b"x"}
    with pytest.raises(ValidationError, match="outside the template folder"):
        _publish(world, priya, pack(files), repository="r", ref="main", commit="b" * 40, path="t")
    assert world.artifacts.blobs == {}


def test_publishing_refers_only_to_files_uploaded_to_the_account(world: World, priya: Identity) -> None:
    with pytest.raises(ValidationError, match="was not uploaded"):
        world.bus.handle(c.PublishProductVersion(SHARED, "ml-templates", (
            c.ProductFileRef("product.yaml", "0" * 64),)), priya)


def test_only_platform_engineers_in_shared_services_manage_the_catalog(world: World, priya: Identity) -> None:
    with pytest.raises(PermissionDenied):  # priya is a platform engineer in ml-dev too, a workload account
        world.bus.handle(c.CreatePortfolio("ml-dev", "local"), priya)
    with pytest.raises(PermissionDenied):
        _publish(world, world.token_for("mei"), template("train-from-dataset"))
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", "ou:workloads"), world.token_for("lena"))
    assert world.artifacts.blobs == {}


def _shared_and_granted(world: World, priya: Identity, pattern: str = "lead-data-scientist") -> None:
    _publish(world, priya, template("train-from-dataset"))
    world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", "ou:workloads"), priya)
    world.bus.handle(c.GrantPortfolio(SHARED, "ml-templates", pattern), priya)


def test_members_of_a_shared_account_read_the_portfolio_and_others_do_not(world: World, priya: Identity) -> None:
    _publish(world, priya, template("train-from-dataset"))
    lena = world.token_for("lena")
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.GetProductVersion(SHARED, "train-from-dataset", 1), lena)
    world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", "ou:workloads"), priya)
    version = world.bus.handle(c.GetProductVersion(SHARED, "train-from-dataset", 1), lena)
    download = world.bus.handle(c.GetProductFile(SHARED, "train-from-dataset", 1, "README.md"), lena)
    assert b"".join(download.chunks) == template_files("train-from-dataset")["README.md"]
    assert version.spec.kind == "project"
    with pytest.raises(PermissionDenied):  # ml-test lies in ou:deployments
        world.bus.handle(c.GetProductVersion(SHARED, "train-from-dataset", 1),
                         world.session_for("mei", "ml-test", "ml-engineer"))
    world.bus.handle(c.UnsharePortfolio(SHARED, "ml-templates", "ou:workloads"), priya)
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.GetProductVersion(SHARED, "train-from-dataset", 1), lena)
    assert [e.type for e in world.store.data.outbox if e.type.startswith("charter.catalog.portfolio.")
            and e.subject.endswith("/ml-templates")] == [
        "charter.catalog.portfolio.created", "charter.catalog.portfolio.shared",
        "charter.catalog.portfolio.unshared"]


def test_a_share_to_an_ou_reaches_accounts_in_nested_units(world: World, priya: Identity) -> None:
    nested = EXAMPLE.read_text().replace(
        "  - name: deployments\n",
        "  - name: research\n    parent: workloads\n  - name: deep\n    parent: research\n  - name: deployments\n"
    ).replace("accounts:\n", "accounts:\n  - name: ml-lab\n    kind: workload\n    stage: dev\n    ou: deep\n"
    ).replace("roleBindings:\n", "roleBindings:\n  - {principal: sam, account: ml-lab, role: lead-data-scientist}\n")
    world.bus.handle(c.ApplyOrg(nested), world.admin)
    _shared_and_granted(world, priya)
    view: Imported = world.bus.handle(c.ListImportedPortfolios("ml-lab"), world.token_for("sam"))
    assert "ml-templates" in [e.imported.portfolio.name for e in view.portfolios]
    assert [p.name for p in _mine(view).launchable] == ["train-from-dataset"]
    assert Share(SHARED, "ml-templates", "ou:workloads").reaches("ml-lab", ["deep", "research", "workloads"])
    assert not Share(SHARED, "ml-templates", "ou:research").reaches("ml-dev", ["workloads"])


@pytest.mark.parametrize(("pattern", "role", "matches"), [
    ("lead-data-scientist", "lead-data-scientist", True),
    ("lead-data-scientist", "data-scientist", False),
    ("*-data-scientist", "lead-data-scientist", True),
    ("*-data-scientist", "data-scientist", False),
    ("*data-scientist", "data-scientist", True),
    ("ml-engineer", "ml-engineers", False),
    ("[lm]*", "ml-engineer", True),
])
def test_grant_patterns_match_role_names_as_fnmatch_does(pattern: str, role: str, matches: bool) -> None:
    assert Grant(SHARED, "p", pattern).matches(role) is matches


@pytest.mark.parametrize("pattern", ["", "Lead", "a/b", "x" * 64, "[abc", "ou:x"])
def test_an_invalid_grant_pattern_is_refused(world: World, priya: Identity, pattern: str) -> None:
    with pytest.raises(ValidationError):
        world.bus.handle(c.GrantPortfolio(SHARED, "ml-templates", pattern), priya)


def test_imported_lists_only_what_the_callers_role_may_launch(world: World, priya: Identity) -> None:
    _shared_and_granted(world, priya)
    lena_view: Imported = world.bus.handle(c.ListImportedPortfolios("ml-dev"), world.token_for("lena"))
    sam_view: Imported = world.bus.handle(c.ListImportedPortfolios("ml-dev"), world.token_for("sam"))
    assert lena_view.roles == ("lead-data-scientist",)
    assert [p.name for p in _mine(lena_view).launchable] == ["train-from-dataset"]
    assert "ml-templates" in [e.imported.portfolio.name for e in sam_view.portfolios]
    assert _mine(sam_view).launchable == ()


def test_a_session_launches_only_with_its_own_role(world: World, priya: Identity) -> None:
    _shared_and_granted(world, priya)
    as_engineer = world.session_for("priya", "ml-dev", "platform-engineer")
    view: Imported = world.bus.handle(c.ListImportedPortfolios("ml-dev"), as_engineer)
    assert view.roles == ("platform-engineer",) and _mine(view).launchable == ()


def test_an_account_not_shared_with_imports_nothing(world: World, priya: Identity) -> None:
    _shared_and_granted(world, priya)
    view: Imported = world.bus.handle(c.ListImportedPortfolios("ml-test"), world.token_for("mei"))
    assert view.portfolios == ()


def test_a_revoked_grant_launches_nothing(world: World, priya: Identity) -> None:
    _shared_and_granted(world, priya, "*-data-scientist")
    world.bus.handle(c.RevokePortfolioGrant(SHARED, "ml-templates", "*-data-scientist"), priya)
    assert world.store.data.outbox[-1].type == "charter.catalog.portfolio.grant-revoked"
    view: Imported = world.bus.handle(c.ListImportedPortfolios("ml-dev"), world.token_for("lena"))
    assert _mine(view).launchable == ()


@pytest.mark.parametrize("target", ["ou:nowhere", "ml-nowhere", "OU:Workloads"])
def test_a_share_names_a_known_other_account_or_unit(world: World, priya: Identity, target: str) -> None:
    with pytest.raises(ValidationError):
        world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", target), priya)


def test_sharing_twice_is_a_conflict_and_unsharing_what_is_not_shared_is_not_found(
        world: World, priya: Identity) -> None:
    world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", "ml-dev"), priya)
    with pytest.raises(Conflict):
        world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", "ml-dev"), priya)
    with pytest.raises(NotFound):
        world.bus.handle(c.UnsharePortfolio(SHARED, "ml-templates", "ml-test"), priya)


def test_a_product_stays_in_its_portfolio_and_keeps_its_kind(world: World, priya: Identity) -> None:
    _publish(world, priya, template("train-from-dataset"))
    _portfolio(world, priya, "other")
    with pytest.raises(Conflict, match="belongs to portfolio ml-templates"):
        _publish(world, priya, pack(_train_yaml(**{"default: 0.7": "default: 0.9"})), portfolio="other")
    with pytest.raises(ValidationError, match="kind"):
        _publish(world, priya, pack(_train_yaml(**{"kind: project": "kind: workspace"})))
