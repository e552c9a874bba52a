"""Benchmark 1: the authorization decision, against pycasbin in the same run.

Charter side (the real thing, nothing stubbed):
- a fresh SQLite store (WAL, as ``charter server`` makes it) in a temporary directory;
- the example organization (examples/acme/charter.yaml) applied through the message bus, exactly
  as ``charter demo`` does; its org policy joins Cedar's default set;
- real API tokens (and one assume-role session) minted and authenticated through the bus;
- a mix of twelve realistic requests (allows and denies: token minting, directory reads,
  assume-role, audit reads, the org's forbid on service principals in prod, a session trying to
  mint a token ...).

Measured:
- ``Authorizer.decide`` inside an open SqlUnitOfWork: what each API request pays for its
  decision. It reads the caller's role bindings, principal and org row from SQLite, then asks
  Cedar. This is the figure the issue's target (p50 <= 1 ms) applies to.
- the same, opening and closing a unit of work per decision (connection checkout, BEGIN
  IMMEDIATE, rollback), for context;
- ``CedarPolicyEngine.decide`` alone, with the very AuthzRequests the Authorizer built, compiled
  policies cached;
- recompiling the policy set after a revision change (the cold path), for context.

Peer: pycasbin's ``Enforcer.enforce`` on an RBAC-with-domains model (role per account, action
groups, deny overrides) with policies written to give the same answer on every request of the
mix; the run checks that it does. Charter / casbin ratios are printed for the engine call and
for the full decision.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    describe_ratio,
    log,
    machine,
    ratio,
    summarize,
    table,
    time_calls,
    version_of,
)

from charter.examples import acme_document

ROOT = Path(__file__).resolve().parents[1]
TARGET_P50_US = 1000.0


@dataclass
class MixItem:
    label: str
    principal: str          # key into the identities dict
    action: Any             # charter.domain.authz.Action
    resource: Any           # charter.domain.authz.Resource
    expected: bool
    casbin: tuple[str, str, str, str]  # (sub, dom, obj, act)


class CharterWorld:
    """A real platform on SQLite with the example org applied, and identities to decide for."""

    def __init__(self, directory: Path) -> None:
        from charter.bootstrap import bootstrap
        from charter.config import Settings
        from charter.domain import commands as c
        from charter.domain.identity import Identity

        self.settings = Settings(data_dir=directory, config_dir=directory / "config",
                                 database_url=None, audit_key_file=None)
        self.platform = bootstrap(self.settings)
        bus = self.platform.bus
        init = bus.handle(c.InitOrg("acme"), Identity("system", "bench"))
        admin = bus.authenticate(init.bearer)
        applied = bus.handle(c.ApplyOrg(acme_document(), "examples/acme/charter.yaml"), admin)
        self.changes_applied = len(applied.changes)
        self.identities: dict[str, Any] = {"admin": admin}
        self.token_ids: dict[str, str] = {}
        for name in ("sam", "lena", "mei", "promotion-bot", "arthur", "diego"):
            issued = bus.handle(c.CreateToken(name, description="bench"), admin)
            self.identities[name] = bus.authenticate(issued.bearer)
            self.token_ids[name] = issued.token.id
        session = bus.handle(c.AssumeRole("ml-prod", "ml-engineer"), self.identities["mei"])
        self.identities["mei#session"] = bus.authenticate(session.bearer)

    def uow(self) -> Any:
        """A unit of work from the platform's own factory: a SQLite transaction, as a command gets."""
        return self.platform.bus.uow_factory()

    def close(self) -> None:
        self.platform.close()


def request_mix(world: CharterWorld) -> list[MixItem]:
    from charter.domain.authz import Action as A
    from charter.services import resources as r

    with world.uow() as uow:
        ml_dev = uow.org.get_account("ml-dev")
        sam = uow.org.get_principal("sam")
    sam_token = world.token_ids["sam"]
    trail = r.audit_trail()
    assert ml_dev is not None and sam is not None
    return [
        MixItem("admin mints a token for sam", "admin", A.CREATE_TOKEN, r.token_of("sam"), True,
                ("admin", "management", "token/sam/*", str(A.CREATE_TOKEN))),
        MixItem("sam: whoami", "sam", A.WHOAMI, r.principal(sam), True,
                ("sam", "management", "principal/sam", str(A.WHOAMI))),
        MixItem("lena reads account ml-dev", "lena", A.READ_ACCOUNT, r.account(ml_dev), True,
                ("lena", "ml-dev", "account/ml-dev", str(A.READ_ACCOUNT))),
        MixItem("sam lists role bindings of ml-dev", "sam", A.LIST_ROLE_BINDINGS,
                r.role_bindings("ml-dev"), True,
                ("sam", "ml-dev", "role-binding/*", str(A.LIST_ROLE_BINDINGS))),
        MixItem("mei assumes ml-engineer in ml-prod", "mei", A.ASSUME_ROLE,
                r.session_for("ml-prod", "ml-engineer"), True,
                ("mei", "ml-prod", "role/ml-engineer", str(A.ASSUME_ROLE))),
        MixItem("promotion-bot assumes a role in ml-prod (denied)", "promotion-bot", A.ASSUME_ROLE,
                r.session_for("ml-prod", "ml-engineer"), False,
                ("promotion-bot", "ml-prod", "role/ml-engineer", str(A.ASSUME_ROLE))),
        MixItem("arthur (auditor) lists audit records", "arthur", A.LIST_AUDIT, trail, True,
                ("arthur", "management", "audit/trail", str(A.LIST_AUDIT))),
        MixItem("sam lists audit records (denied)", "sam", A.LIST_AUDIT, trail, False,
                ("sam", "management", "audit/trail", str(A.LIST_AUDIT))),
        MixItem("sam revokes his own token", "sam", A.REVOKE_TOKEN, r.token_of("sam", sam_token), True,
                ("sam", "management", f"token/sam/{sam_token}", str(A.REVOKE_TOKEN))),
        MixItem("diego mints a token (denied)", "diego", A.CREATE_TOKEN, r.token_of("diego"), False,
                ("diego", "management", "token/diego/*", str(A.CREATE_TOKEN))),
        MixItem("mei's session mints a token (denied)", "mei#session", A.CREATE_TOKEN,
                r.token_of("mei"), False,
                ("mei#session", "management", "token/mei/*", str(A.CREATE_TOKEN))),
        MixItem("sam lists role bindings of ml-prod (denied)", "sam", A.LIST_ROLE_BINDINGS,
                r.role_bindings("ml-prod"), False,
                ("sam", "ml-prod", "role-binding/*", str(A.LIST_ROLE_BINDINGS))),
    ]


# --- the peer: pycasbin ----------------------------------------------------------------------

CASBIN_MODEL = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act, eft

[role_definition]
g = _, _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.sub == "*" || g(r.sub, p.sub, r.dom)) && (p.dom == "*" || r.dom == p.dom) && keyMatch(r.obj, p.obj) && g2(r.act, p.act)
"""


def casbin_enforcer(document: str) -> Any:
    """Charter's default policy set and the example org, said in casbin's RBAC-with-domains terms.

    Role bindings become ``g`` (principal, role, account); action groups become ``g2``; each Cedar
    permit becomes ``allow`` lines and each forbid ``deny`` lines (deny overrides, as in Cedar).
    Cedar's attribute conditions are expressed the casbin way: a token's owner is part of its
    object name, "a member of some account" is a ``member`` role in every account, a service
    principal holds a ``service`` role, a session is its own subject holding a ``session`` role.
    """
    import casbin
    import yaml

    from charter.domain.authz import Action, ActionGroup

    spec = yaml.safe_load(document)
    accounts = [a["name"] for a in spec["accounts"]]
    services = {p["name"] for p in spec["principals"] if p.get("kind") == "service"}
    bindings = [(b["principal"], b["role"], b["account"]) for b in spec["roleBindings"]]
    roles = sorted({role for _, role, _ in bindings} | {"org-admin", "auditor"})
    members = sorted({p for p, _, _ in bindings})
    people = sorted({p["name"] for p in spec["principals"]})

    model = casbin.Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model, enable_log=False)

    policies: list[list[str]] = [["*", "*", "*", str(ActionGroup.SELF_SERVICE), "allow"]]
    policies += [[role, "*", f"role/{role}", str(Action.ASSUME_ROLE), "allow"] for role in roles]
    policies += [["org-admin", "management", "*", str(g), "allow"]
                 for g in (ActionGroup.MANAGE_ORG, ActionGroup.READ, ActionGroup.READ_DIRECTORY,
                           ActionGroup.READ_AUDIT)]
    policies.append(["member", "*", "*", str(ActionGroup.READ_DIRECTORY), "allow"])
    policies += [[role, "*", "*", str(ActionGroup.READ), "allow"] for role in roles]
    policies += [[role, "*", "*", str(ActionGroup.READ_AUDIT), "allow"]
                 for role in ("auditor", "governance-officer")]
    policies += [[person, "*", f"token/{person}/*", str(action), "allow"]
                 for person in people for action in (Action.LIST_TOKENS, Action.REVOKE_TOKEN)]
    policies.append(["session", "*", "*", str(Action.CREATE_TOKEN), "deny"])
    policies.append(["service", "*", "*", str(ActionGroup.MANAGE_ORG), "deny"])
    policies.append(["service", "ml-prod", "*", str(Action.ASSUME_ROLE), "deny"])  # the org's own
    enforcer.add_policies(policies)

    groupings = [[p, role, account] for p, role, account in bindings]
    groupings += [[p, "member", account] for p in members for account in accounts]
    groupings += [[p, "service", account] for p in sorted(services) for account in accounts]
    # mei's assume-role session: the session's one role in its one account, and "is a session".
    groupings += [["mei#session", "ml-engineer", "ml-prod"], ["mei#session", "member", "ml-prod"]]
    groupings += [["mei#session", "session", account] for account in accounts]
    enforcer.add_named_grouping_policies("g", groupings)
    enforcer.add_named_grouping_policies("g2", [
        [str(action), str(group)] for action in Action for group in action.groups
        if action is not Action.ASSUME_ROLE  # Cedar: self-service, except assume-role
    ])
    return enforcer


# --- running -----------------------------------------------------------------------------------

class _Recorder:
    """Wraps the engine once, to capture the exact AuthzRequests the Authorizer builds."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.calls: list[tuple[Any, int, Callable[[], Sequence[Any]]]] = []

    def decide(self, request: Any, revision: int, load: Callable[[], Sequence[Any]]) -> Any:
        self.calls.append((request, revision, load))
        return self.engine.decide(request, revision, load)


def run(iterations: int = 5000, budget_s: float = 15.0) -> dict[str, Any]:
    from charter.services.authorization import Authorizer

    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="charter-bench-authz-"))
    results: dict[str, Any] = {"target": {"metric": "authorizer.decide p50", "max_us": TARGET_P50_US}}
    try:
        world = CharterWorld(directory)
        mix = request_mix(world)
        authorizer: Authorizer = world.platform.bus.authorizer
        engine = authorizer.engine
        ids = world.identities
        n = len(mix)

        # Correctness first: every decision must be the expected one, or the timing is meaningless.
        recorder = _Recorder(engine)
        recording = Authorizer(recorder)
        with world.uow() as uow:
            for item in mix:
                decision = recording.decide(uow, ids[item.principal], item.action, item.resource)
                if decision.allowed != item.expected:
                    raise AssertionError(f"Charter decided {decision} for {item.label!r}")
            policies = tuple(uow.org.list_policies())
        engine_calls = [(req, rev, policies) for req, rev, _ in recorder.calls]
        policies_by_call = [(req, rev, (lambda p=pols: p)) for req, rev, pols in engine_calls]

        log(f"authz: measuring Authorizer.decide over a mix of {n} requests ...")
        with world.uow() as uow:
            def decide_in_uow(i: int) -> None:
                item = mix[i % n]
                authorizer.decide(uow, ids[item.principal], item.action, item.resource)
            decide_samples = time_calls(decide_in_uow, iterations=iterations, budget_s=budget_s,
                                        warmup=200)

        def decide_own_uow(i: int) -> None:
            item = mix[i % n]
            with world.uow() as uow:
                authorizer.decide(uow, ids[item.principal], item.action, item.resource)
        own_uow_samples = time_calls(decide_own_uow, iterations=iterations // 2, budget_s=budget_s / 2,
                                     warmup=100)

        log("authz: measuring CedarPolicyEngine.decide alone ...")

        def engine_only(i: int) -> None:
            req, rev, load = policies_by_call[i % n]
            engine.decide(req, rev, load)
        engine_samples = time_calls(engine_only, iterations=iterations, budget_s=budget_s, warmup=200)

        from charter.adapters.cedar import CedarPolicyEngine

        cold = CedarPolicyEngine()
        req0, _, pols0 = engine_calls[0]
        counter = iter(range(10**9))

        def recompile(_: int) -> None:
            cold.decide(req0, -1 - next(counter), lambda: pols0)  # a new revision every call
        cold_samples = time_calls(recompile, iterations=30, budget_s=budget_s / 3)

        results["charter"] = {
            "authorizer_decide": summarize(decide_samples, "us"),
            "authorizer_decide_own_uow": summarize(own_uow_samples, "us"),
            "engine_decide": summarize(engine_samples, "us"),
            "policy_recompile": summarize(cold_samples, "us"),
            "mix_size": n,
            "org_changes_applied": world.changes_applied,
            "policies_in_set": _policies_in_set(engine),
        }
        results["mix"] = [{"request": m.label, "allowed": m.expected} for m in mix]
        decide_p50 = results["charter"]["authorizer_decide"]["p50"]
        results["target_met"] = decide_p50 <= TARGET_P50_US
        world.close()

        # --- peer -----------------------------------------------------------------------
        results["peer"] = _run_casbin(mix, iterations, budget_s, results["charter"])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    return results


def _policies_in_set(engine: Any) -> int | None:
    """How many policies the cached set holds (reads a private attribute; None if it moved)."""
    compiled = getattr(engine, "_compiled", None)
    names = getattr(compiled, "names", None)
    return len(names) if isinstance(names, dict) else None


def _run_casbin(mix: list[MixItem], iterations: int, budget_s: float,
                charter: dict[str, Any]) -> dict[str, Any]:
    peer: dict[str, Any] = {"name": "pycasbin", "version": version_of("casbin")}
    try:
        import casbin  # noqa: F401
    except ImportError as error:
        peer["skipped"] = (f"casbin is not installed ({error}); "
                           "pip install -r benchmarks/requirements.txt")
        log(f"authz: peer skipped: {peer['skipped']}")
        return peer
    enforcer = casbin_enforcer(acme_document())
    mismatches = [m.label for m in mix if enforcer.enforce(*m.casbin) != m.expected]
    peer["equivalent_on_mix"] = not mismatches
    if mismatches:
        peer["mismatches"] = mismatches
        log(f"authz: WARNING casbin disagrees with Charter on: {mismatches}")
    peer["policy_lines"] = len(enforcer.get_policy())
    peer["grouping_lines"] = len(enforcer.get_named_grouping_policy("g")) + len(
        enforcer.get_named_grouping_policy("g2"))
    n = len(mix)
    log("authz: measuring casbin Enforcer.enforce ...")

    def enforce(i: int) -> None:
        enforcer.enforce(*mix[i % n].casbin)
    peer["enforce"] = summarize(time_calls(enforce, iterations=iterations, budget_s=budget_s,
                                           warmup=200), "us")
    casbin_p50 = peer["enforce"]["p50"]
    peer["ratios"] = {
        "engine_decide_p50 / casbin_enforce_p50": ratio(charter["engine_decide"]["p50"], casbin_p50),
        "authorizer_decide_p50 / casbin_enforce_p50": ratio(charter["authorizer_decide"]["p50"], casbin_p50),
        "engine_decide_p99 / casbin_enforce_p99": ratio(charter["engine_decide"]["p99"], peer["enforce"]["p99"]),
    }
    return peer


def report(results: dict[str, Any]) -> str:
    ch = results["charter"]
    rows = [
        ["Authorizer.decide (SQLite reads + Cedar)  [target]", ch["authorizer_decide"]],
        ["Authorizer.decide, own unit of work per call", ch["authorizer_decide_own_uow"]],
        ["CedarPolicyEngine.decide (cached policy set)", ch["engine_decide"]],
        ["policy set recompile (after a revision change)", ch["policy_recompile"]],
    ]
    peer = results["peer"]
    if "enforce" in peer:
        rows.append([f"peer: casbin {peer['version']} Enforcer.enforce (in memory)", peer["enforce"]])
    body = table(
        f"Authorization decision, microseconds (mix of {ch['mix_size']} requests; "
        f"target: Authorizer.decide p50 <= {TARGET_P50_US:.0f} us)",
        ["measurement", "n", "p50", "p90", "p99", "mean"],
        [[label, s["n"], s["p50"], s["p90"], s["p99"], s["mean"]] for label, s in rows],
    )
    lines = [body, ""]
    verdict = "MET" if results["target_met"] else "MISSED"
    lines.append(f"target Authorizer.decide p50 <= {TARGET_P50_US:.0f} us: {verdict} "
                 f"({ch['authorizer_decide']['p50']:.1f} us)")
    if "skipped" in peer:
        lines.append(f"peer casbin: SKIPPED - {peer['skipped']}")
    else:
        for name, value in peer["ratios"].items():
            lines.append(f"ratio {name}: {describe_ratio(value)}")
        if not peer.get("equivalent_on_mix"):
            lines.append(f"WARNING: casbin's answers differ on {peer.get('mismatches')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per measurement at most")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.iterations, args.budget)
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "authz": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
