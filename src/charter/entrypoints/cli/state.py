"""What every CLI command shares: the chosen profile, server, token and output format."""

from __future__ import annotations

import typer

from charter.client.client import Client
from charter.config import Settings
from charter.entrypoints.cli.output import Format
from charter.entrypoints.cli.profiles import ProfileStore
from charter.errors import ValidationError


class State:
    def __init__(self, profile: str | None, server: str | None, token: str | None, output: Format) -> None:
        self.profile, self.server, self.token, self.output = profile, server, token, output
        self.settings = Settings()

    def store(self) -> ProfileStore:
        return ProfileStore.load(self.settings.config_dir)

    def client(self, *, use_session: bool = True) -> Client:
        if self.server and self.token:
            return Client(self.server, self.token)
        _, profile = self.store().get(self.profile)
        token = self.token or profile.token
        if use_session and not self.token and profile.session is not None:
            if profile.session.expired():
                raise ValidationError(
                    f"the session as {profile.session.role} in {profile.session.account} has expired; "
                    "run `charter assume-role` again or `charter assume-role --clear`")
            token = profile.session.secret
        return Client(self.server or profile.server, token)


def state_of(ctx: typer.Context) -> State:
    return ctx.obj  # type: ignore[no-any-return]
