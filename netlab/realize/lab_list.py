"""Which labs a state folder holds (their folders, with or without a state file), and forgetting one once it is down.

Split from state_dir.py (where a lab's folder is and how it is written), whose names it reads at each call: a test,
or NETLAB_STATE_DIR, may point the state folder elsewhere.
"""

from __future__ import annotations

import os

from netlab.model.naming import lab_name_problem
from netlab.realize import lab_folder, state_dir


def forget(lab: str) -> list[str]:
    """Remove a lab's state directory after a complete teardown: netlab's own names in it alone
    (lab_removal.remove_own), each removed in the folder opened once; returns what it left, in words.

    The state file goes after everything else but the lock: a folder that holds a run's files and no state
    file is a lab whose state was lost (ownership.lost_state), never one on its way out; a forget cut short
    leaves the state, and ``down`` again finishes it."""
    from netlab.realize import lab_removal  # a lab's removal: not for `plan`, which reads states through here

    path = state_dir.lab_dir(lab, create=False)
    lab_folder.drop_dead_temps(path)  # a killed up's temporary folder beside it (lab_folder.make's)
    if not os.path.isdir(path):
        return []
    # The lock file goes last; holders of the lock keep their open fd.
    state_dir._checked.pop(path, None)
    left = lab_removal.remove_own(state_dir.STATE_ROOT, lab)
    return [f"{os.path.join(path, name)}: {why}; left alone (and the folder with it)" for name, why in left]


def _root_names() -> list[str]:
    """What the state folder holds; nothing when it is not there, or was removed since root_there looked
    (another command's drop_root_if_made): never a traceback in `netlab list`."""
    try:
        if not state_dir.root_there():
            return []
        state_dir._check_root()
        return os.listdir(state_dir.STATE_ROOT)
    except FileNotFoundError:
        return []


def known_labs() -> list[str]:
    """Labs with saved state, sorted."""
    # Anything at the state file's path (a directory, a symlink too): load_state says it is corrupt, and
    # `netlab list` shows it so, where a directory there hid the lab. A folder netlab did not make is no lab.
    root = state_dir.STATE_ROOT
    return sorted(name for name in _root_names()
                  if lab_name_problem(name) is None and os.path.lexists(os.path.join(root, name, state_dir.STATE_FILE))
                  and lab_folder.not_ours(os.path.join(root, name)) is None)


def state_temps(names: list[str]) -> list[str]:
    """Of the names in a lab's folder, the temporary files of state writes (write_atomic's), sorted."""
    return sorted(name for name in names if name.startswith(state_dir.STATE_FILE + state_dir.TEMP_INFIX))


def stateless_labs() -> list[str]:
    """Lab folders without a state file, sorted: labs on their way in or out, or whose state was lost
    (state_errors.lost_state tells)."""
    root = state_dir.STATE_ROOT
    return sorted(name for name in _root_names()
                  if lab_name_problem(name) is None and os.path.isdir(os.path.join(root, name))
                  and not os.path.lexists(os.path.join(root, name, state_dir.STATE_FILE))
                  and lab_folder.not_ours(os.path.join(root, name)) is None)
