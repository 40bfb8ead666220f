#!/usr/bin/env bash
# Write netlab's launcher for root's PATH (scripts/setup.sh): the console script's three lines, run by PYTHON
# with SIGINT, SIGTERM and SIGHUP blocked from its first instruction (coreutils' env --block-signal), so that a Ctrl-C
# or a SIGTERM (SIGHUP) while Python starts (its site, the script's imports) waits for netlab's first line, which says
# it in one line with 130, 143 or 129 (netlab/launch.py), not Python's traceback. A blocked signal is kept across
# exec; an ignored one would be lost. Costs one exec of env, well under a millisecond.
#   scripts/make_launcher.sh PYTHON OUT
# Python runs isolated (-I): it reads no PYTHON* variable (PYTHONPATH, PYTHONSTARTUP, PYTHONHOME...), and puts
# neither the script's folder nor the user's site on sys.path. Run as root (sudo -E, sudoers' env_keep, a root
# shell with a user's environment), `PYTHONPATH=/tmp/pp netlab` imported /tmp/pp/sitecustomize.py as root. The
# venv's site-packages and their .pth files (netlab's editable install) are read as ever; netlab.launch is found
# there, not beside the script.
# Exits 1, writing nothing, where that cannot be done (an env without --block-signal: coreutils < 8.31; a
# PYTHON path with blanks, or too long for a #! line): setup.sh then links the console script as before.
set -euo pipefail
python="$1" out="$2"
line="#!/usr/bin/env -S --block-signal=INT,TERM,HUP $python -I"
case "$python" in *[[:space:]\\]*) exit 1 ;; esac
[ "${#line}" -le 255 ] || exit 1
/usr/bin/env --block-signal=INT,TERM,HUP true 2>/dev/null || exit 1
tmp="$out.new.$$"
printf '%s\n' "$line" "# netlab's launcher, written by scripts/make_launcher.sh: SIGINT, SIGTERM and SIGHUP wait for netlab." \
  "import sys" "from netlab.launch import main" "sys.exit(main())" >"$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$out"
