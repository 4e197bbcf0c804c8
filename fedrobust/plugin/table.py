"""The plugin classes of both Flower APIs, made from the rule table.

Every rule in :data:`fedrobust.aggregators.rules.RULES` is a plugin strategy in each API: a
subclass of that API's robust ``FedAvg`` named ``Fed`` + the rule class's name without ``Rule``
(``GMDRule`` → ``FedGMD``). :class:`PluginTable` makes the classes on first use, so a rule
registered later (:func:`~fedrobust.aggregators.register_rule`) is a plugin class too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import fields

from ..aggregators.rules import RULES, Rule


def plugin_class_name(rule_class: type[Rule]) -> str:
    """``Fed`` + the rule class's name without ``Rule``.

    Examples
    --------
    >>> from fedrobust.aggregators.rules import TrimmedMeanRule
    >>> plugin_class_name(TrimmedMeanRule)
    'FedTrimmedMean'
    """
    return "Fed" + (rule_class.__name__.removesuffix("Rule") or rule_class.__name__)


def _doc(rule_class: type[Rule]) -> str:
    summary = (rule_class.__doc__ or rule_class.name).strip().split("\n\n")[0]
    summary = " ".join(line.strip() for line in summary.splitlines())
    params = ", ".join(f"``{f.name}``" for f in fields(rule_class) if f.init)
    return (
        f"``FedAvg`` with the ``{rule_class.name}`` rule of the deltas "
        f"(:class:`~{rule_class.__module__}.{rule_class.__qualname__}`"
        + (f": {params}" if params else "") + f").\n\n    {summary}"
    )


class PluginTable(Mapping):
    """Strategy name → plugin class of one API, following :data:`~fedrobust.aggregators.rules.RULES`.

    Parameters
    ----------
    base : type
        The API's robust ``FedAvg`` (it reads ``rule_class``).
    module : str
        The module the classes belong to (where users import them from).
    """

    def __init__(self, base: type, module: str) -> None:
        self._base, self._module = base, module
        self._classes: dict[str, type] = {}

    def _sync(self) -> dict[str, type]:
        for name, rule_class in RULES.items():
            cls = self._classes.get(name)
            if cls is None or cls.rule_class is not rule_class:
                class_name = plugin_class_name(rule_class)
                self._classes[name] = type(class_name, (self._base,), {
                    "rule_class": rule_class, "__doc__": _doc(rule_class), "__module__": self._module,
                    "__qualname__": class_name,
                })
        for name in set(self._classes) - set(RULES):
            del self._classes[name]
        return self._classes

    def __getitem__(self, name: str) -> type:
        return self._sync()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._sync()))

    def __len__(self) -> int:
        return len(self._sync())

    def by_class_name(self, class_name: str) -> type | None:
        """The plugin class called ``class_name`` (e.g. ``"FedKrum"``), or None."""
        return next((cls for cls in self._sync().values() if cls.__name__ == class_name), None)

    def by_class_names(self) -> dict[str, type]:
        """The plugin classes by class name (for the API module's globals)."""
        return {cls.__name__: cls for cls in self._sync().values()}

    def module_getattr(self, name: str) -> type:
        """The API module's ``__getattr__``: the class of a rule registered after its import."""
        cls = self.by_class_name(name)
        if cls is None:
            raise AttributeError(f"module {self._module!r} has no attribute {name!r}")
        return cls
