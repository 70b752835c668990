"""What the notebooks in ``notebooks/`` share: one context that works on Databricks and locally.

On Databricks the notebook's ``display``/``displayHTML`` and its widgets are used; as plain Python
(``python notebooks/01_explore_events.py``) tables print as text and HTML and figures are written
to files under ``reports/``. Figures are plotly, the same as the HTML report's.
The config comes from the ``conf`` widget, else ``$ADSPARK_CONF``, else ``conf/demo.yaml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from adspark.config import load_yaml

DEFAULT_CONF = "conf/demo.yaml"


@dataclass
class Notebook:
    """The session's handles: the table store, the parsed config and output helpers."""

    store: Any
    conf: dict
    conf_path: str
    _display: Callable[[Any], None] | None = None
    _display_html: Callable[[str], None] | None = None

    @property
    def spark(self) -> Any:
        return self.store.spark

    def sql(self, query: str, limit: int = 20) -> Any:
        """Run SQL on the adspark tables and show the first rows; returns the pandas frame."""
        frame = self.spark.sql(query).limit(limit).toPandas()
        self.show(frame)
        return frame

    def show(self, frame: Any) -> None:
        """Show a Spark or pandas frame (``display`` on Databricks, text elsewhere)."""
        if self._display is not None:
            self._display(frame)
            return
        import pandas as pd

        pdf = frame if isinstance(frame, pd.DataFrame) else frame.limit(20).toPandas()
        with pd.option_context("display.max_columns", 30, "display.width", 160, "display.max_colwidth", 40):
            print(pdf.to_string(index=False) if len(pdf) else "(no rows)")

    def html(self, document: str, name: str) -> Path | None:
        """Show an HTML document (``displayHTML`` on Databricks), else write ``reports/<name>``."""
        if self._display_html is not None:
            self._display_html(document)
            return None
        out = Path("reports") / name
        out.parent.mkdir(exist_ok=True)
        out.write_text(document, encoding="utf-8")
        print(f"wrote {out}")
        return out


    def figure(self, fig: Any, name: str) -> Path | None:
        """Show a plotly figure inline (Databricks renders plotly), else write ``reports/<name>.html``
        (plotly's JavaScript once beside it, ``reports/plotly.min.js``: opens with no network)."""
        if self._display_html is not None:  # pragma: no cover - Databricks only
            fig.show()
            return None
        out = Path("reports") / f"{name}.html"
        out.parent.mkdir(exist_ok=True)
        fig.write_html(out, include_plotlyjs="directory", config={"displaylogo": False})
        print(f"wrote {out}")
        return out


def open_notebook(namespace: Mapping[str, Any]) -> Notebook:
    """The notebook context, given the notebook's ``globals()``.

    Args:
        namespace: The notebook's globals (Databricks injects ``display``, ``displayHTML`` and
            ``dbutils`` there).
    """
    from adspark.cli import open_store

    conf_path = os.environ.get("ADSPARK_CONF", DEFAULT_CONF)
    dbutils = namespace.get("dbutils")
    if dbutils is not None:  # pragma: no cover - Databricks only
        dbutils.widgets.text("conf", conf_path)
        conf_path = dbutils.widgets.get("conf")
    conf = load_yaml(conf_path)
    store = open_store(conf, conf_path)
    return Notebook(store, conf, conf_path, namespace.get("display"), namespace.get("displayHTML"))
