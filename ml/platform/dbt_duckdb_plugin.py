"""dbt-duckdb plugin (profiles.yml, target ``local``): SQL functions for the landing checks.

The staging models' pre-hook (macros/read_landing_check_files.sql) checks the files a build is
about to load. Two things DuckDB's SQL cannot see are asked of Python here:

* ``fraudops_landing_unread(feed_folder)``: what a feed folder holds that the reader's glob
  ``<feed>/*/*.parquet`` does not read, as ``'<kind> <path>'`` strings: ``not_utf8`` (a
  name that is not UTF-8: DuckDB's glob skips it silently, so its rows would be lost),
  ``folder`` (a sub-folder of a day folder), ``broken_link`` (a symbolic link to nothing) and
  ``other`` (a file not ending in ``.parquet``, e.g. ``.PARQUET``). Names starting with ``.``
  or ``_`` are temporary or marker files by contract and are not listed. A non-UTF-8 byte is
  written as ``\\xNN``.
* ``fraudops_landing_file_error(path, columns)``: reads the contract columns of one file to the
  end, as the bronze model will, and returns DuckDB's first error line (null when it reads):
  a file whose magic bytes are intact but whose pages are corrupt fails deep in the reader
  with a message that does not name the file.

Nothing happens at import time; dbt-duckdb instantiates ``Plugin`` when it opens the warehouse.
"""

from __future__ import annotations

import os

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import sqltypes

_HIDDEN = (b".", b"_")


def _shown(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def _is_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _entries(folder: bytes) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def unread_entries(feed_folder: str) -> list[str]:
    """What ``feed_folder`` holds that ``<feed_folder>/*/*.parquet`` does not read."""
    found: list[str] = []

    def add(kind: str, entry: os.DirEntry) -> None:
        found.append(f"{kind} {_shown(entry.path)}")

    for day in _entries(os.fsencode(feed_folder)):
        if day.name.startswith(_HIDDEN):
            continue
        if not _is_utf8(day.name):
            add("not_utf8", day)
        elif not day.is_dir():
            # a loose .parquet file is an error of its own (read_landing_check_files)
            if day.is_symlink() and not os.path.exists(day.path):
                add("broken_link", day)
            elif not day.name.endswith(b".parquet"):
                add("other", day)
            continue
        for entry in _entries(day.path):
            if entry.name.startswith(_HIDDEN):
                continue
            if not _is_utf8(entry.name) or not _is_utf8(day.name):
                add("not_utf8", entry)
            elif entry.is_symlink() and not os.path.exists(entry.path):
                add("broken_link", entry)
            elif entry.is_dir():
                add("folder", entry)
            elif not entry.name.endswith(b".parquet"):
                add("other", entry)
    return found


def _glob_escaped(path: str) -> str:
    """``path`` as a DuckDB glob pattern matching only itself (see macros/landing_glob_escape.sql)."""
    return path.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


def file_error(path: str, columns: list[str]) -> str | None:
    """DuckDB's first error line reading ``columns`` (as text) of ``path`` to the end, or None."""
    schema = ", ".join(
        f"'{c}': {{name: '{c}', type: 'varchar', default_value: null}}" for c in columns
    )
    try:
        with duckdb.connect() as con:
            batches = con.execute(
                f"select * from read_parquet(?, schema = map {{{schema}}})", [_glob_escaped(path)]
            ).to_arrow_reader()
            for _ in batches:
                pass
    except duckdb.Error as exc:
        return (str(exc).splitlines() or [type(exc).__name__])[0]
    return None


class Plugin(BasePlugin):
    """Registers the landing check functions on every warehouse connection of dbt-duckdb."""

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        text = sqltypes.VARCHAR
        texts = duckdb.list_type(text)
        conn.create_function(
            "fraudops_landing_unread", unread_entries, [text], texts, side_effects=True
        )
        conn.create_function(
            "fraudops_landing_file_error",
            file_error,
            [text, texts],
            text,
            null_handling="special",
            side_effects=True,
        )
