"""The graph IR: capture, evaluation, gradient graphs, passes, cost model and ``jit``."""

from pycograd.graph.autodiff import grad_graph, vjp_graph
from pycograd.graph.capture import CaptureError, capture
from pycograd.graph.cost import CostReport, cost_report
from pycograd.graph.ir import Graph, GraphInputError, GraphvizMissingError, Node, Value, eval_graph
from pycograd.graph.jit import JitFallbackWarning, jit
from pycograd.graph.passes import optimize

__all__ = ["CaptureError", "CostReport", "Graph", "GraphInputError", "GraphvizMissingError",
           "JitFallbackWarning", "Node", "Value", "capture", "cost_report", "eval_graph",
           "grad_graph", "jit", "optimize", "vjp_graph"]
