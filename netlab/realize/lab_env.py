"""The variable that names the lab a command acts on when none is given, as KUBECONFIG's context is kubectl's, and a
name read from it (realize.lab_name chooses the lab; realize.state names the variable in its errors)."""

from __future__ import annotations

LAB_ENV = "NETLAB_LAB"  # the default lab of every command, as KUBECONFIG's context is kubectl's


class EnvLabName(str):
    """A lab name read from ``$NETLAB_LAB`` (the CLI's default of --lab): the errors about it name the variable,
    so that `NETLAB_LAB=../x netlab status` does not blame a --lab that was not typed."""
