"""`codexops keys init | show`: the operator's ed25519 key that signs full gates' attestations.

The private key stays outside the repository (~/.config/codexops/signing-key, or CODEX_SIGNING_KEY);
its public line goes into keys/trusted-keys.txt through a reviewed commit: that file is the trust root.
"""

from __future__ import annotations

from typing import Annotated

import typer

keys_cli = typer.Typer(help="The signing key of gate attestations (promotion evidence).", no_args_is_help=True)


def _owner(owner: str | None) -> str:
    from codexops.releases.history import actor

    name = owner or actor()
    if not name or any(c.isspace() for c in name):
        raise typer.BadParameter(f"--owner {name!r}: one word, e.g. a GitHub login")
    return name


@keys_cli.command("init")
def init(
    owner: Annotated[str | None, typer.Option(help="who owns the key (default: GITHUB_ACTOR or the user)")] = None,
) -> None:
    """Create the signing key (never overwrites one) and print the line to add to keys/trusted-keys.txt."""
    from codexops import signing  # here: every other command, `serve` included, does without it

    name = _owner(owner)  # checked before anything is written
    path = signing.signing_key_path()
    try:
        key = signing.create_key(path)
    except (signing.SigningError, OSError) as exc:
        typer.secho(f"could not run: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"==> signing key written to {path} (mode 0600; keep it out of the repository)")
    typer.echo(f"==> add this line to {signing.trusted_keys_path()} and commit it for review:")
    typer.echo(signing.public_line(key, name))


@keys_cli.command("show")
def show(owner: Annotated[str | None, typer.Option(help="the owner name printed on the line")] = None) -> None:
    """Print the public line of the signing key, and whether the repository trusts it."""
    from codexops import signing

    try:
        key = signing.load_key(signing.signing_key_path())
        trusted = {k.keyid for k in signing.read_trusted()}
    except signing.SigningError as exc:
        typer.secho(f"could not run: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(signing.public_line(key, _owner(owner)))
    keyid = signing.key_id(signing.public_bytes(key))
    where = signing.trusted_keys_path()
    if keyid in trusted:
        typer.echo(f"==> trusted: {where} lists it")
        return
    typer.secho(f"==> not trusted yet: add the line above to {where}", fg="yellow")
    raise typer.Exit(1)
