"""CLI profiles: named (server, token, session) triples in a JSON file readable only by its owner."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charter.errors import ValidationError


@dataclass
class SessionInfo:
    secret: str
    account: str
    role: str
    expires_at: str

    def expired(self) -> bool:
        return datetime.fromisoformat(self.expires_at) <= datetime.now(UTC)


@dataclass
class Profile:
    server: str
    token: str
    session: SessionInfo | None = None


@dataclass
class ProfileStore:
    path: Path
    default: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    @classmethod
    def load(cls, config_dir: Path) -> ProfileStore:
        path = config_dir / "profiles.json"
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (ValueError, OSError) as error:
            raise ValidationError(f"cannot read {path}: {error}") from None
        profiles = {}
        for name, data in raw.get("profiles", {}).items():
            session = data.get("session")
            profiles[name] = Profile(data["server"], data["token"],
                                     SessionInfo(**session) if session else None)
        return cls(path, raw.get("default"), profiles)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"default": self.default,
                       "profiles": {n: asdict(p) for n, p in sorted(self.profiles.items())}}, f, indent=2)
        os.replace(tmp, self.path)

    def get(self, name: str | None) -> tuple[str, Profile]:
        chosen = name or self.default
        if chosen is None or chosen not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ValidationError(
                f"no profile {chosen!r}; run `charter login --server URL --token T` (profiles: {known})"
                if chosen else "not logged in: run `charter login --server URL --token T`")
        return chosen, self.profiles[chosen]
