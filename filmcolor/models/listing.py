"""The text of ``filmcolor weights list``: where filmcolor looks, and each third-party file."""

from __future__ import annotations

from filmcolor.models.catalog import WeightsEntry
from filmcolor.models.digests import store_path
from filmcolor.models.paths import (
    REPO_WEIGHTS_DIR,
    env_home,
    home_dir,
    search_dirs,
    user_cache_dir,
)


def weights_status_lines(catalog: dict[str, WeightsEntry]) -> list[str]:
    """The text of ``filmcolor weights list``: search folders, then one line per file."""
    home = env_home()
    lines = [
        "filmcolor looks for a model's weights file, in order:",
        "  1. --weights PATH     an explicit file, for one run",
        f"  2. $FILMCOLOR_HOME    {home if home else '(not set)'}",
        f"  3. shipped weights/   {REPO_WEIGHTS_DIR}",
        f"  4. ~/.cache/filmcolor {user_cache_dir()}",
        f"`filmcolor weights fetch NAME` saves into {home_dir()}",
        f"sha256 records (cached digests, files accepted where none is published): {store_path()}",
        "",
    ]
    for entry in catalog.values():
        found = next((d / entry.file for d in search_dirs() if (d / entry.file).is_file()), None)
        where = f"found {found}" if found else f"missing: filmcolor weights fetch {entry.model}"
        lines.append(f"{entry.model:<18} {entry.expected()}")
        lines.append(f"{'':<18} licence {entry.licence}; {entry.url}")
        lines.append(f"{'':<18} {where}")
    return lines
