"""``netlab exec``'s words as kubectl users type them, put in netlab's order before click reads them.

kubectl's ``exec -it POD -c CONTAINER -- CMD`` and netlab's ``exec [--lab L] [-t FILE] NAME [-- CMD]`` share
``-t``: kubectl's is ``--tty``, netlab's (as in every netlab command) the topology file. What this module makes
of them, in order:

- ``-i``, ``--stdin``, ``--tty``, ``-it``, ``-ti``: kubectl's, and nothing to do: the command always has your
  standard input, and your terminal when you have one (netlab allocates none: it uses the one it runs on).
  ``--stdin=false``/``--tty=false`` are refused in one line (redirect the input instead).
- ``-t X`` before NAME: the topology file when a NAME follows it, as in netlab; when none does (``-t web --
  sh``, ``-t web`` alone), ``-t`` is kubectl's ``--tty`` and X the pod, unless X is a file here (then one line
  says that no pod follows). After NAME, ``-t X`` before a ``--`` is the topology file; ``-t`` followed by ``--``
  or another option is kubectl's.
- ``-c C``, ``-cC``, ``-c=C``, ``--container C``: the container, whose environment the command gets.
- ``-n``/``--namespace``: refused in one line (pod names are unique across a lab).
- options after NAME (before ``--``, or before the command's first word when there is no ``--``) are taken as
  before it, as kubectl takes them; any other option is refused in one line naming it.

The result is ``[--lab L] [-t FILE] [-c C] NAME [-- CMD...]`` (or ``NAME CMD...`` as given without ``--``).
"""

from __future__ import annotations

import os

from netlab.errors import UsageError

TTY_FLAGS = frozenset(("-i", "-t", "-it", "-ti", "--stdin", "--tty", "--stdin=true", "--tty=true", "-i=true",
                       "-t=true"))
FALSE_FLAGS = frozenset(("--stdin=false", "--tty=false", "-i=false", "-t=false"))
VALUED = {"--lab": "--lab", "--topology": "-t", "-c": "-c", "--container": "-c"}
HELP = frozenset(("-h", "--help"))
FORM = "netlab exec [--lab L] [-c CONTAINER] NAME -- COMMAND"


def _valued(word: str) -> tuple[str, str | None] | None:
    """(netlab's option, its value when given in the same word) of a word that takes a value; None otherwise."""
    name, eq, value = word.partition("=")
    if name in VALUED:
        return VALUED[name], value if eq else None
    if word.startswith("-c") and not word.startswith("--") and len(word) > 2:  # -cCONTAINER, as pflag takes it
        return "-c", word[2:]
    return None


def _no_name_follows(words: list[str], i: int) -> bool:
    """From ``words[i]`` on, past options and their values, comes ``--`` or the end: no NAME."""
    while i < len(words):
        word = words[i]
        if word == "--":
            return True
        if word in TTY_FLAGS or word in HELP:
            i += 1
        elif (valued := _valued(word)) is not None:
            i += 1 if valued[1] is not None else 2
        elif word.startswith("-") and word != "-":
            return False  # an option exec does not know: said where it is read
        else:
            return False
    return True


def _refused(word: str) -> UsageError:
    if word in FALSE_FLAGS:
        return UsageError(f"{word}: netlab exec always gives the command your standard input and terminal as they "
                          f"are; redirect them instead (`{FORM} </dev/null`)")
    if word.partition("=")[0] in ("-n", "--namespace") or (word.startswith("-n") and not word.startswith("--")):
        return UsageError(f"{word}: netlab exec takes no namespace: pod names are unique across a lab; "
                          f"write `{FORM}`")
    return UsageError(f"{word}: netlab exec has no such option; it takes --lab NAME, -t FILE, -c CONTAINER and "
                      f"kubectl's -i/-t (needless: it uses your terminal as it is): `{FORM}`")


def kubectl_forms(words: list[str]) -> list[str]:
    """exec's arguments as typed, in netlab's order (see the module); a one-line UsageError for what exec does
    not take."""
    opts: list[str] = []
    name: str | None = None
    rest: list[str] = []
    dashes = "--" in words
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            rest = words[i:]
            break
        if not word.startswith("-") or word == "-":
            if name is None:
                name = word
                i += 1
                continue
            rest = words[i:]  # the command, given without `--`
            break
        if word in HELP:
            opts.append(word)
        elif word == "-t" and i + 1 < len(words) and not words[i + 1].startswith("-"):
            value = words[i + 1]
            if name is None and _no_name_follows(words, i + 2):
                if os.path.isfile(value):
                    raise UsageError(f"-t {value}: netlab's -t is the topology file (kubectl's -t, a terminal, "
                                     f"netlab needs not), and no pod NAME follows it: `netlab exec -t {value} NAME "
                                     "-- COMMAND`")
                name = value  # kubectl's -t POD: the pod
            elif name is not None and not dashes:
                rest = words[i + 1:]  # kubectl's `exec POD -t CMD`: a terminal, then the command
                break
            else:
                opts += ["-t", value]
            i += 2
            continue
        elif word in TTY_FLAGS:
            pass  # kubectl's -i/-t: the command has your standard input and terminal as they are
        elif (valued := _valued(word)) is not None:
            option, value = valued
            if value is None:
                if i + 1 == len(words) or words[i + 1] == "--":
                    raise UsageError(f"{word} needs a value: `{FORM}`")
                value = words[i + 1]
                i += 1
            opts += [option, value]
        elif word.startswith("-t") and not word.startswith("--"):
            opts += ["-t", word[2:].removeprefix("=")]  # -tFILE, -t=FILE: netlab's, as click takes them
        else:
            raise _refused(word)
        i += 1
    return opts + ([name] if name is not None else []) + rest
