"""``python -m schemas [PATH]``: write the table reference (``docs/tables.md``) from the declarations."""

from __future__ import annotations

import sys
from pathlib import Path

from schemas.tables import TABLES

HEADER = """# Tables

Generated from the declarations in `schemas/tables.py` by `python -m schemas` (a test checks that
this file is current). Tables are plain Delta folders under `<warehouse>/<schema>/<table>`,
registered as `<schema>.<table>` (or `<catalog>.<schema>.<table>`); every one is Delta protocol
reader 1 / writer 2 with no table features, so delta-rs and DuckDB read them (see
[operations](operations.md#other-readers)). `features` and `windows` also hold the columns a
config derives (one per aggregate and feature).
"""


def tables_markdown() -> str:
    """The whole table reference: a header, then one section per table in pipeline order."""
    return HEADER + "".join("\n" + t.markdown() for t in TABLES.values())


def main(argv: list[str]) -> int:
    """Write the reference to ``argv[0]`` (default ``docs/tables.md``)."""
    out = Path(argv[0] if argv else "docs/tables.md")
    out.write_text(tables_markdown(), encoding="utf-8")
    print(f"wrote {out} ({len(TABLES)} tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
