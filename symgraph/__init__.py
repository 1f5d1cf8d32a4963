"""symgraph: record Python operations on symbolic values, replay them fast.

Build a graph by operating on symbolic values, pick inputs and outputs, and get
a model that replays the recorded operations on new values through generated,
straight-line Python code.

Example:
    >>> import symgraph
    >>> a = symgraph.CustomInput({1, 2, 3})
    >>> b = symgraph.CustomInput({3, 4})
    >>> model = symgraph.SymbolicModel((a, b), ((a | b) - {1}, a & b))
    >>> model({1, 5}, {5, 6})
    ({5, 6}, {5})
"""

from symgraph._backends import ENTRY_POINT_GROUP, Backend, backend_for, loaded_backends, register_backend
from symgraph._codegen import ConstantPool, GeneratedCode, emit_template, generate, register_emitter
from symgraph._compile import compile_generated
from symgraph._errors import GraphError, SymgraphError, TraceError
from symgraph._interpreter import interpret
from symgraph._model import Program, SymbolicModel, extend_outputs
from symgraph._networkx import to_networkx
from symgraph._node import Node
from symgraph._ops import Call, GetAttr, MethodCall, Operation, Operator, Placeholder, Slice, Unpack
from symgraph._plan import InputSpec, Plan, Step, build_plan, describe_value
from symgraph._summary import format_summary
from symgraph._symbolic import ArgumentCollector, SymbolicData, record, symbolic_class_for
from symgraph._templates import Const, DictT, ListT, NamedTupleT, Ref, SliceT, Template, TupleT
from symgraph._trace import CustomInput, add_to_graph

__version__ = "0.1.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArgumentCollector",
    "Backend",
    "Call",
    "Const",
    "ConstantPool",
    "CustomInput",
    "DictT",
    "GeneratedCode",
    "GetAttr",
    "GraphError",
    "InputSpec",
    "ListT",
    "MethodCall",
    "NamedTupleT",
    "Node",
    "Operation",
    "Operator",
    "Placeholder",
    "Plan",
    "Program",
    "Ref",
    "Slice",
    "SliceT",
    "Step",
    "SymbolicData",
    "SymbolicModel",
    "SymgraphError",
    "Template",
    "TraceError",
    "TupleT",
    "Unpack",
    "__version__",
    "add_to_graph",
    "backend_for",
    "build_plan",
    "compile_generated",
    "describe_value",
    "emit_template",
    "extend_outputs",
    "format_summary",
    "generate",
    "interpret",
    "loaded_backends",
    "record",
    "register_backend",
    "register_emitter",
    "symbolic_class_for",
    "to_networkx",
]
