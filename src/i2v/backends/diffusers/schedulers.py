"""Which scheduler classes can replace a model's own (``--scheduler``) without changing its schedule."""

from __future__ import annotations

from ...errors import InvalidRequestError


def _init_params(cls) -> set[str] | None:
    """The ``__init__`` parameter names of a scheduler class; None when it cannot be used here (a
    diffusers placeholder whose optional dependency, e.g. torchsde, is not installed)."""
    import inspect

    from diffusers.utils import DummyObject

    if isinstance(cls, DummyObject):  # diffusers' stand-in that raises ImportError when used
        return None
    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (ImportError, TypeError, ValueError):
        return None


def scheduler_names(class_name: str, config: dict | None = None) -> list[str]:
    """The scheduler classes that can replace ``class_name`` (configured by ``config``, its
    ``scheduler_config.json``): its diffusers ``compatibles``, narrowed to those that can honour
    what the model was trained with. diffusers' ``compatibles`` only means "can read the config";
    many of them would silently run a different schedule:

    - flow matching (Wan's UniPC with ``prediction_type="flow_prediction"`` / ``use_flow_sigmas``):
      only schedulers that take both (UniPC, DPM-Solver multistep/singlestep, DEIS); a
      ``FlowMatch*`` scheduler (LTX, HunyuanVideo): only ``FlowMatch*`` ones;
    - continuous (EDM / Karras) timesteps (SVD's ``EulerDiscreteScheduler`` with
      ``timestep_type="continuous"``): only schedulers that take ``timestep_type`` (Euler discrete);
    - everything else (discrete epsilon / v-prediction: AnimateDiff, CogVideoX): the compatibles
      but the ``EDM*`` ones (they feed the model continuous noise levels, not its discrete timesteps).

    Compatibles that cannot be imported here (missing optional dependency) are left out.
    """
    import diffusers

    config = dict(config or {})
    cls = getattr(diffusers, class_name, None)
    if cls is None or not hasattr(cls, "_get_compatibles"):
        return [class_name]
    candidates = {c.__name__: _init_params(c) for c in cls._get_compatibles()}
    candidates.setdefault(class_name, _init_params(cls))
    candidates = {name: params for name, params in candidates.items() if params is not None}
    if class_name.startswith("FlowMatch"):
        valid = [n for n in candidates if n.startswith("FlowMatch")]
    elif config.get("prediction_type") == "flow_prediction" or config.get("use_flow_sigmas"):
        valid = [n for n, p in candidates.items() if {"prediction_type", "use_flow_sigmas"} <= p]
    elif config.get("timestep_type") == "continuous":
        valid = [n for n, p in candidates.items() if {"timestep_type", "use_karras_sigmas"} <= p]
    else:  # discrete timesteps: EDM schedulers feed continuous noise levels instead, which such models never saw
        valid = [n for n in candidates if not n.startswith("EDM")]
    return sorted(set(valid) | {class_name})


def scheduler_kind(class_name: str, config: dict | None = None) -> str | None:
    """A few words naming the schedule that restricts the choice (for error messages)."""
    config = dict(config or {})
    if class_name.startswith("FlowMatch"):
        return "a flow-matching schedule"
    if config.get("prediction_type") == "flow_prediction" or config.get("use_flow_sigmas"):
        return "a flow-matching schedule (prediction_type='flow_prediction', flow sigmas)"
    if config.get("timestep_type") == "continuous":
        return "continuous EDM/Karras timesteps (timestep_type='continuous')"
    return None


def check_scheduler(name: str, current: str, config: dict | None = None) -> None:
    valid = scheduler_names(current, config)
    if name not in valid:
        kind = scheduler_kind(current, config)
        why = f", which runs {kind}" if kind else ""
        raise InvalidRequestError(f"scheduler {name!r} cannot replace this model's {current}{why}; "
                                  f"valid names: {', '.join(valid)}")


def check_scheduler_name(name: str) -> None:
    """Before the model's scheduler is known: ``name`` must at least be a diffusers scheduler class."""
    import diffusers

    cls = getattr(diffusers, name, None) if name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise InvalidRequestError(f"scheduler {name!r} is not a diffusers scheduler class (e.g. "
                                  "UniPCMultistepScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler)")


def swap_scheduler(pipe, name: str, **overrides) -> None:
    import diffusers

    check_scheduler(name, type(pipe.scheduler).__name__, pipe.scheduler.config)
    pipe.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config, **overrides)
