"""The shape of a rule document: each known key holding the kind of value
Sigma gives it.

pySigma trusts the shape of what it is handed: an ``id`` given as a number,
a condition given as a mapping or a correlation ``type`` given as a list
make it raise AttributeError or TypeError instead of reporting a problem.
These checks run first and say, at its line, which key holds what instead
of what; a document with such a problem is not handed to pySigma.
"""

from datetime import date

from alerts.sigma.compiled_rule import Problem
from alerts.sigma.documents import Document

# Keys whose value is one piece of text.
_TEXT_KEYS = ("title", "id", "name", "status", "level", "description", "author", "license")
# Keys whose value is a list of texts.
_TEXT_LIST_KEYS = ("tags", "references", "falsepositives", "fields")
_DATE_KEYS = ("date", "modified")
_CORRELATION_CONDITION_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")


def _kind(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, date):
        return "a date"
    return "a value of another kind"


class _Checker:
    def __init__(self, document: Document):
        self.document = document
        self.problems: list[Problem] = []

    def problem(self, message: str, *path) -> None:
        self.problems.append(Problem(message, self.document.line(*path)))

    def expect(self, value, wanted: str, ok: bool, label: str, *path) -> bool:
        if not ok:
            self.problem(f"{label} must be {wanted}, not {_kind(value)}.", *path)
        return ok

    def text_list(self, value, label: str, *path) -> None:
        if isinstance(value, str):
            return  # one text stands for a list of one
        if not self.expect(value, "a list of texts", isinstance(value, list), label, *path):
            return
        for position, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(
                    f"{label}: item {position + 1} must be text, not {_kind(item)}.",
                    *path,
                    position,
                )

    def metadata(self, data: dict) -> None:
        for key in _TEXT_KEYS:
            if data.get(key) is not None:
                self.expect(data[key], "text", isinstance(data[key], str), f"'{key}'", key)
        for key in _DATE_KEYS:
            value = data.get(key)
            if value is not None:
                self.expect(
                    value, "a date (YYYY-MM-DD)", isinstance(value, str | date), f"'{key}'", key
                )
        for key in _TEXT_LIST_KEYS:
            if data.get(key) is not None:
                self.text_list(data[key], f"'{key}'", key)

    def logsource(self, value) -> None:
        if not self.expect(value, "a mapping", isinstance(value, dict), "'logsource'", "logsource"):
            return
        for key, item in value.items():
            if item is not None and not isinstance(item, str):
                self.problem(
                    f"'logsource' {key}: must be text, not {_kind(item)}.", "logsource", key
                )

    def detection(self, value) -> None:
        if not self.expect(value, "a mapping", isinstance(value, dict), "'detection'", "detection"):
            return
        for name, selection in value.items():
            if name == "condition":
                self.condition(selection)
            elif not isinstance(selection, dict | list):
                self.problem(
                    f"Selection '{name}' must be a mapping of fields to values (or a list of "
                    f"them), not {_kind(selection)}.",
                    "detection",
                    name,
                )
            elif isinstance(selection, list):
                for position, item in enumerate(selection):
                    if isinstance(item, list):
                        self.problem(
                            f"Selection '{name}': item {position + 1} must be a mapping or a "
                            "value, not a list.",
                            "detection",
                            name,
                            position,
                        )

    def condition(self, value) -> None:
        path = ("detection", "condition")
        if isinstance(value, str):
            return
        if isinstance(value, list) and value:
            for position, item in enumerate(value):
                if not isinstance(item, str):
                    self.problem(
                        f"The condition: item {position + 1} must be text, not {_kind(item)}.",
                        *path,
                        position,
                    )
            return
        self.problem(
            f"The condition must be text such as 'selection and not filter', not {_kind(value)}.",
            *path,
        )

    def correlation(self, value) -> None:
        if not self.expect(
            value, "a mapping", isinstance(value, dict), "'correlation'", "correlation"
        ):
            return
        path = ("correlation",)
        for key in ("type", "timespan"):
            item = value.get(key)
            if item is not None:
                self.expect(item, "text", isinstance(item, str), f"Correlation {key}", *path, key)
        for key in ("rules", "group-by"):
            item = value.get(key)
            if item is not None:
                self.text_list(item, f"Correlation {key}", *path, key)
        generate = value.get("generate")
        if generate is not None:
            self.expect(
                generate,
                "true or false",
                isinstance(generate, bool),
                "Correlation generate",
                *path,
                "generate",
            )
        self.correlation_condition(value.get("condition"))
        aliases = value.get("aliases")
        if aliases is not None and self.expect(
            aliases, "a mapping", isinstance(aliases, dict), "Correlation aliases", *path, "aliases"
        ):
            for alias, mapping in aliases.items():
                if not isinstance(mapping, dict):
                    self.problem(
                        f"Correlation alias '{alias}' must map rule names to fields, not be "
                        f"{_kind(mapping)}.",
                        *path,
                        "aliases",
                        alias,
                    )

    def correlation_condition(self, condition) -> None:
        path = ("correlation", "condition")
        if condition is None:
            return
        if not self.expect(
            condition,
            "a mapping such as gte: 10",
            isinstance(condition, dict),
            "Correlation condition",
            *path,
        ):
            return
        operators = [k for k in condition if k in _CORRELATION_CONDITION_OPERATORS]
        unknown = [
            str(k) for k in condition if k not in (*_CORRELATION_CONDITION_OPERATORS, "field")
        ]
        if unknown:
            self.problem(
                f"Correlation condition: unknown key {', '.join(unknown)}; use one of "
                f"{', '.join(_CORRELATION_CONDITION_OPERATORS)} (and field for value_count).",
                *path,
                unknown[0],
            )
        elif len(operators) != 1:
            self.problem(
                "Correlation condition: give exactly one of "
                f"{', '.join(_CORRELATION_CONDITION_OPERATORS)}, e.g. gte: 10.",
                *path,
            )
        for operator in operators:
            count = condition[operator]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                self.problem(
                    f"Correlation condition {operator}: must be a whole number of 0 or more, "
                    f"not {_kind(count) if not isinstance(count, int) else count}.",
                    *path,
                    operator,
                )
        field = condition.get("field")
        if field is not None:
            self.expect(
                field, "text", isinstance(field, str), "Correlation condition field", *path, "field"
            )


def shape_problems(document: Document) -> list[Problem]:
    """What in the document's known keys has the wrong kind of value."""
    checker = _Checker(document)
    data = document.data
    checker.metadata(data)
    if "correlation" in data:
        checker.correlation(data["correlation"])
    else:
        if "logsource" in data:
            checker.logsource(data["logsource"])
        if "detection" in data:
            checker.detection(data["detection"])
    return checker.problems
