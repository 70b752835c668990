"""What an executed Spark query did, read from its physical plan (classic sessions only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


def _nodes(plan: Any) -> Iterator[Any]:
    """Every node of a JVM physical plan: adaptive plans' final plans, query stages' plans,
    children and subqueries (dynamic partition pruning's among them)."""
    stack = [plan]
    while stack:
        node = stack.pop()
        yield node
        kind = node.getClass().getSimpleName()
        if kind == "AdaptiveSparkPlanExec":
            stack.append(node.executedPlan())
        elif kind.endswith("QueryStageExec"):
            stack.append(node.plan())
        else:
            for seq in (node.children(), node.subqueries()):
                it = seq.iterator()
                while it.hasNext():
                    stack.append(it.next())


def partitions_read(df: "DataFrame", column: str) -> list[int]:
    """Runs ``df``'s own plan (counting its rows; an action on ``df`` plans anew) and returns the
    table partitions read by each of its file scans that outputs ``column`` (0 for a scan of an
    unpartitioned table)."""
    execution = df._jdf.queryExecution()
    execution.toRdd().count()
    out = []
    for node in _nodes(execution.executedPlan()):
        if node.getClass().getSimpleName() == "FileSourceScanExec" and f"{column}#" in node.output().toString():
            metric = node.metrics().get("numPartitions")
            out.append(int(metric.get().value()) if metric.isDefined() else 0)
    return out
