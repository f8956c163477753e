"""The Lab contract: a ``param.Parameterized`` model of one family of methods on one family of problems.

A lab validates its parameters, then :meth:`Lab.frames` streams :class:`~explore.core.frame.Frame`
objects (the caller owns the loop: the dashboard can pause, step and resume) and :meth:`Lab.run`
drives the same stream to the end and returns the history as an ``xarray.Dataset``.
"""
from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import param

from explore.core.backend import BACKENDS, get_namespace, to_host
from explore.core.frame import Frame, light_frame
from explore.core.memory import RunTooLarge, available_bytes, format_bytes

#: a run whose steps so far, continued at their average size, would need more steps than this to reach
#: its end is stopped (an adaptive run told to go to t = 1e300, or one whose step has collapsed)
MAX_RUN_STEPS = 5e7
#: every how many steps a run checks that projection
PROGRESS_CHECK_EVERY = 1024


class SolverDiverged(RuntimeError):
    """A run produced a non-finite value (or, ``what``, cannot go on); the message says when, what,
    and what to change."""

    def __init__(self, time: float, quantity: str, hint: str, what: str = "became non-finite"):
        self.time, self.quantity, self.hint, self.what = time, quantity, hint, what
        super().__init__(f"The run {what} at t = {time:.6g} (in {quantity}). {hint}")


#: passes over the aliases of one :meth:`Lab.set` until their values settle (two where none reads
#: another's parameters; one more per alias that does)
ALIAS_PASSES = 4


@dataclass(frozen=True)
class Alias:
    """Another name for one or more parameters, e.g. ``N`` for a lab whose grid is ``nx`` × ``nz``.

    ``expand(lab, value)`` returns the parameter values that ``value`` stands for, computed from the
    lab's values after the real parameters given with it are set; ``kind`` (``int`` or ``float``)
    parses it from text (the CLI). Parameters given by their own names win over an alias's.
    """

    kind: type
    doc: str
    expand: Callable[[Any, Any], dict[str, Any]]


def _of_kind(value, kind: type) -> bool:
    """Whether ``value`` is an ``int`` (``kind`` int) or a finite or infinite real number (``kind`` float);
    never a bool, which Python counts as a number."""
    import numbers

    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, numbers.Integral) if kind is int else isinstance(value, numbers.Real)


class Lab(param.Parameterized):
    """Base class of every lab.

    Subclasses set ``lab_name``, ``title``, ``description``, ``presets`` and implement
    :meth:`_frames` (a generator of frames given the array namespace) and, for combinations
    that single-parameter bounds cannot express, :meth:`check`.
    """

    lab_name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: named parameter sets; a preset is applied on top of the parameter defaults
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    default_preset: ClassVar[str | None] = None
    #: advice shown when a run goes non-finite
    divergence_hint: ClassVar[str] = "Reduce the time step or choose a more stable method."
    #: what the frames' ``convergence`` quantities are, as the dashboard titles their plot (errors against a
    #: reference by default; a lab without one names what it tracks there: drifts, residuals, rates)
    convergence_title: ClassVar[str] = "Convergence"
    #: what a frame's ``time`` counts, as the dashboard labels its axis and the result its coordinate
    #: (simulated time by default; a sampler's frames count evaluations of the model: "NFE")
    time_label: ClassVar[str] = "time"
    #: how the dashboard titles a sample plot, by the sample's key where its plain reading (underscores
    #: as spaces, capitalised past two letters: "density_profile" → "Density profile") is not right
    sample_titles: ClassVar[dict[str, str]] = {}
    #: samples the dashboard draws on another sample's axes, dashed: key → the key of the sample it joins
    #: (a theory line onto the study it is read against, an exact density onto a histogram); each is
    #: still a sample of its own in the frames and the result
    sample_overlays: ClassVar[dict[str, str]] = {}
    #: parameter groups for the controls (name → parameter names); the rest go to "Other"
    groups: ClassVar[dict[str, list[str]]] = {}
    #: other names of parameters (:class:`Alias`) that ``set``, the CLI and sweeps accept, not the controls
    aliases: ClassVar[dict[str, Alias]] = {}
    #: diagnostics that are categories, not amounts: name → the names of codes 0, 1, 2 … (a regime
    #: classification); the dashboard shows the newest one by name instead of plotting its code, and
    #: the result carries them as CF ``flag_values`` / ``flag_meanings``
    categorical_diagnostics: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: parameters that name files the run writes ('' = none): in a sweep, two points may not share one
    output_files: ClassVar[tuple[str, ...]] = ()
    #: parameters that name files the run reads ('' = none)
    input_files: ClassVar[tuple[str, ...]] = ()
    #: what to change when a run would not fit in memory (see :meth:`memory_estimate`)
    memory_hint: ClassVar[str] = "Use a smaller grid."
    #: whether a headless run keeps the samples of its last frame only (fields: bounded memory however long)
    last_samples_only: ClassVar[bool] = False
    #: the y axis the dashboard's Diagnostics plot starts with (the page can switch it): "linear",
    #: "abs_log" (magnitudes on a log axis: for diagnostics of very different sizes, which a linear axis
    #: flattens to the largest) or "normalized" (each curve ÷ its largest |value|)
    diagnostics_scale: ClassVar[str] = "linear"
    #: named subsets of the diagnostics, for a lab with many (name → diagnostic names, in legend order):
    #: the dashboard can show one group alone ("energy", "budget" …) instead of every curve at once. A
    #: name a run does not report (a rotating run's Coriolis terms) is left out of its plot
    diagnostic_groups: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def file_parameters(cls) -> tuple[str, ...]:
        """Every parameter that names a file, written or read (never taken from a link; never ``--out``)."""
        return (*cls.output_files, *cls.input_files)

    backend = param.Selector(
        default="numpy", objects=list(BACKENDS),
        doc="Array library that holds the state: numpy (CPU) or cupy (NVIDIA GPU).",
    )
    seed = param.Integer(default=0, bounds=(0, 2**32 - 1), doc="Seed of the random generator (noise, samples).")

    def __init__(self, preset: str | None = None, **params):
        super().__init__()
        # (values for every parameter, e.g. a copy ``type(lab)(**lab.values())``, leave nothing of the
        # default preset to apply)
        if preset is None and not params.keys() >= set(self.parameter_names()):
            preset = self.default_preset
        #: the preset this lab was built from (``None``: from values alone); a view selects it
        self.built_preset = preset
        if preset is not None:
            self.apply_preset(preset)
        if params:
            self.set(**params)

    # ----------------------------------------------------------------- parameters
    @classmethod
    def time_symbol(cls) -> str:
        """How a progress line names a frame's time: ``t``, or :attr:`time_label` where that is not time."""
        return "t" if cls.time_label == "time" else cls.time_label

    @classmethod
    def parameter_names(cls) -> list[str]:
        """User-facing parameter names (everything but param's ``name``)."""
        return [p for p in cls.param if p != "name"]

    def set(self, **values) -> Lab:
        """Set parameters by name or :attr:`aliases`; unknown names raise ``ValueError`` listing the known ones.

        The real parameters are set first, then each alias (from the lab's values by then), except
        for the parameters that were given by their own names; a narrower alias wins over a broader
        one whatever their order (``ny``, which sets ``nz``, over ``N``, which sets ``nx`` and ``nz``).
        Aliases that read what others set (KH's ``N`` keeps the cells square in the domain ``L`` sets)
        are applied again until nothing changes, so their order does not matter; values that never
        settle (``L`` with ``Lx``: ``L`` keeps the aspect of a domain whose length ``Lx`` fixes) are
        refused.
        """
        known = set(self.parameter_names())
        for key in values:
            if key not in known and key not in self.aliases:
                names = ", ".join(sorted(known))
                extra = f"; other names: {', '.join(self.aliases)}" if self.aliases else ""
                raise ValueError(f"{self.lab_name}: unknown parameter {key!r}; known parameters: {names}{extra}")
        for key, value in values.items():  # (an alias's value is checked here: its expansion computes with it)
            alias = self.aliases.get(key) if key not in known else None
            if alias is not None and not _of_kind(value, alias.kind):
                raise ValueError(f"{self.lab_name}: {key!r} ({alias.doc}) takes "
                                 f"{'an integer' if alias.kind is int else 'a number'}, got {value!r}")
        real = {k: v for k, v in values.items() if k in known}
        if real:
            self.param.update(**real)
        aliased = [(k, v) for k, v in values.items() if k not in known]
        aliased.sort(key=lambda kv: -len(self.aliases[kv[0]].expand(self, kv[1])))  # broader ones first
        for _ in range(ALIAS_PASSES):
            before = self.values()
            for key, value in aliased:
                derived = {k: v for k, v in self.aliases[key].expand(self, value).items() if k not in real}
                try:
                    self.param.update(**derived)
                except ValueError as exc:  # (param names the parameter the alias sets, not the one given)
                    gives = ", ".join(f"{k} = {v!r}" for k, v in derived.items())
                    raise ValueError(f"{self.lab_name}: {key!r} = {value!r} gives {gives}: {exc}") from None
            if self.values() == before:
                return self
        given = ", ".join(repr(k) for k in values)
        raise ValueError(f"{self.lab_name}: {given} do not fit together: an alias and the parameters it stands "
                         "for keep changing each other; give the parameters by their own names")

    def apply_preset(self, name: str) -> Lab:
        """Reset every parameter (except ``backend``) to its default, then apply preset ``name``."""
        if name not in self.presets:
            raise ValueError(
                f"{self.lab_name}: unknown preset {name!r}; presets: {', '.join(self.presets) or 'none'}"
            )
        values = {p: self.param[p].default for p in self.parameter_names() if p != "backend"}
        values.update(self.presets[name])
        self.param.update(**values)
        return self

    def values(self) -> dict[str, Any]:
        """Current parameter values (a lab round-trips through ``type(lab)(**lab.values())``)."""
        return {p: getattr(self, p) for p in self.parameter_names()}

    def changed_values(self, preset: str | None = None) -> dict[str, Any]:
        """Parameters that differ from what ``type(self)(preset=preset)`` has (without ``preset``: the
        defaults with the default preset applied). A snippet or command line lists these, and builds the
        lab from that same start."""
        base = type(self)(preset=preset).values()
        return {p: v for p, v in self.values().items() if v != base.get(p)}

    def to_code(self, preset: str | None = None) -> str:
        """Python snippet that reproduces this configuration in a notebook (from ``preset`` when given:
        ``Lab(preset=..., <what differs from it>)``)."""
        parts = ([f"preset={preset!r}"] if preset is not None else []) + [
            f"{k}={v!r}" for k, v in self.changed_values(preset).items()]
        mod = type(self).__module__
        return (
            f"from {mod} import {type(self).__name__}\n"
            f"lab = {type(self).__name__}({', '.join(parts)})\n"
            "result = lab.run()  # xarray.Dataset\n"
        )

    def to_cli(self, preset: str | None = None) -> str:
        """The equivalent ``explore run`` command line (from ``preset`` when given)."""
        sets = " ".join(f"--set {shlex.quote(f'{k}={v}')}" for k, v in self.changed_values(preset).items()
                        if k != "backend")
        start = f" --preset {shlex.quote(preset)}" if preset is not None else ""
        return (f"explore run {self.lab_name}{start} {sets} --backend {self.backend} "
                f"--out {self.lab_name}.nc").replace("  ", " ")

    @classmethod
    def from_attrs(cls, attrs: dict, files: bool = False) -> "Lab":
        """The lab a result file was made with, from its attributes (``ds.attrs``: every parameter, as
        netCDF stores it: booleans as 0/1, ``None`` as ``"null"``, lists as JSON). Other keys are
        ignored; a file that names another lab (its ``lab`` attribute) is refused.

        The parameters that name files (:meth:`file_parameters`: a snapshot stream, a checkpoint, the
        checkpoint a run resumed from) keep their defaults unless ``files``: the lab repeats the run's
        computation (a resumed run equals the uninterrupted one), and running it does not overwrite the
        first run's snapshots and checkpoint."""
        import json

        written_by = attrs.get("lab")
        if isinstance(written_by, str) and written_by != cls.lab_name:
            raise ValueError(f"{cls.lab_name}: these attributes are of a {written_by!r} result, not of this lab")
        skip = () if files else cls.file_parameters()
        values = {}
        for name in cls.parameter_names():
            if name not in attrs or name in skip:
                continue
            v, p = attrs[name], cls.param[name]
            if hasattr(v, "item"):  # a numpy scalar
                v = v.item()
            if p.allow_None and v == "null":
                v = None
            elif isinstance(p, param.Boolean):  # (0/1; as text in a sweep's coordinate that also holds None)
                v = v.strip().lower() in ("1", "true") if isinstance(v, str) else bool(v)
            elif isinstance(p, param.Integer):
                v = int(v)
            elif isinstance(p, param.Number):
                v = float(v)
            elif isinstance(p, (param.List, param.Tuple, param.Dict)) and isinstance(v, str):
                v = json.loads(v)
            values[name] = v
        return cls(**values)

    # ----------------------------------------------------------------- validation
    def validate(self, memory: bool = True) -> None:
        """Raise ``ValueError`` naming the parameter for any bad value, before any work is done; with
        ``memory``, also what depends on the machine: :class:`~explore.core.backend.BackendUnavailable`
        for a backend it lacks (a served page opened from a link to ``backend=cupy`` says so at once) and
        :class:`~explore.core.memory.RunTooLarge` for a run that cannot fit (a sweep checks these where
        each point runs, not where it is planned)."""
        for p in self.parameter_names():
            v = getattr(self, p)
            if isinstance(self.param[p], param.Number) and v is not None and not math.isfinite(v):
                raise ValueError(f"{self.lab_name}: parameter {p!r} must be a finite number, got {v!r}")
        self.check()
        if memory:
            get_namespace(self.backend)
            self.check_memory()

    def check(self) -> None:
        """Checks of parameter combinations; subclasses raise ``ValueError`` naming the parameter."""

    @classmethod
    def sample_title(cls, key: str) -> str:
        """The title of the sample plot of ``key`` (:attr:`sample_titles`, else its plain reading; a
        one- or two-letter key is a variable's name and stays as it is)."""
        if key in cls.sample_titles:
            return cls.sample_titles[key]
        text = key.replace("_", " ")
        return text[:1].upper() + text[1:] if len(key) > 2 else text

    def inactive_parameters(self) -> frozenset[str]:
        """The parameters whose values a run with the current values ignores (a model's coefficients
        under another model, the tolerances of a fixed-step integrator): the dashboard greys their
        controls out, so a user does not tune what changes nothing. None by default."""
        return frozenset()

    def notices(self) -> list[str]:
        """What a run with the current values does that the values alone do not say (a ``dt`` shortened
        so whole steps fill each output interval): one short sentence each, shown beside the controls and
        by ``explore run``. None by default."""
        return []

    def memory_estimate(self) -> int | None:
        """About the most memory (bytes) a run takes on its backend: its state, its own arrays and what
        the integrator keeps. ``None`` (the default): small, not checked."""
        return None

    def check_memory(self) -> None:
        """Refuse, before any work, a run that needs more memory than the backend has free: one that
        outgrows the machine would otherwise bring the out-of-memory killer to the whole process (the
        server, with every session in it), not just stop itself."""
        need = self.memory_estimate()
        if not need:
            return
        have = available_bytes(self.backend)
        if have is not None and need > have:
            where = "of GPU memory" if self.backend == "cupy" else "of memory"
            raise RunTooLarge(f"{self.lab_name}: this run needs about {format_bytes(need)} {where}, more than the "
                             f"{format_bytes(have)} free. {self.memory_hint}")

    # ----------------------------------------------------------------- running
    @property
    def xp(self):
        """Array namespace of the chosen backend."""
        return get_namespace(self.backend)

    def frames(self) -> Iterator[Frame]:
        """Validate, then stream the run as frames; stops with :class:`SolverDiverged` if it blows up."""
        self.validate()
        xp = self.xp
        for frame in self._frames(xp):
            for group in (frame.convergence, frame.diagnostics):
                for key, value in group.items():
                    if not math.isfinite(value):
                        raise SolverDiverged(frame.time, key, self.divergence_hint)
            yield frame

    def _frames(self, xp) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def ensure_finite(self, x, time: float, quantity: str) -> None:
        """Raise :class:`SolverDiverged` if array ``x`` holds a non-finite value."""
        xp = self.xp if not hasattr(x, "__array_namespace__") else x.__array_namespace__()
        if not bool(xp.all(xp.isfinite(x))):
            raise SolverDiverged(time, quantity, self.divergence_hint)

    def ensure_progress(self, state, t_end: float) -> None:
        """Raise :class:`SolverDiverged` ("stopped") if the run, from t = 0 at the average step so far
        (``state.steps`` steps to ``state.t``), would need more than ``MAX_RUN_STEPS`` steps to reach
        ``t_end``. Cheap: it looks only every ``PROGRESS_CHECK_EVERY`` steps. Fixed-step runs are
        refused before they start; this bounds the adaptive ones, whose step is known only as they go."""
        steps = state.steps
        if steps == 0 or steps % PROGRESS_CHECK_EVERY or not state.t > 0:
            return
        projected = steps * (t_end / state.t)
        if projected > MAX_RUN_STEPS:
            many = f"~{projected:.3g}" if math.isfinite(projected) else f"far more than {MAX_RUN_STEPS:.0e}"
            raise SolverDiverged(
                state.t, f"the step size: {steps} steps to reach t = {state.t:.3g}, so {many} to "
                f"t_end = {t_end:.3g}", f"Shorten 't_end', unless the step has collapsed. {self.divergence_hint}",
                what="stopped")

    def run(self, callback: Callable[[Frame], None] | None = None):
        """Run to the end headless; return the history as an ``xarray.Dataset`` (see :mod:`explore.core.result`)."""
        return self.collect(callback).to_dataset()

    def collect(self, callback: Callable[[Frame], None] | None = None):
        """Run to the end headless; return the history as plain arrays, a
        :class:`~explore.core.result.ResultParts` (what :meth:`run` makes its Dataset of, and what the CLI
        writes without importing xarray)."""
        from explore.core.result import frames_to_parts

        frames, last = [], None
        for frame in self.frames():
            if last is not None:
                frames.append(dataclasses.replace(last, samples={}) if self.last_samples_only else light_frame(last))
            last = frame
            if callback is not None:
                callback(frame)
        if last is not None:
            frames.append(last)
        return frames_to_parts(frames, self, extras=self.result_extras())

    def result_extras(self) -> dict[str, Any]:
        """Extra variables for the result (e.g. the final full-resolution state); empty by default."""
        return {}

    @classmethod
    def category_name(cls, diagnostic: str, value: float) -> str | None:
        """The name of ``value`` of a categorical diagnostic (``None``: not categorical, or not one of
        its codes)."""
        names = cls.categorical_diagnostics.get(diagnostic)
        if names is None or not math.isfinite(value) or value != round(value) or not 0 <= value < len(names):
            return None
        return names[int(value)]

    @staticmethod
    def flag_attributes(names, dtype) -> dict:
        """The CF ``flag_values`` and ``flag_meanings`` of a categorical diagnostic with codes named ``names``
        (what makes its codes readable in any netCDF tool)."""
        return {"flag_values": np.arange(len(names), dtype=dtype), "flag_meanings": " ".join(names)}

    @classmethod
    def flag_categories(cls, ds):
        """Give each categorical diagnostic of the Dataset ``ds`` its :meth:`flag_attributes`; returns ``ds``."""
        for name, names in cls.categorical_diagnostics.items():
            if name in ds:
                ds[name].attrs.update(cls.flag_attributes(names, ds[name].dtype))
        return ds


__all__ = ["Alias", "Lab", "SolverDiverged", "to_host"]
