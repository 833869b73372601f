"""The eval graph: load -> fan out over (regime, sample) with bounded concurrency -> run, score and
store each -> aggregate -> report.

Every regime runs on the same items. Each finished sample is appended to the run folder by its own
task, so the graph's state only carries text and paths; the report is rebuilt from the stored records,
which is also what `xthink report` does.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from evals.records import SampleRecord
from evals.report import Report, build_report, write_report
from evals.runner import EvalPlan, WorkItem, plan_work, run_item
from evals.run_store import RunStore
from graphs.api import ExtractThink
from tools.backends.batcher import expect_burst
from tools.long_lived import freeze_new_models


@dataclass
class EvalContext:
    plan: EvalPlan
    store: RunStore
    agent: ExtractThink


class EvalState(TypedDict, total=False):
    items: list[WorkItem]  # `load`: the work not done yet
    already_done: int  # `load`: records found in the folder before this run
    records: Annotated[list[SampleRecord], operator.add]  # `run_sample`: one per finished item
    report: Report  # `aggregate`
    report_dir: str  # `report`


class SampleState(TypedDict):
    item: WorkItem


def load(state: EvalState, runtime: Runtime[EvalContext]) -> dict:
    """The work not done yet; models loaded since the last eval are then kept out of the garbage collector's
    full passes (tools/long_lived.py), and the engines told how many samples start at once."""
    ctx = runtime.context
    items = plan_work(ctx.plan, ctx.store, ctx.agent)
    done = len(ctx.store.load())
    freeze_new_models()
    expect_burst(min(ctx.plan.concurrency, len(items)))
    return {"items": items, "already_done": done}


def fan_out(state: EvalState) -> list[Send] | str:
    items = state.get("items", [])
    return [Send("run_sample", {"item": item}) for item in items] if items else "aggregate"


def run_sample(state: SampleState, runtime: Runtime[EvalContext]) -> dict:
    ctx = runtime.context
    return {"records": [run_item(state["item"], ctx.plan, ctx.store, ctx.agent)]}


def aggregate(state: EvalState, runtime: Runtime[EvalContext]) -> dict:
    """Tables from every stored record (this run's and earlier ones'), exactly as `xthink report` builds them."""
    ctx = runtime.context
    return {"report": build_report([ctx.store.root], seed=ctx.plan.seed)}


def report(state: EvalState, runtime: Runtime[EvalContext]) -> dict:
    from evals.viewer.page import write_page

    out = runtime.context.store.root / "report"
    write_report(state["report"], out)
    write_page([runtime.context.store.root], out / "index.html", report=state["report"], plots_dir=out)
    return {"report_dir": str(out)}


def build() -> StateGraph:
    builder = StateGraph(EvalState, context_schema=EvalContext)
    builder.add_node("load", load)
    builder.add_node("run_sample", run_sample)
    builder.add_node("aggregate", aggregate)
    builder.add_node("report", report)
    builder.add_edge(START, "load")
    builder.add_conditional_edges("load", fan_out, ["run_sample", "aggregate"])
    builder.add_edge("run_sample", "aggregate")
    builder.add_edge("aggregate", "report")
    builder.add_edge("report", END)
    return builder


RECURSION_LIMIT = 10
graph = build().compile()
