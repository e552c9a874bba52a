"""The products charter.yaml declares, published by ``charter apply -f FILE`` once the server has
applied the document: the server never reads a caller's path, so the CLI packs each folder
(relative to the file) and uploads it through the publish API. Identical content is refused by the
server as a Conflict naming the version that holds it: that product is unchanged."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from charter.client.client import Client
from charter.entrypoints.cli.catalog import SKIPPED, pack_directory
from charter.errors import Conflict, NotFound, ValidationError


@dataclass(frozen=True, slots=True)
class ProductOutcome:
    account: str
    portfolio: str
    path: str
    product: str
    outcome: str
    """``published``, ``unchanged``, or with --plan ``would-publish``."""
    version: int | None = None

    def describe(self) -> str:
        where = f"{self.account}/{self.portfolio}"
        if self.outcome == "published":
            return f"+ product {self.product} {self.version} published in {where} (from {self.path})"
        if self.outcome == "would-publish":
            return f"+ product {self.product} would be published in {where} (from {self.path})"
        return f"= product {self.product} unchanged in {where} (version {self.version} holds {self.path})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def declared_products(document: str) -> list[tuple[str, str, str]]:
    """(account, portfolio, path) for each product the document declares (already validated by the
    server when this runs)."""
    raw = yaml.safe_load(document)
    out = []
    for portfolio in (raw or {}).get("portfolios", []) or []:
        for product in portfolio.get("products", []) or []:
            out.append((str(portfolio["account"]), str(portfolio["name"]), str(product["path"])))
    return out


def declares_products(document: str) -> bool:
    try:
        return bool(declared_products(document))
    except (yaml.YAMLError, AttributeError, KeyError, TypeError):
        return False  # the server names what is wrong with the document


def _folder(base: Path, path: str) -> Path:
    return (base / path).resolve()


def check_folders(file: Path, document: str) -> None:
    """Before anything is applied: every declared product folder holds a product.yaml."""
    declared = declared_products(document)
    base = file.resolve().parent
    missing = [path for _, _, path in declared if not (_folder(base, path) / "product.yaml").is_file()]
    if missing:
        raise ValidationError(
            f"{file} was not applied: portfolios: no product.yaml in "
            + ", ".join(str(_folder(base, p)) for p in missing)
            + " (product folders are relative to the file; --skip-products applies the document only)",
            file=str(file), missing=missing)


def _local_digest(folder: Path) -> tuple[str, str]:
    """The product's name and the content digest the server would compute for the folder."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED)
        for name in filenames:
            if name in SKIPPED:
                continue
            path = Path(dirpath) / name
            lines.append((path.relative_to(folder).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest()))
    h = hashlib.sha256()
    for relative, digest in sorted(lines):
        h.update(f"{relative}\0{digest}\n".encode())
    spec = yaml.safe_load((folder / "product.yaml").read_text())
    return str(spec.get("name", "")) if isinstance(spec, dict) else "", h.hexdigest()


def _planned(client: Client, account: str, portfolio: str, path: str, folder: Path) -> ProductOutcome:
    name, digest = _local_digest(folder)
    try:
        versions = list(client.product_versions(account, name))
    except NotFound:
        versions = []
    same = next((v for v in versions if v.content_digest == digest and v.portfolio == portfolio), None)
    if same is not None:
        return ProductOutcome(account, portfolio, path, name, "unchanged", same.version)
    return ProductOutcome(account, portfolio, path, name, "would-publish")


def publish_declared(client: Client, file: Path, document: str, *, plan: bool) -> list[ProductOutcome]:
    base = file.resolve().parent
    outcomes = []
    for account, portfolio, path in declared_products(document):
        folder = _folder(base, path)
        if plan:
            outcomes.append(_planned(client, account, portfolio, path, folder))
            continue
        with tempfile.TemporaryFile() as archive:
            pack_directory(folder, archive)
            archive.seek(0)
            try:
                version = client.publish(account, portfolio, archive)
            except Conflict as conflict:
                number = conflict.details.get("version")
                if number is None:
                    raise
                outcomes.append(ProductOutcome(account, portfolio, path, str(conflict.details.get("product", "")),
                                               "unchanged", int(number)))
                continue
        outcomes.append(ProductOutcome(account, portfolio, path, version.product, "published", version.version))
    return outcomes
