"""A Sigma condition's syntax error as a sentence an analyst can act on.

pySigma parses conditions with pyparsing and passes its message on as it is
("Expected {{{'1' | 'any' | 'all'} 'of' W:(*0-9A-Z_a-z)} | W:(-0-9A-Z_a-z)},
found end of text (at char 13), (line:1, col:14)"). This module reads the
condition again with the same grammar, by hand, and says where it goes wrong
and what could come there instead:

    condition := term ("or" term)*
    term      := factor ("and" factor)*
    factor    := "not" factor | "(" condition ")" | quantifier "of" pattern | name
    quantifier:= "1" | "any" | "all"

Names hold letters, digits, ``_`` and ``-``; patterns letters, digits, ``_``
and ``*``. Operators are lower case.
"""

import re
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z0-9_*-]+")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PATTERN = re.compile(r"[A-Za-z0-9_*]+")
OPERATORS = ("and", "or", "not")
QUANTIFIERS = ("1", "any", "all")
_OPERAND = "a selection name, 'not', '1 of …', 'all of …' or '('"


@dataclass(frozen=True)
class _Token:
    text: str
    column: int  # 1-based


class _Unreadable(Exception):
    pass


def _tokens(condition: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(condition):
        char = condition[position]
        if char.isspace():
            position += 1
            continue
        if char in "()":
            tokens.append(_Token(char, position + 1))
            position += 1
            continue
        word = _WORD.match(condition, position)
        if word is None:
            raise _Unreadable(
                f"it has {char!r} at column {position + 1}; a condition holds only selection "
                "names, and, or, not, '1 of'/'all of' with a name pattern, and parentheses"
            )
        tokens.append(_Token(word.group(), position + 1))
        position = word.end()
    return tokens


class _Reader:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.position = 0
        self.open_parentheses: list[_Token] = []

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def previous(self) -> str:
        return self.tokens[self.position - 1].text

    def condition(self) -> None:
        self.term()
        while self._is("or"):
            self.take()
            self.term()

    def term(self) -> None:
        self.factor()
        while self._is("and"):
            self.take()
            self.factor()

    def factor(self) -> None:
        token = self.peek()
        if token is None:
            raise _Unreadable(f"it ends after '{self.previous()}': {_OPERAND} was expected next")
        if token.text == "not":
            self.take()
            self.factor()
        elif token.text == "(":
            self.open_parentheses.append(self.take())
            self.condition()
            closing = self.peek()
            if closing is None:
                opening = self.open_parentheses[-1]
                raise _Unreadable(
                    f"the '(' at column {opening.column} is not closed: ')' was expected "
                    "before the end"
                )
            if closing.text != ")":
                self._unexpected(closing)
            self.take()
            self.open_parentheses.pop()
        elif token.text in QUANTIFIERS and self._is("of", ahead=1):
            self.take()
            of = self.take()
            pattern = self.peek()
            if pattern is None or not _PATTERN.fullmatch(pattern.text) or pattern.text in OPERATORS:
                found = "the end" if pattern is None else f"'{pattern.text}'"
                raise _Unreadable(
                    f"after '{token.text} of' at column {of.column} a selection name or "
                    f"pattern (such as selection_* or them) was expected, not {found}; "
                    "patterns hold letters, digits, '_' and '*'"
                )
            self.take()
        elif token.text in ("and", "or", ")"):
            raise _Unreadable(
                f"it has '{token.text}' at column {token.column} where {_OPERAND} was expected"
            )
        elif "*" in token.text:
            raise _Unreadable(
                f"the pattern '{token.text}' at column {token.column} needs '1 of' or "
                f"'all of' before it (e.g. 1 of {token.text})"
            )
        elif _NAME.fullmatch(token.text):
            self.take()
        else:
            self._unexpected(token)

    def _is(self, text: str, ahead: int = 0) -> bool:
        position = self.position + ahead
        return position < len(self.tokens) and self.tokens[position].text == text

    def _unexpected(self, token: _Token) -> None:
        expected = "'and', 'or'"
        expected += ", ')'" if self.open_parentheses else ""
        expected += " or the end of the condition"
        if token.text == ")":
            raise _Unreadable(f"the ')' at column {token.column} closes no '('")
        hint = ""
        if token.text.lower() in OPERATORS:
            hint = " (operators are written in lower case)"
        elif token.text == "of":
            hint = " ('of' follows 1, any or all)"
        raise _Unreadable(
            f"it has '{token.text}' at column {token.column} where {expected} was expected{hint}"
        )


def _problem(condition: str) -> str | None:
    """Why the condition cannot be read, or None when it can."""
    if not condition.strip():
        return "it is empty: name a selection, e.g. 'selection'"
    try:
        reader = _Reader(_tokens(condition))
        reader.condition()
        extra = reader.peek()
        if extra is not None:
            reader._unexpected(extra)
    except _Unreadable as exc:
        return str(exc)
    return None


def explain(condition: str, column: int | None = None) -> str:
    """A sentence saying why ``condition`` cannot be parsed and what was expected.

    ``column`` is where pyparsing stopped, used only should the reading here
    find nothing wrong (a grammar change in pySigma).
    """
    shown = condition if len(condition) <= 120 else condition[:117] + "…"
    reason = _problem(condition)
    if reason is None:
        where = f" at column {column}" if column else ""
        reason = f"it cannot be read{where}"
    return f"The condition '{shown}' cannot be read: {reason}."
