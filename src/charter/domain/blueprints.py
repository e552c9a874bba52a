"""Blueprints: the baseline a vended account starts with (Control Tower's account blueprints).

A blueprint names the kind and stage of account it applies to and what the new account gets: role
bindings (a literal principal, or ``{{requester}}``), a bus policy, event rules (``{{account}}``
and ``{{requester}}`` filled in) and portfolio imports (shares of a portfolio to the new account).
Everything an approval creates from it carries ``managed_by = "blueprint:<name>"``, so later
``charter apply`` runs leave it alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from charter.domain.crn import CRN
from charter.domain.org import (
    MANAGEMENT_ACCOUNT,
    AccountKind,
    BusPolicy,
    EventRule,
    EventTarget,
    RoleBinding,
    Stage,
    TargetKind,
)

REQUESTER = "{{requester}}"
ACCOUNT = "{{account}}"
_PLACEHOLDER = re.compile(r"\{\{\s*(account|requester)\s*\}\}")


def render(text: str, account: str, requester: str) -> str:
    return _PLACEHOLDER.sub(lambda m: account if m.group(1) == "account" else requester, text)


@dataclass(frozen=True, slots=True, order=True)
class BlueprintBinding:
    principal: str
    """A principal's name, or ``{{requester}}``: whoever asked for the account."""
    role: str


@dataclass(frozen=True, slots=True, order=True)
class PortfolioImport:
    account: str
    portfolio: str

    @property
    def key(self) -> str:
        return f"{self.account}/{self.portfolio}"


@dataclass(frozen=True, slots=True)
class Baseline:
    """A blueprint rendered for one account and requester: what an approval creates."""

    bindings: tuple[RoleBinding, ...]
    bus_policy: BusPolicy | None
    rules: tuple[EventRule, ...]
    imports: tuple[PortfolioImport, ...]


@dataclass(frozen=True, slots=True)
class Blueprint:
    name: str
    kind: AccountKind
    stage: Stage | None = None
    description: str = ""
    bindings: tuple[BlueprintBinding, ...] = ()
    bus_allow: tuple[str, ...] | None = None
    """The new account's bus policy (accounts or ``ou:<unit>``), or None for no policy."""
    rules: tuple[EventRule, ...] = ()
    """Rules whose account, pattern and targets may hold ``{{account}}`` and ``{{requester}}``."""
    imports: tuple[PortfolioImport, ...] = ()

    @property
    def crn(self) -> CRN:
        return CRN(MANAGEMENT_ACCOUNT, "org", "blueprint", self.name)

    @property
    def manager(self) -> str:
        return f"blueprint:{self.name}"

    def applies_to(self, kind: AccountKind, stage: Stage | None) -> bool:
        return self.kind is kind and self.stage == stage

    def baseline(self, account: str, requester: str) -> Baseline:
        def r(text: str) -> str:
            return render(text, account, requester)

        bindings = tuple(sorted({RoleBinding(r(b.principal), account, b.role, self.manager)
                                 for b in self.bindings}))
        policy = (BusPolicy(account, tuple(r(a) for a in self.bus_allow), self.manager)
                  if self.bus_allow is not None else None)
        rules = tuple(
            EventRule(r(rule.account), r(rule.name), r(rule.pattern),
                      tuple(EventTarget(t.kind, r(t.value), r(t.run_as) if t.run_as else None)
                            for t in rule.targets),
                      rule.description, rule.enabled, self.manager)
            for rule in self.rules)
        return Baseline(bindings, policy, rules, self.imports)

    def to_document(self) -> dict[str, Any]:
        return {
            "bindings": [[b.principal, b.role] for b in self.bindings],
            "bus_allow": list(self.bus_allow) if self.bus_allow is not None else None,
            "rules": [{"account": x.account, "name": x.name, "pattern": x.pattern, "description": x.description,
                       "enabled": x.enabled,
                       "targets": [[str(t.kind), t.value, t.run_as] for t in x.targets]} for x in self.rules],
            "imports": [[i.account, i.portfolio] for i in self.imports],
        }

    @classmethod
    def from_document(cls, name: str, kind: str, stage: str | None, description: str,
                      doc: dict[str, Any]) -> Blueprint:
        allow = doc.get("bus_allow")
        return cls(
            name, AccountKind(kind), Stage(stage) if stage else None, description,
            tuple(BlueprintBinding(p, r) for p, r in doc.get("bindings", [])),
            tuple(allow) if allow is not None else None,
            tuple(EventRule(x["account"], x["name"], x["pattern"],
                            tuple(EventTarget(TargetKind(k), v, a) for k, v, a in x["targets"]),
                            x.get("description", ""), bool(x.get("enabled", True)))
                  for x in doc.get("rules", [])),
            tuple(PortfolioImport(a, p) for a, p in doc.get("imports", [])),
        )


def canonical_pattern(pattern: dict[str, Any]) -> str:
    return json.dumps(pattern, sort_keys=True, separators=(",", ":"))
