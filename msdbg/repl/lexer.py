"""Pygments lexer for the msdbg command language (highlighting at the prompt)."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, String, Text

from msdbg.commands import all_names
from msdbg.engine.conditions import CONDITIONS


class CommandLexer(RegexLexer):
    """Commands, condition names, PARAM=VALUE, ``on PATTERN``, backtick tensors and ``#`` comments."""

    name = "msdbg"
    aliases = ["msdbg"]
    tokens = {
        "root": [
            (r"\s+", Text),
            (r"#.*$", Comment),
            (words(tuple(sorted(all_names(), key=len, reverse=True)), prefix=r"^", suffix=r"\b"), Keyword),
            (words(tuple(CONDITIONS), suffix=r"\b"), Name.Builtin),
            (r"\bon\b", Keyword.Pseudo),
            (r"([A-Za-z_][A-Za-z0-9_]*)(=)(\S+)", bygroups(Name.Attribute, Operator, Number)),
            (r"`[^`]*`", String),
            (r"-?\d+(\.\d+)?([eE][-+]?\d+)?\b", Number),
            (r"\S+", Text),
        ]
    }
