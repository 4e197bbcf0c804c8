"""Name -> class registries (attacks, compressors): register a class under a name, build by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def init_params(cls: type) -> tuple[list[str], bool]:
    """Names of the keyword parameters of ``cls.__init__`` and whether it also takes ``**kwargs``.

    Examples
    --------
    >>> class A:
    ...     def __init__(self, scale=1.0, *, seed=None): ...
    >>> init_params(A)
    (['scale', 'seed'], False)
    >>> init_params(object)
    ([], False)
    """
    if cls.__init__ is object.__init__:
        return [], False
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # drop self
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


class Registry(dict):
    """A ``dict`` of name -> class for one ``kind`` of thing, all subclasses of ``base``.

    Parameters
    ----------
    kind : str
        What is registered, for messages ("attack", "compressor").
    base : type
        Registered classes must subclass it; instances of it pass through :meth:`build`.
    check : callable, optional
        Extra validation of a class before it is registered (raises on a bad class).

    Examples
    --------
    >>> class Shape: ...
    >>> SHAPES = Registry("shape", Shape)
    >>> @SHAPES.register("square")
    ... class Square(Shape):
    ...     def __init__(self, side=1.0):
    ...         self.side = side
    >>> SHAPES.build("square", side=2).side, Square.name
    (2, 'square')
    >>> SHAPES.build("circle")
    Traceback (most recent call last):
    ...
    ValueError: unknown shape 'circle'; known: square
    >>> SHAPES.build("square", radius=1)
    Traceback (most recent call last):
    ...
    ValueError: shape 'square' takes no parameter 'radius'; it takes: side
    """

    def __init__(self, kind: str, base: type, check: Callable[[type], None] | None = None) -> None:
        super().__init__()
        self.kind, self.base, self.check = kind, base, check

    def register(self, name: str, cls: type | None = None, *, overwrite: bool = False) -> Any:
        """Register ``cls`` under ``name`` (or return a decorator when ``cls`` is omitted).

        A duplicate name raises ValueError unless ``overwrite``; ``cls.name`` is set to ``name``.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")

        def decorator(klass: type) -> type:
            if not (isinstance(klass, type) and issubclass(klass, self.base)):
                raise TypeError(f"only {self.base.__name__} subclasses can be registered, got {klass!r}")
            if self.check is not None:
                self.check(klass)
            if name in self and self[name] is not klass and not overwrite:
                raise ValueError(f"{self.kind} name {name!r} is already registered (pass overwrite=True to replace it)")
            klass.name = name
            self[name] = klass
            return klass

        return decorator if cls is None else decorator(cls)

    def build(self, name: Any, **params: Any) -> Any:
        """An instance of the class registered under ``name``, built with ``params``.

        An instance of ``base`` passes through unchanged (then ``params`` must be empty). Unknown
        names, parameters the class does not take, and the class's own ValueError/TypeError give
        one clear message naming the registered name.
        """
        if isinstance(name, self.base):
            if params:
                raise ValueError(f"params cannot be given together with a {self.base.__name__} instance")
            return name
        if not isinstance(name, str):
            raise TypeError(f"name must be a str or a {self.base.__name__}, got {type(name).__name__}")
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self))}")
        cls = self[name]
        takes, any_keyword = init_params(cls)
        if not any_keyword:
            for key in params:
                if key not in takes:
                    accepted = ", ".join(takes) or "(none)"
                    raise ValueError(f"{self.kind} {name!r} takes no parameter {key!r}; it takes: {accepted}")
        try:
            return cls(**params)
        except (ValueError, TypeError) as err:
            raise type(err)(f"{self.kind} {name!r}: {err}") from None
