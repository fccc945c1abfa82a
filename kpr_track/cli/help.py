"""How ``--help`` reads: explicit line breaks kept, defaults always shown.

:class:`HelpFormatter` wraps each line of an option's help on its own, never inside a
hyphenated name, and indents the continuation lines of a help of several lines (so a list
such as the ``--reid`` models reads one entry per line); it appends ``(default: X)`` to
every option that has a default its help does not already mention. :class:`ArgumentParser`
uses it, and gives it to the parsers of its sub-commands.
"""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.HelpFormatter):
    """Keep the newlines of help texts (each line wrapped on its own) and show defaults."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        lines: list[str] = []
        indent = "  " if "\n" in text.strip() else ""
        for line in text.splitlines():
            line = " ".join(line.split())
            wrapped = textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False)
            lines.extend(wrapped or [""])
        return lines

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in help_text and "%(default)" not in help_text:
            help_text += " (default: %(default)s)"
        return help_text


class ArgumentParser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` with :class:`HelpFormatter` unless told otherwise;
    ``add_subparsers`` makes sub-command parsers of this class too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs):
        """Sub-command parsers of this class (hence with :class:`HelpFormatter`)."""
        kwargs.setdefault("parser_class", ArgumentParser)
        return super().add_subparsers(**kwargs)
