"""``symgraph.save`` and ``symgraph.load``: a spec and its constants in a directory or a zip file.

A saved model is ``spec.json`` (see :mod:`symgraph._spec`) beside the files the
constant codecs write: ``arrays/<n>.npy`` for numpy arrays, ``tensors.safetensors``
for torch tensors. A path ending in ``.zip`` is a zip file holding the same
names; any other path is a directory.

Loading reads no pickle, anywhere: the spec is JSON, numpy files are read with
``allow_pickle=False``, tensors with safetensors. Every size is checked before
anything of that size is allocated: the spec and each file against the limit,
and each constant's header against its file and its manifest entry.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from symgraph._errors import SpecError
from symgraph._spec import check_manifest, model_to_spec, spec_to_model
from symgraph._spec_codecs import constant_codec
from symgraph._text import escape

__all__ = ["SPEC_FILE", "FileReader", "load", "read_spec", "save"]

#: The name of the spec inside a saved model.
SPEC_FILE = "spec.json"
#: The largest ``spec.json`` that :func:`load` reads.
MAX_SPEC_BYTES = 256 * 2**20
# File names a manifest may give: one or two plain parts, no "..", no absolute path.
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99})?")


class FileReader:
    """Reads the files of a saved model, by name, within a size limit.

    Args:
        path: The directory or the zip file.
        max_bytes: The largest file it reads.

    Raises:
        SpecError: ``path`` is neither a directory nor a zip file.

    Example:
        >>> import tempfile, symgraph
        >>> x = symgraph.CustomInput(1)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     saved = symgraph.save(symgraph.SymbolicModel(x, x + 1), f"{tmp}/m")
        ...     FileReader(saved, 2**20).read("spec.json").startswith(b"{")
        True
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            return
        try:
            self._zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise SpecError(
                f"{escape(str(path))} is not a saved model (a directory or a zip file): {escape(str(exc))}"
            ) from None

    def close(self) -> None:
        """Close the zip file, if it is one."""
        if self._zip is not None:
            self._zip.close()

    def _check(self, name: str) -> None:
        if not _FILE_NAME.fullmatch(name) or ".." in name.split("/"):
            raise SpecError(f"the spec names the file {escape(repr(name))}; saved files have plain relative names")

    def size(self, name: str) -> int:
        """The size of file ``name`` in bytes.

        Raises:
            SpecError: the name is not a plain relative name, the file is
                missing or reached through a symlink, or a zip entry claims more
                bytes than its compressed data can hold.
        """
        self._check(name)
        missing = SpecError(f"{escape(str(self.path))} has no file {escape(repr(name))}, which the spec needs")
        if self._zip is not None:
            try:
                info = self._zip.getinfo(name)
            except KeyError:
                raise missing from None
            archive = self.path.stat().st_size
            # Deflate expands at most about 1032 times: a larger claim is a lie.
            if info.compress_size > archive or info.file_size > 1032 * info.compress_size + 2**16:
                raise SpecError(f"{escape(name)}: its zip entry claims {info.file_size} bytes, more than it can hold")
            return info.file_size
        file = self.path / name
        # Every part below the saved directory: a symlinked folder would lead out of it.
        parts = [self.path / "/".join(name.split("/")[: k + 1]) for k in range(name.count("/") + 1)]
        if any(p.is_symlink() for p in parts) or not file.is_file():
            raise missing
        return file.stat().st_size

    def read(self, name: str, max_bytes: int | None = None, *, hint: bool = False) -> bytes:
        """The bytes of file ``name``, refused before reading if larger than the limit.

        Args:
            name: The file.
            max_bytes: A lower limit than the reader's.
            hint: When the file is missing from a zip that holds it one folder
                down (a zip of the saved directory), say so.
        """
        limit = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        try:
            size = self.size(name)
        except SpecError:
            nested = [n for n in self._zip.namelist() if n.endswith("/" + name)] if hint and self._zip else []
            if nested:
                raise SpecError(
                    f"{escape(str(self.path))} holds {escape(nested[0])}, not {name}: it is a zip of the saved "
                    "directory. Load the directory, or zip what the directory holds"
                ) from None
            raise
        if size > limit:
            raise SpecError(f"{escape(name)} holds {size} bytes, more than the {limit} that load() reads")
        chunks: list[bytes] = []
        read = 0
        try:
            with self._zip.open(name) if self._zip is not None else open(self.path / name, "rb") as f:
                # In pieces, so that a size claim that is still a lie costs at most one piece.
                while read <= size:
                    chunk = f.read(min(2**24, size + 1 - read))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    read += len(chunk)
        except (OSError, zipfile.BadZipFile, RuntimeError, EOFError, zlib.error) as exc:
            raise SpecError(f"{escape(name)} cannot be read: {escape(str(exc))}") from None
        if read != size:
            raise SpecError(f"{escape(name)} does not hold the {size} bytes its entry says")
        return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise SpecError(f"spec.json holds {name}, which is not JSON; numbers that are not finite are written as $float")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise SpecError(f"spec.json holds the number {text[:40]}, too large for a float; write it as $float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(f"spec.json has the key {escape(repr(key))} twice in one object")
        out[key] = value
    return out


def read_spec(data: bytes) -> Any:
    """Parse ``spec.json``: strict JSON, with no duplicate keys and no ``NaN``.

    Example:
        >>> read_spec(b'{"a": [1, 2.5]}')
        {'a': [1, 2.5]}
    """
    try:
        return json.loads(
            data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite, object_pairs_hook=_unique_keys
        )
    except SpecError:
        raise
    except RecursionError:
        raise SpecError("spec.json is nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SpecError(f"spec.json is not valid JSON: {escape(str(exc))}") from None


def _files(spec: dict[str, Any], constants: dict[str, Any]) -> dict[str, bytes]:
    """Every file of the saved model, the spec last (it gets each constant's file name)."""
    files: dict[str, bytes] = {}
    for name, entries in check_manifest(spec["constants"]).items():
        codec = constant_codec(name)
        assert codec is not None  # the entries were made by this codec
        for key, (file, data) in codec.write({key: constants[key] for key in entries}).items():
            entries[key]["file"] = file
            files[file] = data
    text = json.dumps(spec, indent=1, ensure_ascii=False, allow_nan=False)
    try:
        files[SPEC_FILE] = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (os.fsdecode of a name that is not UTF-8) has no UTF-8
        # form; JSON's \u escapes carry it, and read it back as it was.
        files[SPEC_FILE] = json.dumps(spec, indent=1, ensure_ascii=True, allow_nan=False).encode("ascii")
    return files


def _is_saved_model(path: Path) -> bool:
    """Whether ``path`` holds a saved model, which ``overwrite=True`` may replace."""
    if path.is_symlink():
        return False
    if path.is_dir():
        return (path / SPEC_FILE).is_file()
    try:
        with zipfile.ZipFile(path) as archive:
            return SPEC_FILE in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def save(model: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Save ``model`` in the symgraph format: its spec and its constants, without pickle.

    A path ending in ``.zip`` becomes a zip file, any other a directory. The
    model is encoded completely before anything is written, and the files are
    written to a temporary name first, so a refused model or a failed write
    leaves nothing behind.

    Args:
        model: A ``symgraph.SymbolicModel``, or a backend's model (``symgraph_torch.SymbolicModel``).
        path: Where to save.
        overwrite: Replace what ``path`` holds, if it is a saved model.

    Returns:
        The path written.

    Raises:
        SaveError: the model holds what the format cannot store (a lambda, a
            layer whose constructor arguments cannot be read back); the message
            names the step or the layer, and what to do.
        FileExistsError: ``path`` exists and ``overwrite`` is false, or it is not a
            saved model (``overwrite`` replaces only saved models, never another file).

    Example:
        >>> import tempfile, symgraph
        >>> x = symgraph.CustomInput([3, 1, 2])
        >>> model = symgraph.SymbolicModel(x, symgraph.add_to_graph(sorted, x))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     saved = symgraph.save(model, f"{tmp}/sorter.zip")
        ...     symgraph.load(saved)([9, 7, 8])
        [7, 8, 9]
    """
    target = Path(path)
    spec, constants = model_to_spec(model)
    files = _files(spec, constants)
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        if not _is_saved_model(target):
            raise FileExistsError(f"{target} is not a saved model, so overwrite=True leaves it as it is")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".zip":
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
                for name, data in files.items():
                    archive.writestr(name, data)
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, data in files.items():
            file = tmp_dir / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(tmp_dir, target)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return target


def load(
    path: str | os.PathLike[str], *, allow: Iterable[Any] = (), executor: str | None = None, max_bytes: int = 2**40
) -> Any:
    """Load a model saved by :func:`save`, running no code but what the spec names and ``allow`` permits.

    The files are treated as hostile: the spec is checked against its schema,
    it may name only the functions and classes of numpy, torch, ``math``,
    ``operator``, safe builtins and ``allow``, and constants are read without
    pickle, their sizes checked before they are allocated.

    Args:
        path: The directory or zip file.
        allow: More functions, classes or modules the spec may name (your own
            layer classes or functions, say).
        executor: The executor the model runs on, instead of the one it was
            saved with. A file may choose only ``"codegen"`` or ``"interpreter"``;
            a model saved with a plugin executor (``"compile"``, which runs a
            compiler) is loaded only when it is named here.
        max_bytes: The largest file to read.

    Returns:
        The model: a ``symgraph.SymbolicModel``, or the backend's model class.

    Raises:
        SpecError: the files are malformed, or the spec names something not
            permitted (the message says how to permit it).

    Example:
        >>> import math, tempfile, symgraph
        >>> x = symgraph.CustomInput(2.0)
        >>> model = symgraph.SymbolicModel(x, symgraph.add_to_graph(math.sqrt, x) + 1)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     symgraph.load(symgraph.save(model, f"{tmp}/model"))(16.0)
        5.0
    """
    if type(max_bytes) is not int or max_bytes < 1:
        raise TypeError(f"max_bytes must be a positive int, got {max_bytes!r}")
    reader = FileReader(Path(path), max_bytes)
    try:
        spec = read_spec(reader.read(SPEC_FILE, MAX_SPEC_BYTES, hint=True))
        if type(spec) is not dict:
            raise SpecError("spec.json: expected an object")
        constants: dict[str, Any] = {}
        for name, entries in check_manifest(spec.get("constants", {}), with_files=True).items():
            codec = constant_codec(name)
            if codec is None:
                raise SpecError(f"spec.constants: no installed backend reads constants of codec {escape(repr(name))}")
            constants.update(codec.read(entries, reader))
        return spec_to_model(spec, constants, allow, copy_constants=False, executor=executor)
    finally:
        reader.close()
