"""What backend and executor authors build on.

Users need only :mod:`symgraph`; this module is for code that extends it:

* **backends** (:class:`Backend`, :func:`register_backend`) tell symgraph which
  values they handle and which :class:`SymbolicData` subclass wraps them;
* **recording** (:func:`record`, :class:`ArgumentCollector`, the operations and
  templates) adds nodes to the graph;
* **code generation** (:func:`generate`, :class:`CodegenPolicy`,
  :func:`register_emitter`) turns plans into Python source;
* **executors** (:class:`Executor`, :func:`register_executor`) run plans;
* **saving** (:class:`OpCodec`, :class:`ConstantCodec`, :class:`ModelCodec` and
  their ``register_*`` functions) tells `symgraph.save` how to store what a backend adds.

Stability: every name listed in ``__all__`` is public and follows semantic
versioning from 1.0 on; before 1.0, a minor release may change them, and the
changelog says how. Operation payloads, the template classes and the plan's
fields are part of that contract, since plans are pickled. Names not listed here,
and every ``symgraph._*`` module, may change in any release.

Example:
    >>> import symgraph
    >>> from symgraph.plugin import GetAttr, record
    >>> x = symgraph.CustomInput(3 + 4j)
    >>> symgraph.SymbolicModel(x, record(GetAttr("imag"), (x.node,)))(1 + 2j)
    2.0
"""

from symgraph._allowlist import (
    Allowlist,
    attribute_name_permitted,
    reference_of,
    register_allowed,
    register_home_check,
    register_reference_home,
)
from symgraph._backends import (
    ENTRY_POINT_GROUP,
    Backend,
    backend_for,
    describe_value,
    loaded_backends,
    register_backend,
)
from symgraph._codegen import (
    CodegenPolicy,
    ConstantPool,
    EmitContext,
    Emitter,
    GeneratedCode,
    emit_template,
    generate,
    register_emitter,
)
from symgraph._compile import compile_generated
from symgraph._executors import (
    DEFAULT_EXECUTOR,
    EXECUTOR_ENTRY_POINT_GROUP,
    CodegenHost,
    EvaluationHost,
    Executor,
    Runner,
    available_executors,
    build_runner,
    check_options,
    compile_plan,
    evaluation_plan,
    policy_for,
    register_executor,
    resolve_executor,
)
from symgraph._graph import WeakGraph, fold_ancestors
from symgraph._interpreter import interpret
from symgraph._location import register_internal_package, user_location, user_stacklevel
from symgraph._model import ExecutorChoice, Program, extend_outputs
from symgraph._node import Handle, Node
from symgraph._operators import BINARY, OPERATORS, UNARY, OperatorSpec, operator_spec
from symgraph._ops import (
    SEQUENCES,
    Call,
    Elements,
    GetAttr,
    MethodCall,
    Operation,
    Operator,
    Placeholder,
    Slice,
    Unpack,
)
from symgraph._plan import InputSpec, Plan, Step, build_plan
from symgraph._registries import RegistrySnapshot, restore_registry, snapshot_registry
from symgraph._saving import FileReader, read_spec
from symgraph._spec import decode_model, encode_model
from symgraph._spec_codecs import (
    CheckCodec,
    ConstantCodec,
    DecodeContext,
    EncodeContext,
    Files,
    ModelCodec,
    OpCodec,
    ValueCodec,
    constant_codec,
    model_codec_for_kind,
    model_codec_for_type,
    register_check_codec,
    register_constant_codec,
    register_model_codec,
    register_op_codec,
    register_value_codec,
)
from symgraph._spec_values import decode_value, encode_template, encode_value
from symgraph._summary import format_summary
from symgraph._symbolic import (
    ArgumentCollector,
    SymbolicData,
    operator_methods,
    record,
    record_operator,
    symbolic_class_for,
)
from symgraph._templates import Const, DictT, ListT, NamedTupleT, Ref, SliceT, Template, TupleT
from symgraph._text import describe, escape

__all__ = [
    "BINARY",
    "DEFAULT_EXECUTOR",
    "ENTRY_POINT_GROUP",
    "EXECUTOR_ENTRY_POINT_GROUP",
    "OPERATORS",
    "SEQUENCES",
    "UNARY",
    "Allowlist",
    "ArgumentCollector",
    "Backend",
    "Call",
    "CheckCodec",
    "CodegenHost",
    "CodegenPolicy",
    "Const",
    "ConstantCodec",
    "ConstantPool",
    "DecodeContext",
    "DictT",
    "Elements",
    "EmitContext",
    "Emitter",
    "EncodeContext",
    "EvaluationHost",
    "Executor",
    "ExecutorChoice",
    "FileReader",
    "Files",
    "GeneratedCode",
    "GetAttr",
    "Handle",
    "InputSpec",
    "ListT",
    "MethodCall",
    "ModelCodec",
    "NamedTupleT",
    "Node",
    "OpCodec",
    "Operation",
    "Operator",
    "OperatorSpec",
    "Placeholder",
    "Plan",
    "Program",
    "Ref",
    "RegistrySnapshot",
    "Runner",
    "Slice",
    "SliceT",
    "Step",
    "SymbolicData",
    "Template",
    "TupleT",
    "Unpack",
    "ValueCodec",
    "WeakGraph",
    "attribute_name_permitted",
    "available_executors",
    "backend_for",
    "build_plan",
    "build_runner",
    "check_options",
    "compile_generated",
    "compile_plan",
    "constant_codec",
    "decode_model",
    "decode_value",
    "describe",
    "describe_value",
    "emit_template",
    "encode_model",
    "encode_template",
    "encode_value",
    "escape",
    "evaluation_plan",
    "extend_outputs",
    "fold_ancestors",
    "format_summary",
    "generate",
    "interpret",
    "loaded_backends",
    "model_codec_for_kind",
    "model_codec_for_type",
    "operator_methods",
    "operator_spec",
    "policy_for",
    "read_spec",
    "record",
    "record_operator",
    "reference_of",
    "register_allowed",
    "register_backend",
    "register_check_codec",
    "register_constant_codec",
    "register_emitter",
    "register_home_check",
    "register_executor",
    "register_internal_package",
    "register_reference_home",
    "register_model_codec",
    "register_op_codec",
    "register_value_codec",
    "resolve_executor",
    "restore_registry",
    "snapshot_registry",
    "symbolic_class_for",
    "user_location",
    "user_stacklevel",
]
