"""The stage contract of `build-symmv`: what each per-song stage reads, writes and emits, checked by the runner.

A `Stage` declares
- `reads`: the song fields it looks at. The runner hands it a read-only `SongView` of exactly those: reading
  anything else, or assigning to it, is a ContractError (a bug, caught by the first song that does it);
- `writes`: field -> type spec of what it returns (a type, a union such as `float | None`, or `ListOf(Note)`).
  Every value is checked when the stage returns and again when the cache hands it back; a wrong value is a
  bug (`internal_error:ContractError`) or a cache miss, never published;
- `rows`: table -> row maker, the rows the stage's fields become; `columns`: songs column -> value, the
  columns of the one `songs` row it supplies (`song_columns` + every stage's `columns` must cover the songs
  schema exactly: checked at import);
- `config`, `code`, `versions`, `inputs`: what its cache key covers beyond its reads and the keys of the
  stages that wrote them. The stage function's own source and every constant and helper of its module that
  it names are always in the key (`fingerprint`), so editing `ALIGN_SAMPLE_RATE` recomputes the alignment.

`Pipeline(stages)` derives the run order from reads/writes (declaration order breaks ties): a field read that
no stage writes, a field with two writers, or a cycle is a ContractError when the pipeline is made, i.e. when
`symmv.pipeline.registry` is imported.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass, field

from symmv.core.records import MediaItem
from symmv.pipeline.cache import digest


class ContractError(RuntimeError):
    """A stage broke its declaration (undeclared read, write or type): a bug in the stage, not the song."""


@dataclass(frozen=True)
class ListOf:
    """Type spec of a list whose items are all `item`."""

    item: type | types.UnionType


def conforms(value, spec) -> bool:
    if isinstance(spec, ListOf):
        return isinstance(value, list) and all(isinstance(v, spec.item) for v in value)
    return isinstance(value, spec)


def default(spec):
    """A field nobody has written yet: an empty list or None."""
    return [] if isinstance(spec, ListOf) else None


def spec_name(spec) -> str:
    if isinstance(spec, ListOf):
        return f"list[{spec_name(spec.item)}]"
    return getattr(spec, "__name__", None) or str(spec)


# What discovery knows of every song before any stage runs: the "fields" no stage writes.
SOURCE_FIELDS: dict[str, object] = {"cover": MediaItem, "song_id": str, "cover_sha256": str}


def _none(*_args) -> dict:
    return {}


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[..., dict]  # (SongView, BuildConfig, BuildContext) -> {field: value, "provenance": {...}}
    reads: tuple[str, ...]
    writes: dict[str, object]
    rows: dict[str, Callable] = field(default_factory=dict)  # table -> (SongView) -> list[dict]
    columns: dict[str, Callable] = field(default_factory=dict)  # songs column -> (SongView) -> value
    config: tuple[str, ...] = ()  # BuildConfig fields it reads
    code: tuple[str, ...] = ()  # modules whose source it runs (annotators): their source hash is in the key
    versions: Callable = _none  # (BuildConfig, content_hash) -> model/backend versions, weight hashes
    inputs: Callable = _none  # (SongView, BuildContext) -> content identities beyond its reads (a listing)
    provenance: tuple[tuple[str, str], ...] = ()  # (songs.provenance key, the fields that producer made)

    @functools.cached_property  # read twice per song and stage (cache get / put): computed once
    def schema(self) -> str:
        """A tag of what its results look like: a cache entry of another shape is a miss."""
        return digest({f: spec_name(s) for f, s in sorted(self.writes.items())})

    def check(self, result: dict) -> None:
        """Raise ContractError unless `result` writes only declared fields, each of its declared type."""
        if not isinstance(result, dict):
            raise ContractError(f"stage {self.name!r} returned {type(result).__name__}, not a dict")
        for name, value in result.items():
            if name == "provenance":
                if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                    raise ContractError(f"stage {self.name!r}: provenance must map keys to strings")
                continue
            if name not in self.writes:
                raise ContractError(f"stage {self.name!r} wrote {name!r}, which it does not declare in `writes`")
            if not conforms(value, self.writes[name]):
                raise ContractError(f"stage {self.name!r} wrote {name!r} as {type(value).__name__}, declared "
                                    f"{spec_name(self.writes[name])}")

    def conforms(self, cached) -> bool:
        """Whether a cached result is one this stage could have stored: ("ok", writes) or a refusal."""
        if isinstance(cached, tuple) and len(cached) == 3 and cached[0] == "refused":
            return isinstance(cached[1], str) and isinstance(cached[2], str)
        if not (isinstance(cached, tuple) and len(cached) == 2 and cached[0] == "ok"):
            return False
        try:
            self.check(cached[1])
        except ContractError:
            return False
        return True


class SongView:
    """The fields of one song that a stage declared (read-only). `values` holds what earlier stages wrote."""

    __slots__ = ("_values", "_specs", "_stage")

    def __init__(self, values: dict, specs: dict[str, object], stage: str):
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_specs", specs)
        object.__setattr__(self, "_stage", stage)

    def __getattr__(self, name: str):  # only for names that are not the slots above
        if name not in self._specs:
            raise ContractError(f"stage {self._stage!r} reads {name!r}, which it does not declare in `reads`")
        return self._values[name] if name in self._values else default(self._specs[name])

    def __setattr__(self, name: str, value) -> None:
        raise ContractError(f"stage {self._stage!r} assigned {name!r}: stages return what they write")


def fingerprint(fn: Callable, _seen: set | None = None) -> str:
    """Hash of a function's source plus every constant and same-module function it names (recursively).

    Constants are module globals of a plain value type (numbers, strings, tuples, frozensets, dicts of them);
    a helper of the same module is fingerprinted in turn. Names from other modules are the `code` modules'
    business (their whole source is hashed)."""
    seen = set() if _seen is None else _seen
    if fn in seen:
        return ""
    seen.add(fn)
    h = hashlib.sha256(inspect.getsource(fn).encode())
    module = inspect.getmodule(fn)
    for name in sorted(_global_names(fn.__code__)):
        value = getattr(module, name, None)
        if isinstance(value, (int, float, str, bool, bytes, tuple, frozenset, dict)) and _plain(value):
            h.update(f"{name}={value!r}".encode())
        elif isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
            h.update(f"{name}:{fingerprint(value, seen)}".encode())
    return h.hexdigest()[:16]


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
            names |= _global_names(const)
    return names


def _plain(value) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return isinstance(value, (int, float, str, bool, bytes, type(None)))


class Pipeline:
    """Stages in an order their reads/writes allow, with each one's upstream stages (for key chaining)."""

    def __init__(self, stages: list[Stage], song_columns: dict[str, Callable], song_schema_names: list[str]):
        self.specs = dict(SOURCE_FIELDS)
        self.writer: dict[str, str] = {}
        for stage in stages:
            for name, spec in stage.writes.items():
                if name in self.writer or name in SOURCE_FIELDS:
                    raise ContractError(f"field {name!r} is written by both {self.writer.get(name, 'discovery')!r} "
                                        f"and {stage.name!r}")
                self.writer[name], self.specs[name] = stage.name, spec
        for stage in stages:
            unknown = [f for f in stage.reads if f not in self.specs]
            if unknown:
                raise ContractError(f"stage {stage.name!r} reads {unknown}, which no stage writes")
        self.stages = _ordered(stages, self.writer)
        self.by_name = {s.name: s for s in self.stages}
        self.after = {s.name: tuple(sorted({self.writer[f] for f in s.reads if f in self.writer}))
                      for s in self.stages}
        self.song_columns = dict(song_columns)
        supplied = list(song_columns) + [c for s in self.stages for c in s.columns]
        twice = sorted({c for c in supplied if supplied.count(c) > 1})
        missing, extra = sorted(set(song_schema_names) - set(supplied)), sorted(set(supplied) - set(song_schema_names))
        if twice or missing or extra:
            raise ContractError(f"songs columns: supplied twice {twice}, by nobody {missing}, not in the schema {extra}")
        self.fingerprints = {s.name: fingerprint(s.run) for s in self.stages}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def view(self, stage: Stage, values: dict, extra: tuple[str, ...] = ()) -> SongView:
        """What `stage` may read: its declared reads (and `extra`, e.g. its own writes for its row makers)."""
        return SongView(values, {f: self.specs[f] for f in (*stage.reads, *extra)}, stage.name)

    def key(self, stage: Stage, values: dict, cfg, ctx, upstream: dict[str, str], versions: dict) -> str:
        """The content key of `stage`'s result for one song: the cover's content, the config fields, versions
        and code it declares, its own fingerprint, the keys of the stages it reads from, and its inputs."""
        from symmv.core.versions import code_version

        return digest({"stage": stage.name, "cover": values["cover_sha256"],
                       "config": {f: getattr(cfg, f) for f in stage.config}, "versions": versions,
                       "code": code_version(*stage.code) if stage.code else "", "self": self.fingerprints[stage.name],
                       "contract": [sorted(stage.reads), stage.schema],
                       "after": {s: upstream[s] for s in self.after[stage.name]},
                       "inputs": stage.inputs(self.view(stage, values), ctx)})


def _ordered(stages: list[Stage], writer: dict[str, str]) -> list[Stage]:
    """Topological order over "reads a field that stage wrote", declaration order breaking ties."""
    needs = {s.name: {writer[f] for f in s.reads if f in writer} - {s.name} for s in stages}
    done, order = set(), []
    while len(order) < len(stages):
        ready = [s for s in stages if s.name not in done and needs[s.name] <= done]
        if not ready:
            stuck = sorted(n for n in needs if n not in done)
            raise ContractError(f"stages {stuck} read each other's fields: no order can run them")
        order.append(ready[0])
        done.add(ready[0].name)
    return order
