"""``netlab completion bash|zsh|fish``: the shell's completion script, from click."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from netlab.cli.base import cli

SHELLS = ("bash", "zsh", "fish")


@cli.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL: commands, options, and the names of
    labs, pods, nodes and Services (svc/NAME) of the running labs.

    \b
    Install it once:
      bash   netlab completion bash > ~/.local/share/bash-completion/completions/netlab
             (or: echo 'eval "$(netlab completion bash)"' >> ~/.bashrc)
      zsh    echo 'eval "$(netlab completion zsh)"' >> ~/.zshrc
      fish   netlab completion fish > ~/.config/fish/completions/netlab.fish

    Lab names and the pods, nodes and hosts of a lab complete as any user (read
    from /run/netns); Service names need root (the labs' state is root's).
    The script calls `netlab` itself, with _NETLAB_COMPLETE set.
    """
    cls = get_completion_class(shell)
    if cls is None:  # click knows these three
        raise click.UsageError(f"no completion for {shell}")
    script = cls(cli, {}, "netlab", "_NETLAB_COMPLETE").source()
    click.echo(script, nl=not script.endswith("\n"))
